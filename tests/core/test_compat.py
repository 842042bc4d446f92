"""compat: the runtime shim behaves the same on CPython and MicroPython."""
from dhcpfo import compat


def test_ticks_diff_wraps():
    p = compat.TICKS_PERIOD
    assert compat.ticks_diff(5, p - 5) == 10
    assert compat.ticks_diff(p - 5, 5) == -10
    assert compat.ticks_add(p - 1, 2) == 1


def test_clock_is_monotonic_from_its_start_and_cannot_be_set():
    t = [0]
    c = compat.Clock(100, ticks=lambda: t[0])
    assert c.now() == 100
    t[0] = 2500
    assert c.now() == 102
    t[0] = 2000  # ticks read backwards (never on a board): held, not stepped
    assert c.now() == 102
    t[0] = 2500 + 101000
    assert c.now() == 203
    # local time has no setter: wall time is an offset the core keeps (timebase.py)
    assert not hasattr(c, "set_unix") and not hasattr(c, "synced")


def test_clock_survives_tick_wrap():
    p = compat.TICKS_PERIOD
    t = [p - 500]
    c = compat.Clock(0, ticks=lambda: t[0])
    t[0] = 700  # wrapped: 1200 ms later
    assert c.now() == 1


def test_int_helpers():
    assert compat.int_from_be(b"\xc0\xa8\x00\x01") == 0xC0A80001
    assert compat.int_to_be(0xC0A80001, 4) == b"\xc0\xa8\x00\x01"


def test_json_dumps_sorted_compact():
    s = compat.json_dumps({"b": [1, 2], "a": {"y": True, "x": None}, "c": "q\""})
    assert s == '{"a":{"x":null,"y":true},"b":[1,2],"c":"q\\""}'
    assert compat.json_loads(s)["b"] == [1, 2]


def test_sha256_and_hex():
    d = compat.sha256(b"abc")
    assert compat.hexlify(d) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_hmac_sha256_rfc4231_case2():
    mac = compat.hmac_sha256(b"Jefe", b"what do ya want for nothing?")
    assert compat.hexlify(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_hmac_long_key_rfc4231_case6():
    key = b"\xaa" * 131
    mac = compat.hmac_sha256(key, b"Test Using Larger Than Block-Size Key - Hash Key First")
    assert compat.hexlify(mac) == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"


def test_digest_eq():
    assert compat.digest_eq(b"abc", b"abc")
    assert not compat.digest_eq(b"abc", b"abd")
    assert not compat.digest_eq(b"abc", b"ab")


def test_crc32_matches_zlib_value():
    assert compat.crc32(b"123456789") == 0xCBF43926
    assert compat.crc32(b"6789", compat.crc32(b"12345")) == 0xCBF43926




def test_ip_str_and_parse_hex_are_the_one_helper_each():
    assert compat.ip_str(b"\xc6\x12\x00\x02") == "198.18.0.2"
    assert compat.ip_str(None) == "?" and compat.ip_str(b"\x01\x02") == "0102"
    ph = compat.parse_hex
    assert ph("0x0104") == ph("01:04") == ph("1:4") == ph("0104") == b"\x01\x04"
    assert ph("aabb.ccdd.eeff") == ph("aa-bb-cc-dd-ee-ff") == b"\xaa\xbb\xcc\xdd\xee\xff"
    assert ph("00:04:f2:") == b"\x00\x04\xf2"
    for bad in ("0x123", "0xzz", "0x", "plain text", "abc", "", 5, "1::2"):
        assert ph(bad) is None, bad
