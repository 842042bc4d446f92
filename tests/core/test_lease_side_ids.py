"""lease.table's side client ids (ids that are not 0x01+mac): packed in one
bytearray (without a trailing mac that is the record's) behind a u16 index
keyed by a small-int hash, so churn, repacking and hash collisions must
never lose or confuse a client."""
from dhcpfo.lease import table as T


def _cid(n):
    return b"\xff\x00\x00\x00\x01\x00\x01\x00\x01\x2c\x00\x00" + bytes((n >> 16 & 255, n >> 8 & 255, n & 255, 1, 2, 3, 4))


def _mac(n):
    return bytes((2, 0, 0x5E, 0x42, n >> 8 & 255, n & 255))


def test_ids_survive_churn_and_repacking():
    t = T.LeaseTable(64)
    owner = {}
    for round_ in range(6):
        for i in range(64):
            if (i + round_) % 3 == 0:
                t.set(i, T.FREE, 0, None, None, 0, 0, 0)
                owner.pop(i, None)
            else:
                n = round_ * 100 + i
                t.set(i, T.ACTIVE, 0, _mac(n), _cid(n), 1000, 0, 10 + round_)
                owner[i] = n
        for i in range(64):
            if i in owner:
                assert t.client_id(i) == _cid(owner[i])
                assert t.find_cid(_cid(owner[i])) == i
            else:
                assert t.client_id(i) is None
    assert t.find_cid(_cid(999999)) == -1
    assert t._xan - t._xfree == sum(1 + len(_cid(n)) for n in owner.values())


def test_hash_collisions_are_told_apart_by_the_id_itself():
    seen = {}
    pair = None
    for n in range(40000):
        c = bytes((n >> 8 & 255, n & 255, 7))
        h = T._hash(c, 0, 3, 3)
        if h in seen:
            pair = (seen[h], c)
            break
        seen[h] = c
    if pair is None:  # no collision among 3-byte ids: make two ids that share a hash
        return
    t = T.LeaseTable(8)
    t.set(1, T.ACTIVE, 0, _mac(1), pair[0], 1000, 0, 5)
    t.set(2, T.ACTIVE, 0, _mac(2), pair[1], 1000, 0, 5)
    assert t.find_cid(pair[0]) == 1 and t.find_cid(pair[1]) == 2
    t.set(1, T.FREE, 0, None, None, 0, 0, 0)
    assert t.find_cid(pair[0]) == -1 and t.find_cid(pair[1]) == 2
    assert t.client_id(2) == pair[1]


def test_two_bindings_of_one_id_prefer_the_active_one():
    t = T.LeaseTable(8)
    t.set(3, T.EXPIRED, 0, _mac(3), _cid(5), 900, 0, 50)
    t.set(6, T.ACTIVE, 0, _mac(6), _cid(5), 1000, 0, 40)
    assert t.find_cid(_cid(5)) == 6
    assert t.side_entries() == (2, 0)  # one side id per binding
    t.set(6, T.FREE, 0, None, None, 0, 0, 0)
    assert t.find_cid(_cid(5)) == 3


def _duid_llt(mac):
    # RFC 4361: type 255, IAID, DUID-LLT (type 1, htype 1, time, link-layer address)
    return b"\xff\x00\x00\x00\x01\x00\x01\x00\x01\x2c\x00\x00\x00" + mac


def test_ids_ending_with_the_mac_are_stored_without_it():
    t = T.LeaseTable(16)
    for i in range(16):
        t.set(i, T.ACTIVE, 0, _mac(i), _duid_llt(_mac(i)), 1000, 0, 5)
    assert t._xan == 16 * (1 + 13)  # header + the id less its 6-byte mac
    for i in range(16):
        assert t.client_id(i) == _duid_llt(_mac(i))
        assert t.find_cid(_duid_llt(_mac(i))) == i
        assert t.find_client(_duid_llt(_mac(i)), 1, _mac(i)) == i
    # the same id from another mac: stored whole, still found, and the old
    # entry (which borrowed the old mac) is gone
    t.set(3, T.ACTIVE, 0, _mac(99), _duid_llt(_mac(3)), 1000, 0, 6)
    assert t.client_id(3) == _duid_llt(_mac(3))
    assert t.find_cid(_duid_llt(_mac(3))) == 3
    assert t.find_cid(_duid_llt(_mac(99))) == -1
    # a binding without a mac keeps the whole id
    t.set(4, T.ACTIVE, 0, None, _duid_llt(_mac(4)), 1000, 0, 6)
    assert t.client_id(4) == _duid_llt(_mac(4)) and t.find_cid(_duid_llt(_mac(4))) == 4
    # the log round trip rebuilds the same table
    u = T.LeaseTable(16)
    for i in range(16):
        u.load_record(i, bytes(t.record_bytes(i)), t.extra(i))
    for i in range(16):
        assert u.client_id(i) == t.client_id(i) and u.find_cid(t.client_id(i)) == i
    assert u.side_entries() == t.side_entries() == (16, 0)


def test_long_ids_and_churn_keep_the_index_whole():
    t = T.LeaseTable(32)
    long_id = bytes(range(200))
    t.set(0, T.ACTIVE, 0, _mac(0), long_id, 1000, 0, 5)
    t.set(1, T.ACTIVE, 0, _mac(1), long_id[:127] + _mac(1), 1000, 0, 5)  # 133 bytes, mac-suffixed
    assert t.client_id(0) == long_id and t.find_cid(long_id) == 0
    assert t.client_id(1) == long_id[:127] + _mac(1) and t.find_cid(long_id[:127] + _mac(1)) == 1
    for r in range(5):  # freeing in another order than adding exercises the backward shift
        for i in range(2, 32):
            t.set(i, T.ACTIVE, 0, _mac(i + r), _duid_llt(_mac(i + r)), 1000, 0, 5)
        for i in range(31, 1, -3):
            t.set(i, T.FREE, 0, None, None, 0, 0, 0)
        for i in range(2, 32):
            want = -1 if (31 - i) % 3 == 0 else i
            assert t.find_cid(_duid_llt(_mac(i + r))) == want
    assert t.find_cid(long_id) == 0
