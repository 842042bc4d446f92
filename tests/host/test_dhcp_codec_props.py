"""Property tests for the DHCPv4 codec (CPython + hypothesis).

Equality: Packet.__eq__ compares every header field and the option maps
order-insensitively. decode() merges repeated instances, removes option 52
and zeroes an overloaded file/sname field, so generated packets keep option
52 out and leave file/sname zero whenever overload may be needed.
"""

import struct

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from dhcpfo.wire import dhcp
from dhcpfo.wire.dhcp import DecodeError, Packet, decode, encode

CODES = st.integers(1, 254).filter(lambda c: c not in (52, 53))
MSG_TYPE = st.integers(1, 255).map(lambda t: bytes((t,)))


def packets(value_size=600, zero_fields=False, max_opts=12, min_value=0, min_opts=0):
    addr = st.binary(min_size=4, max_size=4)
    sname = st.just(bytes(64)) if zero_fields else st.binary(min_size=64, max_size=64)
    file = st.just(bytes(128)) if zero_fields else st.binary(min_size=128, max_size=128)
    opts = st.dictionaries(CODES, st.binary(min_size=min_value, max_size=value_size),
                           min_size=min_opts, max_size=max_opts)

    @st.composite
    def build(draw):
        o = draw(opts)
        mt = draw(st.none() | MSG_TYPE)
        if mt is not None:
            o[53] = mt
        return Packet(
            op=draw(st.sampled_from((1, 2))), htype=draw(st.integers(0, 255)),
            hlen=draw(st.integers(0, 16)), hops=draw(st.integers(0, 255)),
            xid=draw(st.integers(0, 2**32 - 1)), secs=draw(st.integers(0, 65535)),
            flags=draw(st.integers(0, 65535)), ciaddr=draw(addr), yiaddr=draw(addr),
            siaddr=draw(addr), giaddr=draw(addr), chaddr=draw(st.binary(min_size=16, max_size=16)),
            sname=draw(sname), file=draw(file), options=o,
        )

    return build()


def only_decode_error(buf):
    try:
        p = decode(buf)
    except DecodeError as e:
        assert isinstance(e.reason, str) and e.reason
        return None
    # whatever decodes must encode again and decode to the same thing
    dropped = []
    again = decode(encode(p, 65535, dropped))
    assert dropped == []
    assert again == p
    return p


@settings(max_examples=400, deadline=None)
@given(packets())
def test_round_trip_with_room(p):
    raw = encode(p, 65535)
    assert decode(raw) == p
    assert len(raw) >= 300


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packets(value_size=120, zero_fields=True, max_opts=10, min_value=30, min_opts=3),
       st.sampled_from((576, 576, 600, 800, 1500)))
def test_round_trip_within_max_size(p, max_size):
    dropped = []
    raw = encode(p, max_size, dropped)
    assert len(raw) <= max_size - 28
    event("overloaded" if 52 in [raw[i] for i in (240, 243)] else "options field only")
    event("dropped some" if dropped else "dropped none")
    back = decode(raw)
    want = dict(p.options)
    for c in dropped:
        assert c in want and c not in (53,)
        del want[c]
    assert dhcp.same_options(back.options, want)
    assert (back.op, back.xid, back.chaddr, back.yiaddr) == (p.op, p.xid, p.chaddr, p.yiaddr)
    if not dropped:
        assert back == p


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(CODES, st.binary(max_size=255)), max_size=6))
def test_repeated_instances_concatenate(instances):
    raw = struct.pack(">BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, 1, 0, 0, bytes(4), bytes(4),
                      bytes(4), bytes(4), bytes(16), b"", b"") + dhcp.MAGIC
    want = {}
    for c, v in instances:
        raw += bytes((c, len(v))) + v
        want[c] = want.get(c, b"") + v
    p = decode(raw + b"\xff")
    assert dhcp.same_options(p.options, want)


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=700))
def test_random_bytes_only_raise_decode_error(buf):
    only_decode_error(buf)


@settings(max_examples=2000, deadline=None)
@given(st.sampled_from((1, 2)), st.integers(0, 20), st.binary(max_size=400))
def test_random_options_after_valid_header(op, hlen, tail):
    head = struct.pack(">BBBBIHH4s4s4s4s16s64s128s", op, 1, hlen, 0, 5, 0, 0, bytes(4), bytes(4),
                       bytes(4), bytes(4), bytes(16), b"", b"") + dhcp.MAGIC
    only_decode_error(head + tail)


@settings(max_examples=2000, deadline=None)
@given(st.binary(min_size=64, max_size=64), st.binary(min_size=128, max_size=128),
       st.sampled_from((b"\x01", b"\x02", b"\x03")), st.binary(max_size=80))
def test_random_overloaded_fields(sname, file, ov, tail):
    raw = struct.pack(">BBBBIHH4s4s4s4s16s64s128s", 2, 1, 6, 0, 5, 0, 0, bytes(4), bytes(4),
                      bytes(4), bytes(4), bytes(16), sname, file) + dhcp.MAGIC
    only_decode_error(raw + b"\x34\x01" + ov + tail)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packets(value_size=300, max_opts=6),
       st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(0, 10**6), st.sampled_from(("flip", "cut", "insert", "delete")))
def test_mutations_of_valid_packets(p, edits, cut, how):
    raw = bytearray(encode(p, 65535))
    for pos, val in edits:
        i = pos % len(raw)
        if how == "flip":
            raw[i] = val
        elif how == "insert":
            raw.insert(i, val)
        elif how == "delete" and len(raw) > 1:
            del raw[i]
    if how == "cut":
        raw = raw[:cut % (len(raw) + 1)]
    only_decode_error(bytes(raw))
    only_decode_error(raw)  # the bytearray path too


@settings(max_examples=300, deadline=None)
@given(packets(value_size=40, max_opts=5), st.sampled_from((dhcp.OFFER, dhcp.ACK, dhcp.NAK)),
       st.binary(min_size=4, max_size=4), st.binary(min_size=4, max_size=4))
def test_make_reply_round_trips_and_targets(req, t, yi, sid):
    assume(req.op == 1)
    r = dhcp.make_reply(req, t, yi, sid)
    assert decode(encode(r, req.max_message_size())) == r
    ip, port = dhcp.reply_destination(req, t, r.yiaddr)
    if req.giaddr != bytes(4):
        assert (ip, port) == (req.giaddr, 67)
    else:
        assert port == 68
        if t == dhcp.NAK:
            assert ip == dhcp.BROADCAST_IP


# Option values: display never raises; config input raises only OptionValueError.

from dhcpfo.wire import options as wo  # noqa: E402

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False)
    | st.text(max_size=30) | st.sampled_from(("198.18.0.1", "10.0.0.0/8 198.18.0.1", "0x0102", "a.b",
                                              "infinite", "1.2.3.4, 5.6.7.8")),
    lambda inner: st.lists(inner, max_size=4), max_leaves=8)


@settings(max_examples=1500, deadline=None)
@given(st.integers(0, 255), st.binary(max_size=80))
def test_decode_option_value_never_raises(code, value):
    shown = wo.decode_option_value(code, value)
    assert shown is not None


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from([c for c, n, t in wo.OPTIONS] + [200]), JSONISH)
def test_encode_option_value_raises_only_its_error(code, value):
    try:
        c, b = wo.encode_option_value(code, value)
    except wo.OptionValueError as e:
        assert e.reason and str(e)
        return
    assert c == code and type(b) is bytes and 0 < len(b) <= wo.MAX_VALUE
    # what the config accepted displays without error and encodes again the same
    shown = wo.decode_option_value(c, b)
    if not (type(value) is str and value[:2].lower() == "0x"):
        assert wo.encode_option_value(c, shown) == (c, b)
