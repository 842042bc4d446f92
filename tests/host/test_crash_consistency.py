"""Crash consistency of runtime.store.LeaseStore, power cut anywhere.

The real store runs over tests/sim/flash.py's MemFs. A workload of group
commits (bindings with and without side data, META failover-state records)
and compactions is cut at every mutating filesystem operation and, inside
every write, at every byte offset; then recovery must give exactly the
committed state (every record whose commit - write + sync - returned, so
whose DHCPACK/BNDACK could have left) plus at most a prefix of the batch
that was being committed, and nothing else: no binding or META invented,
none lost, never "storage lost". Recovery itself is then cut too, and the
store must go on working after it.
"""

import random

from dhcpfo.lease import log as L
from dhcpfo.lease import replay as LR
from dhcpfo.lease import table as T
from runtime.store import LeaseStore

from sim.flash import MemFs, PowerCut

DIR = "/flash"


def fresh():
    return {1: T.LeaseTable(24), 2: T.LeaseTable(8)}


def state_of(tables, metas):
    out = []
    for s in sorted(tables):
        t = tables[s]
        out.append([(t.get(i), t.client_id(i), t.hwaddr(i)) for i in range(t.size)])
    return out, dict(metas)


def mac(n):
    return bytes([0x02, 0xAA, 0, 0, (n >> 8) & 255, n & 255])


def turn_records(tables, r, now):
    """One loop turn's records: 1-4 binding changes, sometimes a META."""
    recs = []
    for _ in range(1 + r.randrange(4)):
        scope = 1 if r.randrange(5) else 2
        t = tables[scope]
        i = r.randrange(t.size)
        k = r.randrange(10)
        if k < 6:
            n = r.randrange(60)
            cid = b"\x01" + mac(n) if n % 5 else b"\xff\x00\x01" + bytes([n]) * 14  # EXTRA side data
            t.set(i, T.ACTIVE, T.PENDING, mac(n), cid, now + 600, now + 900, now)
        elif k < 8:
            t.set_state(i, T.RELEASED, now)
        else:
            t.reset(i)
        recs.append(L.encode_binding(scope, i, t))
    if r.randrange(3) == 0:
        recs.append(L.encode_meta(r.randrange(3), bytes([r.randrange(256), now & 255, 7])))
    return recs


def workload(fs, seed, turns=14):
    """Run turns of commits and compactions until done or power is cut.
    Returns (committed record bytes, in-flight record bytes, cut?)."""
    r = random.Random(seed)
    committed = bytearray()
    inflight = b""
    try:
        store = LeaseStore(DIR, fs=fs, compactor=L.Compactor(factor=1, min_bytes=300))
        tables = fresh()
        store.load(tables)
        for turn in range(turns):
            recs = turn_records(tables, r, 1000 + turn)
            store.append(recs)
            inflight = b"".join(recs)
            store.commit()
            committed += inflight
            inflight = b""
            if turn % 6 == 4:
                store.compact()
            else:
                store.maybe_compact()
        store.close()
    except PowerCut:
        return bytes(committed), inflight, True
    return bytes(committed), inflight, False


def replayed(records):
    tables = fresh()
    metas = {}

    def on_binding(scope, offset, rec, extra):
        tables[scope].load_record(offset, rec, extra)

    LR.Replay(on_binding, metas.__setitem__).feed(records)
    return state_of(tables, metas)


def allowed(committed, inflight):
    """Every state recovery may give: committed + a record prefix of the batch."""
    return [replayed(committed + inflight[:k]) for k in range(0, len(inflight) + 1, L.RECORD)]


def recover(fs):
    store = LeaseStore(DIR, fs=fs)
    tables = fresh()
    info = store.load(tables)
    return store, tables, info


def check_crash(fs, committed, inflight, keep, rng=None, garbage=False, recut=None):
    fs.crash(rng, keep=keep, garbage=garbage)
    ok = allowed(committed, inflight)
    if recut is not None:
        # power is cut again while recovering (the torn-tail rewrite is a compaction)
        fs.arm(op=fs.ops + recut)
        try:
            recover(fs)
        except PowerCut:
            pass
        fs.crash(rng, keep=keep, garbage=garbage)
    store, tables, info = recover(fs)
    got = state_of(tables, store.metas)
    assert got in ok, "recovered state is not committed + a prefix of the batch"
    assert not info["lost"], info
    # and the store goes on: one more commit survives a clean power cut
    t = tables[1]
    t.set(3, T.ACTIVE, 0, mac(999), None, 5000, 5000, 5000)
    rec = L.encode_binding(1, 3, t)
    store.append(rec)
    store.commit()
    fs.crash(rng, keep="none")
    s2, t2, info2 = recover(fs)
    assert state_of(t2, s2.metas) == state_of(tables, store.metas)
    assert t2[1].find_hw(mac(999)) == 3 and not info2["lost"]
    return got == ok[0]


def _ops_of(seed, **kw):
    fs = MemFs(**kw)
    trace = []
    real = fs._op

    def op(kind, size=0):
        trace.append((kind, size))
        return real(kind, size)

    fs._op = op
    committed, inflight, cut = workload(fs, seed)
    assert not cut and not inflight
    return trace, committed


def test_workload_without_cuts_recovers_everything():
    trace, committed = _ops_of(1)
    kinds = [k for k, _n in trace]
    assert kinds.count("rename") >= 3 and kinds.count("sync") > 20  # compactions happened
    fs = MemFs()
    workload(fs, 1)
    fs.crash(keep="none")
    store, tables, info = recover(fs)
    assert state_of(tables, store.metas) == replayed(committed)
    assert info["ignored"] == 0 and not info["lost"]


def test_power_cut_at_every_operation_and_byte():
    """littlefs model (metadata atomic and durable): every cut point; the
    unsynced bytes either all land (torn at the cut byte) or none do."""
    seed = 2
    trace, _committed = _ops_of(seed)
    points = 0
    torn_kept = 0
    for i, (kind, size) in enumerate(trace):
        cuts = range(size + 1) if kind == "write" else (None,)
        for j in cuts:
            for keep in ("all", "none"):
                if keep == "none" and j not in (None, 0):
                    continue  # nothing unsynced survives: the byte offset does not matter
                fs = MemFs()
                fs.arm(op=i, partial=j)
                committed, inflight, cut = workload(fs, seed)
                assert cut
                exact = check_crash(fs, committed, inflight, keep)
                points += 1
                torn_kept += not exact
    print("power-cut points: %d, of which recovered part of the batch in flight: %d" % (points, torn_kept))
    assert points > 1500 and torn_kept > 0


def test_power_cut_with_torn_pages_lazy_metadata_and_non_atomic_rename():
    """Random cut points, random surviving prefixes, garbage in the torn page,
    on the four filesystem models; recovery itself cut in half of them."""
    r = random.Random(12)
    models = [dict(meta_durable=m, rename_atomic=a) for m in (True, False) for a in (True, False)]
    n = 0
    for model in models:
        for k in range(150):
            seed = 3 if k % 2 else 100 + k
            trace, _c = _ops_of(seed, **model)
            i = r.randrange(len(trace))
            kind, size = trace[i]
            fs = MemFs(**model)
            fs.arm(op=i, partial=r.randrange(size + 1) if kind == "write" else None)
            committed, inflight, cut = workload(fs, seed)
            assert cut
            check_crash(fs, committed, inflight, "random", rng=r, garbage=None,
                        recut=r.randrange(12) if k % 2 == 0 else None)
            n += 1
    assert n == 600


def test_meta_records_survive_like_bindings():
    """The failover state (META) committed last is what recovery gives, even
    when a compaction is cut after its snapshot rename."""
    fs = MemFs()
    store = LeaseStore(DIR, fs=fs)
    tables = fresh()
    store.load(tables)
    store.append(L.encode_meta(5, b"\x01normal"))
    store.commit()
    store.append(L.encode_meta(5, b"\x03partner-down"))
    store.commit()
    fs.arm(kind="truncate")  # the compaction's log restart: snap already renamed
    try:
        store.compact()
    except PowerCut:
        pass
    fs.crash(keep="none")
    s2, _t, info = recover(fs)
    assert s2.metas[5] == b"\x03partner-down" and not info["lost"]
