"""lease.table: compact bindings, indexes and counters behave as a plain model."""
from dhcpfo.lease import table as T
from dhcpfo.lease.table import LeaseTable, LeaseError


def _mac(n):
    return bytes([0x02, 0x10, 0x20, (n >> 16) & 255, (n >> 8) & 255, n & 255])


def _raises(fn, reason):
    try:
        fn()
    except LeaseError as e:
        assert isinstance(e, ValueError)
        assert e.args[0] == reason, e.args
        return
    raise AssertionError("no LeaseError " + reason)


class _Rand:
    """Tiny deterministic generator (same sequence on both runtimes)."""

    def __init__(self, seed):
        self.x = seed

    def next(self, n):
        self.x = (self.x * 75 + 74) % 65537
        return self.x % n


def test_fresh_table_is_all_free():
    t = LeaseTable(10)
    assert t.size == 10
    assert t.count(T.FREE) == 10
    assert t.count(T.ACTIVE) == 0
    assert t.live() == 0
    for i in range(10):
        assert t.state(i) == T.FREE
        assert t.is_default(i)
        assert t.get(i) == (T.FREE, 0, None, 0, 0, 0)
        assert t.client_id(i) is None
        assert t.hwaddr(i) is None
    assert t.find_hw(_mac(1)) == -1
    assert t.next_in_state(T.ACTIVE, 0) == -1
    assert t.next_live(0) == -1


def test_set_with_hw_client_id_is_a_flag():
    t = LeaseTable(8)
    m = _mac(7)
    t.set(3, T.ACTIVE, T.PENDING, m, b"\x01" + m, 1000, 900, 400)
    assert t.state(3) == T.ACTIVE
    assert t.flags(3) == T.PENDING | T.HAS_HW | T.CID_IS_HWADDR
    assert t.expiry(3) == 1000 and t.ack_pexp(3) == 900 and t.stamp(3) == 400
    assert t.mac(3) == m
    assert t.hwaddr(3) == (1, m)
    assert t.client_id(3) == b"\x01" + m
    assert t.get(3) == (T.ACTIVE, t.flags(3), m, 1000, 900, 400)
    assert t.side_entries() == (0, 0)
    assert t.extra(3) is None
    assert t.find_hw(m) == 3
    assert t.find_cid(b"\x01" + m) == 3
    assert t.find_client(b"\x01" + m, 1, m) == 3
    # a request without a client id is a different client (RFC 2131 §4.2)
    assert t.find_client(None, 1, m) == -1
    assert t.count(T.ACTIVE) == 1 and t.count(T.FREE) == 7
    assert t.live() == 1


def test_client_without_client_id():
    t = LeaseTable(8)
    m = _mac(9)
    t.set(0, T.ACTIVE, 0, m, None, 50, 0, 10)
    assert t.client_id(0) is None
    assert t.flags(0) == T.HAS_HW
    assert t.find_client(None, 1, m) == 0
    assert t.find_cid(b"\x01" + m) == -1
    assert t.find_hw(m) == 0


def test_other_client_id_lives_in_side_dict():
    t = LeaseTable(8)
    m = _mac(5)
    duid = b"\xff\x00\x00\x00\x01\x00\x04" + bytes(range(16))
    t.set(2, T.ACTIVE, 0, m, duid, 500, 0, 1)
    assert t.flags(2) & T.XCID and not t.flags(2) & T.CID_IS_HWADDR
    assert t.client_id(2) == duid
    assert t.find_cid(duid) == 2
    assert t.find_client(duid, 1, m) == 2
    assert t.find_client(None, 1, m) == -1
    assert t.find_hw(m) == 2
    assert t.side_entries() == (1, 0)
    ext = t.extra(2)
    assert ext == bytes([len(duid)]) + duid + b"\x00"
    assert t.extra_records() == 2  # 2 + 23 bytes -> two 20-byte chunks
    # a client id 0x01+X where X is not the chaddr is kept as is
    t.set(4, T.ACTIVE, 0, m, b"\x01" + _mac(6), 1, 0, 0)
    assert t.client_id(4) == b"\x01" + _mac(6)
    assert t.find_cid(b"\x01" + _mac(6)) == 4
    t.reset(2)
    assert t.client_id(2) is None and t.find_cid(duid) == -1
    assert t.side_entries() == (1, 0)
    t.reset(4)
    assert t.side_entries() == (0, 0) and t.extra_records() == 0
    assert t.live() == 0


def test_non_ethernet_hardware():
    t = LeaseTable(4)
    ib = bytes(range(1, 17))
    t.set(1, T.ACTIVE, 0, ib, None, 9, 0, 0, 32)
    assert t.flags(1) == T.XHW
    assert t.mac(1) is None
    assert t.hwaddr(1) == (32, ib)
    assert t.find_client(None, 32, ib) == 1
    assert t.find_client(None, 1, ib) == -1
    assert t.side_entries() == (0, 1)
    # htype 6 with a 6-byte address is not Ethernet either
    m = _mac(3)
    t.set(2, T.ACTIVE, 0, m, None, 9, 0, 0, 6)
    assert t.find_hw(m) == -1
    assert t.find_client(None, 6, m) == 2
    t.set(1, T.FREE, 0, None, None, 0, 0, 0)
    assert t.find_client(None, 32, ib) == -1
    assert t.side_entries() == (0, 1)


def test_bad_input_raises_lease_error():
    t = LeaseTable(4)
    _raises(lambda: LeaseTable(0), "size")
    _raises(lambda: LeaseTable(70000), "size")
    _raises(lambda: t.state(4), "offset")
    _raises(lambda: t.state(-1), "offset")
    _raises(lambda: t.set(0, 0, 0, None, None, 0, 0, 0), "state")
    _raises(lambda: t.set(0, 8, 0, None, None, 0, 0, 0), "state")
    _raises(lambda: t.set(0, T.ACTIVE, 0, None, None, "x", 0, 0), "time")
    _raises(lambda: t.set(0, T.ACTIVE, 0, bytes(17), None, 0, 0, 0, 6), "hw")
    _raises(lambda: t.set(0, T.ACTIVE, 0, _mac(1), bytes(256), 0, 0, 0), "cid")
    _raises(lambda: t.set_state(0, 9, 0), "state")
    _raises(lambda: t.load_record(0, bytes(20)), "record")
    # nothing changed by the failed calls
    assert t.count(T.FREE) == 4 and t.live() == 0


def test_times_saturate():
    t = LeaseTable(2)
    t.set(0, T.ACTIVE, 0, _mac(1), None, -5, 2**31, T.INFINITE)
    assert t.expiry(0) == 0
    assert t.ack_pexp(0) == T.INFINITE
    assert t.stamp(0) == T.INFINITE
    t.set_expiry(0, 4000000000)
    assert t.expiry(0) == T.INFINITE


def test_small_updates_keep_counters():
    t = LeaseTable(6)
    m = _mac(2)
    t.set(1, T.ACTIVE, 0, m, None, 100, 0, 5)
    t.set_state(1, T.EXPIRED, 100)
    assert t.count(T.ACTIVE) == 0 and t.count(T.EXPIRED) == 1
    assert t.stamp(1) == 100 and t.expiry(1) == 100
    t.set_ack_pexp(1, 777)
    assert t.ack_pexp(1) == 777
    t.set_flags(1, T.PENDING | T.RESERVED)
    assert t.flags(1) == T.PENDING | T.RESERVED | T.HAS_HW
    t.set_flags(1, t.flags(1) & ~T.RESERVED)  # replaces the caller's bits
    assert t.flags(1) == T.PENDING | T.HAS_HW
    t.set_flags(1, T.RESERVED)
    assert t.flags(1) == T.RESERVED | T.HAS_HW
    t.set_flags(1, t.flags(1) | T.PENDING)
    t.clear_flag(1, T.RESERVED | T.HAS_HW)  # derived bits are not the caller's
    assert t.flags(1) == T.PENDING | T.HAS_HW
    assert t.find_hw(m) == 1
    # a FREE record that differs from the default is live
    t.set(2, T.FREE, 0, None, None, 0, 0, 0)
    t.set_stamp(2, 50)
    assert t.live() == 2
    t.set_stamp(2, 0)
    assert t.live() == 1
    t.set_flags(3, T.MARK)
    assert t.live() == 2 and t.next_flagged(T.MARK, 0) == 3
    t.clear_flag(3, T.MARK)
    assert t.live() == 1 and t.next_flagged(T.MARK, 0) == -1
    total = 0
    for s in range(1, 8):
        total += t.count(s)
    assert total == 6


def test_index_matches_model_under_churn():
    t = LeaseTable(40)
    r = _Rand(1)
    model = {}  # offset -> mac number
    for step in range(400):
        i = r.next(40)
        if r.next(4) == 0:
            t.reset(i)
            model.pop(i, None)
        else:
            n = r.next(30)  # few macs, so duplicates and clusters happen
            t.set(i, T.ACTIVE if r.next(2) else T.EXPIRED, 0, _mac(n), None, step, 0, step)
            model[i] = n
        if step % 40 == 39:
            for n in range(30):
                want = sorted(o for o in model if model[o] == n)
                assert sorted(t.hw_matches(_mac(n))) == want, (step, n)
                f = t.find_hw(_mac(n))
                assert (f == -1) == (not want)
    assert t.live() == len(model)


def test_find_prefers_active_then_latest():
    t = LeaseTable(5)
    m = _mac(4)
    t.set(0, T.EXPIRED, 0, m, None, 10, 0, 30)
    t.set(1, T.RELEASED, 0, m, None, 10, 0, 40)
    assert t.find_hw(m) == 1
    t.set(4, T.ACTIVE, 0, m, None, 99, 0, 1)
    assert t.find_hw(m) == 4
    assert t.find_client(None, 1, m) == 4
    duid = b"\xff\x01\x02\x03"
    t.set(2, T.EXPIRED, 0, m, duid, 0, 0, 5)
    t.set(3, T.EXPIRED, 0, m, duid, 0, 0, 6)
    assert t.find_cid(duid) == 3
    t.reset(3)
    assert t.find_cid(duid) == 2
    assert t.client_id(2) == duid


def test_scans_are_circular():
    t = LeaseTable(10)
    for i in (2, 7):
        t.set(i, T.BACKUP, 0, None, None, 0, 0, 0)
    assert t.count(T.BACKUP) == 2
    assert t.next_in_state(T.BACKUP, 0) == 2
    assert t.next_in_state(T.BACKUP, 3) == 7
    assert t.next_in_state(T.BACKUP, 8) == 2
    assert t.next_in_state(T.BACKUP, 99) == 2
    assert t.next_in_state(T.FREE, 2) == 3
    assert t.next_in_state(T.ABANDONED, 0) == -1
    assert t.next_live(0) == 2 and t.next_live(3) == 7 and t.next_live(8) == -1
    assert list(t.non_default()) == [2, 7]


def test_expire_sweep_is_bounded_and_policy_free():
    t = LeaseTable(10)
    for i in range(10):
        t.set(i, T.ACTIVE, 0, _mac(i), None, 100 + i * 10, 0, 0)
    seen = []

    def visit(i):
        seen.append(i)
        t.set_state(i, T.EXPIRED, 150)

    c = t.expire(150, visit, 0, 3)
    assert c == 3 and seen == [0, 1, 2]
    c = t.expire(150, visit, c, 3)
    assert c == 6 and seen == [0, 1, 2, 3, 4, 5]
    c = t.expire(150, visit, c, 100)  # budget capped at one lap
    assert c == 6 and seen == [0, 1, 2, 3, 4, 5]
    assert t.count(T.EXPIRED) == 6 and t.count(T.ACTIVE) == 4
    # nothing visited once nothing is due; cursor wraps
    assert t.expire(150, visit, 8, 4) == 2
    assert len(seen) == 6


def test_record_roundtrip_rebuilds_indexes():
    a = LeaseTable(6)
    b = LeaseTable(6)
    m = _mac(11)
    duid = b"\xff" + bytes(range(40))
    a.set(0, T.ACTIVE, T.BOOTP, m, b"\x01" + m, T.INFINITE, 5, 6)
    a.set(1, T.RELEASED, 0, m, duid, 7, 8, 9)
    a.set(2, T.ACTIVE, 0, bytes(range(20, 36)), None, 1, 2, 3, 32)
    b.set(0, T.ACTIVE, 0, _mac(99), b"\xfe\xfe", 1, 1, 1)  # overwritten below
    for i in range(6):
        b.load_record(i, a.record_bytes(i), a.extra(i))
    for i in range(6):
        assert b.get(i) == a.get(i)
        assert b.client_id(i) == a.client_id(i)
        assert b.hwaddr(i) == a.hwaddr(i)
    assert b.find_hw(_mac(99)) == -1 and b.find_cid(b"\xfe\xfe") == -1
    assert b.find_cid(duid) == 1
    assert b.find_client(b"\x01" + m, 1, m) == 0
    assert b.find_client(None, 32, bytes(range(20, 36))) == 2
    assert b.side_entries() == a.side_entries()
    assert b.extra_records() == a.extra_records()
    assert b.live() == a.live() == 3
    for s in range(1, 8):
        assert b.count(s) == a.count(s)


def test_clear():
    t = LeaseTable(5)
    t.set(1, T.ACTIVE, 0, _mac(1), b"\x09\x09", 1, 1, 1)
    t.clear()
    assert t.count(T.FREE) == 5 and t.live() == 0
    assert t.find_hw(_mac(1)) == -1 and t.find_cid(b"\x09\x09") == -1
    assert t.side_entries() == (0, 0)
