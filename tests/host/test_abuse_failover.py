"""Abuse of the failover link: forged, tampered, truncated, unsigned and
replayed messages with a shared secret, and a partner claiming huge frames.
Codec level (wire.failover.StreamDecoder) and through a real Node."""

from dhcpfo_host import boardconf
import json
import os
import tracemalloc

import pytest

from dhcpfo import config
from dhcpfo import events as ev
from dhcpfo.compat import from_unix
from dhcpfo.node import Node
from dhcpfo.wire import failover as fo

KEY = b"change-me-lab-secret"
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")
T = 1_800_000_000  # Unix time on the wire


def _bndupd(xid, t):
    m = fo.make_bndupd(xid, from_unix(t), b"\xc6\x12\x00\x0a", fo.B_ACTIVE, from_unix(t + 60),
                       from_unix(t + 120), from_unix(t), b"\x01\x02\x00\x5e\x10\x00\x01", b"\x01\x02\x00\x5e\x10\x00\x01")
    assert m.time == t
    return m


def _refused(decoder, data, reason):
    with pytest.raises(fo.FailoverError) as e:
        decoder.feed(data)
    assert e.value.close and e.value.reason == reason
    # and it stays refused: the connection is closed, nothing more is read
    with pytest.raises(fo.FailoverError):
        decoder.feed(fo.encode(_bndupd(99, T + 5), KEY))
    return e.value


def test_signed_message_is_accepted():
    m = _bndupd(1, T)
    assert fo.StreamDecoder(KEY).feed(fo.encode(m, KEY)) == [m]


def test_forged_with_another_key_is_refused():
    e = _refused(fo.StreamDecoder(KEY), fo.encode(_bndupd(1, T), b"guessed-secret"), "bad-digest")
    assert e.reject == fo.REJ_DIGEST_FAILED


def test_any_tampered_byte_is_refused():
    good = fo.encode(_bndupd(1, T), KEY)
    for i in range(2, len(good)):  # bytes 0..1 are the length: see the truncation tests
        bad = bytearray(good)
        bad[i] ^= 0x20
        with pytest.raises(fo.FailoverError) as e:
            fo.StreamDecoder(KEY).feed(bytes(bad))
        assert e.value.close, i


def test_unsigned_message_is_refused_when_a_key_is_configured():
    e = _refused(fo.StreamDecoder(KEY), fo.encode(_bndupd(1, T)), "bad-digest")
    assert e.reject == fo.REJ_MISSING_DIGEST


def test_signed_message_to_a_keyless_receiver_is_refused():
    e = _refused(fo.StreamDecoder(), fo.encode(_bndupd(1, T), KEY), "digest-unconfigured")
    assert e.reject == fo.REJ_DIGEST_UNCONFIGURED


def test_truncated_digest_is_refused():
    good = bytearray(fo.encode(_bndupd(1, T), KEY))
    # the digest option claims 17 bytes (a truncated HMAC), the frame shrinks to match
    cut = good[:12] + good[12:14] + b"\x00\x11" + good[16:17 + 16] + good[12 + 37:]
    cut[0:2] = len(cut).to_bytes(2, "big")
    _refused(fo.StreamDecoder(KEY), bytes(cut), "bad-digest")


def test_truncated_message_is_refused():
    """The last option cut off and the length fixed up: the digest no longer matches."""
    good = bytearray(fo.encode(_bndupd(1, T), KEY))
    cut = good[:-8]  # option 12 (IP flags) absent here: the last option is CLTT (4 + 4 bytes)
    cut[0:2] = len(cut).to_bytes(2, "big")
    _refused(fo.StreamDecoder(KEY), bytes(cut), "bad-digest")


def test_message_older_than_the_last_accepted_on_the_connection_is_refused():
    d = fo.StreamDecoder(KEY)
    assert len(d.feed(fo.encode(_bndupd(1, T), KEY) + fo.encode(_bndupd(2, T), KEY))) == 2  # same second: fine
    assert len(d.feed(fo.encode(_bndupd(3, T + 30), KEY))) == 1
    e = _refused(d, fo.encode(_bndupd(1, T), KEY), "replayed")  # the first one again
    assert e.messages == []


def test_replay_after_good_messages_in_one_read_returns_them_with_the_error():
    d = fo.StreamDecoder(KEY)
    stream = fo.encode(_bndupd(1, T + 10), KEY) + fo.encode(_bndupd(2, T + 11), KEY) + fo.encode(_bndupd(1, T + 10), KEY)
    with pytest.raises(fo.FailoverError) as e:
        d.feed(stream)
    assert e.value.reason == "replayed" and [m.xid for m in e.value.messages] == [1, 2]


NP, NS = b"P" * fo.NONCE_LEN, b"S" * fo.NONCE_LEN  # the two sides' nonces of one connection


def _hello(t, nonce=NP, key=KEY, name=b"pair"):
    return fo.encode(fo.with_nonce(fo.make_connect(1, from_unix(t), name, 10, 60, 3600, bytes(32)), nonce), key)


def _hello_ack(t, nonce=NS, key=None):
    return fo.encode(fo.with_nonce(fo.make_connectack(1, from_unix(t), b"pair", 10, 60), nonce), key)


def test_bound_connection_switches_to_its_own_key():
    """The secondary's side of one connection: the CONNECT under the shared
    secret, everything after it under the connection's key."""
    d = fo.StreamDecoder(KEY, nonce=NS, primary=False)
    ck = fo.connection_key(KEY, NP, NS)
    got = d.feed(_hello(T) + fo.encode(_bndupd(2, T), ck))
    assert [m.mtype for m in got] == [fo.CONNECT, fo.BNDUPD] and d.key == ck
    # the primary's side verifies our CONNECTACK with the same key
    dp = fo.StreamDecoder(KEY, nonce=NP, primary=True)
    assert dp.feed(_hello_ack(T, NS, ck))[0].mtype == fo.CONNECTACK and dp.key == ck


def test_recorded_session_replayed_on_a_new_connection_is_refused():
    """A recording of the primary's side of one connection, played to the
    secondary on a new connection (another secondary nonce): only the
    CONNECT verifies; the first message after it fails the digest."""
    ck1 = fo.connection_key(KEY, NP, NS)
    session = _hello(T) + b"".join(fo.encode(_bndupd(i, T + i), ck1) for i in range(2, 6))
    assert len(fo.StreamDecoder(KEY, nonce=NS).feed(session)) == 5
    d = fo.StreamDecoder(KEY, nonce=b"s" * fo.NONCE_LEN)
    with pytest.raises(fo.FailoverError) as e:
        d.feed(session)
    assert e.value.reason == "bad-digest" and [m.mtype for m in e.value.messages] == [fo.CONNECT]
    # the same stream sent fresh on that connection, under its key, is accepted
    ck2 = fo.connection_key(KEY, NP, b"s" * fo.NONCE_LEN)
    d2 = fo.StreamDecoder(KEY, nonce=b"s" * fo.NONCE_LEN)
    assert len(d2.feed(_hello(T + 100) + fo.encode(_bndupd(2, T + 100), ck2))) == 2


def test_recorded_connectack_is_refused_by_a_primary_with_a_new_nonce():
    old = _hello_ack(T, NS, fo.connection_key(KEY, NP, NS))
    _refused(fo.StreamDecoder(KEY, nonce=b"p" * fo.NONCE_LEN, primary=True), old, "bad-digest")


@pytest.mark.parametrize("first", ["no-nonce", "state", "short-nonce"])
def test_a_bound_connection_must_open_with_a_nonce(first):
    frame = {"no-nonce": fo.encode(fo.make_connect(1, from_unix(T), b"pair", 10, 60, 3600, bytes(32)), KEY),
             "state": fo.encode(fo.make_state(1, from_unix(T), fo.S_NORMAL), KEY),
             "short-nonce": _hello(T, b"x" * (fo.NONCE_LEN - 1))}[first]
    _refused(fo.StreamDecoder(KEY, nonce=NS), frame, "unbound")


def test_without_a_key_times_are_not_checked():
    """An ISC partner sends no digest; its times are the engine's business (skew checks)."""
    d = fo.StreamDecoder()
    assert len(d.feed(fo.encode(_bndupd(1, T + 100)) + fo.encode(_bndupd(2, T)))) == 2


@pytest.mark.parametrize("length", [fo.MAX_LEN + 1, 0x7FFF, 0xFFFF])
def test_huge_length_claim_is_a_close_not_a_buffer(length):
    d = fo.StreamDecoder(KEY)
    with pytest.raises(fo.FailoverError) as e:
        d.feed(length.to_bytes(2, "big") + b"\x03\x0c")
    assert e.value.reason == "bad-length" and e.value.close

    def more():
        try:
            d.feed(bytes(1024))
        except fo.FailoverError:
            return 1
        return 0

    for _ in range(100):
        more()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        refused = sum(more() for _ in range(2000))  # whatever follows is not buffered
        grew = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert refused == 2000 and d.pending() == 0 and grew < 8 * 1024, grew


def test_short_length_claim_is_refused():
    with pytest.raises(fo.FailoverError) as e:
        fo.StreamDecoder().feed(b"\x00\x0b" + bytes(20))
    assert e.value.reason == "bad-length"


# ---------------------------------------------------------------------------
# Through a node: the secondary of examples/pair-*.json (shared secret set).


def _node(role, now):
    with open(os.path.join(EXAMPLES, "pair-%s.json" % role)) as f:
        doc = json.load(f)
    node = Node(boardconf.load(doc))
    node.start(now)
    assert node.relationships[0].channel.key == KEY
    return node


def _secondary():
    now = from_unix(T)
    node = _node("secondary", now)
    rel = node.relationships[0]
    node.out.clear()
    node.peer_connected("c1", bytes(rel.partner_address), False, now, nonce=NS)
    return node, rel, now


def _connect(rel, t, key=KEY):
    return _hello(t, NP, key, rel.name.encode()) if key else fo.encode(fo.make_connect(1, from_unix(t), rel.name.encode(), 10, 60,
                                                                     3600, bytes(32)))


def _session(p, s, conns, nonces, now, rounds=20):
    """One connection between two real Nodes (bounded rounds of delivery):
    returns what each sent on it, {node: bytes}."""
    sent = {p: b"", s: b""}
    cp, cs = conns
    p.out.clear()
    s.out.clear()
    p.peer_connected(cp, bytes(p.relationships[0].partner_address), True, now, nonce=nonces[0])
    s.peer_connected(cs, bytes(s.relationships[0].partner_address), False, now, nonce=nonces[1])
    for _ in range(rounds):
        moved = False
        for node, mine, other, theirs in ((p, cp, s, cs), (s, cs, p, cp)):
            data = b"".join(d for c, d in node.out.peer if c == mine)
            node.out.clear()
            if data:
                sent[node] += data
                other.peer_data(theirs, data, now)
                moved = True
        if not moved:
            break
    return sent


def test_recorded_primary_replayed_to_the_secondary_on_a_new_connection():
    """Issue 12 item 4: a captured signed session played back on a NEW
    connection is refused and counted; the real partner connects fine."""
    now = from_unix(T)
    p, s = _node("primary", now), _node("secondary", now)
    rp, rs = p.relationships[0], s.relationships[0]
    sent = _session(p, s, ("p1", "s1"), (NP, NS), now)
    assert rs.channel.link is not None and rs.channel.link.conn == "s1"
    assert rs.partner_state != fo.S_UNKNOWN and sent[p].count(b"\x00\x11") >= 2
    s.peer_closed("s1", now + 5)
    p.peer_closed("p1", now + 5)
    state_before = (rs.state, rs.partner_state)

    # the attacker, on the primary's address, connects and plays it back
    s.out.clear()
    s.peer_connected("x", bytes(rs.partner_address), False, now + 10, nonce=b"n" * fo.NONCE_LEN)
    s.peer_data("x", sent[p], now + 10)
    assert "x" in s.out.closes
    assert s.events.get("peer.bad-stream.bad-digest") == 1
    assert rs.channel.link is None and (rs.state, rs.partner_state) == state_before

    # the secondary's side replayed to the primary: refused at the CONNECTACK
    p.out.clear()
    p.peer_connected("y", bytes(rp.partner_address), True, now + 10, nonce=b"m" * fo.NONCE_LEN)
    p.peer_data("y", sent[s], now + 10)
    assert "y" in p.out.closes and p.events.get("peer.bad-stream.bad-digest") == 1
    assert rp.channel.link is None

    # the real partners, fresh nonces: connected, nothing refused
    _session(p, s, ("p2", "s2"), (b"q" * fo.NONCE_LEN, b"r" * fo.NONCE_LEN), now + 20)
    assert rs.channel.link.conn == "s2" and rp.channel.link.conn == "p2"
    assert s.events.get("peer.bad-stream.bad-digest") == 1 and p.events.get("peer.bad-stream.bad-digest") == 1


def test_node_closes_on_a_forged_connect_and_logs_an_auth_failure():
    node, rel, now = _secondary()
    node.peer_data("c1", _connect(rel, T, b"wrong"), now)
    assert "c1" in node.out.closes
    assert node.events.get("peer.bad-stream.bad-digest") == 1
    assert any(e[2] == ev.EV_AUTH_FAIL for e in node.events.recent(20))
    assert rel.link is None or rel.link.conn != "c1"


def test_node_closes_on_an_unsigned_connect():
    node, rel, now = _secondary()
    node.peer_data("c1", _connect(rel, T, None), now)
    assert "c1" in node.out.closes and node.events.get("peer.bad-stream.bad-digest") == 1


def test_node_closes_on_a_huge_frame_claim_and_counts_it():
    node, rel, now = _secondary()
    node.peer_data("c1", b"\xff\xff\x03\x0c" + bytes(4096), now)
    assert "c1" in node.out.closes and node.events.get("peer.bad-stream.bad-length") == 1


def test_node_closes_when_a_signed_message_goes_back_in_time():
    node, rel, now = _secondary()
    node.peer_data("c1", _connect(rel, T), now)
    assert "c1" not in node.out.closes  # a good CONNECT: answered, link up
    ck = fo.connection_key(KEY, NP, NS)
    node.peer_data("c1", fo.encode(fo.make_state(2, from_unix(T - 5), fo.S_NORMAL), ck), now)
    assert "c1" in node.out.closes and node.events.get("peer.bad-stream.replayed") == 1


@pytest.mark.parametrize("code,size", [(fo.OPT_CHADDR, 18), (fo.OPT_CLIENT_ID, 256)])
def test_client_fields_longer_than_any_dhcp_client_close_the_link(code, size):
    """Found by the failover_engine fuzzer: a BNDUPD whose chaddr was longer
    than htype + 16 octets escaped the engine as a lease-table error."""
    m = _bndupd(1, T)
    good = fo.encode(m, KEY)
    assert fo.StreamDecoder(KEY).feed(good) == [m]
    frame = bytearray(fo.encode(fo.Message(fo.BNDUPD, T, 1, {fo.OPT_ASSIGNED_IP: b"\xc6\x12\x00\x0a"})))
    frame += code.to_bytes(2, "big") + size.to_bytes(2, "big") + bytes(size)
    frame[0:2] = len(frame).to_bytes(2, "big")
    with pytest.raises(fo.FailoverError) as e:
        fo.StreamDecoder().feed(bytes(frame))
    assert e.value.reason == "bad-option-size" and e.value.close
