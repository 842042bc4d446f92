"""Failover safety rules found by the simulation, pinned down on both runtimes."""

from dhcpfo.failover import hashing
from dhcpfo.failover import states as S
from dhcpfo.lease import table as lt
from dhcpfo.wire import dhcp as wire
from dhcpfo.wire import failover as fw
from pairlink import Pair, client_packet, dora


def _mac(primary, i=0):
    hba = hashing.hba_for_percent(50)
    n = 0
    for k in range(256):
        mac = bytes([2, 0, 0, 0, 2, k])
        if hashing.in_buckets(hba, hashing.client_hash(mac)) == primary:
            if n == i:
                return mac
            n += 1
    raise ValueError("no mac")


def _normal(**kw):
    p = Pair(**kw)
    p.connect()
    p.tick(3)
    return p


def test_partner_clock_difference_is_translated():
    p = Pair()
    # the secondary's clock runs 30 s ahead of the primary's
    p.up = True
    p.a.conn, p.b.conn = "a->b", "b<-a"
    a_now, b_now = p.now, p.now + 30
    p.a.node.peer_connected(p.a.conn, p.b.addr, True, a_now)
    p.drain(p.a)
    p.b.node.peer_connected(p.b.conn, p.a.addr, False, b_now)
    p.drain(p.b)
    while p.wire:
        to, conn, data = p.wire.pop(0)
        to.node.peer_data(conn, data, a_now if to is p.a else b_now)
        p.drain(to)
    rel_a = p.a.node.relationships[0]
    assert rel_a.clockdiff.skew in (29, 30, 31)
    # a lease the secondary grants ends at the same real time in the primary's table
    mac = _mac(False)
    p.b.replies = []
    p.b.node.handle_dhcp(wire.encode(client_packet(mac, wire.DISCOVER, 1)), p.b.addr, b_now)
    p.drain(p.b)
    offer = p.b.replies[0]
    p.b.node.handle_dhcp(wire.encode(client_packet(mac, wire.REQUEST, 1, o50=offer.yiaddr,
                                                   o54=offer.options[wire.OPT_SERVER_ID])), p.b.addr, b_now)
    p.drain(p.b)
    while p.wire:
        to, conn, data = p.wire.pop(0)
        to.node.peer_data(conn, data, a_now if to is p.a else b_now)
        p.drain(to)
    off = p.a.node.scopes[0].offset_of(offer.yiaddr)
    end_b = p.b.node.tables[0].expiry(off)  # on the secondary's clock
    end_a = p.a.node.tables[0].expiry(off)  # translated to the primary's
    assert end_b - 30 <= end_a <= end_b - 30 + 2


def test_partner_expired_contradicted_by_our_longer_lease_is_refused():
    p = _normal()
    mac = _mac(True)
    side, ack = dora(p, mac)
    p.tick(2)
    off = p.a.node.scopes[0].offset_of(ack.yiaddr)
    # the secondary believes the lease ran out (as after a crash that lost a renewal)
    tb = p.b.node.tables[0]
    tb.set_state(off, lt.EXPIRED, p.now)
    tb.set_flags(off, tb.flags(off) | lt.PENDING)
    p.b.node.relationships[0].updates.enqueue(0, off)
    p.b.node.relationships[0].pump(p.now, p.b.node.out)
    p.drain(p.b)
    p.flow()
    assert p.a.node.events.get("peer.bndupd-reject.%d" % fw.REJ_OUTDATED_INFO) == 1
    # the primary's own copy (still ACTIVE) was sent back: both agree again
    assert p.a.node.tables[0].state(off) == lt.ACTIVE
    assert tb.state(off) == lt.ACTIVE and tb.expiry(off) >= p.a.node.tables[0].expiry(off) - 2


def test_partner_down_waits_for_its_updates_before_normal():
    from dhcpfo.node import Node
    from pairlink import pair_config
    slow = {"max_response_delay": 600}  # the held-up link below must not time out
    p = _normal(extra=slow)
    p.cut()
    rb = p.b.node.relationships[0]
    rb.admin("partner-down", p.now, p.b.node.out)
    p.drain(p.b)
    p.tick(70)  # past MCLT: the secondary may use the whole pool
    # the primary comes back with empty storage: RECOVER, UPDREQALL, RECOVER-WAIT
    p.a.node = Node(pair_config("primary", extra=slow))
    p.a.node.start(p.now)
    p.drain(p.a)
    p.connect()
    p.tick(2)
    assert p.state(p.a) == S.RECOVER_WAIT and p.state(p.b) == S.PARTNER_DOWN
    # a lease granted now travels on a slow link: the primary has not got it yet
    mac = _mac(True, 1)
    reps = p.dhcp(p.b, client_packet(mac, wire.DISCOVER, 3), flow=False)
    sid = reps[0].options[wire.OPT_SERVER_ID]
    p.dhcp(p.b, client_packet(mac, wire.REQUEST, 3, o50=reps[0].yiaddr, o54=sid), flow=False)
    off = p.b.node.scopes[0].offset_of(reps[0].yiaddr)
    # the primary's wait ends; its RECOVER-DONE reaches the secondary first
    for _ in range(62):
        p.now += 1
        p.a.node.tick(p.now)
        p.drain(p.a)
        p.deliver_to(p.b)
    assert p.state(p.a) == S.RECOVER_DONE
    assert p.state(p.b) == S.PARTNER_DOWN and rb._normal_deferred  # not NORMAL yet
    p.deliver_to(p.a)  # the update arrives and is acknowledged
    p.flow()
    p.tick(2)
    assert p.state(p.b) == S.NORMAL and p.state(p.a) == S.NORMAL
    ta = p.a.node.tables[0]
    # the primary learned that lease (it has run its MCLT-long course by now)
    assert ta.mac(off) == mac and ta.state(off) in (lt.ACTIVE, lt.EXPIRED)


def test_address_held_after_partner_lost_its_storage():
    p = _normal()
    mac = _mac(True)
    side, ack = dora(p, mac)
    p.tick(2)
    p.cut()
    p.connect()  # a partner met before: an UPDREQALL from it now means it lost its storage
    p.tick(3)
    ra = p.a.node.relationships[0]
    assert ra.knew_partner
    # the partner lost its storage and asked for everything
    ra.answer_request(999, True, p.now, p.a.node.out)
    p.drain(p.a)
    p.flow()
    assert ra.holds.partner_amnesia_until > p.now
    ta = p.a.node.tables[0]
    off = p.a.node.scopes[0].offset_of(ack.yiaddr)
    exp = ta.expiry(off)
    p.tick(exp - p.now + 2)  # the lease ends; the expiry is acknowledged
    st = ta.state(off)
    assert st == lt.EXPIRED and not ta.flags(off) & lt.PENDING  # held, not FREE
    sc = p.a.node.scopes[0]
    assert not ra.authority.may_reuse(sc, off, p.now)
    assert p.a.node.events.get("peer.held-after-storage-loss") >= 1



def test_hold_after_partner_storage_loss_counts_from_the_loss():
    """Seed 7924 (I1): cut off, the secondary renewed a client again and
    again (each time MCLT past then) and then lost its storage. The lease
    the primary knew had ended long before; its expiry, acknowledged by
    the wiped secondary, must still hold the address MCLT past the loss
    (the forgotten renewals ran until then), not MCLT past what it knew."""
    p = _normal()
    mac = _mac(False)
    side, ack = dora(p, mac)
    assert side is p.b
    p.tick(2)
    p.cut()
    ta = p.a.node.tables[0]
    off = p.a.node.scopes[0].offset_of(ack.yiaddr)
    ra = p.a.node.relationships[0]
    known = max(ta.expiry(off), ta.ack_pexp(off)) + ra.mclt
    end = 0
    while p.now < known + 30:  # the secondary alone renews the client
        p.tick(20)
        req = client_packet(mac, wire.REQUEST, 9)
        req.ciaddr = ack.yiaddr
        reps = p.dhcp(p.b, req)
        assert reps and reps[0].msg_type == wire.ACK
        end = p.now + int.from_bytes(reps[0].options[wire.OPT_LEASE_TIME], "big")
    assert end > known
    assert ta.state(off) == lt.EXPIRED and ta.flags(off) & lt.PENDING  # not told yet
    p.b.records = []  # its storage is lost
    p.restart(p.b)
    loss = p.now
    p.connect()
    p.tick(2)
    assert p.state(p.b) in (S.RECOVER, S.RECOVER_WAIT)
    assert not ta.flags(off) & lt.PENDING  # the wiped secondary acknowledged the expiry
    sc = p.a.node.scopes[0]
    assert ta.state(off) == lt.EXPIRED and ta.expiry(off) >= end
    assert not ra.authority.may_reuse(sc, off, p.now)
    p.tick(loss + ra.mclt + 3 - p.now)
    assert ta.state(off) != lt.EXPIRED  # released once MCLT has passed since the loss
