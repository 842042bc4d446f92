"""lease.log: fixed-size CRC records round-trip, torn tails are ignored,
snapshots are all-or-nothing and compaction keeps the per-change cost bounded."""
from dhcpfo.lease import log as L
from dhcpfo.lease import replay as LR
from dhcpfo.lease import table as T
from dhcpfo.lease.log import LogError


def _mac(n):
    return bytes([0x02, 0x00, 0x5E, 0x10, (n >> 8) & 255, n & 255])


DUID = b"\xff\x00\x00\x00\x07\x00\x02\x00\x00\xab\x11" + bytes(range(30))


def _table():
    t = T.LeaseTable(16)
    t.set(0, T.ACTIVE, T.PENDING, _mac(0), b"\x01" + _mac(0), 1000, 900, 100)
    t.set(3, T.RELEASED, 0, _mac(3), DUID, 500, 400, 300)
    t.set(5, T.ACTIVE, T.BOOTP, bytes(range(1, 17)), None, T.INFINITE, 0, 50, 32)
    t.set(9, T.BACKUP, 0, None, None, 0, 0, 20)
    t.set(12, T.ABANDONED, 0, None, None, 0, 0, 30)
    return t


class _Sink:
    def __init__(self, tables):
        self.tables = tables
        self.metas = []
        self.marks = []
        self.bindings = 0

    def binding(self, scope, offset, rec, extra):
        self.bindings += 1
        self.tables[scope].load_record(offset, rec, extra)

    def meta(self, key, payload):
        self.metas.append((key, payload))

    def mark(self, kind, gen, count):
        self.marks.append((kind, gen, count))


def _same(a, b):
    for i in range(a.size):
        assert a.get(i) == b.get(i), i
        assert a.client_id(i) == b.client_id(i), i
        assert a.hwaddr(i) == b.hwaddr(i), i


def _log_of(t, scope=7):
    out = b""
    for i in range(t.size):
        if not t.is_default(i):
            out += L.encode_binding(scope, i, t)
    return out


def _raises(fn, reason):
    try:
        fn()
    except LogError as e:
        assert isinstance(e, ValueError)
        assert e.args[0] == reason, e.args
        return
    raise AssertionError("no LogError " + reason)


def test_record_layout():
    t = _table()
    r = L.encode_binding(7, 0, t)
    assert len(r) == L.RECORD == 28
    assert r[0] == L.BINDING and r[1] == 7 and r[2:4] == b"\x00\x00"
    assert r[4:24] == bytes(t.record_bytes(0))
    # 2 + 41 bytes of client id + 1: three EXTRA chunks before the binding
    r = L.encode_binding(7, 3, t)
    assert len(r) == 4 * L.RECORD == L.binding_records(t, 3) * L.RECORD
    assert r[0] == L.EXTRA and r[28] == L.EXTRA and r[56] == L.EXTRA and r[84] == L.BINDING


def test_binding_roundtrip_with_side_data():
    t = _table()
    buf = _log_of(t)
    u = T.LeaseTable(16)
    s = _Sink({7: u})
    ok, ignored = LR.replay(buf, s.binding, s.meta)
    assert ignored == 0
    assert ok == len(buf) // L.RECORD
    assert s.bindings == 5
    _same(t, u)
    assert u.find_cid(DUID) == 3
    assert u.find_client(None, 32, bytes(range(1, 17))) == 5


def test_meta_records():
    m = L.encode_meta(1, b"\x02\x00\x01\x02\x03")
    assert len(m) == L.RECORD and m[0] == L.META and m[1] == 1
    s = _Sink({})
    ok, ignored = LR.replay(m + L.encode_meta(200, b""), s.binding, s.meta)
    assert (ok, ignored) == (2, 0)
    assert s.metas == [(1, b"\x02\x00\x01\x02\x03"), (200, b"")]
    _raises(lambda: L.encode_meta(256, b""), "key")
    _raises(lambda: L.encode_meta(1, bytes(21)), "payload")
    _raises(lambda: L.encode_binding(300, 0, _table()), "scope")
    _raises(lambda: L.encode_marker(L.BINDING, 1), "kind")


def test_torn_tail_is_ignored():
    t = _table()
    buf = L.encode_marker(L.LOG_BEGIN, 4) + _log_of(t)
    n = len(buf)
    for cut in (n - 1, n - 13, n - 28, n - 29, 28 + 5):
        u = T.LeaseTable(16)
        s = _Sink({7: u})
        ok, ignored = LR.replay(buf[:cut], s.binding, s.meta)
        assert ok * L.RECORD + ignored == cut
        assert ignored < L.RECORD
    # a cut inside the BINDING that ends an EXTRA run drops the whole run:
    # LOG_BEGIN, binding 0, then 3 EXTRA + BINDING for offset 3
    cut = 2 * 28 + 3 * 28 + 10
    u = T.LeaseTable(16)
    s = _Sink({7: u})
    ok, ignored = LR.replay(buf[:cut], s.binding, s.meta)
    assert ok == 2 and s.bindings == 1 and ignored == 3 * 28 + 10
    assert u.state(3) == T.FREE and u.state(0) == T.ACTIVE


def test_corrupt_record_stops_replay():
    t = _table()
    buf = bytearray(_log_of(t))
    buf[28 * 5 + 9] ^= 0x40  # inside the BINDING of offset 5
    u = T.LeaseTable(16)
    s = _Sink({7: u})
    ok, ignored = LR.replay(buf, s.binding, s.meta)
    assert ok == 5 and ignored == len(buf) - 5 * 28
    assert u.state(0) == T.ACTIVE and u.state(3) == T.RELEASED
    assert u.state(5) == T.FREE and u.state(9) == T.FREE
    # a well-sealed record of an unknown kind also stops replay
    bad = bytearray(L.encode_meta(1, b"x"))
    bad[0] = 99
    L._seal(bad, 0)
    ok, ignored = LR.replay(L.encode_meta(2, b"y") + bytes(bad), s.binding, s.meta)
    assert (ok, ignored) == (1, 28)
    # erased flash and zero fill are not records
    assert LR.replay(b"\xff" * 56, s.binding, s.meta) == (0, 56)
    assert LR.replay(bytes(56), s.binding, s.meta) == (0, 56)


def test_incremental_feed_matches_whole():
    t = _table()
    buf = L.encode_marker(L.LOG_BEGIN, 3) + _log_of(t) + L.encode_meta(9, b"abc")
    u = T.LeaseTable(16)
    s = _Sink({7: u})
    r = LR.Replay(s.binding, s.meta, s.mark)
    step = 1
    p = 0
    while p < len(buf):
        r.feed(buf[p : p + step])
        p += step
        step = step % 37 + 3
    assert r.ignored() == 0 and r.records == len(buf) // 28
    assert r.log_gen == 3 and r.snap_gen == -1
    assert s.metas == [(9, b"abc")]
    assert s.marks == [(L.LOG_BEGIN, 3, 0)]
    _same(t, u)


def test_snapshot_is_whole_and_sized():
    a = _table()
    b = T.LeaseTable(8)
    b.set(7, T.EXPIRED, 0, _mac(77), None, 1, 2, 3)
    tables = {1: a, 4: b}
    metas = {2: b"\x01\x02", 0: b"state"}
    chunk = bytearray(L.RECORD * 16)  # small, so the snapshot comes in pieces
    parts = []
    for n in L.snapshot_chunks(5, tables, metas, chunk):
        parts.append(bytes(chunk[:n]))
    snap = b"".join(parts)
    assert len(parts) >= 2
    assert len(snap) == L.snapshot_size(tables, metas)
    a2 = T.LeaseTable(16)
    b2 = T.LeaseTable(8)
    s = _Sink({1: a2, 4: b2})
    r = LR.Replay(s.binding, s.meta, s.mark)
    r.feed(snap)
    assert r.snap_whole and r.snap_gen == 5 and r.ignored() == 0
    assert s.metas == [(0, b"state"), (2, b"\x01\x02")]
    _same(a, a2)
    _same(b, b2)
    # without its end marker (or with a wrong one) a snapshot is not whole
    r = LR.Replay(s.binding, s.meta)
    r.feed(snap[:-28])
    assert not r.snap_whole
    r = LR.Replay(s.binding, s.meta)
    r.feed(snap[:-28] + L.encode_marker(L.SNAP_END, 5, 3))
    assert not r.snap_whole
    _raises(lambda: list(L.snapshot_chunks(1, tables, metas, bytearray(100))), "chunk")


def test_compactor_policy_bounds_flash_per_change():
    c = L.Compactor(8, 1000)
    assert not c.due(999, 10)
    assert not c.due(8 * 500, 500)
    assert c.due(8 * 500 + 28, 500)
    assert c.per_change_bound() <= 32
    # simulate: every change is one record; the snapshot is `live` records
    live = 300
    log = 28
    written = 28
    changes = 0
    for _ in range(20000):
        log += 28
        written += 28
        changes += 1
        snap = L.RECORD * (live + 2)
        if c.due(log, snap):
            written += snap + 28  # snapshot + the new log's LOG_BEGIN
            log = 28
    assert written / changes <= 32, written / changes


def test_side_data_is_logged_only_when_it_changes():
    t = T.LeaseTable(4)
    t.set(1, T.ACTIVE, T.PENDING, _mac(1), DUID, 100, 0, 10)
    first = L.encode_binding(2, 1, t)
    assert len(first) == 4 * 28  # EXTRA x3 + BINDING: a new client
    t.set(1, T.ACTIVE, T.PENDING, _mac(1), DUID, 200, 0, 20)  # renewal
    renew = L.encode_binding(2, 1, t)
    t.set_ack_pexp(1, 300)
    t.clear_flag(1, T.PENDING)
    ack = L.encode_binding(2, 1, t)
    assert len(renew) == len(ack) == 28
    assert len(L.encode_binding(2, 1, t, True)) == 4 * 28  # full, as snapshots
    u = T.LeaseTable(4)
    s = _Sink({2: u})
    assert LR.replay(first + renew + ack, s.binding, s.meta) == (6, 0)
    _same(t, u)
    assert u.client_id(1) == DUID and u.find_cid(DUID) == 1
    # a new client id on the same address goes out again; no client, no side data
    t.set(1, T.ACTIVE, 0, _mac(1), b"\xff\x01", 1, 1, 1)
    again = L.encode_binding(2, 1, t)
    t.set(1, T.FREE, 0, None, None, 0, 0, 5)
    gone = L.encode_binding(2, 1, t)
    assert len(again) == 2 * 28 and len(gone) == 28
    LR.replay(again, s.binding, s.meta)
    assert u.client_id(1) == b"\xff\x01" and u.find_cid(DUID) == -1
    LR.replay(gone, s.binding, s.meta)
    _same(t, u)
    assert u.side_entries() == (0, 0)
