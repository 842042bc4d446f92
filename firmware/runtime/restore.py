# runtime/restore.py - the lease store's files read back at boot (store.py).
#
# Boot-only code: LeaseStore.load runs it once and drops it again, with
# lease/replay.py (dhcpfo/ondemand.py). It is the store's own code, kept
# apart only so it can be dropped: it reads and sets the store's fields. The
# crash-safety rules it applies are in store.py's docstring.

from dhcpfo import ondemand
from dhcpfo.lease import log as L
from dhcpfo.lease import replay as LR

ondemand.droppable(__name__)


def _nothing(*args):
    pass


def _read(store, path, replay):
    mv = memoryview(store._chunk)
    f = store.fs.open(path, "rb")
    try:
        while True:
            n = f.readinto(store._chunk)
            if not n:
                break
            if not replay.feed(mv[:n]):
                # stopped at a bad record: the rest of the file is ignored too
                replay.seen = store._size(path)
                break
    finally:
        f.close()
    return replay


def _probe(store, path):
    """Replay a file without applying anything (markers only)."""
    return _read(store, path, LR.Replay(_nothing, _nothing))


def load(store, tables_by_scope, on_meta=None, layout=None):
    """LeaseStore.load (its docstring has the contract)."""
    store.close()
    store._pending = []
    store.metas = {}
    store.skipped = 0
    lost = False
    store.tables = tables_by_scope
    for t in tables_by_scope.values():
        if t.live():
            t.clear()

    # 1. a compaction may have died around the rename
    if store._exists(store._new):
        rn = _probe(store, store._new)
        use = rn.snap_whole and rn.ignored() == 0
        if use and store._exists(store._snap):
            rs = _probe(store, store._snap)
            use = not rs.snap_whole or rs.snap_gen < rn.snap_gen
        if use:
            store._remove(store._snap)
            store.fs.rename(store._new, store._snap)
        else:
            store._remove(store._new)

    other = [False]  # after a LAYOUT marker of another layout

    def on_binding(scope, offset, rec, extra):
        if other[0]:
            store.skipped += 1
            return
        t = tables_by_scope.get(scope)
        if t is None or offset >= t.size:
            store.skipped += 1
            return
        try:
            t.load_record(offset, rec, extra)
        except ValueError:
            store.skipped += 1

    def meta(key, payload):
        if key == L.LAYOUT_KEY and layout is not None:
            other[0] = bytes(payload[:4]) != layout
            if not other[0]:
                for t in tables_by_scope.values():
                    if t.live():
                        t.clear()
        store.metas[key] = payload
        if on_meta is not None:
            on_meta(key, payload)

    # 2. the snapshot
    snap_records = 0
    store.gen = 0
    if store._exists(store._snap):
        rs = _read(store, store._snap, LR.Replay(on_binding, meta))
        snap_records = rs.records
        if rs.snap_whole:
            store.gen = rs.snap_gen
        else:
            lost = True
            store.gen = rs.snap_gen if rs.snap_gen >= 0 else 0

    # 3. the log, applied only if it extends this snapshot
    gate = [False]
    gen = store.gen

    def log_binding(scope, offset, rec, extra):
        if gate[0]:
            on_binding(scope, offset, rec, extra)

    def log_meta(key, payload):
        if gate[0]:
            meta(key, payload)

    def log_mark(kind, g, count):
        if kind == L.LOG_BEGIN and rl.records == 0:
            # a log newer than the snapshot means the snapshot was lost
            gate[0] = g == gen or (g > gen and (lost or not store._exists(store._snap)))

    log_records = 0
    ignored = 0
    rewrite = True
    if store._exists(store._log):
        rl = LR.Replay(log_binding, log_meta, log_mark)
        _read(store, store._log, rl)
        if gate[0]:
            if rl.log_gen != gen:
                lost = True
                store.gen = rl.log_gen
            log_records = rl.records
            ignored = rl.ignored()
            rewrite = ignored > 0 or lost
            store.log_bytes = rl.good
        elif rl.log_gen > gen or (rl.log_gen < 0 and rl.seen > L.RECORD):
            lost = True  # a log we cannot place: its snapshot or header is gone
    store.torn_bytes += ignored

    if layout is not None and store.metas.get(L.LAYOUT_KEY, layout)[:4] != layout:
        # the records end in another layout (a crash before the
        # configuration that goes with them was written): what the
        # tables hold is this layout's, and the new snapshot says so
        store.metas[L.LAYOUT_KEY] = layout
        store.compact(tables_by_scope)
        rewrite = False
    if rewrite:
        if lost or ignored:
            # write what we hold now as a fresh snapshot + empty log
            store.compact(tables_by_scope)
        else:
            store._fresh_log()
    return {
        "gen": store.gen,
        "snap_records": snap_records,
        "log_records": log_records,
        "ignored": ignored,
        "skipped": store.skipped,
        "lost": lost,
    }
