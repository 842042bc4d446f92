"""failover.hashing: RFC 3074 hash and ISC's hash bucket assignment."""
from dhcpfo.failover import hashing as hs

ISC_SPLIT_128 = b"\xff" * 16 + b"\x00" * 16  # option 11 in ISC's CONNECT (split 128)


def test_mixing_table_is_rfc3074s_permutation():
    t = hs.MIX
    assert len(t) == 256 and sorted(t) == list(range(256))
    # spot checks against RFC 3074 §6 (first row, middle, last row)
    assert (t[0], t[1], t[2], t[3], t[14], t[15]) == (251, 175, 119, 215, 0, 232)
    assert t[128] == 39 and t[129] == 114
    assert (t[250], t[251], t[252], t[253], t[254], t[255]) == (170, 68, 6, 169, 234, 151)


def test_client_hash_vectors():
    mix = hs.MIX
    assert hs.client_hash(b"") == 0  # start value is the length, no rounds
    assert hs.client_hash(b"\x00") == mix[1 ^ 0x00] == 175
    assert hs.client_hash(b"\xff") == mix[1 ^ 0xFF] == 234
    # 01 02 03 04 05 06: start at 6, fold in from the last byte
    h = 6
    for b in (6, 5, 4, 3, 2, 1):
        h = mix[h ^ b]
    assert hs.client_hash(b"\x01\x02\x03\x04\x05\x06") == h == 179
    assert hs.client_hash(bytes((0x00, 0x11, 0x22, 0x33, 0x44, 0x55))) == 135
    # the client-identifier form (htype 1 + MAC) hashes differently from chaddr
    assert hs.client_hash(bytes((0x01, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55))) == 223
    assert hs.client_hash(bytearray(b"\x3a\x82\xcb\xaf\xd7\xbd")) == 250
    # length is taken mod 256 (C's unsigned char start value)
    assert 0 <= hs.client_hash(bytes(300)) < 256


def test_one_byte_keys_reach_every_bucket():
    seen = set()
    for b in range(256):
        seen.add(hs.client_hash(bytes((b,))))
    assert len(seen) == 256


def test_split_matches_isc():
    assert hs.hba_split(128) == ISC_SPLIT_128
    assert hs.hba_for_percent(50) == ISC_SPLIT_128
    assert hs.hba_split(0) == bytes(32) == hs.hba_for_percent(0)
    assert hs.hba_split(256) == b"\xff" * 32 == hs.hba_for_percent(100)
    assert hs.hba_split(1) == b"\x01" + bytes(31)
    assert hs.hba_split(9) == b"\xff\x01" + bytes(30)
    assert hs.hba_split(15) == b"\xff\x7f" + bytes(30)
    assert hs.hba_for_percent(25) == b"\xff" * 8 + bytes(24)
    assert hs.primary_share(hs.hba_for_percent(33)) == 84  # 33 % of 256, rounded
    for n in (0, 1, 7, 8, 100, 128, 255, 256):
        assert hs.primary_share(hs.hba_split(n)) == n


def test_bucket_bit_order_is_lsb_first():
    hba = bytearray(32)
    hba[2] = 0x04  # byte 2, mask 1 << 2 -> bucket 18
    for b in range(256):
        assert hs.in_buckets(hba, b) == (b == 18)
    s = hs.hba_split(128)
    assert hs.in_buckets(s, 0) and hs.in_buckets(s, 127)
    assert not hs.in_buckets(s, 128) and not hs.in_buckets(s, 255)


def test_primary_and_secondary_split_every_client():
    hba = hs.hba_for_percent(50)
    prim = 0
    for i in range(64):
        key = bytes((1, 0x52, 0x54, 0, 0x12, i, i * 3 & 0xFF))
        p = hs.serves(hba, key, True)
        s = hs.serves(hba, key, False)
        assert p != s
        prim += p
    assert 16 < prim < 48  # roughly half of 64 clients
    key = b"\x00\x11\x22\x33\x44\x55"  # bucket 135: a clear bit under split 128
    assert not hs.serves(hba, key, True) and hs.serves(hba, key, False)
    assert hs.serves(hs.hba_split(256), key, True)


def test_bad_values_raise_hash_error():
    for call, arg, reason in ((hs.hba_split, -1, "bad-split"), (hs.hba_split, 257, "bad-split"),
                              (hs.hba_for_percent, 101, "bad-percent"),
                              (hs.hba_for_percent, "50", "bad-percent"),
                              (hs.check_hba, bytes(31), "bad-hba"), (hs.check_hba, None, "bad-hba")):
        try:
            call(arg)
            raise AssertionError("accepted %r" % (arg,))
        except hs.HashError as e:
            assert e.reason == reason
            assert isinstance(e, ValueError)
    assert hs.check_hba(ISC_SPLIT_128) == ISC_SPLIT_128
