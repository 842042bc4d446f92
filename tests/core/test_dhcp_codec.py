# DHCPv4 packet codec: decode/encode, overload, long options, relay info,
# max size, hostile input, reply skeletons and destinations.
# Runs under pytest and under MicroPython (tests/mp/mprun.mjs).

import struct

from dhcpfo.wire import dhcp
from dhcpfo.wire.dhcp import DecodeError, EncodeError, Packet, decode, encode, make_reply, reply_destination

Z4 = b"\x00\x00\x00\x00"
MAC = b"\x00\x0c\x29\x5a\x1b\x2c"
SERVER = b"\xc6\x12\x00\x01"  # 198.18.0.1
RELAY = b"\xc6\x13\x00\x01"  # 198.19.0.1
CLIENT_IP = b"\xc6\x12\x00\x0a"  # 198.18.0.10

# A DHCPDISCOVER as ISC dhclient 4.4 sends it: 53, 61 (htype+MAC), 57 = 1500,
# 12 host name, 55 parameter request list, END, padded to 300 octets.
DHCLIENT_DISCOVER = bytes.fromhex(
    "010106003903f32600000000"  # op htype hlen hops xid secs flags
    "00000000000000000000000000000000"  # ciaddr yiaddr siaddr giaddr
    "000c295a1b2c00000000000000000000"  # chaddr
    + "00" * 64  # sname
    + "00" * 128  # file
    + "63825363"
    "350101"
    "3d0701000c295a1b2c"
    "390205dc"
    "0c05686f737431"  # "host1"
    "370d011c02030f06770c2c2f1a792a"
    "ff"
) + bytes(21)


def hdr(op=1, xid=0x11223344, flags=0, ciaddr=Z4, yiaddr=Z4, siaddr=Z4, giaddr=Z4,
        chaddr=MAC, sname=b"", file=b"", htype=1, hlen=6, hops=0, secs=0):
    return struct.pack(">BBBBIHH4s4s4s4s16s64s128s", op, htype, hlen, hops, xid, secs, flags,
                       ciaddr, yiaddr, siaddr, giaddr, chaddr, sname, file) + dhcp.MAGIC


def opt(code, value):
    return bytes((code, len(value))) + value


def options_at(raw):
    """(code, offset) of each option TLV in the options field of raw bytes."""
    out = []
    i = 240
    while i < len(raw) and raw[i] != 255:
        if raw[i] == 0:
            i += 1
            continue
        out.append((raw[i], i))
        i += 2 + raw[i + 1]
    return out


def reason(buf, **kw):
    try:
        decode(buf, **kw)
    except DecodeError as e:
        return e.reason
    return None


def test_dhclient_discover_decodes():
    assert len(DHCLIENT_DISCOVER) == 300
    p = decode(DHCLIENT_DISCOVER)
    assert p.op == dhcp.BOOTREQUEST and p.htype == 1 and p.hlen == 6 and p.hops == 0
    assert p.xid == 0x3903F326 and p.secs == 0 and p.flags == 0 and not p.broadcast
    assert p.ciaddr == Z4 and p.giaddr == Z4
    assert p.chaddr == MAC + bytes(10) and p.hwaddr() == MAC
    assert p.msg_type == dhcp.DISCOVER
    assert p.get(dhcp.OPT_CLIENT_ID) == b"\x01" + MAC
    assert p.client_key() == b"\x01" + MAC
    assert p.get(dhcp.OPT_HOST_NAME) == b"host1"
    assert p.get(dhcp.OPT_PARAM_REQUEST) == bytes([1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42])
    assert p.max_message_size() == 1500
    assert sorted(p.options) == [12, 53, 55, 57, 61]
    assert p.get(99, b"none") == b"none"


def test_dhclient_discover_reencodes_identically_in_meaning():
    p = decode(DHCLIENT_DISCOVER)
    raw = encode(p, 1500)
    assert len(raw) == 300
    assert raw[:240] == DHCLIENT_DISCOVER[:240]
    assert raw[240:243] == b"\x35\x01\x01"  # message type first
    assert decode(raw) == p


def test_request_selecting_round_trip():
    raw = (hdr(xid=0xCAFEF00D, flags=0x8000) + opt(53, b"\x03") + opt(61, b"\x01" + MAC)
           + opt(50, CLIENT_IP) + opt(54, SERVER) + opt(55, b"\x01\x03\x06\x0f") + b"\xff")
    p = decode(raw)
    assert p.msg_type == dhcp.REQUEST and p.broadcast
    assert p.get(dhcp.OPT_REQUESTED_IP) == CLIENT_IP and p.get(dhcp.OPT_SERVER_ID) == SERVER
    again = decode(encode(p))
    assert again == p
    assert len(encode(p)) == 300


def test_release_and_decline_round_trip():
    rel = decode(hdr(ciaddr=CLIENT_IP) + opt(53, b"\x07") + opt(54, SERVER) + b"\xff")
    assert rel.msg_type == dhcp.RELEASE and rel.ciaddr == CLIENT_IP
    assert decode(encode(rel)) == rel
    dec = decode(hdr() + opt(53, b"\x04") + opt(50, CLIENT_IP) + opt(54, SERVER)
                 + opt(56, b"address in use") + b"\xff")
    assert dec.msg_type == dhcp.DECLINE and dec.get(56) == b"address in use"
    assert decode(encode(dec)) == dec


def test_inform_ack_keeps_ciaddr_and_no_yiaddr():
    inf = decode(hdr(ciaddr=CLIENT_IP) + opt(53, b"\x08") + opt(55, b"\x06\x0f") + b"\xff")
    ack = make_reply(inf, dhcp.ACK, CLIENT_IP, SERVER)
    assert ack.ciaddr == CLIENT_IP and ack.yiaddr == Z4
    assert reply_destination(inf, dhcp.ACK) == (CLIENT_IP, 68)
    assert decode(encode(ack)) == ack


def test_bootp_without_message_type():
    p = decode(hdr() + b"\xff" + bytes(59))
    assert p.msg_type == 0 and len(p.options) == 0
    assert reason(hdr() + b"\xff", dhcp_only=True) == "no-msg-type"


def test_client_key_without_client_id():
    p = decode(hdr(htype=6) + opt(53, b"\x01") + b"\xff")
    assert p.client_key() == b"\x06" + MAC
    p.options[61] = b""  # an empty client id is no identity
    assert p.client_key() == b"\x06" + MAC


def test_overload_file_and_sname_decode_in_order():
    # Option 77 split over options, file and sname: RFC 3396 concatenates in
    # the order options, file, sname (RFC 2131 §4.1).
    file = opt(3, SERVER) + opt(77, b"BB") + b"\xff"
    sname = opt(77, b"CC") + opt(15, b"example.org") + b"\xff"
    raw = (hdr(file=file, sname=sname) + opt(53, b"\x05") + opt(52, b"\x03")
           + opt(77, b"AA") + b"\xff")
    p = decode(raw)
    assert p.get(77) == b"AABBCC"
    assert p.get(3) == SERVER and p.get(15) == b"example.org"
    assert 52 not in p.options
    assert p.file == bytes(128) and p.sname == bytes(64)  # held options, not names


def test_overload_file_only_keeps_sname():
    raw = (hdr(file=opt(6, SERVER) + b"\xff", sname=b"bootserver")
           + opt(53, b"\x02") + opt(52, b"\x01") + b"\xff")
    p = decode(raw)
    assert p.get(6) == SERVER
    assert p.sname[:10] == b"bootserver" and p.file == bytes(128)


def test_bad_overload_values():
    for v in (b"\x00", b"\x04", b"\x01\x01", b""):
        assert reason(hdr() + opt(53, b"\x01") + opt(52, v) + b"\xff") == "bad-overload"
    # an option running past the end of the file field
    assert reason(hdr(file=bytes(125) + b"\x03\x08\x01") + opt(52, b"\x01") + b"\xff") == "option-overrun"


def test_repeated_instances_are_concatenated():
    raw = hdr() + opt(53, b"\x01") + opt(121, b"\x08\x0a") + opt(121, SERVER) + b"\xff"
    assert decode(raw).get(121) == b"\x08\x0a" + SERVER


def test_long_option_split_and_merged():
    value = bytes(range(256)) * 2 + bytes(88)  # 600 octets
    p = Packet(xid=7, chaddr=MAC)
    p.options[53] = b"\x01"
    p.options[43] = value
    raw = encode(p, 1500)
    found = [(c, raw[i + 1]) for c, i in options_at(raw)]
    assert found == [(53, 1), (43, 255), (43, 255), (43, 90)]
    assert decode(raw).get(43) == value


def test_relay_agent_info_echoed_last():
    rai = opt(1, b"eth0/1") + opt(2, b"switch-7")
    req = decode(hdr(giaddr=RELAY, hops=1) + opt(53, b"\x01") + opt(61, b"\x01" + MAC)
                 + opt(82, rai) + b"\xff")
    off = make_reply(req, dhcp.OFFER, CLIENT_IP, SERVER)
    off.options[51] = b"\x00\x00\x0e\x10"
    off.options[1] = b"\xff\xff\xff\x00"
    assert off.giaddr == RELAY and off.hops == 0
    assert off.get(82) == rai and off.get(61) == b"\x01" + MAC
    raw = encode(off)
    codes = [c for c, i in options_at(raw)]
    assert codes[0] == 53 and codes[-1] == 82
    assert decode(raw) == off
    assert reply_destination(req, dhcp.OFFER, CLIENT_IP) == (RELAY, 67)


def test_option_order_is_insertion_with_53_first():
    req = decode(hdr() + opt(53, b"\x01") + b"\xff")
    r = make_reply(req, dhcp.OFFER, CLIENT_IP, SERVER)
    r.options[51] = b"\x00\x00\x0e\x10"
    r.options[3] = SERVER
    r.options[1] = b"\xff\xff\xff\x00"
    r.options[6] = SERVER
    assert [c for c, i in options_at(encode(r))] == [53, 54, 51, 3, 1, 6]


def test_max_size_uses_overload():
    req = decode(hdr() + opt(53, b"\x01") + b"\xff")
    r = make_reply(req, dhcp.OFFER, CLIENT_IP, SERVER)
    r.options[51] = b"\x00\x01\x51\x80"
    r.options[1] = b"\xff\xff\xff\x00"
    r.options[3] = SERVER
    for code in (120, 125, 160, 161):  # 4 x 90 octets: more than 548 - 240 allows
        r.options[code] = bytes([code]) * 90
    dropped = []
    raw = encode(r, 576, dropped)
    assert len(raw) <= 576 - 28
    assert dropped == []
    back = decode(raw)
    assert back.get(52) is None and dhcp.same_options(back.options, r.options)
    found = options_at(raw)
    assert (52, 243) in found  # right after the message type
    ov = raw[found[1][1] + 2]
    assert ov in (1, 3)
    # the same reply with room for everything needs no overload
    roomy = encode(r, 1500)
    assert 52 not in [c for c, i in options_at(roomy)]
    assert decode(roomy) == back


def test_max_size_drops_low_priority_options():
    req = decode(hdr(giaddr=RELAY) + opt(53, b"\x03") + opt(82, opt(1, b"port9")) + b"\xff")
    r = make_reply(req, dhcp.ACK, CLIENT_IP, SERVER)
    r.options[51] = b"\x00\x01\x51\x80"
    r.options[1] = b"\xff\xff\xff\x00"
    r.options[3] = SERVER
    r.options[200] = bytes(250)
    r.options[201] = bytes(250)
    r.options[202] = bytes(250)
    dropped = []
    raw = encode(r, 576, dropped)
    assert len(raw) <= 548
    back = decode(raw)
    for code in (53, 54, 51, 1, 3, 82):
        assert back.get(code) == r.get(code)
    assert len(dropped) >= 1 and 53 not in dropped
    for code in dropped:
        assert back.get(code) is None
    assert [c for c, i in options_at(raw)][-1] == 82  # relay info last, in the options field


def test_nak_never_overloads():
    req = decode(hdr() + opt(53, b"\x03") + b"\xff")
    nak = make_reply(req, dhcp.NAK, CLIENT_IP, SERVER)
    nak.options[56] = b"x" * 250
    nak.options[60] = b"y" * 200
    dropped = []
    raw = encode(nak, 576, dropped)
    assert dropped == [60]
    assert raw[44:236] == bytes(192)
    assert decode(raw).get(56) == b"x" * 250


def test_encode_pads_to_bootp_minimum():
    p = Packet(op=2, xid=1, chaddr=MAC)
    p.options[53] = b"\x02"
    raw = encode(p)
    assert len(raw) == 300 and raw[243] == 255 and raw[244:] == bytes(56)


def test_encode_rejects_bad_packets():
    for code, value in ((0, b"x"), (255, b"x"), (52, b"\x01"), (300, b"x"), (12, "text")):
        p = Packet()
        p.options[code] = value
        try:
            encode(p)
            raise AssertionError("accepted %r" % (code,))
        except EncodeError as e:
            assert e.reason == "bad-option"
    for field, value in (("ciaddr", b"\x01\x02"), ("chaddr", bytes(17)), ("xid", -1), ("hlen", 17)):
        p = Packet()
        setattr(p, field, value)
        try:
            encode(p)
            raise AssertionError("accepted %s" % field)
        except EncodeError as e:
            assert e.reason == "bad-field"


def test_short_and_garbage_headers():
    good = hdr() + opt(53, b"\x01") + b"\xff"
    assert reason(b"") == "short"
    assert reason(good[:239]) == "short"
    assert reason(b"\x03" + good[1:]) == "bad-op"
    assert reason(good[:2] + b"\x11" + good[3:]) == "bad-hlen"
    assert reason(good[:236] + b"\x63\x82\x53\x64" + good[240:]) == "bad-magic"
    assert reason(12345) == "not-bytes"


def test_option_overrun_and_bad_message_type():
    assert reason(hdr() + b"\x35") == "option-overrun"  # code with no length octet
    assert reason(hdr() + b"\x0c\x10abc") == "option-overrun"  # length past the end
    assert reason(hdr() + opt(53, b"\x01\x02") + b"\xff") == "bad-msg-type"
    assert reason(hdr() + opt(53, b"\x00") + b"\xff") == "bad-msg-type"


def test_pads_and_missing_end_are_tolerated():
    p = decode(hdr() + b"\x00\x00" + opt(53, b"\x01") + b"\x00" + opt(12, b"h"))
    assert p.msg_type == 1 and p.get(12) == b"h"
    # bytes after END are ignored, even garbage
    p = decode(hdr() + opt(53, b"\x01") + b"\xff\x0c\x40")
    assert sorted(p.options) == [53]


def test_bytearray_and_memoryview_inputs():
    a = decode(DHCLIENT_DISCOVER)
    b = decode(bytearray(DHCLIENT_DISCOVER))
    c = decode(memoryview(DHCLIENT_DISCOVER))
    assert a == b and a == c
    assert type(b.get(61)) is bytes and type(c.chaddr) is bytes


def test_every_truncation_raises_only_decode_error():
    raw = DHCLIENT_DISCOVER[:300 - 21]  # END is the last octet
    for n in range(len(raw) + 1):
        try:
            decode(raw[:n])
        except DecodeError:
            pass


def test_make_reply_offer_fields():
    req = decode(hdr(xid=0xDEADBEEF, flags=0x8000, hops=2, secs=9)
                 + opt(53, b"\x01") + opt(61, b"\xff\x00\x00\x00\x01abc") + opt(57, b"\x02\x40") + b"\xff")
    off = make_reply(req, dhcp.OFFER, CLIENT_IP, SERVER)
    assert off.op == dhcp.BOOTREPLY and off.xid == 0xDEADBEEF
    assert off.hops == 0 and off.secs == 0 and off.flags == 0x8000
    assert off.ciaddr == Z4 and off.yiaddr == CLIENT_IP and off.siaddr == Z4
    assert off.chaddr == req.chaddr and off.htype == 1 and off.hlen == 6
    assert off.msg_type == dhcp.OFFER and off.get(54) == SERVER
    assert off.get(61) == b"\xff\x00\x00\x00\x01abc"  # RFC 6842
    assert off.get(57) is None and off.get(55) is None
    assert req.max_message_size() == 576


def test_make_reply_ack_to_renewal_copies_ciaddr():
    req = decode(hdr(ciaddr=CLIENT_IP) + opt(53, b"\x03") + b"\xff")
    ack = make_reply(req, dhcp.ACK, CLIENT_IP, SERVER)
    assert ack.ciaddr == CLIENT_IP and ack.yiaddr == CLIENT_IP
    assert reply_destination(req, dhcp.ACK, CLIENT_IP) == (CLIENT_IP, 68)


def test_make_reply_nak():
    req = decode(hdr(ciaddr=CLIENT_IP, giaddr=RELAY) + opt(53, b"\x03") + b"\xff")
    nak = make_reply(req, dhcp.NAK, CLIENT_IP, SERVER)
    assert nak.yiaddr == Z4 and nak.ciaddr == Z4
    assert nak.flags & 0x8000  # RFC 2131 §4.3.2: relay must broadcast it
    assert reply_destination(req, dhcp.NAK) == (RELAY, 67)
    local = decode(hdr(ciaddr=CLIENT_IP) + opt(53, b"\x03") + b"\xff")
    assert make_reply(local, dhcp.NAK, Z4, SERVER).flags == 0
    assert reply_destination(local, dhcp.NAK) == (dhcp.BROADCAST_IP, 68)


def test_reply_destination_table():
    bcast = dhcp.BROADCAST_IP
    cases = (
        # giaddr, ciaddr, flags, type, yiaddr given, expected
        (RELAY, CLIENT_IP, 0x8000, dhcp.ACK, CLIENT_IP, (RELAY, 67)),
        (Z4, CLIENT_IP, 0, dhcp.ACK, CLIENT_IP, (CLIENT_IP, 68)),
        (Z4, CLIENT_IP, 0, dhcp.NAK, None, (bcast, 68)),
        (Z4, Z4, 0x8000, dhcp.OFFER, CLIENT_IP, (bcast, 68)),
        (Z4, Z4, 0, dhcp.OFFER, CLIENT_IP, (CLIENT_IP, 68)),
        (Z4, Z4, 0, dhcp.OFFER, None, (bcast, 68)),  # driver cannot unicast without ARP
    )
    for gi, ci, flags, t, yi, want in cases:
        req = Packet(xid=1, chaddr=MAC, giaddr=gi, ciaddr=ci, flags=flags)
        req.options[53] = b"\x03"
        assert reply_destination(req, t, yi) == want, (gi, ci, flags, t)


def test_packet_equality_and_repr():
    a = decode(DHCLIENT_DISCOVER)
    b = decode(DHCLIENT_DISCOVER)
    assert a == b and not (a != b)
    b.options[12] = b"other"
    assert a != b
    b = decode(DHCLIENT_DISCOVER)
    b.secs = 1
    assert a != b
    assert "xid=3903f326" in repr(a)


def _slow_reply(req, mt, yiaddr, sid, extra, size):
    """What encode_reply must equal: make_reply, the caller's options where
    make_reply left none, encode."""
    rep = make_reply(req, mt, yiaddr, sid)
    for c in extra:
        if c not in rep.options:
            rep.options[c] = extra[c]
    return encode(rep, size)


def test_encode_reply_is_make_reply_then_encode():
    # A fixed pseudo-random walk (an LCG: the same on every runtime) over
    # requests (client id or not, relay info or not, INFORM, ciaddr, flags)
    # and option maps (clashing codes, long and bytearray values, overflow).
    seed = [12345]

    def rnd(n):
        seed[0] = (seed[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return (seed[0] >> 8) % n

    def blob(n):
        return bytes(rnd(256) for _ in range(n))

    fast = fell_back = 0
    for case in range(400):
        req = Packet(xid=rnd(1 << 30), chaddr=blob(6), giaddr=RELAY if rnd(2) else Z4,
                     ciaddr=CLIENT_IP if rnd(3) == 0 else Z4, flags=0x8000 if rnd(2) else 0)
        req.options[53] = bytes((dhcp.INFORM if rnd(5) == 0 else dhcp.REQUEST,))
        if rnd(2):
            req.options[61] = b"\x01" + req.chaddr[:6] if rnd(2) else blob(1 + rnd(300 if rnd(8) == 0 else 20))
        if rnd(3) == 0:
            req.options[82] = b"\x01\x04" + blob(4)
        extra = dhcp.new_options()
        for _ in range(rnd(8)):
            c = (1, 3, 6, 15, 28, 51, 53, 54, 61, 82, 58, 59, 66, 43)[rnd(14)]
            n = 300 if rnd(20) == 0 else 1 + rnd(40)
            v = blob(n)
            extra[c] = bytearray(v) if rnd(10) == 0 else v
        mt = (dhcp.OFFER, dhcp.ACK)[rnd(2)]
        sid = SERVER if rnd(6) else None
        size = (576, 1500, 300, 60000)[rnd(4)]
        want = _slow_reply(req, mt, CLIENT_IP, sid, extra, size)
        got = dhcp.encode_reply(req, mt, CLIENT_IP, sid, extra, size)
        if got is None:
            fell_back += 1
        else:
            fast += 1
            assert got == want, case
    assert fast > 200 and fell_back > 10, (fast, fell_back)
    assert dhcp.encode_reply(req, dhcp.NAK, Z4, SERVER, {}, 576) is None  # NAKs: the general path
