"""wire.failover: draft-12 framing as ISC dhcpd 4.4 writes and parses it."""
import struct

from dhcpfo.compat import from_unix, hmac_sha256, to_unix
from dhcpfo.wire import failover as fo

T0 = 1795546061  # header time of ISC's CONNECT in isc-primary_probe-secondary.pcap
NOW = from_unix(T0)
HBA_SPLIT_128 = b"\xff" * 16 + b"\x00" * 16
KEY = b"shared secret"

# ISC 4.4.3-P1's CONNECT, byte for byte (interop §4; pcap frame 4).
ISC_CONNECT = (
    b"\x00\x69\x05\x0c" + struct.pack(">I", T0) + b"\x00\x00\x00\x00"
    + b"\x00\x16\x00\x03foo"
    + b"\x00\x0e\x00\x04\x00\x00\x00\x0a"
    + b"\x00\x13\x00\x04\x00\x00\x00\x1e"
    + b"\x00\x1c\x00\x0cisc-4.4.3-P1"
    + b"\x00\x14\x00\x01\x01"
    + b"\x00\x1b\x00\x01\x00"
    + b"\x00\x0f\x00\x04\x00\x00\x01\x2c"
    + b"\x00\x0b\x00\x20" + HBA_SPLIT_128
)


def _opt(code, data):
    return struct.pack(">HH", code, len(data)) + data


def _frame(mtype, payload=b"", off=12, xid=7, length=None):
    extra = bytes(off - 12) if off > 12 else b""
    n = 12 + len(extra) + len(payload) if length is None else length
    return struct.pack(">HBBII", n, mtype, off, T0, xid) + extra + payload


def _decode_one(data, key=None):
    msgs = fo.StreamDecoder(key).feed(data)
    assert len(msgs) == 1, msgs
    return msgs[0]


def _rejects(data, reason, key=None):
    d = fo.StreamDecoder(key)
    try:
        d.feed(data)
    except fo.FailoverError as e:
        assert e.reason == reason, (e.reason, reason)
        assert e.close is True
        return e
    raise AssertionError("accepted: %r" % (data,))


def _all_messages():
    addr = b"\xc6\x13\xf7\x64"
    return [
        fo.make_poolreq(1, NOW),
        fo.make_poolresp(1, NOW, 5),
        fo.make_bndupd(2, NOW, addr, fo.B_ACTIVE, lease_end=NOW + 600, potential_end=NOW + 900,
                       stos=NOW, client_id=b"\x01\x02\x03\x04\x05\x06\x07", chaddr=b"\x01\x02\x03\x04\x05\x06\x07",
                       cltt=NOW, ip_flags=fo.IPF_RESERVED),
        fo.make_bndupd(3, NOW, addr, fo.B_FREE),
        fo.make_bndack(2, NOW, addr),
        fo.make_bndack(3, NOW, addr, reject=fo.REJ_FATAL_CONFLICT, message="in use"),
        fo.make_connect(0, NOW, b"foo", 10, 30, 300, hba=HBA_SPLIT_128),
        fo.make_connectack(0, NOW, b"foo", 10, 30, tls_reply=0),
        fo.make_connectack(0, NOW, b"bar", reject=fo.REJ_INVALID_PARTNER, message=b"unknown name"),
        fo.make_state(4, NOW, fo.S_RECOVER, fo.FLAG_STARTUP, stos=NOW - 5),
        fo.make_state(5, NOW, fo.S_RECOVER_WAIT),
        fo.make_updreq(6, NOW),
        fo.make_updreqall(7, NOW),
        fo.make_upddone(7, NOW),
        fo.make_contact(8, NOW),
        fo.make_disconnect(9, NOW, fo.REJ_NO_TRAFFIC, "idle"),
    ]


def test_isc_connect_byte_exact():
    m = fo.make_connect(0, NOW, b"foo", 10, 30, 300, hba=HBA_SPLIT_128, vendor=b"isc-4.4.3-P1")
    assert fo.encode(m) == ISC_CONNECT
    d = _decode_one(ISC_CONNECT)
    assert d == m
    assert d.mtype == fo.CONNECT and d.time == T0 and d.xid == 0
    assert d.get_bytes(fo.OPT_RELATIONSHIP_NAME) == b"foo"
    assert d.get_u32(fo.OPT_MAX_UNACKED) == 10
    assert d.get_u32(fo.OPT_RECEIVE_TIMER) == 30
    assert d.get_u32(fo.OPT_MCLT) == 300
    assert d.get_u8(fo.OPT_PROTOCOL_VERSION) == 1
    assert d.get_u8(fo.OPT_TLS_REQUEST) == 0
    assert d.get_bytes(fo.OPT_HBA) == HBA_SPLIT_128
    assert fo.time_skew(d, NOW) == 0
    assert fo.time_skew(d, NOW - 61) == 61


def test_every_message_type_round_trips():
    seen = set()
    for m in _all_messages():
        b = fo.encode(m)
        assert b[3] == 12 and struct.unpack(">H", b[:2])[0] == len(b)
        assert b[2] == m.mtype
        d = _decode_one(b)
        assert d == m, (d, m)
        assert fo.encode(d) == b
        seen.add(m.mtype)
    assert seen == set(range(1, 13))


def _codes(b):
    """Option codes of an encoded message, in wire order."""
    out = []
    p = 12
    while p < len(b):
        code, n = struct.unpack_from(">HH", b, p)
        out.append(code)
        p += 4 + n
    return out


def test_builders_write_iscs_option_order():
    msgs = _all_messages()
    assert _codes(fo.encode(msgs[2])) == [2, 3, 4, 5, 13, 18, 25, 6, 12]
    assert _codes(fo.encode(msgs[3])) == [2, 3, 13, 18, 25]
    assert _codes(fo.encode(msgs[4])) == [2]
    assert _codes(fo.encode(msgs[5])) == [2, 21, 16]
    assert _codes(fo.encode(msgs[6])) == [22, 14, 19, 28, 20, 27, 15, 11]
    assert _codes(fo.encode(msgs[7])) == [22, 14, 19, 28, 20, 26]
    assert _codes(fo.encode(msgs[8])) == [22, 28, 20, 21, 16]
    assert _codes(fo.encode(msgs[9])) == [24, 23, 25]
    assert _codes(fo.encode(msgs[15])) == [21, 16]
    for i in (0, 11, 12, 13, 14):  # POOLREQ, UPDREQ, UPDREQALL, UPDDONE, CONTACT: header only
        assert len(fo.encode(msgs[i])) == 12
    # options set by hand in any order still go out in ISC's order
    m = fo.Message(fo.STATE, T0, 1)
    m.set_time(fo.OPT_STOS, NOW)
    m.set_u8(fo.OPT_SERVER_FLAGS, 0)
    m.set_u8(fo.OPT_SERVER_STATE, fo.S_NORMAL)
    m.set_bytes(fo.OPT_MESSAGE, b"x")  # not ISC's for STATE: after, ascending
    assert _codes(fo.encode(m)) == [24, 23, 25, 16]


def test_bndupd_field_encodings():
    addr = b"\xc0\xa8\x00\x0a"
    m = fo.make_bndupd(9, NOW, addr, fo.B_ACTIVE, lease_end=NOW + 600, chaddr=b"\x01\xaa\xbb\xcc\xdd\xee\xff",
                       ip_flags=fo.IPF_RESERVED | fo.IPF_BOOTP)
    d = _decode_one(fo.encode(m))
    assert d.get_bytes(fo.OPT_ASSIGNED_IP) == addr
    assert d.get_u8(fo.OPT_BINDING_STATUS) == fo.B_ACTIVE
    assert d.get_bytes(fo.OPT_IP_FLAGS) == b"\x00\x03"  # 2 bytes, as ISC
    assert d.get_u16(fo.OPT_IP_FLAGS) == 3
    assert d.get_bytes(fo.OPT_CHADDR)[0] == 1 and len(d.get_bytes(fo.OPT_CHADDR)) == 7
    assert d.get_u32(fo.OPT_LEASE_EXPIRATION) == T0 + 600
    assert d.get_time(fo.OPT_LEASE_EXPIRATION) == NOW + 600
    # unset times travel as 0 and read back as None; no CLTT unless given
    assert d.get_u32(fo.OPT_POTENTIAL_EXPIRATION) == 0 and d.get_time(fo.OPT_POTENTIAL_EXPIRATION) is None
    assert d.get_time(fo.OPT_STOS) is None
    assert not d.has(fo.OPT_CLTT) and not d.has(fo.OPT_CLIENT_ID)
    assert d.get_u32(fo.OPT_CLTT, 123) == 123
    d.require(fo.OPT_ASSIGNED_IP, fo.OPT_BINDING_STATUS)
    try:
        d.require(fo.OPT_ASSIGNED_IP, fo.OPT_CLIENT_ID)
        raise AssertionError("require passed")
    except fo.FailoverError as e:
        assert e.reason == "missing-option" and e.close is False


def test_framing_across_any_chunk_boundary():
    msgs = _all_messages()
    stream = b"".join(fo.encode(m) for m in msgs)
    for size in (1, 2, 3, 5, 11, 12, 13, 64, 1000, len(stream)):
        d = fo.StreamDecoder()
        got = []
        for i in range(0, len(stream), size):
            got.extend(d.feed(stream[i:i + size]))
        assert got == msgs, size
        assert d.pending() == 0
    # a partial frame is held until the rest arrives
    d = fo.StreamDecoder()
    assert d.feed(stream[:1]) == [] and d.pending() == 1
    assert d.feed(stream[1:20]) == msgs[:1] and d.pending() == 8  # POOLREQ is 12 bytes
    assert d.feed(memoryview(stream)[20:]) == msgs[1:]


def test_rejects_bad_lengths():
    _rejects(b"\x00\x0b", "bad-length")  # below 12: closed on the first 2 bytes
    _rejects(b"\x00\x00", "bad-length")
    _rejects(b"\x08\x01", "bad-length")  # 2049
    d = fo.StreamDecoder(max_len=100)
    try:
        d.feed(b"\x00\x65")
        raise AssertionError("accepted 101 > max_len")
    except fo.FailoverError as e:
        assert e.reason == "bad-length"
    big = fo.Message(fo.BNDUPD, T0, 1, {fo.OPT_CLIENT_REPLY_OPTIONS: bytes(2032)})
    b = fo.encode(big)
    assert len(b) == 2048 and len(fo.StreamDecoder().feed(b)) == 1


def test_rejects_payload_offset_below_12():
    # ISC logs "message overflow at data" for the draft's offset 8
    _rejects(_frame(fo.CONTACT, off=8), "bad-offset")
    _rejects(_frame(fo.CONTACT, off=0), "bad-offset")
    # beyond the frame
    _rejects(struct.pack(">HBBII", 12, fo.CONTACT, 13, T0, 1), "bad-offset")


def test_offset_above_12_skips_extra_header_bytes():
    payload = _opt(24, b"\x02") + _opt(23, b"\x00") + _opt(25, b"\x00\x00\x00\x00")
    d = _decode_one(_frame(fo.STATE, payload, off=16))
    assert d.get_u8(fo.OPT_SERVER_STATE) == fo.S_NORMAL
    assert fo.encode(d)[3] == 12  # always written as 12


def test_rejects_option_overrun():
    _rejects(_frame(fo.STATE, b"\x00\x18\x00"), "option-overrun")  # partial option header
    _rejects(_frame(fo.STATE, b"\x00\x18\x00\x02\x05"), "option-overrun")  # data past the end
    _rejects(_frame(fo.CONTACT, b"\x00\x63\x00\x01"), "option-overrun")  # even unknown codes


def test_rejects_duplicate_option():
    payload = _opt(24, b"\x02") + _opt(23, b"\x00") + _opt(24, b"\x02")
    _rejects(_frame(fo.STATE, payload), "duplicate-option")
    # batching (draft §6.3) repeats option 2: ISC closes, so do we
    payload = _opt(2, b"\x0a\x00\x00\x01") + _opt(3, b"\x01") + _opt(2, b"\x0a\x00\x00\x02") + _opt(3, b"\x01")
    _rejects(_frame(fo.BNDUPD, payload), "duplicate-option")


def test_rejects_wrong_fixed_size():
    _rejects(_frame(fo.STATE, _opt(24, b"\x02\x00")), "bad-option-size")
    _rejects(_frame(fo.CONNECT, _opt(11, bytes(31))), "bad-option-size")
    _rejects(_frame(fo.BNDUPD, _opt(12, b"\x01")), "bad-option-size")  # draft's Len=1 figure
    _rejects(_frame(fo.BNDUPD, _opt(13, b"\x00\x00\x01")), "bad-option-size")


def test_skips_unknown_and_not_allowed_options():
    payload = (_opt(99, b"whatever") + _opt(24, b"\x02") + _opt(0, b"") + _opt(11, b"\x01\x02\x03")
               + _opt(11, b"") + _opt(23, b"\x00") + _opt(9, b"\x00\x01ddns") + _opt(25, bytes(4))
               + _opt(0xFFFF, b"z"))
    d = _decode_one(_frame(fo.STATE, payload))
    assert sorted(d.options) == [23, 24, 25]
    # DDNS in a BNDUPD is ignored, not stored (ISC would drop the link)
    payload = _opt(2, b"\x0a\x00\x00\x01") + _opt(3, b"\x02") + _opt(9, b"\x00\x01\x02")
    d = _decode_one(_frame(fo.BNDUPD, payload))
    assert sorted(d.options) == [2, 3]


def test_unknown_message_types():
    d = fo.StreamDecoder()
    assert d.feed(_frame(13) + _frame(200) + _frame(0)) == []
    assert d.ignored == 3
    assert d.feed(fo.encode(fo.make_contact(1, NOW)))[0].mtype == fo.CONTACT
    _rejects(_frame(13, _opt(24, b"\x02")), "bad-type")


def test_error_carries_earlier_messages_and_decoder_stays_failed():
    good = fo.encode(fo.make_contact(1, NOW)) + fo.encode(fo.make_contact(2, NOW))
    d = fo.StreamDecoder()
    e = None
    try:
        d.feed(good + b"\x00\x05junk")
    except fo.FailoverError as err:
        e = err
    assert e is not None and e.reason == "bad-length"
    assert [m.xid for m in e.messages] == [1, 2]
    try:
        d.feed(good)
        raise AssertionError("failed decoder accepted more bytes")
    except fo.FailoverError as err:
        assert err.reason == "bad-length" and err.close


def test_digest_good_round_trip():
    for m in _all_messages():
        b = fo.encode(m, KEY)
        assert len(b) == len(fo.encode(m)) + 37
        assert b[12:17] == b"\x00\x11\x00\x21\x02"  # option 17 first: len 33, type 2
        d = _decode_one(b, KEY)
        assert d == m and not d.has(fo.OPT_DIGEST)
        assert fo.encode(d, KEY) == b


def test_digest_bad_missing_unconfigured():
    m = fo.make_state(4, NOW, fo.S_NORMAL)
    b = fo.encode(m, KEY)
    e = _rejects(b, "bad-digest", key=b"other secret")
    assert e.reject == fo.REJ_DIGEST_FAILED
    # any flipped bit - header, digest or option - fails
    for i in (0 + 6, 14, 20, len(b) - 1):
        t = bytearray(b)
        t[i] ^= 0x01
        _rejects(bytes(t), "bad-digest", key=KEY)
    e = _rejects(fo.encode(m), "bad-digest", key=KEY)
    assert e.reject == fo.REJ_MISSING_DIGEST
    e = _rejects(fo.encode(fo.make_contact(1, NOW)), "bad-digest", key=KEY)  # no options at all
    # a digest where none is configured (draft §11.1: reason 13)
    e = _rejects(b, "digest-unconfigured")
    assert e.reject == fo.REJ_DIGEST_UNCONFIGURED
    # a second digest option
    dup = bytearray(b[:12] + b[12:49] + b[12:49] + b[49:])
    struct.pack_into(">H", dup, 0, len(dup))
    dup[17:49] = bytes(32)
    dup[17:49] = hmac_sha256(KEY, dup)
    _rejects(bytes(dup), "duplicate-option", key=KEY)


def test_encode_refuses_what_isc_would_drop():
    for opts, reason in (
        ({fo.OPT_DDNS: b"\x00\x01"}, "bad-option"),
        ({fo.OPT_DIGEST: b"\x02" + bytes(32)}, "bad-option"),
        ({fo.OPT_IP_FLAGS: b"\x01"}, "bad-option-size"),
        ({fo.OPT_HBA: bytes(16)}, "bad-option-size"),
        ({fo.OPT_CLIENT_REPLY_OPTIONS: bytes(2033)}, "too-long"),
        ({fo.OPT_CLIENT_ID: bytes(256)}, "bad-option-size"),  # no DHCP client has one this long
        ({fo.OPT_CHADDR: bytes(18)}, "bad-option-size"),
    ):
        try:
            fo.encode(fo.Message(fo.BNDUPD, T0, 1, opts))
            raise AssertionError("encoded %r" % (opts,))
        except fo.FailoverError as e:
            assert e.reason == reason and e.close is False, e.reason
    for bad in (fo.Message(fo.CONTACT, -1, 1), fo.Message(fo.CONTACT, 1 << 32, 1),
                fo.Message(fo.CONTACT, T0, 1 << 32), fo.Message(256, T0, 1)):
        try:
            fo.encode(bad)
            raise AssertionError("encoded %r" % (bad,))
        except fo.FailoverError as e:
            assert e.reason == "bad-value"
    try:
        fo.make_state(1, NOW, 256)
        raise AssertionError("state 256 accepted")
    except fo.FailoverError as e:
        assert e.reason == "bad-value"
    try:
        fo.make_connect(0, NOW, b"foo", 10, 30, 300, hba=bytes(31))
        raise AssertionError("short HBA accepted")
    except fo.FailoverError as e:
        assert e.reason == "bad-value"


def test_times_are_unix_on_the_wire():
    m = fo.make_state(1, 0, fo.S_NORMAL, stos=100)
    assert m.time == to_unix(0)
    b = fo.encode(m)
    assert struct.unpack(">I", b[4:8])[0] == 1700000000
    assert struct.unpack(">I", b[-4:])[0] == 1700000100
    assert _decode_one(b).get_time(fo.OPT_STOS) == 100
