"""The seed's ten failover performance counters (failover/perf.py): the four
per-minute rates count the last complete minute, transitions are totals, and
the management surface reports them per relationship and per node."""

from dhcpfo.failover import perf
from dhcpfo.failover import states as S
from dhcpfo.failover import updates as upd
from dhcpfo.mgmt.commands import Commands
from pairlink import Pair, dora


def _macs(n, base=0):
    return [bytes([2, 0, 0, 1, (base + i) >> 8, (base + i) & 0xFF]) for i in range(n)]


def test_rates_count_the_last_complete_minute():
    p = Pair()
    p.connect()
    p.tick(3)
    assert p.state(p.a) == S.NORMAL
    p.tick(61)  # close the minute in which the pair came up (its BACKUP updates)
    p.tick(60)  # a quiet minute
    a = p.a.node.relationships[0]
    b = p.b.node.relationships[0]
    assert perf.counters([a])["BindingUpdatesSentPerMin"] == 0
    served = {"a": 0, "b": 0}
    for mac in _macs(12):
        side, ack = dora(p, mac)
        assert ack is not None
        served["a" if side is p.a else "b"] += 1
    # the minute is not over: the rates still show the quiet one
    assert perf.counters([a])["BindingUpdatesSentPerMin"] == 0
    p.tick(61)
    ca, cb = perf.counters([a]), perf.counters([b])
    # every client's binding went over once, at least (a lease longer than
    # MCLT sends a second update once the partner acknowledged the first)
    assert ca["BindingUpdatesSentPerMin"] >= served["a"] and cb["BindingUpdatesSentPerMin"] >= served["b"]
    assert cb["BindingUpdatesReceivedPerMin"] == ca["BindingUpdatesSentPerMin"]
    assert ca["BindingAcksReceivedPerMin"] == ca["BindingUpdatesSentPerMin"] == cb["BindingAcksSentPerMin"]
    # a rate is the running total's change over exactly the last complete minute
    m = a.perf
    before = a.stats["bndupd_sent"]
    total_then, start_then = m.base[0], m.start
    p.tick(60)
    assert m.start == start_then + 60
    assert m.rates[0] == m.base[0] - total_then
    for _ in range(5):  # quiet minutes read zero
        p.tick(60)
    assert perf.counters([a])["BindingUpdatesSentPerMin"] == 0
    assert a.stats["bndupd_sent"] >= before
    assert perf.counters([a])["PendingOutboundBindingUpdates"] == 0


def test_transitions_and_pending_updates_while_cut_off():
    p = Pair()
    p.connect()
    p.tick(3)
    p.cut()
    p.tick(2)
    a = p.a.node.relationships[0]
    assert p.state(p.a) == S.COMM_INTERRUPTED
    for mac in _macs(5, 100):
        dora(p, mac)
    c = perf.counters([a])
    assert c["TransitionsToCommunicationInterrupted"] == 1
    assert c["TransitionsToPartnerDown"] == 0
    assert c["PendingOutboundBindingUpdates"] >= 1  # queued for the partner's return
    a.admin("partner-down", p.now, p.a.node.out)
    p.drain(p.a)
    assert perf.counters([a])["TransitionsToPartnerDown"] == 1


def test_queue_overflow_is_counted_and_still_sent():
    p = Pair()
    p.connect()
    p.tick(3)
    a = p.a.node.relationships[0]
    up = a.updates
    for i in range(upd.QUEUE_MAX + 5):  # keys that are not bindings: only the queue is exercised
        up.enqueue(9, i)
    c = perf.counters([a])
    assert c["UpdateQueueAt90Percent"] == 1
    assert c["BindingUpdatesDropped"] == 5
    assert c["PendingOutboundBindingUpdates"] >= upd.QUEUE_MAX


def test_management_reports_the_ten_counters_per_node_and_per_relationship():
    p = Pair()
    p.connect()
    p.tick(3)
    cmds = Commands(p.a.node)
    resp = cmds.handle({"cmd": "get-counters"}, p.now)
    assert resp["ok"] and sorted(resp["failover"]) == sorted(perf.NAMES)
    rel = cmds.handle({"cmd": "get-failover"}, p.now)["relationships"][0]
    assert sorted(rel["performance"]) == sorted(perf.NAMES)


def test_a_clock_that_goes_back_starts_a_new_minute():
    p = Pair()
    a = p.a.node.relationships[0]
    m = perf.PerMinute(a.stats, 1000)
    a.stats["bndupd_sent"] = 7
    m.sample(500)  # back in time: no negative or huge rate
    assert m.start == 500 and m.rates == [0, 0, 0, 0]
    m.sample(561)
    assert m.rates[0] == 7
