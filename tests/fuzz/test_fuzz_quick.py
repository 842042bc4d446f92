"""The fuzz targets in plain pytest: a short hypothesis run of each, every
saved failing input replayed, and memory that stays bounded in long-lived
decoders and the server. `make fuzz` runs the same targets for minutes."""

import os
import random
import signal
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz import targets as T
from fuzz.run import HANG_SECONDS
from dhcpfo.lease import log as ll
from dhcpfo.lease import replay as LR
from dhcpfo.lease import table as lt
from dhcpfo.wire import failover as fo

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang("one input ran over %d s" % HANG_SECONDS)


def run_bounded(target, data):
    """One input, failing on a hang as well as on an escaping exception."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        target.run(data)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def inputs(target):
    """Random bytes, or a seed mutated by the same byte-level mutator the
    random engine uses (the mutation seed comes from hypothesis, so a
    failure shrinks and replays)."""
    seeds = target.seeds()
    mutated = st.tuples(st.sampled_from(seeds), st.integers(0, 2 ** 32 - 1)).map(
        lambda p: T.mutate(p[0], random.Random(p[1]), target.max_len, target.header))
    return st.one_of(st.binary(max_size=400), mutated, st.sampled_from(seeds))


def _quick(name):
    target = T.TARGETS[name]

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(inputs(target))
    def check(data):
        try:
            run_bounded(target, data)
        except Exception:
            T.save_regression(name, data)  # stays as a regression input from now on
            raise

    check()


@pytest.mark.parametrize("name", sorted(T.TARGETS))
def test_target_survives_random_and_mutated_inputs(name):
    _quick(name)


REGRESSIONS = [(name, fn, data) for name in sorted(T.TARGETS) for fn, data in T.regression_inputs(name)]


@pytest.mark.parametrize("name,fn,data", REGRESSIONS, ids=["%s/%s" % (r[0], r[1]) for r in REGRESSIONS])
def test_saved_failing_input_now_passes(name, fn, data):
    run_bounded(T.TARGETS[name], data)


def test_every_target_has_seeds_that_pass():
    for name, target in T.TARGETS.items():
        seeds = target.seeds()
        assert seeds, name
        for s in seeds:
            run_bounded(target, s)


# ---------------------------------------------------------------------------
# Memory: long-lived objects fed many inputs hold a bounded amount.


def _growth(step, warmup, rounds):
    """Bytes still allocated after `rounds` more calls of step(i), measured
    after `warmup` calls (caches, counters and tables settle first)."""
    for i in range(warmup):
        step(i)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i in range(warmup, warmup + rounds):
            step(i)
        return tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()


def test_server_memory_bounded_under_a_flood_of_new_clients():
    """Thousands of distinct clients (a starvation attack) and garbage: the
    server's state is fixed-size, so memory does not follow the client count."""
    h = T.ServerHarness()
    rnd = random.Random(7)
    seeds = T.dhcp_seeds()

    def step(i):
        if i % 4 == 3:
            h.feed(T.mutate(seeds[i % len(seeds)], rnd, 1600, 240))
        else:
            h.feed(T._client_packet(i & 0xFFFF, 1 + (i % 3 == 2) * 2, giaddr=T.RELAY if i & 1 else b"\0\0\0\0"))

    grew = _growth(step, 3000, 6000)
    assert grew < 64 * 1024, grew


def test_failover_decoder_memory_bounded_on_a_long_stream():
    """One decoder, a long valid signed stream in odd-sized pieces."""
    msgs = [fo.make_bndupd(i, 500 + i // 50, b"\xc6\x12\x00\x0a", fo.B_ACTIVE, 900, 900, 500,
                           b"\x01" + bytes(6), b"\x01" + bytes(6)) for i in range(64)]
    chunk = b"".join(fo.encode(m, T.KEY) for m in msgs)
    d = fo.StreamDecoder(T.KEY)
    got = [0]

    def step(i):
        data = chunk if i % 2 else chunk[:777]
        if i % 2:
            data = chunk[777:]
        for k in range(0, len(data), 97):
            got[0] += len(d.feed(data[k:k + 97]))

    # times in the stream must not go backwards for a keyed decoder: keep them equal
    for m in msgs:
        m.time = msgs[0].time
    chunk = b"".join(fo.encode(m, T.KEY) for m in msgs)
    grew = _growth(step, 20, 400)
    assert got[0] == 64 * 210
    assert d.pending() == 0
    assert grew < 16 * 1024, grew


def test_failover_decoder_holds_less_than_one_frame_whatever_it_is_fed():
    d = fo.StreamDecoder()
    frame = fo.encode(fo.make_contact(1, 500))
    rnd = random.Random(3)
    for _ in range(2000):
        k = rnd.randint(0, len(frame))
        d.feed(frame[:k])
        assert d.pending() < fo.MAX_LEN
        d.feed(frame[k:])
        assert d.pending() == 0


def test_replay_memory_bounded_on_a_long_log():
    t = lt.LeaseTable(64)
    t.set(6, lt.ACTIVE, 0, b"\x02\x00\x5e\x10\x00\x06", b"\x00odd-client-id-" + bytes(range(40)), 4000, 0, 1000, 1)
    unit = ll.encode_binding(0, 6, t, True) + ll.encode_meta(1, b"x")
    tables = {0: lt.LeaseTable(64)}

    def on_binding(scope, offset, rec, extra):
        tables[0].load_record(offset, rec, extra)

    r = LR.Replay(on_binding, lambda k, p: None)
    grew = _growth(lambda i: r.feed(unit), 100, 5000)
    assert not r.stopped and r.good == r.seen
    assert grew < 16 * 1024, grew


def test_replay_stops_on_an_endless_extra_run():
    """A log of valid EXTRA records that never ends in a BINDING (corrupt or
    hostile) is not buffered without bound: replay stops."""
    t = lt.LeaseTable(8)
    t.set(1, lt.ACTIVE, 0, b"\x02\x00\x5e\x10\x00\x06", b"\x00" + bytes(200), 4000, 0, 1000, 1)
    extra = ll.encode_binding(0, 1, t, True)[:ll.RECORD]
    assert extra[0] == ll.EXTRA
    r = LR.Replay(lambda *a: None, lambda *a: None)
    tracemalloc.start()
    try:
        for _ in range(20000):
            if not r.feed(extra):
                break
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert r.stopped
    assert held < 16 * 1024, held
