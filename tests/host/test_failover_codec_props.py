"""Property tests for wire.failover, failover.hashing and failover.states (CPython only)."""
import struct

from hypothesis import HealthCheck, given, settings, strategies as st

from dhcpfo.failover import hashing, states
from dhcpfo.wire import failover as fo

U32 = st.integers(0, 0xFFFFFFFF)
KEYS = st.one_of(st.none(), st.binary(min_size=1, max_size=80))


@st.composite
def messages(draw):
    mtype = draw(st.integers(1, 12))
    opts = {}
    budget = fo.MAX_LEN - 12 - 37  # room for a digest too
    for code in draw(st.permutations(sorted(fo.ALLOWED[mtype]))):
        if not draw(st.booleans()):
            continue
        size = fo.FIXED_SIZE.get(code)
        data = draw(st.binary(min_size=size or 0, max_size=size if size is not None else min(64, fo.MAX_SIZE.get(code, 64))))
        if 4 + len(data) > budget:
            break
        budget -= 4 + len(data)
        opts[code] = data
    return fo.Message(mtype, draw(U32), draw(U32), opts)


@given(messages(), KEYS)
def test_round_trip(m, key):
    b = fo.encode(m, key)
    assert len(b) == struct.unpack(">H", b[:2])[0] <= fo.MAX_LEN and b[3] == 12
    got = fo.StreamDecoder(key).feed(b)
    assert got == [m]
    assert fo.encode(got[0], key) == b


@given(st.lists(messages(), min_size=1, max_size=6), KEYS, st.lists(st.integers(1, 300), min_size=1))
def test_any_chunking_gives_the_same_messages(msgs, key, cuts):
    if key is not None:  # a keyed decoder refuses a TIME going back (replay)
        msgs = sorted(msgs, key=lambda m: m.time)
    stream = b"".join(fo.encode(m, key) for m in msgs)
    d = fo.StreamDecoder(key)
    got = []
    p = 0
    i = 0
    while p < len(stream):
        n = cuts[i % len(cuts)]
        got.extend(d.feed(stream[p:p + n]))
        p += n
        i += 1
    assert got == msgs and d.pending() == 0


def _feed_safely(decoder, chunks):
    """Feed chunks; only FailoverError (with close=True) may escape."""
    out = []
    for c in chunks:
        try:
            out.extend(decoder.feed(c))
        except fo.FailoverError as e:
            assert e.close is True and isinstance(e.reason, str)
            return out + e.messages, e.reason
    return out, None


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000), KEYS)
def test_random_bytes_raise_only_failover_error(data, key):
    msgs, _ = _feed_safely(fo.StreamDecoder(key), [data])
    for m in msgs:
        fo.encode(m)  # whatever we accepted, we can write back


@given(st.integers(0, 255), st.integers(0, 40), st.binary(max_size=400), KEYS)
def test_random_payload_behind_a_valid_header(mtype, off, payload, key):
    """Reach the option parser with arbitrary option bytes (lengths stay consistent)."""
    extra = bytes(max(0, off - 12))
    n = 12 + len(extra) + len(payload)
    frame = struct.pack(">HBBII", n, mtype, off, 1, 2) + extra + payload
    msgs, reason = _feed_safely(fo.StreamDecoder(key), [frame])
    if reason is None:
        assert len(msgs) <= 1
        for m in msgs:
            assert set(m.options) <= set(fo.ALLOWED[m.mtype])
            for code, data in m.options.items():
                assert fo.FIXED_SIZE.get(code, len(data)) == len(data)
            fo.encode(m)


@given(st.lists(messages(), min_size=1, max_size=4), KEYS, st.data())
def test_mutated_streams_raise_only_failover_error(msgs, key, data):
    stream = bytearray(b"".join(fo.encode(m, key) for m in msgs))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(stream) - 1))
        stream[i] = data.draw(st.integers(0, 255))
    one, r1 = _feed_safely(fo.StreamDecoder(key), [bytes(stream)])
    split = data.draw(st.integers(0, len(stream)))
    two, r2 = _feed_safely(fo.StreamDecoder(key), [bytes(stream[:split]), bytes(stream[split:])])
    assert one == two and r1 == r2  # errors depend on the frames, not on the chunking


@given(messages(), st.binary(min_size=1, max_size=32))
def test_tampered_keyed_messages_never_pass(m, key):
    b = bytearray(fo.encode(m, key))
    tampered = 0
    for i in range(0, len(b), max(1, len(b) // 16)):
        t = bytearray(b)
        t[i] ^= 0x80
        msgs, reason = _feed_safely(fo.StreamDecoder(key), [bytes(t)])
        if reason is None:
            # only a flip inside the length field can leave a frame incomplete
            assert i < 2 and msgs == []
        else:
            tampered += 1
    assert tampered > 0


@given(st.integers(0, 0xFFFFFFFF), st.binary(min_size=4, max_size=4), st.integers(1, 7),
       st.one_of(st.none(), st.integers(-10**6, 10**8)), st.one_of(st.none(), st.binary(max_size=40)),
       st.one_of(st.none(), st.binary(min_size=1, max_size=17)), st.integers(0, 3))
def test_bndupd_builder_round_trips(xid, addr, status, t, cid, chaddr, flags):
    m = fo.make_bndupd(xid, 100, addr, status, lease_end=t, potential_end=t, stos=t,
                       client_id=cid, chaddr=chaddr, cltt=t, ip_flags=flags)
    d = fo.StreamDecoder().feed(fo.encode(m))[0]
    assert d == m
    assert d.get_time(fo.OPT_LEASE_EXPIRATION) == t
    assert d.has(fo.OPT_CLTT) == (t is not None)
    assert d.get_u16(fo.OPT_IP_FLAGS, 0) == flags


@given(st.integers(0, 256), st.integers(0, 255))
def test_split_sets_exactly_the_low_buckets(n, h):
    assert hashing.in_buckets(hashing.hba_split(n), h) == (h < n)


@given(st.binary(max_size=64), st.integers(0, 100))
def test_exactly_one_server_serves_each_client(key, pct):
    hba = hashing.hba_for_percent(pct)
    assert hashing.serves(hba, key, True) != hashing.serves(hba, key, False)
    assert 0 <= hashing.client_hash(key) < 256


@given(st.integers(0, 99))
def test_percent_is_monotonic(pct):
    a = hashing.primary_share(hashing.hba_for_percent(pct))
    b = hashing.primary_share(hashing.hba_for_percent(pct + 1))
    assert a <= b and abs(a - pct * 256 / 100) <= 0.5


VALID = tuple(states.NAMES)


@given(st.sampled_from(VALID), st.integers(-1, 12), st.one_of(st.none(), st.integers(0, 300)),
       st.booleans(), st.one_of(st.none(), st.sampled_from(VALID)), st.booleans(), st.booleans(),
       st.booleans(), st.booleans())
def test_next_state_is_total_and_closed(s, ev, partner, primary, previous, pstart, newer, skip, to_pd):
    n = states.next_state(s, ev, partner, primary=primary, previous=previous, partner_startup=pstart,
                          partner_down_newer=newer, skip_wait=skip, startup_to_partner_down=to_pd)
    assert n is None or (n in states.NAMES and n != s and n not in (states.STARTUP, states.UNKNOWN))
    if n == states.CONFLICT_DONE:  # §9.12.1: only a primary enters it (or resumes it)
        assert primary or (s == states.STARTUP and previous == states.CONFLICT_DONE)


@given(st.sampled_from(VALID))
def test_startup_resumes_a_state_with_failed_communications(saved):
    prev = states.startup_previous(saved)
    assert prev in states.NAMES and prev not in (states.NORMAL, states.POTENTIAL_CONFLICT,
                                                 states.STARTUP, states.UNKNOWN)
