"""In-memory stand-in for runtime/store.py: the lease log on a simulated flash.

The simulation needs what the file store gives a node - append, group
commit, compaction, recovery - plus what a real flash chip does when power
goes away at a bad moment. `SimFlash` keeps the same API as
`runtime.store.LeaseStore` (append / commit / due / compact / load) over two
in-memory "files":

* `snap`: the last whole snapshot (SNAP_BEGIN .. SNAP_END), replaced
  atomically by `compact()`: a compaction interrupted by a crash leaves the
  old snapshot and log, which is what LeaseStore's write-sync-rename
  protocol guarantees on a real filesystem;
* `log`: LOG_BEGIN(gen) then the records of every commit since.

Durability model: bytes passed to `append()` are volatile until `commit()`
returns. `crash(rng, torn=True)` throws the volatile bytes away except a
random prefix of them, which lands at the end of the log (a write that was
under way when power failed: whole records in it are valid, the last one is
usually cut). Committed bytes always survive. `lie(rng)` breaks that promise
(it tears into committed data) and exists only so the checker tests can
show that such a flash is caught; the fault schedule never uses it.
`wipe()` loses everything: "restart with wiped storage".

`DurableView` replays exactly the committed bytes into scratch lease tables,
so the invariant checker can ask "is this binding on flash yet?" (I4).
"""

from dhcpfo.lease import log as L
from dhcpfo.lease.table import LeaseTable


class SimFlash:
    """Two in-memory files with commit semantics (see module docstring)."""

    def __init__(self, compactor=None):
        self.compactor = compactor if compactor is not None else L.Compactor()
        self.snap = b""  # durable snapshot bytes
        self.log = bytearray()  # durable log bytes (may end in a torn tail after a crash)
        self.gen = 0
        self.metas = {}
        self.log_bytes = 0
        self._pending = []
        self._tables = None  # the tables given to load(), for should_compact()/compact()
        self.listeners = []  # callables(kind, data): "commit" bytes / "reset" after compaction, load or wipe
        # counters
        self.bytes_written = 0
        self.records = 0
        self.commits = 0
        self.compactions = 0
        self.torn_bytes = 0
        self.crashes = 0
        self.wipes = 0

    # ---------------------------------------------------------------- writing

    def append(self, records):
        """Buffer records (bytes, or a list of bytes) for the next commit."""
        if isinstance(records, (list, tuple)):
            for r in records:
                self.append(r)
            return
        n = len(records)
        if n % L.RECORD:
            raise ValueError("record size")
        if not n:
            return
        L.track_metas(records, self.metas)
        self._pending.append(bytes(records))

    def pending(self):
        n = 0
        for r in self._pending:
            n += len(r)
        return n

    def commit(self):
        """Make every appended byte durable (one group commit). Returns bytes written."""
        if not self._pending:
            return 0
        if not self.log:
            self._fresh_log()
        data = b"".join(self._pending)
        self._pending = []
        self.log += data
        n = len(data)
        self.log_bytes += n
        self.bytes_written += n
        self.records += n // L.RECORD
        self.commits += 1
        for f in self.listeners:
            f("commit", data)
        return n

    def _fresh_log(self):
        head = L.encode_marker(L.LOG_BEGIN, self.gen)
        self.log = bytearray(head)
        self.log_bytes = len(head)
        self.bytes_written += len(head)

    def due(self, tables_by_scope=None):
        t = tables_by_scope if tables_by_scope is not None else self._tables
        if t is None:
            return False
        return self.compactor.due(self.log_bytes, L.snapshot_size(t, self.metas))

    def should_compact(self):
        return self.due()

    def maybe_compact(self, tables_by_scope=None):
        if self.due(tables_by_scope):
            self.compact(tables_by_scope)
            return True
        return False

    def compact(self, tables_by_scope=None, metas=None):
        """Snapshot the tables and restart the log, atomically (see module docstring)."""
        if tables_by_scope is None:
            tables_by_scope = self._tables
        else:
            self._tables = tables_by_scope
        self.commit()
        if metas is not None:
            self.metas = dict(metas)
        gen = self.gen + 1
        parts = []
        chunk = bytearray(L.RECORD * 32)
        for n in L.snapshot_chunks(gen, tables_by_scope, self.metas, chunk):
            parts.append(bytes(chunk[:n]))
        self.snap = b"".join(parts)
        self.gen = gen
        self.bytes_written += len(self.snap)
        self.compactions += 1
        self._fresh_log()
        for f in self.listeners:
            f("reset", None)
        return len(self.snap)

    def close(self):
        pass

    # ---------------------------------------------------------------- reading

    def durable_bytes(self):
        """(snapshot, log) as they would be read back after a power cut now."""
        return self.snap, bytes(self.log)

    def load(self, tables_by_scope, on_meta=None):
        """Fill fresh tables from snap + log, as LeaseStore.load does; a torn
        tail is dropped by rewriting the store. Returns the same dict."""
        self._pending = []
        self._tables = tables_by_scope
        self.metas = {}
        skipped = [0]
        lost = False

        def on_binding(scope, offset, rec, extra):
            t = tables_by_scope.get(scope)
            if t is None or offset >= t.size:
                skipped[0] += 1
                return
            try:
                t.load_record(offset, rec, extra)
            except ValueError:
                skipped[0] += 1

        def meta(key, payload):
            self.metas[key] = payload
            if on_meta is not None:
                on_meta(key, payload)

        snap_records = 0
        self.gen = 0
        if self.snap:
            rs = L.Replay(on_binding, meta)
            rs.feed(self.snap)
            snap_records = rs.records
            if rs.snap_whole:
                self.gen = rs.snap_gen
            else:
                lost = True
                self.gen = rs.snap_gen if rs.snap_gen >= 0 else 0
        gate = [False]
        gen = self.gen
        snap_exists = bool(self.snap)

        def log_binding(scope, offset, rec, extra):
            if gate[0]:
                on_binding(scope, offset, rec, extra)

        def log_meta(key, payload):
            if gate[0]:
                meta(key, payload)

        rl = L.Replay(log_binding, log_meta, None)

        def log_mark(kind, g, count):
            if kind == L.LOG_BEGIN and rl.records == 0:
                gate[0] = g == gen or (g > gen and (lost or not snap_exists))

        rl.on_mark = log_mark
        log_records = 0
        ignored = 0
        rewrite = True
        if self.log:
            rl.feed(bytes(self.log))
            if gate[0]:
                if rl.log_gen != gen:
                    lost = True
                    self.gen = rl.log_gen
                log_records = rl.records
                ignored = rl.ignored()
                rewrite = ignored > 0 or lost
                self.log_bytes = rl.good
            elif rl.log_gen > gen or (rl.log_gen < 0 and rl.seen > L.RECORD):
                lost = True
        self.torn_bytes += ignored
        if rewrite:
            if lost or ignored:
                self.compact(tables_by_scope)
            else:
                self._fresh_log()
                for f in self.listeners:
                    f("reset", None)
        return {"gen": self.gen, "snap_records": snap_records, "log_records": log_records,
                "ignored": ignored, "skipped": skipped[0], "lost": lost}

    # ----------------------------------------------------------------- faults

    def crash(self, rng, torn=True):
        """Power cut now: committed bytes stay; of the appended-but-uncommitted
        bytes a random prefix survives when `torn` (often cutting a record)."""
        self.crashes += 1
        data = b"".join(self._pending)
        self._pending = []
        if torn and data:
            k = rng.randrange(len(data))
            if k:
                if not self.log:
                    self._fresh_log()
                self.log += data[:k]
                self.torn_bytes += k % L.RECORD
        return len(data)

    def lie(self, rng):
        """A flash that acknowledged a commit it did not keep: cut into the last
        committed record. Only for checker tests (it breaks the store contract)."""
        if len(self.log) > L.RECORD:
            cut = rng.randrange(1, L.RECORD)
            del self.log[len(self.log) - cut:]

    def wipe(self):
        """Storage lost: the node restarts with nothing."""
        self.wipes += 1
        self.snap = b""
        self.log = bytearray()
        self._pending = []
        self._tables = None
        self.metas = {}
        self.gen = 0
        self.log_bytes = 0
        for f in self.listeners:
            f("reset", None)

    def stats(self):
        return {"gen": self.gen, "bytes_written": self.bytes_written, "records": self.records,
                "commits": self.commits, "compactions": self.compactions, "log_bytes": self.log_bytes,
                "torn_bytes": self.torn_bytes, "crashes": self.crashes, "wipes": self.wipes}


class DurableView:
    """What a node would find on its flash right now: the committed bytes
    replayed into scratch lease tables (one per scope index)."""

    def __init__(self, flash, sizes):
        self.flash = flash
        self.sizes = list(sizes)
        self.tables = {}
        self._replay = None
        self._rebuild()
        flash.listeners.append(self._on_flash)

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
        snap, log = self.flash.durable_bytes()
        if snap:
            r = L.Replay(self._binding, self._meta)
            r.feed(snap)
        self._replay = L.Replay(self._binding, self._meta)
        if log:
            self._replay.feed(log)

    def _on_flash(self, kind, data):
        if kind == "commit":
            self._replay.feed(data)
        else:
            self._rebuild()

    def detach(self):
        if self._on_flash in self.flash.listeners:
            self.flash.listeners.remove(self._on_flash)

    def binding(self, scope, offset):
        """(state, client_id, hwaddr, expiry, ack_pexp) of the durable record, or None if out of range."""
        t = self.tables.get(scope)
        if t is None or offset >= t.size:
            return None
        return (t.state(offset), t.client_id(offset), t.hwaddr(offset), t.expiry(offset), t.ack_pexp(offset))
