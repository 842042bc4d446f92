"""A new node is not a node that lost its storage (issue 8 item 5).

Both start with no saved state. Only a node that lost its storage may have
leases out that nobody recorded; a new pair (each side telling the other it
has no record of it) holds nothing, so a released address is reusable as
soon as the partner has acknowledged the release."""

from dhcpfo.failover import states as S
from dhcpfo.lease import table as lt
from dhcpfo.node import Node
from dhcpfo.wire import dhcp as wire
from pairlink import B_ADDR, Pair, Side, client_packet, dora, pair_config


def _release(p, side, ack, mac):
    rel = client_packet(mac, wire.RELEASE, 9, o54=ack.options[wire.OPT_SERVER_ID])
    rel.ciaddr = ack.yiaddr
    p.dhcp(side, rel)
    p.tick(2)


def test_new_hot_standby_pair_reuses_a_released_address_at_once():
    p = Pair(mode="hot-standby")
    p.connect()
    p.tick(3)
    assert p.state(p.a) == S.NORMAL and p.state(p.b) == S.NORMAL
    for s in (p.a, p.b):
        r = s.node.relationships[0]
        assert r.holds.amnesia_until == 0 and r.holds.partner_amnesia_until == 0
        assert s.node.events.get("peer.first-contact") == 1
    mac = b"\x02\x00\x00\x00\x05\x01"
    side, ack = dora(p, mac)
    assert side is p.a
    off = p.a.node.scopes[0].offset_of(ack.yiaddr)
    _release(p, p.a, ack, mac)
    ta, tb = p.a.node.tables[0], p.b.node.tables[0]
    assert not ta.flags(off) & lt.PENDING  # the partner acknowledged the release
    assert ta.state(off) == lt.FREE and tb.state(off) == lt.FREE  # reusable, not held
    sc = p.a.node.scopes[0]
    assert p.a.node.relationships[0].authority.may_reuse(sc, off, p.now)
    assert p.a.node.events.get("peer.held-after-storage-loss") == 0


def test_node_that_lost_its_storage_still_holds_what_it_may_have_granted():
    p = Pair(mode="hot-standby")
    p.connect()
    p.tick(3)
    mac = b"\x02\x00\x00\x00\x05\x02"
    side, ack = dora(p, mac)
    p.tick(2)
    # the standby loses its storage: a node with no saved state, whose partner knows it
    p.cut()
    p.b = Side(Node(pair_config("secondary", "hot-standby")), B_ADDR)
    p.b.node.start(p.now)
    p.drain(p.b)
    p.connect()
    p.tick(5)
    rb, ra = p.b.node.relationships[0], p.a.node.relationships[0]
    assert p.b.node.events.get("peer.first-contact") == 0
    assert rb.holds.amnesia_until > p.now  # its own loss: held
    assert ra.holds.partner_amnesia_until > p.now  # the partner asked for everything: held there too
    assert rb.knew_partner is False and ra.knew_partner is True
