"""An in-memory filesystem that can lose power, for runtime/store.py.

The simulation and the crash-consistency tests run the real
`runtime.store.LeaseStore` over `MemFs`, the filesystem object LeaseStore
takes (`fs=`): open/write/sync/rename/remove/size/listdir, the operations it
uses on a board's littlefs or a host's POSIX filesystem. Nothing of the store
is re-implemented here; this module only models what a power cut does to a
filesystem:

* Data: bytes written to a file are volatile until `sync(f)` returns. A
  crash keeps the synced content and, of what was appended since, a prefix
  of any length (a write that was under way: whole records in it are valid,
  the last one is usually cut), optionally followed by garbage up to the
  end of the page being programmed (a partially written page: 0xFF, zeros
  or noise). A file truncated and rewritten since its last sync comes back
  as its old content or as a prefix of the new one.
* Metadata (create, truncate, rename, remove): `meta_durable=True` (littlefs:
  every metadata operation is atomic and durable when it returns), or False
  (a journalling filesystem without directory fsync: metadata operations are
  durable at the next sync of any file, and a crash keeps a prefix of those
  not yet synced, in order). `rename_atomic=False` splits a rename over an
  existing file into "remove the target" and "rename", with a possible power
  cut in between (a FAT-like filesystem).
* Power cuts: `arm(op=n, partial=j)` cuts power at the n-th mutating
  operation (a write then lands only its first j bytes), `arm(kind="sync")`
  at the next sync; the operation raises PowerCut and so does every later
  one (close excepted) until `crash()` resolves what survived.

`DurableView` replays exactly the synced bytes of the store's files into
scratch lease tables, so the invariant checker can ask "is this binding on
flash yet?" (I4).
"""

from dhcpfo.lease import log as L
from dhcpfo.lease import replay as LR
from dhcpfo.lease.table import LeaseTable


class PowerCut(Exception):
    """Power went away in the middle of a filesystem operation."""


class _Inode:
    __slots__ = ("data", "dur")

    def __init__(self):
        self.data = bytearray()
        self.dur = 0  # int: data[:dur] is durable; bytes: the durable content (file rewritten since)

    def durable(self):
        return bytes(self.data[: self.dur]) if isinstance(self.dur, int) else self.dur


class _File:
    """An open file of MemFs (append-only writes, sequential reads)."""

    def __init__(self, fs, path, inode, writable):
        self.fs = fs
        self.path = path
        self.inode = inode
        self.writable = writable
        self.pos = 0
        self.closed = False
        self.epoch = fs.epoch

    def _live(self):
        if self.closed or self.epoch != self.fs.epoch:
            raise OSError(9, "file closed")

    def write(self, data):
        self._live()
        if not self.writable:
            raise OSError(9, "not open for writing")
        n = len(data)
        j = self.fs._op("write", n)
        if j is not None:
            self.inode.data += bytes(data[:j])
            raise PowerCut("write")
        self.inode.data += bytes(data)
        return n

    def readinto(self, buf):
        self._live()
        self.fs._alive()
        d = self.inode.data
        n = len(d) - self.pos
        if n > len(buf):
            n = len(buf)
        if n <= 0:
            return 0
        buf[:n] = d[self.pos : self.pos + n]
        self.pos += n
        return n

    def flush(self):
        self._live()

    def fileno(self):
        return -1

    def close(self):
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class MemFs:
    """A directory of in-memory files with power-cut behaviour (module docstring)."""

    def __init__(self, meta_durable=True, rename_atomic=True, page=256):
        self.meta_durable = meta_durable
        self.rename_atomic = rename_atomic
        self.page = page
        self.names = {}  # path -> inode, as the running system sees it
        self.dnames = {}  # path -> inode that a crash now would keep (before the journal)
        self.journal = []  # metadata operations not yet durable (meta_durable=False)
        self.ops = 0  # mutating operations so far
        self.epoch = 0  # bumps at every crash: older file handles are dead
        self.dead = False
        self._cut_op = None
        self._cut_partial = None
        self._cut_kind = None
        self.listeners = []  # callables(kind, inode, data): "append" durable bytes, or "reset"
        self.crashes = 0
        self.torn_bytes = 0

    # ----------------------------------------------------------------- power

    def arm(self, op=None, partial=None, kind=None):
        """Cut power at mutating operation number `op` (a write keeps its first
        `partial` bytes), or at the next operation of `kind` ("write", "sync",
        "rename", ...)."""
        self._cut_op = op
        self._cut_partial = partial
        self._cut_kind = kind

    def disarm(self):
        self.arm()

    def _alive(self):
        if self.dead:
            raise PowerCut("after power cut")

    def _op(self, kind, size=0):
        """Count a mutating operation; returns None to go on, or the bytes a
        write keeps before the cut (the caller raises PowerCut)."""
        self._alive()
        n = self.ops
        self.ops += 1
        if (self._cut_op is not None and n == self._cut_op) or kind == self._cut_kind:
            self.dead = True
            self._cut_op = self._cut_kind = None
            if kind == "write":
                p = self._cut_partial
                return size if p is None or p > size else p
            raise PowerCut(kind)
        return None

    # ----------------------------------------------------------------- metadata

    def _meta(self, op):
        """Apply a metadata operation to the running directory, and durably
        (at once, or at the next sync)."""
        _apply(self.names, op)
        if self.meta_durable:
            _apply(self.dnames, op)
            self._notify("reset", None, None)
        else:
            self.journal.append(op)

    def open(self, path, mode):
        self._alive()
        ino = self.names.get(path)
        if "r" in mode:
            if ino is None:
                raise OSError(2, "no such file: " + path)
            return _File(self, path, ino, False)
        if ino is None:
            self._op("create")
            ino = _Inode()
            self._meta(("create", path, ino))
        elif "w" in mode:
            self._op("truncate")
            if isinstance(ino.dur, int):
                ino.dur = bytes(ino.data[: ino.dur])
            ino.data = bytearray()
        return _File(self, path, ino, True)

    def sync(self, f):
        f._live()
        self._op("sync")
        if self.journal:
            for op in self.journal:
                _apply(self.dnames, op)
            self.journal = []
            self._notify("reset", None, None)
        ino = f.inode
        old = ino.dur
        ino.dur = len(ino.data)
        if isinstance(old, int):
            if ino.dur > old:
                self._notify("append", ino, bytes(ino.data[old:]))
        else:
            self._notify("reset", None, None)

    def rename(self, src, dst):
        self._alive()
        if src not in self.names:
            raise OSError(2, "no such file: " + src)
        if not self.rename_atomic and dst in self.names:
            self._op("remove")
            self._meta(("remove", dst))
        self._op("rename")
        self._meta(("rename", src, dst))

    def remove(self, path):
        self._alive()
        if path not in self.names:
            raise OSError(2, "no such file: " + path)
        self._op("remove")
        self._meta(("remove", path))

    def size(self, path):
        self._alive()
        ino = self.names.get(path)
        return len(ino.data) if ino is not None else -1

    def listdir(self, path):
        self._alive()
        pre = path.rstrip("/") + "/"
        return sorted(p[len(pre):] for p in self.names if p.startswith(pre))

    # ----------------------------------------------------------------- crash

    def crash(self, rng=None, keep="random", garbage=None):
        """Power is gone (cut or not): resolve what survives and come back up.
        keep: "all" (every unsynced byte and metadata operation landed),
        "none" (none did) or "random" (a random prefix, with rng). garbage:
        None (random when rng), False, or b"\\xff"/b"\\x00"/"noise" for the
        rest of a torn page."""
        self.crashes += 1
        self.dead = False
        self.disarm()
        self.epoch += 1

        def pick(n):
            if keep == "all":
                return n
            if keep == "none" or rng is None:
                return 0
            return rng.randrange(n + 1)

        names = dict(self.dnames)
        for op in self.journal[: pick(len(self.journal))]:
            _apply(names, op)
        self.journal = []
        seen = set()
        for ino in names.values():
            if id(ino) in seen:
                continue
            seen.add(id(ino))
            if isinstance(ino.dur, int):
                tail = len(ino.data) - ino.dur
                if not tail:
                    continue
                k = pick(tail)
                end = ino.dur + k
                body = bytearray(ino.data[:end])
                if k < tail:
                    g = garbage
                    if g is None and rng is not None:
                        g = rng.choice((False, b"\xff", b"\x00", "noise"))
                    if g:
                        stop = min((end // self.page + 1) * self.page, len(ino.data))
                        if g == "noise":
                            body += bytes(rng.getrandbits(8) for _ in range(stop - end)) if rng else b""
                        else:
                            body += g * (stop - end)
                    self.torn_bytes += k % L.RECORD
                ino.data = body
            else:
                k = pick(len(ino.data) + 1)
                if k == 0 and keep != "all":
                    ino.data = bytearray(ino.dur)  # the rewrite never landed
                else:
                    ino.data = bytearray(ino.data[: k if keep != "all" else len(ino.data)])
            ino.dur = len(ino.data)
        self.names = names
        self.dnames = dict(names)
        self._notify("reset", None, None)

    def wipe(self):
        """Storage lost: every file gone."""
        self.epoch += 1
        self.dead = False
        self.disarm()
        self.names = {}
        self.dnames = {}
        self.journal = []
        self._notify("reset", None, None)

    def durable_bytes(self, path):
        """The synced content of `path` as a crash now would leave it (b"" if none)."""
        ino = self.dnames.get(path)
        return ino.durable() if ino is not None else b""

    def _notify(self, kind, ino, data):
        for f in self.listeners:
            f(kind, ino, data)


def _apply(names, op):
    k = op[0]
    if k == "create":
        names[op[1]] = op[2]
    elif k == "rename":
        ino = names.pop(op[1], None)
        if ino is not None:
            names[op[2]] = ino
    elif k == "remove":
        names.pop(op[1], None)


class DurableView:
    """What a node would find on its flash right now: the synced bytes of the
    store's snapshot and log replayed into scratch lease tables (one per
    scope index), kept up to date from the filesystem's sync events."""

    def __init__(self, fs, store_dir, sizes):
        self.fs = fs
        d = store_dir.rstrip("/") if store_dir else "."
        self.snap_path = d + "/snap"
        self.log_path = d + "/log"
        self.sizes = list(sizes)
        self.tables = {}
        self.metas = {}
        self._replay = None
        self._rebuild()
        fs.listeners.append(self._on_fs)

    def _binding(self, scope, offset, rec, extra):
        t = self.tables.get(scope)
        if t is not None and offset < t.size:
            try:
                t.load_record(offset, rec, extra)
            except ValueError:
                pass

    def _meta(self, key, payload):
        self.metas[key] = payload

    def _rebuild(self):
        self.tables = dict((i, LeaseTable(n)) for i, n in enumerate(self.sizes))
        self.metas = {}
        snap = self.fs.durable_bytes(self.snap_path)
        if snap:
            LR.Replay(self._binding, self._meta).feed(snap)
        self._replay = LR.Replay(self._binding, self._meta)
        log = self.fs.durable_bytes(self.log_path)
        if log:
            self._replay.feed(log)

    def _on_fs(self, kind, ino, data):
        if kind == "append" and self.fs.dnames.get(self.log_path) is ino:
            self._replay.feed(data)
        elif kind != "append":
            self._rebuild()

    def detach(self):
        if self._on_fs in self.fs.listeners:
            self.fs.listeners.remove(self._on_fs)

    def binding(self, scope, offset):
        """(state, client_id, hwaddr, expiry, ack_pexp) of the durable record, or None if out of range."""
        t = self.tables.get(scope)
        if t is None or offset >= t.size:
            return None
        return (t.state(offset), t.client_id(offset), t.hwaddr(offset), t.expiry(offset), t.ack_pexp(offset))
