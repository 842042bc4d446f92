# runtime/store.py - the lease log on a filesystem (CPython and MicroPython).
"""File driver for lease/log.py: group commit, recovery and compaction.

Three files in one directory: `snap` (the last whole snapshot), `log`
(LOG_BEGIN(gen) then records appended since that snapshot) and, only while
compacting, `snap.new`. Every file operation goes through a small
filesystem object (`fs`): `OsFs`, the default, is open/os.rename/os.remove/
os.stat/os.fsync on CPython and MicroPython alike (littlefs on a board, a
POSIX filesystem on a host); tests give an in-memory one that can lose
power at any operation (tests/sim/flash.py), so the store that is crashed
in tests is this one.

Crash safety of compaction: snap.new is written and synced before it is
renamed over snap; the log then restarts with the new generation. A
leftover snap.new is used only if it is whole and newer than snap, and a
log whose LOG_BEGIN names an older generation is already inside snap, so
it is skipped. A torn log tail is dropped by compacting right after load
(MicroPython files have no truncate()).
"""

import os

from dhcpfo import ondemand
from dhcpfo.lease import log as L


class StoreError(ValueError):
    """Bad argument to the store; args[0] is a short fixed reason."""


class OsFs:
    """The real filesystem: the operations LeaseStore uses, nothing more."""

    def open(self, path, mode):
        return open(path, mode)

    def sync(self, f):
        """Flush `f` and make what was written durable (fsync where present)."""
        f.flush()
        if hasattr(os, "fsync"):
            os.fsync(f.fileno())

    def rename(self, src, dst):
        os.rename(src, dst)

    def remove(self, path):
        os.remove(path)

    def size(self, path):
        """Size in bytes, or -1 if there is no such file."""
        try:
            return os.stat(path)[6]
        except OSError:
            return -1

    def listdir(self, path):
        return os.listdir(path)


OS_FS = OsFs()


def _restore(store, tables_by_scope, on_meta, layout):
    from runtime import restore

    return restore.load(store, tables_by_scope, on_meta, layout)


class LeaseStore:
    """Durable bindings and metas of every scope, in the existing directory
    `path_dir`. tables_by_scope maps the u8 scope id of log records to tables."""

    def __init__(self, path_dir, compactor=None, chunk_records=32, fs=None):
        self.fs = fs if fs is not None else OS_FS
        d = path_dir.rstrip("/") if path_dir else "."
        self.dir = d or "/"
        self._snap = d + "/snap"
        self._new = d + "/snap.new"
        self._log = d + "/log"
        self.compactor = compactor if compactor is not None else L.Compactor()
        self.gen = 0
        self.metas = {}
        self.log_bytes = 0
        self.tables = None  # the tables given to load(), for due()/compact()
        self._pending = []
        self._f = None
        self._chunk = bytearray(L.RECORD * max(chunk_records, 16))
        # counters
        self.bytes_written = 0
        self.records = 0
        self.commits = 0
        self.compactions = 0
        self.torn_bytes = 0
        self.skipped = 0

    # ----------------------------------------------------------------- files

    def _exists(self, path):
        return self.fs.size(path) >= 0

    def _size(self, path):
        n = self.fs.size(path)
        return n if n > 0 else 0

    def _remove(self, path):
        try:
            self.fs.remove(path)
        except OSError:
            pass

    # ----------------------------------------------------------------- reading

    def load(self, tables_by_scope, on_meta=None, layout=None):
        """Fill the tables (cleared first) from snap + log. Returns a dict of what
        happened: gen, snap_records, log_records, ignored (torn bytes
        dropped), skipped (bindings for unknown scopes/offsets), lost (True
        if stable storage was found damaged: the engine must treat its
        bindings as lost, draft-12 §9.5.2 UPDREQALL).

        Boot-only: the reading code (runtime/restore.py, lease/replay.py) is
        loaded for the call and dropped after it (dhcpfo/ondemand.py)."""
        return ondemand.call(_restore, self, tables_by_scope, on_meta, layout)

    # ----------------------------------------------------------------- writing

    def _fresh_log(self):
        self.close()
        f = self.fs.open(self._log, "wb")
        head = L.encode_marker(L.LOG_BEGIN, self.gen)
        f.write(head)
        self.fs.sync(f)
        self._f = f
        self.log_bytes = len(head)
        self.bytes_written += len(head)

    def _logf(self):
        if self._f is None:
            if not self._exists(self._log):
                self._fresh_log()
            else:
                self._f = self.fs.open(self._log, "ab")
        return self._f

    def append(self, records):
        """Buffer records (bytes, or a list of bytes) for the next commit."""
        if isinstance(records, (list, tuple)):
            for r in records:
                self.append(r)
            return
        n = len(records)
        if n % L.RECORD:
            raise StoreError("record size")
        if not n:
            return
        L.track_metas(records, self.metas)
        self._pending.append(records)

    def pending(self):
        """Bytes buffered and not yet committed."""
        n = 0
        for r in self._pending:
            n += len(r)
        return n

    def commit(self):
        """One write + flush (+ fsync) for every record of this loop turn.
        Returns the bytes written (0 if nothing was pending)."""
        if not self._pending:
            return 0
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        f = self._logf()
        f.write(data)
        self.fs.sync(f)
        n = len(data)
        self.log_bytes += n
        self.bytes_written += n
        self.records += n // L.RECORD
        self.commits += 1
        return n

    def due(self, tables_by_scope=None):
        """True when the compactor says the log should be rewritten."""
        t = tables_by_scope if tables_by_scope is not None else self.tables
        if t is None:
            return False
        return self.compactor.due(self.log_bytes, L.snapshot_size(t, self.metas))

    should_compact = due

    def maybe_compact(self, tables_by_scope=None):
        if self.due(tables_by_scope):
            self.compact(tables_by_scope)
            return True
        return False

    def compact(self, tables_by_scope=None, metas=None):
        """Write snap.new from the tables (default: those given to load()),
        sync, rename over snap, restart the log. Pending records are committed
        first (the tables already hold them)."""
        if tables_by_scope is None:
            tables_by_scope = self.tables
        if not isinstance(tables_by_scope, dict):
            raise StoreError("tables")
        self.commit()
        if metas is not None:
            self.metas = dict(metas)
        gen = self.gen + 1
        mv = memoryview(self._chunk)
        written = 0
        f = self.fs.open(self._new, "wb")
        try:
            for n in L.snapshot_chunks(gen, tables_by_scope, self.metas, self._chunk):
                f.write(mv[:n])
                written += n
            self.fs.sync(f)
        finally:
            f.close()
        self.close()
        try:
            self.fs.rename(self._new, self._snap)
        except OSError:
            # filesystems that refuse to rename over a file; load() recovers
            # from a crash between these two steps via the whole snap.new
            self._remove(self._snap)
            self.fs.rename(self._new, self._snap)
        self.gen = gen
        self.bytes_written += written
        self.compactions += 1
        self._fresh_log()
        return written

    def close(self):
        if self._f is not None:
            try:
                self._f.close()
            except OSError:
                pass
            self._f = None

    def stats(self):
        return {
            "gen": self.gen,
            "bytes_written": self.bytes_written,
            "records": self.records,
            "commits": self.commits,
            "compactions": self.compactions,
            "log_bytes": self.log_bytes,
            "torn_bytes": self.torn_bytes,
            "skipped": self.skipped,
        }
