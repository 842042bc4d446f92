"""A dhcpfo failover pair as real processes, serving real DHCP clients.

Two `dhcpfo node` processes (primary `a`, secondary `b`) in a load-balance
relationship (50 %, MCLT 20 s, lease time 60 s, receive timer 8 s,
load-balance max seconds 3, HMAC authentication) serve ISC dhclient and
busybox udhcpc clients in their own network namespaces. The failover link
runs on a second segment, so it can be cut without cutting the clients off
(see integration/pair.py for the topology).

The tests run in file order on one pair and leave it in NORMAL for the
next (each starts with `settle`, which repairs what an earlier failure left):

1. NORMAL, a balanced pool, clients served by their hash owner, no address twice;
   a hung (SIGSTOPped) partner: its clients are served once `secs` >= 3;
2. SIGKILL of the secondary: the primary notices at once, takes over new
   clients on their first DISCOVER, and rebinds the dead server's clients;
3. restart of the killed node from its data dir: NORMAL again, tables agree;
4. failover link cut: both COMMUNICATION-INTERRUPTED, both serve every
   client from their own pool with leases <= MCLT; heal: NORMAL, no conflict;
5. planned shutdown of the primary: the secondary goes PARTNER-DOWN at once
   and serves everyone; resume: NORMAL again.

Measurements (takeover outage, time to NORMAL, ...) are printed at the end
of the module and, with DFO_PAIR_RESULTS=path, written there as JSON.
"""

import json
import os
import signal
import statistics
import time

import pytest

from integration.conftest import require
from integration.netns import Lab, wait_until
from integration.nodes import state_move
from integration.pair import REL, SIDS, Pair, discovers, wait_new_event

pytestmark = pytest.mark.netns

MCLT = 20
LEASE_TIME = 60
RECEIVE_TIMER = 8
LB_MAX_SECS = 3
CI = "communications-interrupted"
PD = "partner-down"

RESULTS = {}


@pytest.fixture(scope="module")
def pair(request):
    require("ip", "dhclient", "busybox")
    with Lab() as lab:
        p = Pair(lab, mclt=MCLT, lease_time=LEASE_TIME, max_response_delay=RECEIVE_TIMER,
                 lb_max_seconds=LB_MAX_SECS)
        RESULTS["first_normal_s"] = round(p.start(), 2)
        yield p
    _report(request.config)


def _report(config):
    lines = ["dhcpfo pair failover measurements:"]
    for k in sorted(RESULTS):
        lines.append("  %-34s %s" % (k, RESULTS[k]))
    tr = config.pluginmanager.get_plugin("terminalreporter")
    cap = config.pluginmanager.get_plugin("capturemanager")
    if tr is not None and cap is not None:
        with cap.global_and_fixture_disabled():
            tr.write_line("")
            for line in lines:
                tr.write_line(line)
    path = os.environ.get("DFO_PAIR_RESULTS")
    if path:
        with open(path, "w") as f:
            json.dump(RESULTS, f, indent=1, sort_keys=True)


def settle(p):
    """Bring the pair back to NORMAL/NORMAL whatever an earlier test left."""
    for side in ("a", "b"):
        p.lab.link_up(p.hosts[side], "eth1")
        node = p.nodes[side]
        if node.proc is not None and node.proc.poll() is None:
            os.kill(node.pid, signal.SIGCONT)
        if not node.running():
            node.start()
    for side in ("a", "b"):
        if p.state(side) in ("shutdown", "paused"):
            p.nodes[side].call("set-failover-state", name=REL, state="resume")
    p.wait_states({"a": "normal", "b": "normal"}, 60)


def ms(x):
    return round(x * 1000)


def median_ms(xs):
    return ms(statistics.median(xs)) if xs else None


# ---------------------------------------------------------------------------

def test_normal_balanced_and_serving(pair):
    p = pair
    settle(p)
    for side in ("a", "b"):
        rel = p.failover(side)
        assert rel["connected"] and rel["partner_state"] == "normal"
        assert rel["mclt"] == MCLT and rel["authentication"]
        assert rel["partner"] == "198.18.2.%s" % ("3" if side == "a" else "2")

    # The primary gives half of the free addresses to the secondary (BACKUP).
    t0 = time.monotonic()

    def balanced():
        fa = p.scope_stats("a")["free_this_server"]
        fb = p.scope_stats("b")["free_this_server"]
        return abs(fa - fb) <= 5 and fa + fb >= 90 and (fa, fb)

    fa, fb = wait_until(balanced, 60, 0.2, "pool balance")
    RESULTS["pool_balanced_wait_s"] = round(time.monotonic() - t0, 2)
    RESULTS["pool_split_free_a_b"] = [fa, fb]
    sa, sb = p.scope_stats("a"), p.scope_stats("b")
    assert sa["free_partner_server"] == sb["free_this_server"]
    assert sb["free_partner_server"] == sa["free_this_server"]

    # Clients of both kinds whose hash falls on each server: the hash owner
    # answers (its server id in the lease), the first lease is MCLT long.
    times = []
    clients = []
    for kind in ("dhclient", "udhcpc"):
        for side in ("a", "b", "a", "b"):
            c = p.client(kind, side)
            lease, dt = p.timed_acquire(c)
            times.append(dt)
            clients.append((c, lease))
            assert lease.server_id == SIDS[side], (kind, c.mac, lease)
            assert lease.lease_time is not None and lease.lease_time <= MCLT, lease
    RESULTS["acquire_normal_median_ms"] = median_ms(times)
    ips = [lease.ip for _, lease in clients]
    assert len(set(ips)) == len(ips), ips

    # Lazy updates: every binding reaches the partner's table.
    t0 = time.monotonic()
    want = dict((lease.ip, c.mac) for c, lease in clients)

    def both_know():
        return all(all(p.active(s).get(ip) == mac for ip, mac in want.items()) for s in ("a", "b"))

    wait_until(both_know, 60, 0.1, "bindings on both nodes")
    RESULTS["bindings_on_both_after_last_ack_s"] = round(time.monotonic() - t0, 2)
    assert p.duplicates() == []


def test_hung_partner_clients_served_after_max_seconds(pair):
    """A partner that is alive on TCP but does not answer (SIGSTOP): its
    clients retransmit with growing `secs` and the other server answers them
    once secs >= load_balance_max_seconds, while still in NORMAL."""
    p = pair
    settle(p)
    outage = {}
    for kind in ("dhclient", "udhcpc"):
        os.kill(p.b.pid, signal.SIGSTOP)
        try:
            c = p.client(kind, "b")
            lease, dt = p.timed_acquire(c, 15)
            state_a = p.state("a")
        finally:
            os.kill(p.b.pid, signal.SIGCONT)
        outage[kind] = dt
        assert lease.server_id == SIDS["a"], lease
        # answered because of `secs`, not because the link was declared down
        assert state_a == "normal"
        assert 1.0 <= dt < RECEIVE_TIMER, dt  # dhclient counts secs in whole seconds
        assert discovers(c) >= 2
        p.wait_states({"a": "normal", "b": "normal"}, 15)
    RESULTS["hung_partner_outage_ms"] = dict((k, ms(v)) for k, v in outage.items())
    assert p.duplicates() == []


def test_kill_secondary_takeover(pair):
    p = pair
    settle(p)
    # A dhclient and a udhcpc with fresh leases from b (MCLT long: T1 = 10 s,
    # T2 = 17.5 s).
    db = p.client("dhclient", "b")
    lease_db, _ = p.timed_acquire(db)
    ub = p.client("udhcpc", "b")
    lease_ub, _ = p.timed_acquire(ub)
    assert lease_db.server_id == SIDS["b"] and lease_ub.server_id == SIDS["b"]
    # the survivor can only extend what it has heard of: wait for the updates
    wait_until(lambda: all(p.active("a").get(l.ip) == c.mac for c, l in ((db, lease_db), (ub, lease_ub))),
               5, 0.05, "binding updates on a")

    t_kill = time.monotonic()
    p.b.kill()
    p.wait_states({"a": CI}, 5, interval=0.02)
    RESULTS["ci_after_sigkill_s"] = round(time.monotonic() - t_kill, 3)
    assert not p.failover("a")["connected"]

    # New clients whose hash belongs to the dead server: served by a at once.
    outage = {"dhclient": [], "udhcpc": []}
    tries = []
    for kind in ("dhclient", "udhcpc", "dhclient", "udhcpc", "dhclient", "udhcpc"):
        c = p.client(kind, "b")
        lease, dt = p.timed_acquire(c)
        assert lease.server_id == SIDS["a"], lease
        assert lease.lease_time <= MCLT
        outage[kind].append(dt)
        tries.append(discovers(c))
    RESULTS["takeover_outage_median_ms"] = dict((k, median_ms(v)) for k, v in outage.items())
    RESULTS["takeover_outage_max_ms"] = dict((k, ms(max(v))) for k, v in outage.items())
    RESULTS["takeover_discovers_per_client"] = tries
    assert max(tries) <= 2, "a client needed more than one retransmit: %s" % tries

    # udhcpc holding b's lease: renew (unicast to the dead b fails), then a
    # broadcast rebind that a answers with the same address.
    t0 = time.time()
    ub.proc.send_signal(signal.SIGUSR1)
    ev = wait_new_event(ub, {"renew", "bound"}, t0, 15, fail={"leasefail", "nak", "deconfig"})
    RESULTS["udhcpc_rebind_after_usr1_s"] = round(int(ev.stamp) / 1e9 - t0, 2)
    assert ev.event == "renew" and ev.ip == lease_ub.ip and ev.server_id == SIDS["a"], ev

    # dhclient holding b's lease: unicast renewals to b from T1, then at T2
    # a broadcast REQUEST (still reported as RENEW by dhclient) that a ACKs.
    bound_at = int(lease_db.stamp) / 1e9
    ev = wait_new_event(db, {"RENEW", "REBIND"}, bound_at, MCLT + 10, fail={"EXPIRE", "FAIL"})
    at = int(ev.stamp) / 1e9
    RESULTS["dhclient_rebind_after_bound_s"] = round(at - bound_at, 1)
    assert ev.ip == lease_db.ip and ev.server_id == SIDS["a"], ev
    assert at - bound_at >= MCLT * 7 / 8 - 1  # not before T2: the unicast renewals to b failed
    # in COMMUNICATIONS-INTERRUPTED a renewal may run at most MCLT past the
    # potential expiration b sent (bound + lease time): draft-12 5.2.1
    assert at + ev.lease_time <= bound_at + LEASE_TIME + MCLT + 2, ev
    assert p.duplicates() == []


def test_restart_killed_node(pair):
    p = pair
    if p.b.running():
        pytest.skip("needs the secondary killed by the previous test")
    assert p.state("a") == CI
    t0 = time.monotonic()
    p.b.start()
    p.wait_states({"a": "normal", "b": "normal"}, 30)
    RESULTS["normal_after_restart_s"] = round(time.monotonic() - t0, 2)
    RESULTS["restart_process_ready_s"] = round(p.b.starts[-1][1], 2)
    RESULTS["tables_synced_after_restart_s"] = round(p.wait_synced(15), 2)
    assert p.duplicates() == []
    # b serves its own hash buckets again
    for kind in ("dhclient", "udhcpc"):
        lease, _ = p.timed_acquire(p.client(kind, "b"))
        assert lease.server_id == SIDS["b"], lease
    assert p.duplicates() == []


def test_partition_failover_link(pair):
    p = pair
    settle(p)
    pools = {"a": p.pool("a"), "b": p.pool("b")}
    assert not pools["a"] & pools["b"]
    before = dict((s, p.nodes[s].counters().get("tx.offer", 0)) for s in ("a", "b"))

    t0 = time.monotonic()
    p.lab.link_down(p.hosts["a"], "eth1")
    try:
        p.wait_states({"a": CI, "b": CI}, RECEIVE_TIMER + 5, interval=0.2)
        RESULTS["partition_detected_s"] = round(time.monotonic() - t0, 2)
        # Both serve every client, each from its own pool, leases <= MCLT.
        new = []
        for kind, side in (("dhclient", "a"), ("dhclient", "b"), ("udhcpc", "a"), ("udhcpc", "b")):
            c = p.client(kind, side)
            lease, dt = p.timed_acquire(c)
            server = p.side_of_sid(lease.server_id)
            assert server in ("a", "b"), lease
            assert lease.ip in pools[server], (lease, "not from %s's own pool" % server)
            assert lease.lease_time <= MCLT, lease
            assert discovers(c) == 1
            new.append((c, lease))
        after = dict((s, p.nodes[s].counters().get("tx.offer", 0)) for s in ("a", "b"))
        for s in ("a", "b"):  # both answered every new client, whatever its hash
            assert after[s] - before[s] >= len(new), (s, before, after)
        # clients of both servers renew with their server as usual
        for c in [c for c in p.clients if c.kind == "udhcpc" and c.proc.poll() is None][:2]:
            held = p.held(c)
            t_sig = time.time()
            c.proc.send_signal(signal.SIGUSR1)
            ev = wait_new_event(c, {"renew", "bound"}, t_sig, 10, fail={"leasefail", "nak"})
            assert held is None or ev.ip == held[0], (held, ev)
        assert p.duplicates() == []
    finally:
        t1 = time.monotonic()
        p.lab.link_up(p.hosts["a"], "eth1")
    p.wait_states({"a": "normal", "b": "normal"}, 60, interval=0.2)
    RESULTS["normal_after_heal_s"] = round(time.monotonic() - t1, 2)
    RESULTS["tables_synced_after_heal_s"] = round(p.wait_synced(15), 2)
    for c, lease in new:
        s = p.active("a").get(lease.ip)
        assert s == c.mac, (lease, s)
    assert p.duplicates() == []


def test_planned_shutdown(pair):
    p = pair
    settle(p)
    t0 = time.monotonic()
    r = p.a.call("set-failover-state", name=REL, state="shutdown")
    assert r["relationship"]["state"] == "shutdown"
    p.wait_states({"b": PD}, 5, interval=0.02)
    RESULTS["partner_down_after_shutdown_s"] = round(time.monotonic() - t0, 3)
    assert p.state("a") == "shutdown"
    # b serves everyone now, at once; a is silent
    tx_a = p.a.counters().get("tx.offer", 0)
    outage = []
    for kind in ("dhclient", "udhcpc"):
        c = p.client(kind, "a")
        lease, dt = p.timed_acquire(c)
        assert lease.server_id == SIDS["b"], lease
        assert lease.lease_time <= MCLT
        assert discovers(c) == 1
        outage.append(dt)
    RESULTS["after_shutdown_acquire_ms"] = [ms(x) for x in outage]
    assert p.a.counters().get("tx.offer", 0) == tx_a
    assert p.duplicates() == []

    # resume: back to NORMAL through the draft's recovery, no conflict
    t0 = time.monotonic()
    p.a.call("set-failover-state", name=REL, state="resume")
    p.wait_states({"a": "normal", "b": "normal"}, 3 * MCLT, interval=0.2)
    RESULTS["normal_after_resume_s"] = round(time.monotonic() - t0, 2)
    RESULTS["resume_path_a"] = [m for m in map(state_move, reversed(p.a.call("get-events", limit=12)["events"])) if m][-4:]
    p.wait_synced(15)
    assert p.duplicates() == []


def test_maintenance_restart_after_shutdown(pair):
    """The usual maintenance: shutdown, stop the process, start it again.
    The partner serves alone meanwhile; the restarted node comes back
    through recovery without an address held twice."""
    p = pair
    settle(p)
    p.a.call("set-failover-state", name=REL, state="shutdown")
    p.wait_states({"b": PD}, 5, interval=0.05)
    assert p.a.stop() == 0
    lease, _ = p.timed_acquire(p.client("udhcpc", "a"))
    assert lease.server_id == SIDS["b"]
    t0 = time.monotonic()
    p.a.start()
    p.wait_states({"a": "normal", "b": "normal"}, 3 * MCLT, interval=0.2)
    RESULTS["normal_after_maintenance_restart_s"] = round(time.monotonic() - t0, 2)
    RESULTS["maintenance_restart_path_a"] = [m for m in map(state_move, reversed(p.a.call("get-events", limit=12)["events"]))
                                             if m][-4:]
    p.wait_synced(15)
    assert p.duplicates() == []
    for c in p.clients:  # every client still running holds an address
        if c.proc is not None and c.proc.poll() is None:
            assert p.held(c) is not None, (c.kind, c.mac, c.events()[-3:])


def test_rejected_update_keeps_released_address_unusable():
    """Safety (draft-12 I6 / section 5.2.2): a RELEASED address may go to a new
    client only once the partner ACKNOWLEDGED the release. A *rejected*
    update is no acknowledgement, but Relationship._on_bndack clears PENDING
    on a reject, so the address is reusable at once.

    Core-level reproduction (two real Nodes over the in-memory link of
    tests/core/pairlink.py, no root): client P (the secondary's hash bucket,
    served by the primary because secs >= 3) holds X from a; P releases X
    at a and at once INIT-REBOOTs for X, which b (still bound to P) ACKs.
    a's RELEASED update reaches b, which rejects it (its own ACTIVE copy is
    newer) but cannot send that copy yet because its update window is full
    (max_unacked 1 here; 10 by default, full in any burst). a reads the
    reject, takes X as free and gives it to Q: P (600 s lease from b) and
    Q (from a) now hold X together, and both tables end up saying Q.
    """
    from core.pairlink import Pair as LinkPair, client_packet
    from dhcpfo.failover import hashing
    from dhcpfo.lease import table as lt
    from dhcpfo.wire import dhcp as wire

    hba = hashing.hba_for_percent(50)

    def macs(primary):
        out = []
        for i in range(64):
            m = bytes([2, 0, 0, 0, 1, i])
            if hashing.in_buckets(hba, hashing.client_hash(m)) == primary:
                out.append(m)
        return out

    lp = LinkPair(extra={"max_unacked": 1})
    lp.connect()
    lp.tick(3)
    a, b = lp.a, lp.b
    sid_a, sid_b = b"\xc6\x12\x00\x02", b"\xc6\x12\x00\x03"
    (p_mac, z_mac), q_mac = macs(False)[:2], macs(True)[0]
    r = lp.dhcp(a, client_packet(p_mac, wire.DISCOVER, 1, secs=5))
    x = r[0].yiaddr
    r = lp.dhcp(a, client_packet(p_mac, wire.REQUEST, 1, secs=5, o50=x, o54=sid_a))
    assert r[0].msg_type == wire.ACK  # P holds X from a; the update reaches b
    lp.tick(2)
    off = a.node.scopes[0].offset_of(x)
    ta = a.node.tables[0]
    rel = client_packet(p_mac, wire.RELEASE, 2, o54=sid_a)
    rel.ciaddr = x
    # From here the link is slow: a's RELEASED update stays on the wire while
    # b (still holding X for P) ACKs P's INIT-REBOOT with a window kept full.
    lp.dhcp(a, rel, flow=False)
    r = lp.dhcp(b, client_packet(z_mac, wire.DISCOVER, 5), flow=False)
    r = lp.dhcp(b, client_packet(z_mac, wire.REQUEST, 5, o50=r[0].yiaddr, o54=sid_b), flow=False)
    r = lp.dhcp(b, client_packet(p_mac, wire.REQUEST, 3, o50=x), flow=False)  # INIT-REBOOT
    assert r and r[0].msg_type == wire.ACK and r[0].yiaddr == x
    assert ta.state(off) == lt.RELEASED
    lp.deliver_to(b)  # a's RELEASED reaches b: b's ACTIVE copy is newer, so b refuses it
    lp.deliver_to(a)  # the refusal (and b's window-limited updates) reach a
    assert a.node.events.get("peer.bndack-reject.16") == 1
    # X must stay unusable: the partner refused the release
    a.replies = []
    a.node.handle_dhcp(wire.encode(client_packet(q_mac, wire.DISCOVER, 9, o50=x)), a.addr, lp.now)
    lp.drain(a)
    offered = [o.yiaddr for o in a.replies if o.msg_type == wire.OFFER]
    assert x not in offered, "X offered to Q while P holds it from b"
