"""Restart while the partner is in PARTNER-DOWN (draft-12 §9.3.2 step 5;
issue 8 item 3).

A node cut off from its partner keeps serving in COMMUNICATIONS-
INTERRUPTED; the partner is forced into PARTNER-DOWN. If the node then
renews clients, restarts while still cut off, and the link heals, the
partner's PARTNER-DOWN (by its start-time-of-state) is *older* than the
node's last operation: the draft says POTENTIAL-CONFLICT, and the renewals
it granted must reach the partner. Only a PARTNER-DOWN that started after
everything the node did means RECOVER."""

from dhcpfo.failover import states as S
from dhcpfo.lease import table as lt
from dhcpfo.wire import dhcp as wire
from pairlink import Pair, client_packet, dora


def _went_through(side, text):
    return any(text in e[3] for e in side.node.events.recent(200))


def _renew(p, side, mac, addr, xid=31):
    pkt = client_packet(mac, wire.REQUEST, xid)
    pkt.ciaddr = addr
    return p.dhcp(side, pkt)


def _partitioned_with_partner_down(p):
    p.connect()
    p.tick(3)
    mac = b"\x02\x00\x00\x00\x08\x01"
    side, ack = dora(p, mac)
    assert side is not None
    p.tick(2)
    p.cut()
    p.tick(5)
    assert p.state(p.b) == S.COMM_INTERRUPTED
    ra = p.a.node.relationships[0]
    ra.admin("partner-down", p.now, p.a.node.out)  # the operator forces the primary into PARTNER-DOWN
    p.drain(p.a)
    assert p.state(p.a) == S.PARTNER_DOWN
    return mac, ack.yiaddr


def test_renewals_after_partner_down_then_restart_means_potential_conflict():
    p = Pair(mclt=60, lease=600)
    mac, addr = _partitioned_with_partner_down(p)
    p.tick(20)
    # the secondary, still cut off, renews the client after the partner went down
    acks = _renew(p, p.b, mac, addr)
    assert [r.msg_type for r in acks] == [wire.ACK]
    off = p.b.node.scopes[0].offset_of(addr)
    granted = p.b.node.tables[0].expiry(off)
    p.tick(10)
    p.restart(p.b, "secondary")  # crash and restart while still cut off
    p.tick(2)
    p.connect()
    rb = p.b.node.relationships[0]
    assert _went_through(p.b, "changed from startup to potential-conflict")
    assert rb.stats["transitions_recover"] == 0
    p.tick(10)
    assert p.state(p.a) == S.NORMAL and p.state(p.b) == S.NORMAL
    ta = p.a.node.tables[0]
    assert ta.state(off) == lt.ACTIVE and ta.expiry(off) >= granted  # the renewal reached the partner
    assert not p.b.node.tables[0].flags(off) & lt.PENDING


def test_partner_down_after_our_last_operation_means_recover():
    p = Pair(mclt=60, lease=600)
    p.connect()
    p.tick(3)
    p.cut()
    p.tick(5)
    p.restart(p.b, "secondary")  # nothing done since entering COMMUNICATIONS-INTERRUPTED
    p.tick(20)  # the startup period ends: back to COMMUNICATIONS-INTERRUPTED
    ra = p.a.node.relationships[0]
    ra.admin("partner-down", p.now, p.a.node.out)
    p.drain(p.a)
    p.tick(5)
    p.restart(p.b, "secondary")
    p.connect()
    p.tick(1)
    rb = p.b.node.relationships[0]
    assert rb.partner_stos == ra.stos  # when the partner entered PARTNER-DOWN
    assert p.state(p.b) in (S.RECOVER, S.RECOVER_WAIT, S.RECOVER_DONE), S.name(p.state(p.b))


def test_partner_start_time_of_state_is_translated_to_our_clock():
    p = Pair()
    # the secondary's clock runs 30 s ahead of the primary's
    p.up = True
    p.a.conn, p.b.conn = "a->b", "b<-a"
    a_now, b_now = p.now, p.now + 30
    p.a.node.peer_connected(p.a.conn, p.b.addr, True, a_now)
    p.drain(p.a)
    p.b.node.peer_connected(p.b.conn, p.a.addr, False, b_now)
    p.drain(p.b)
    for _ in range(3):
        while p.wire:
            to, conn, data = p.wire.pop(0)
            to.node.peer_data(conn, data, a_now if to is p.a else b_now)
            p.drain(to)
        a_now += 1
        b_now += 1
        for s in (p.a, p.b):
            s.node.tick(a_now if s is p.a else b_now)
            p.drain(s)
    ra, rb = p.a.node.relationships[0], p.b.node.relationships[0]
    assert rb.stos > 0
    assert rb.stos - 31 <= ra.partner_stos <= rb.stos - 29  # its start-time-of-state, on our clock
    assert ra.stos - 1 <= rb.partner_stos - 30 <= ra.stos + 1


def test_resolution_interrupted_after_partner_down_allocates_nothing():
    """Seeds 7491, 6220, 7024, 7391 (I1): the partner was in PARTNER-DOWN
    (handing out our BACKUP addresses past MCLT); the conflict resolution
    broke off before its updates arrived. In RESOLUTION-INTERRUPTED our own
    pool cannot be determined (§9.11.2 "if that can be determined"): no new
    client gets an address, renewals still do, also after a restart, until
    a completed resolution brings the partner's bindings."""
    p = Pair(mclt=60, lease=600)
    mac, addr = _partitioned_with_partner_down(p)
    p.tick(20)
    assert [r.msg_type for r in _renew(p, p.b, mac, addr)] == [wire.ACK]
    p.tick(10)
    p.restart(p.b, "secondary")
    p.tick(2)
    # the link comes up and breaks again before the partner's updates arrive
    p.up = True
    p.a.conn, p.b.conn = "a->b", "b<-a"
    p.a.node.peer_connected(p.a.conn, p.b.addr, True, p.now)
    p.drain(p.a)
    p.b.node.peer_connected(p.b.conn, p.a.addr, False, p.now)
    p.drain(p.b)
    while p.wire and p.state(p.b) != S.POTENTIAL_CONFLICT:
        p.flow(limit=1)
    assert p.state(p.b) == S.POTENTIAL_CONFLICT
    p.cut()
    assert p.state(p.b) == S.RESOLUTION_INTERRUPTED
    for restart in (False, True):
        if restart:
            p.restart(p.b, "secondary")
            p.tick(40)  # the startup period passes without the partner
            assert p.state(p.b) == S.RESOLUTION_INTERRUPTED
        new = b"\x02\x00\x00\x00\x09\x01"
        assert [r.msg_type for r in p.dhcp(p.b, client_packet(new, wire.DISCOVER, 41))] == []
        assert [r.msg_type for r in _renew(p, p.b, mac, addr, xid=42)] == [wire.ACK]
    # a completed resolution: the secondary allocates again in NORMAL
    p.connect()
    p.tick(10)
    assert p.state(p.a) == S.NORMAL and p.state(p.b) == S.NORMAL
    assert not p.b.node.relationships[0].pool_unsure


def test_a_server_that_ran_failover_waits_even_if_its_partner_lost_its_storage():
    """Seed 5807 (I11): a server shut down (its partner went to PARTNER-DOWN)
    restarts into RECOVER while the partner, its storage wiped, says it
    never met us. Our own records show we ran failover and served clients:
    not a first run (§9.6.2), so RECOVER-WAIT lasts MCLT. The PARTNER-DOWN
    seen while shut down sends only that restart to RECOVER (§9.14.2)."""
    p = Pair(mclt=60, lease=600)
    p.connect()
    p.tick(3)
    ra = p.a.node.relationships[0]
    ra.admin("shutdown", p.now, p.a.node.out)
    p.drain(p.a)
    p.flow()
    assert p.state(p.b) == S.PARTNER_DOWN and ra.pd_seen
    p.cut()
    p.tick(5)
    p.b.records = []  # the partner loses its storage
    p.restart(p.b)
    p.restart(p.a)
    ra = p.a.node.relationships[0]
    assert ra.previous == S.RECOVER and not ra.pd_seen
    p.connect()
    p.tick(2)
    assert p.state(p.a) == S.RECOVER_WAIT  # not RECOVER-DONE at once
    assert not ra.authority.serving(p.now)
    p.tick(ra.mclt + 5)
    assert p.state(p.a) == S.NORMAL and p.state(p.b) in (S.RECOVER_WAIT, S.RECOVER_DONE, S.NORMAL)
    # a later restart resumes what was recorded, not RECOVER again
    p.tick(ra.mclt + 5)
    assert p.state(p.a) == S.NORMAL and p.state(p.b) == S.NORMAL
    p.cut()
    p.restart(p.a)
    assert p.a.node.relationships[0].previous == S.COMM_INTERRUPTED
