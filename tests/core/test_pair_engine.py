"""The failover engine end to end: two real Nodes over an in-memory link.

Runs on CPython and under MicroPython: the same engine a board runs.
"""

from dhcpfo.failover import hashing
from dhcpfo.failover import states as S
from dhcpfo.lease import table as lt
from dhcpfo.wire import dhcp as wire
from pairlink import Pair, client_packet, dora


def _normal_pair(**kw):
    p = Pair(**kw)
    p.connect()
    p.tick(3)
    return p


def _mac_for(primary, hba=None):
    """A MAC whose RFC 3074 bucket belongs to the primary (or the secondary)."""
    hba = hba or hashing.hba_for_percent(50)
    for i in range(256):
        mac = bytes([2, 0, 0, 0, 1, i])
        if hashing.in_buckets(hba, hashing.client_hash(mac)) == primary:
            return mac
    raise ValueError("no mac")


def test_fresh_pair_reaches_normal_and_balances_pool():
    p = _normal_pair()
    assert p.state(p.a) == S.NORMAL and p.state(p.b) == S.NORMAL
    ta = p.a.node.tables[0]
    tb = p.b.node.tables[0]
    # 50 addresses split roughly in half, and both sides agree who owns what
    assert 20 <= tb.count(lt.BACKUP) <= 30
    assert ta.count(lt.BACKUP) == tb.count(lt.BACKUP)
    for off in range(ta.size):
        assert ta.state(off) == tb.state(off)


def test_load_balance_hash_decides_who_answers_and_partner_learns_binding():
    p = _normal_pair()
    for primary in (True, False):
        mac = _mac_for(primary)
        side, ack = dora(p, mac)
        assert side is (p.a if primary else p.b)
        # first lease is capped at MCLT (60 s) before the partner has acked
        assert wire.decode(wire.encode(ack)).options[wire.OPT_LEASE_TIME] == (60).to_bytes(4, "big")
        p.tick(1)
        other = p.b if primary else p.a
        t = other.node.tables[0]
        off = other.node.scopes[0].offset_of(ack.yiaddr)
        assert t.state(off) == lt.ACTIVE and t.mac(off) == mac
        # the server that leased it has its update acknowledged
        ts = side.node.tables[0]
        assert not ts.flags(off) & lt.PENDING and ts.ack_pexp(off) > p.now


def test_renewal_after_ack_gets_full_lease_time():
    p = _normal_pair()
    mac = _mac_for(True)
    side, ack = dora(p, mac)
    p.tick(2)
    req = client_packet(mac, wire.REQUEST, 9)
    req.ciaddr = ack.yiaddr
    reps = p.dhcp(side, req)
    assert reps and reps[0].msg_type == wire.ACK
    assert reps[0].options[wire.OPT_LEASE_TIME] == (600).to_bytes(4, "big")


def test_link_loss_means_communications_interrupted_and_mclt_leases():
    p = _normal_pair()
    p.cut()
    assert p.state(p.a) == S.COMM_INTERRUPTED and p.state(p.b) == S.COMM_INTERRUPTED
    # the secondary now answers a client that hashes to the primary, from its own pool
    mac = _mac_for(True)
    reps = p.dhcp(p.b, client_packet(mac, wire.DISCOVER, 3))
    assert reps and reps[0].msg_type == wire.OFFER
    off = p.b.node.scopes[0].offset_of(reps[0].yiaddr)
    assert p.b.node.tables[0].state(off) == lt.BACKUP
    assert reps[0].options[wire.OPT_LEASE_TIME] == (60).to_bytes(4, "big")


def test_no_partner_down_without_command_or_safe_period():
    p = _normal_pair()
    p.cut()
    p.tick(200)
    assert p.state(p.a) == S.COMM_INTERRUPTED
    p.a.node.relationships[0].admin("partner-down", p.now, p.a.node.out)
    p.drain(p.a)
    assert p.state(p.a) == S.PARTNER_DOWN


def test_safe_period_moves_to_partner_down():
    p = _normal_pair(safe=30)
    p.cut()
    p.tick(25)
    assert p.state(p.b) == S.COMM_INTERRUPTED
    p.tick(10)
    assert p.state(p.b) == S.PARTNER_DOWN


def test_partner_down_waits_mclt_before_partner_pool():
    p = _normal_pair()
    p.cut()
    rel = p.b.node.relationships[0]
    rel.admin("partner-down", p.now, p.b.node.out)
    p.drain(p.b)
    sc = p.b.node.scopes[0]
    t = p.b.node.tables[0]
    free_off = t.next_in_state(lt.FREE, 0)  # a primary-owned address
    assert not rel.authority.may_allocate(sc, free_off, lt.FREE, p.now)
    p.tick(61)
    assert rel.authority.may_allocate(sc, free_off, lt.FREE, p.now)


def test_reconnect_after_interruption_returns_to_normal():
    p = _normal_pair()
    p.cut()
    p.tick(5)
    p.connect()
    p.tick(3)
    assert p.state(p.a) == S.NORMAL and p.state(p.b) == S.NORMAL


def test_planned_shutdown_hands_over_at_once():
    p = _normal_pair()
    p.a.node.relationships[0].admin("shutdown", p.now, p.a.node.out)
    p.drain(p.a)
    p.flow()
    assert p.state(p.a) == S.SHUTDOWN
    assert p.state(p.b) == S.PARTNER_DOWN
    # a silent state answers nobody
    reps = p.dhcp(p.a, client_packet(_mac_for(True), wire.DISCOVER, 4))
    assert reps == []


def test_secondary_adopts_primary_mclt():
    p = Pair(mclt=60)
    p.b.node.relationships[0].mclt = 999  # a differing local setting
    p.connect()
    assert p.b.node.relationships[0].mclt == 60


def test_authenticated_pair_and_wrong_secret_is_refused():
    p = Pair(secret="s3cret")
    p.connect()
    p.tick(3)
    assert p.state(p.a) == S.NORMAL
    q = Pair(secret="s3cret")
    q.b.node.relationships[0].channel.key = b"other"
    q.connect()
    assert not q.up  # digest failed: connection closed
    assert q.b.node.events.get("peer.bad-stream.bad-digest") + q.a.node.events.get("peer.bad-stream.bad-digest") >= 1


def test_hot_standby_standby_is_silent_in_normal_and_holds_reserve():
    p = _normal_pair(mode="hot-standby")
    tb = p.b.node.tables[0]
    assert 1 <= tb.count(lt.BACKUP) <= 4  # 5 % of 50
    mac = _mac_for(False)
    ra, rb = p.broadcast(client_packet(mac, wire.DISCOVER, 5))
    assert ra and not rb


def test_state_survives_restart_from_records():
    p = _normal_pair()
    p.cut()
    rel = p.a.node.relationships[0]
    payload = rel.meta_payload()
    from pairlink import pair_config
    from dhcpfo.node import Node
    n2 = Node(pair_config("primary"))
    n2.restore_meta(0, payload)
    n2.start(p.now)
    r2 = n2.relationships[0]
    assert r2.state == S.STARTUP and r2.previous == S.COMM_INTERRUPTED


def test_skewed_partner_is_refused_with_time_mismatch():
    p = Pair()
    p.b.node.relationships[0].clockdiff.skew_max = 60
    p.a.node.relationships[0].clockdiff.skew_max = 60
    # the primary's clock runs 120 s ahead: CONNECT carries its time
    p.now += 0
    a_rel = p.a.node.relationships[0]
    p.up = True
    p.a.conn, p.b.conn = "a->b", "b<-a"
    p.a.node.peer_connected(p.a.conn, p.b.addr, True, p.now + 120)
    p.drain(p.a)
    p.b.node.peer_connected(p.b.conn, p.a.addr, False, p.now)
    p.drain(p.b)
    p.flow()
    assert p.b.node.events.get("peer.time-out-of-sync") >= 1
    assert p.b.node.relationships[0].link is None
    assert a_rel.link is None
