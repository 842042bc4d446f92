"""dhcp.server decisions (RFC 2131 §4.3) through a standalone Node, with real
packets: what is answered, NAKed or ignored, what the binding becomes, and
what is logged in the same turn as the reply. CPython and MicroPython."""

from dhcpfo import events as ev
from dhcpfo.wire import dhcp as wire
from srvkit import (GRACE, ABANDONED, ACTIVE, BCAST, EXPIRED, FREE, LOCAL, OTHER_SERVER, RELAY,
                    RELEASED, SERVER_ID, ZERO4, Kit, bindings, client, config_dict, ip, mac, u32)

DISCOVER = wire.DISCOVER
REQUEST = wire.REQUEST
OFFER = wire.OFFER
ACK = wire.ACK
NAK = wire.NAK


def _pool(first, last, **kw):
    return Kit(config_dict(first=first, last=last, **kw))


def _in_range(addr, first, last):
    return ip(first) <= addr <= ip(last)


# ---------------------------------------------------------------------------
# DISCOVER -> OFFER


def test_offer_fields_and_options_in_request_order():
    k = Kit()
    hw = mac(1)
    r = k.offer(hw, xid=0x1234, prl=[6, 15, 3, 1])
    p = r.pkt
    assert p.op == wire.BOOTREPLY and p.xid == 0x1234 and p.hops == 0 and p.secs == 0
    assert p.chaddr[:6] == hw and p.htype == 1 and p.hlen == 6
    assert p.ciaddr == ZERO4 and p.giaddr == ZERO4
    assert _in_range(p.yiaddr, "198.18.0.10", "198.18.0.29")
    assert r.opt(wire.OPT_SERVER_ID) == SERVER_ID
    assert r.opt(wire.OPT_SUBNET_MASK) == ip("255.255.255.0")
    assert r.opt(wire.OPT_ROUTERS) == ip("198.18.0.1")
    assert r.opt(wire.OPT_DNS_SERVERS) == ip("198.18.0.53")
    assert r.opt(wire.OPT_DOMAIN_NAME) == b"lab.example"
    # lease 3600, T1 = 1/2, T2 = 7/8
    assert r.lease() == 3600
    assert u32(r.opt(wire.OPT_RENEWAL_TIME)) == 1800
    assert u32(r.opt(wire.OPT_REBINDING_TIME)) == 3150
    # 53 first; the requested parameters in the client's order
    assert r.order[0] == wire.OPT_MSG_TYPE
    asked = [c for c in r.order if c in (6, 15, 3, 1)]
    assert asked == [6, 15, 3, 1], r.order
    # not requested: ntp-servers (42); never in an OFFER: 50, 55, 57 (table 3)
    for c in (42, 50, 55, 57):
        assert c not in p.options, c
    assert len(r.order) == len(set(r.order))  # each option once
    # to the client port, broadcast (the client has no address yet)
    assert r.dst == BCAST and r.port == wire.CLIENT_PORT and r.delay == 0
    # an OFFER commits nothing: no binding change, nothing logged
    assert k.records == []
    off = k.offset(p.yiaddr)
    assert k.table().state(off) == FREE
    assert k.node.server.is_offered(0, off, k.now)
    assert k.count("rx.discover") == 1 and k.count("tx.offer") == 1


def test_offer_without_request_list_carries_every_configured_option():
    k = Kit()
    r = k.offer(mac(1))
    for c in (1, 3, 6, 15, 42, 51, 54, 58, 59):
        assert c in r.pkt.options, c
    assert r.order[:2] == [wire.OPT_MSG_TYPE, wire.OPT_SERVER_ID]


def test_offer_honours_requested_address_when_free():
    k = Kit()
    r = k.offer(mac(1), req=ip("198.18.0.20"))
    assert r.yiaddr == ip("198.18.0.20")
    # outside the pool (but in the subnet): a pool address instead
    r = k.offer(mac(2), req=ip("198.18.0.200"))
    assert _in_range(r.yiaddr, "198.18.0.10", "198.18.0.29")
    # taken by another client: not offered again
    k.dora(mac(3), req=ip("198.18.0.25"))
    assert k.state(ip("198.18.0.25")) == ACTIVE
    r = k.offer(mac(4), req=ip("198.18.0.25"))
    assert r.yiaddr != ip("198.18.0.25")


def test_discover_from_bound_client_offers_its_address():
    k = Kit()
    a = k.dora(mac(1)).yiaddr
    k.offer(mac(2))
    r = k.offer(mac(1), xid=9)
    assert r.yiaddr == a


# ---------------------------------------------------------------------------
# REQUEST in SELECTING


def test_selecting_request_acks_and_logs_in_the_same_turn():
    k = Kit()
    hw = mac(1)
    o = k.offer(hw, prl=[1, 3])
    r = k.one(client(hw, REQUEST, 2, req=o.yiaddr, sid=SERVER_ID, prl=[1, 3]), ACK)
    # the record that makes the binding durable comes out of the same turn
    # as the ACK (the driver writes it before it sends anything)
    assert k.records, "ACK without a lease-log record"
    off = k.offset(o.yiaddr)
    assert (0, off, ACTIVE) in bindings(k.records)
    assert r.yiaddr == o.yiaddr and r.pkt.xid == 2 and r.pkt.ciaddr == ZERO4
    assert r.opt(wire.OPT_SERVER_ID) == SERVER_ID and r.lease() == 3600
    assert r.opt(wire.OPT_SUBNET_MASK) == ip("255.255.255.0")
    assert r.dst == BCAST and r.port == wire.CLIENT_PORT
    t = k.table()
    assert t.state(off) == ACTIVE and t.expiry(off) == k.now + 3600 + GRACE
    assert t.find_hw(hw) == off
    assert not k.node.server.is_offered(0, off, k.now)
    assert k.count("lease.new") == 1 and k.count("tx.ack") == 1


def test_retransmitted_request_is_acked_again():
    k = Kit()
    o = k.offer(mac(1))
    req = client(mac(1), REQUEST, 2, req=o.yiaddr, sid=SERVER_ID)
    a1 = k.one(req, ACK)
    n1 = len(k.records)
    k.now += 2
    a2 = k.one(req, ACK)
    assert a2.yiaddr == a1.yiaddr and len(k.records) == n1
    assert k.expiry(a1.yiaddr) == k.now + 3600 + GRACE


def test_offer_delay_applies_to_offers_only():
    cfg = config_dict()
    cfg["scopes"][0]["offer_delay_ms"] = 250
    k = Kit(cfg)
    o = k.offer(mac(1))
    assert o.delay == 250
    a = k.one(client(mac(1), REQUEST, 2, req=o.yiaddr, sid=SERVER_ID), ACK)
    assert a.delay == 0
    assert k.offer(mac(2), giaddr=RELAY).delay == 0  # the other scope has none


def test_request_for_another_server_is_silent_and_frees_the_offer():
    k = _pool("198.18.0.10", "198.18.0.10")
    a = mac(1)
    b = mac(2)
    o = k.offer(a)
    k.silent(client(b, DISCOVER, 5))  # the only address is held for a
    assert k.count("drop.pool-exhausted") == 1
    k.silent(client(a, REQUEST, 2, req=o.yiaddr, sid=OTHER_SERVER))
    assert k.records == []
    assert k.count("rx.request-other-server") == 1
    assert k.table().state(0) == FREE
    r = k.offer(b, xid=6)  # released at once, not after offer_hold
    assert r.yiaddr == o.yiaddr


def test_selecting_request_for_a_taken_address_is_naked():
    k = Kit()
    a = k.dora(mac(1)).yiaddr
    r = k.one(client(mac(2), REQUEST, 7, req=a, sid=SERVER_ID), NAK)
    p = r.pkt
    assert p.yiaddr == ZERO4 and p.ciaddr == ZERO4 and p.xid == 7
    assert r.opt(wire.OPT_SERVER_ID) == SERVER_ID
    for c in (wire.OPT_LEASE_TIME, wire.OPT_RENEWAL_TIME, wire.OPT_SUBNET_MASK, wire.OPT_ROUTERS):
        assert c not in p.options, c  # table 3: only 53, 54, 56 (and 61, 82)
    assert r.dst == BCAST and r.port == wire.CLIENT_PORT
    assert k.records == []
    assert k.state(a) == ACTIVE and k.table().find_hw(mac(1)) == k.offset(a)
    # a SELECTING request without a requested address is NAKed too
    k.one(client(mac(3), REQUEST, 8, sid=SERVER_ID), NAK)


# ---------------------------------------------------------------------------
# REQUEST in INIT-REBOOT (no server id, ciaddr 0, requested address)


def test_init_reboot_with_the_right_address_is_acked():
    k = Kit()
    a = k.dora(mac(1)).yiaddr
    k.now += 100
    r = k.one(client(mac(1), REQUEST, 3, req=a), ACK)
    assert r.yiaddr == a and r.lease() == 3600
    assert k.expiry(a) == k.now + 3600 + GRACE
    assert k.records and (0, k.offset(a), ACTIVE) in bindings(k.records)


def test_init_reboot_on_the_wrong_network_is_naked():
    k = Kit()
    k.dora(mac(1))
    r = k.one(client(mac(1), REQUEST, 3, req=ip("10.9.9.9")), NAK)
    assert r.dst == BCAST and r.port == wire.CLIENT_PORT  # §4.3.2: MUST broadcast
    # an unknown client on the wrong network: still NAKed (the check needs no record)
    k.one(client(mac(2), REQUEST, 4, req=ip("198.18.1.100")), NAK)
    assert k.count("tx.nak") == 2
    assert k.records == []


def test_init_reboot_for_another_clients_address_is_naked():
    k = Kit()
    a = k.dora(mac(1)).yiaddr
    k.one(client(mac(2), REQUEST, 3, req=a), NAK)
    assert k.state(a) == ACTIVE and k.table().find_hw(mac(1)) == k.offset(a)


def test_init_reboot_of_a_known_client_with_a_wrong_address_is_naked():
    k = Kit()
    a = k.dora(mac(1)).yiaddr
    other = ip("198.18.0.28") if a != ip("198.18.0.28") else ip("198.18.0.27")
    k.one(client(mac(1), REQUEST, 3, req=other), NAK)
    assert k.state(other) == FREE


def test_init_reboot_of_an_unknown_client_is_silent():
    k = Kit()
    k.silent(client(mac(9), REQUEST, 3, req=ip("198.18.0.15")))  # free pool address
    k.silent(client(mac(9), REQUEST, 4, req=ip("198.18.0.200")))  # in subnet, not in pool
    assert k.count("drop.init-reboot-unknown") == 2
    assert k.count("tx.nak") == 0
    assert k.state(ip("198.18.0.15")) == FREE


# ---------------------------------------------------------------------------
# RENEWING and REBINDING (ciaddr set, no server id, no requested address)


def test_renewing_unicast_extends_the_lease():
    k = Kit()
    a = k.dora(mac(1)).yiaddr
    first = k.expiry(a)
    k.now += 1800  # T1
    r = k.one(client(mac(1), REQUEST, 5, ciaddr=a), ACK)
    assert r.yiaddr == a and r.pkt.ciaddr == a and r.lease() == 3600
    assert r.dst == a and r.port == wire.CLIENT_PORT  # §4.1: unicast to ciaddr
    assert k.expiry(a) == k.now + 3600 + GRACE > first
    assert (0, k.offset(a), ACTIVE) in bindings(k.records)
    assert k.count("lease.renew") == 1


def test_rebinding_broadcast_is_acked_and_checked():
    k = Kit()
    a = k.dora(mac(1)).yiaddr
    k.now += 3150  # T2
    r = k.one(client(mac(1), REQUEST, 6, ciaddr=a, flags=wire.BROADCAST_FLAG), ACK)
    assert r.yiaddr == a and k.expiry(a) == k.now + 3600 + GRACE
    # another client claiming the address: NAK
    k.one(client(mac(2), REQUEST, 7, ciaddr=a, flags=wire.BROADCAST_FLAG), NAK)
    # a client the server never heard of, with a free address: silent
    k.silent(client(mac(3), REQUEST, 8, ciaddr=ip("198.18.0.27"), flags=wire.BROADCAST_FLAG))
    assert k.count("drop.renew-unknown") == 1
    assert k.state(a) == ACTIVE and k.table().find_hw(mac(1)) == k.offset(a)


def test_rebinding_through_a_relay():
    k = Kit()
    rai = b"\x01\x03eth"
    a = k.dora(mac(1), giaddr=RELAY, options={wire.OPT_RELAY_INFO: rai}).yiaddr
    assert _in_range(a, "198.18.1.100", "198.18.1.119")
    k.now += 6300
    r = k.one(client(mac(1), REQUEST, 9, ciaddr=a, giaddr=RELAY, options={wire.OPT_RELAY_INFO: rai}), ACK)
    assert r.dst == RELAY and r.port == wire.SERVER_PORT
    assert r.opt(wire.OPT_RELAY_INFO) == rai and r.lease() == 7200
    assert k.expiry(a, 1) == k.now + 7200 + GRACE


# ---------------------------------------------------------------------------
# RELEASE, DECLINE, INFORM


def test_release_frees_and_the_client_gets_the_same_address_back():
    k = Kit()
    a = k.dora(mac(1)).yiaddr
    # a RELEASE from someone else is ignored
    k.silent(client(mac(2), wire.RELEASE, 3, ciaddr=a, sid=SERVER_ID))
    assert k.state(a) == ACTIVE and k.count("drop.release-unknown") == 1
    k.now += 10
    k.silent(client(mac(1), wire.RELEASE, 4, ciaddr=a, sid=SERVER_ID))
    assert k.state(a) == RELEASED
    assert (0, k.offset(a), RELEASED) in bindings(k.records)
    assert k.count("rx.release") == 2
    # others get never-used addresses first; the releasing client its old one
    b = k.offer(mac(2)).yiaddr
    assert b != a
    assert k.offer(mac(1), xid=5).yiaddr == a
    assert k.dora(mac(1), xid=7).yiaddr == a
    assert k.state(a) == ACTIVE


def test_released_address_is_reused_when_the_pool_runs_out():
    k = _pool("198.18.0.10", "198.18.0.10")
    a = k.dora(mac(1)).yiaddr
    k.silent(client(mac(2), DISCOVER, 2))
    k.silent(client(mac(1), wire.RELEASE, 3, ciaddr=a, sid=SERVER_ID))
    assert k.dora(mac(2), xid=4).yiaddr == a
    assert k.table().find_hw(mac(2)) == 0 and k.table().find_hw(mac(1)) == -1


def test_decline_abandons_the_address_until_decline_hold_passes():
    k = _pool("198.18.0.10", "198.18.0.11")
    a = k.dora(mac(1)).yiaddr
    k.silent(client(mac(1), wire.DECLINE, 3, req=a, sid=SERVER_ID))
    assert k.state(a) == ABANDONED
    assert (0, k.offset(a), ABANDONED) in bindings(k.records)
    assert k.node.events.recent(1, code=ev.EV_DECLINE)
    # the client gets the other address, and nobody gets the declined one
    b = k.dora(mac(1), xid=5).yiaddr
    assert b != a
    k.silent(client(mac(2), DISCOVER, 7))
    k.silent(client(mac(2), DISCOVER, 8, req=a))
    k.one(client(mac(2), REQUEST, 9, req=a, sid=SERVER_ID), NAK)
    k.now += 599
    k.silent(client(mac(2), DISCOVER, 10))
    k.now += 1  # decline_hold (600 s) over
    assert k.offer(mac(2), xid=11).yiaddr == a
    assert k.dora(mac(2), xid=12).yiaddr == a and k.state(a) == ACTIVE


def test_decline_of_someone_elses_address_is_ignored():
    k = Kit()
    a = k.dora(mac(1)).yiaddr
    k.silent(client(mac(2), wire.DECLINE, 3, req=a, sid=SERVER_ID))
    assert k.state(a) == ACTIVE and k.count("drop.decline-unknown") == 1
    assert k.records == []


def test_inform_gets_options_without_lease():
    k = Kit()
    ci = ip("198.18.0.77")  # a statically configured host
    r = k.one(client(mac(1), wire.INFORM, 3, ciaddr=ci, prl=[3, 6, 15, 42]), ACK)
    p = r.pkt
    assert p.yiaddr == ZERO4 and p.ciaddr == ci
    for c in (wire.OPT_LEASE_TIME, wire.OPT_RENEWAL_TIME, wire.OPT_REBINDING_TIME):
        assert c not in p.options, c  # §4.3.5: MUST NOT send a lease time
    assert r.opt(wire.OPT_ROUTERS) == ip("198.18.0.1")
    assert r.opt(42) == ip("198.18.0.1") and r.opt(15) == b"lab.example"
    assert r.opt(wire.OPT_SERVER_ID) == SERVER_ID
    assert [c for c in r.order if c in (3, 6, 15, 42)] == [3, 6, 15, 42]
    assert r.dst == ci and r.port == wire.CLIENT_PORT  # §4.3.5: to ciaddr
    assert k.records == [] and k.table().live() == 0


def test_inform_through_a_relay_uses_the_relays_scope():
    k = Kit()
    ci = ip("198.18.1.50")
    r = k.one(client(mac(1), wire.INFORM, 3, ciaddr=ci, giaddr=RELAY, prl=[3]), ACK)
    assert r.opt(wire.OPT_ROUTERS) == ip("198.18.1.1")
    assert r.dst == RELAY and r.port == wire.SERVER_PORT


# ---------------------------------------------------------------------------
# Pool use: exhaustion, offer hold, expiry


def test_pool_exhaustion_gives_no_offer_and_is_counted():
    k = _pool("198.18.0.10", "198.18.0.12")
    got = [k.offer(mac(i), xid=i).yiaddr for i in range(1, 4)]
    assert len(set(got)) == 3
    k.silent(client(mac(4), DISCOVER, 4))
    k.silent(client(mac(5), DISCOVER, 5))
    assert k.count("drop.pool-exhausted") == 2
    assert k.node.events.recent(1, code=ev.EV_POOL_LOW)


def test_offer_hold_keeps_an_address_for_its_client():
    k = _pool("198.18.0.10", "198.18.0.11")
    a = k.offer(mac(1)).yiaddr
    b = k.offer(mac(2)).yiaddr
    assert a != b
    assert k.offer(mac(1), xid=3).yiaddr == a  # a second DISCOVER: same offer
    k.silent(client(mac(3), DISCOVER, 4))
    k.now += 59
    k.silent(client(mac(3), DISCOVER, 5))
    k.now += 1  # offer_hold (60 s) over: the addresses may be offered again
    c = k.offer(mac(3), xid=6).yiaddr
    assert c in (a, b)
    # the client whose offer lapsed and went elsewhere is NAKed for it
    first = mac(1) if c == a else mac(2)
    k.one(client(first, REQUEST, 7, req=c, sid=SERVER_ID), NAK)
    assert k.dora(mac(3), xid=8).yiaddr == c


def test_previous_address_offered_to_another_client_is_not_offered_twice():
    # §4.3.1: the previous address only "if ... not already allocated", and
    # an offered address SHOULD NOT be reused before the client answers
    k = _pool("198.18.0.10", "198.18.0.11")
    a = k.dora(mac(1)).yiaddr
    k.dora(mac(2), xid=3)
    k.silent(client(mac(1), wire.RELEASE, 5, ciaddr=a, sid=SERVER_ID))
    assert k.offer(mac(3), xid=6).yiaddr == a  # the only address left
    k.silent(client(mac(1), DISCOVER, 7))  # held for mac(3): not offered again
    k.one(client(mac(1), REQUEST, 8, req=a), NAK)  # nor taken back by INIT-REBOOT
    assert k.dora(mac(3), xid=9).yiaddr == a
    assert k.table().find_hw(mac(3)) == k.offset(a)
    k.now += 60
    k.silent(client(mac(1), DISCOVER, 11))
    assert k.count("drop.pool-exhausted") == 2


def test_expiry_by_tick_then_reuse():
    k = _pool("198.18.0.10", "198.18.0.10")
    a = k.dora(mac(1)).yiaddr
    k.tick(3599 + GRACE)
    assert k.state(a) == ACTIVE and k.records == []
    k.tick(1)
    assert k.state(a) == EXPIRED
    assert (0, 0, EXPIRED) in bindings(k.records)
    assert k.count("lease.expired") == 1
    # the expired client still owns the record: renewing late is accepted
    k.tick(10)
    r = k.one(client(mac(1), REQUEST, 3, req=a), ACK)
    assert r.yiaddr == a and k.state(a) == ACTIVE
    k.tick(3600 + GRACE)
    assert k.state(a) == EXPIRED
    # and the address goes to a new client
    assert k.dora(mac(2), xid=4).yiaddr == a
    assert k.table().find_hw(mac(2)) == 0
    k.one(client(mac(1), REQUEST, 6, req=a), NAK)


# ---------------------------------------------------------------------------
# Relays, broadcast flag, scopes


def test_relayed_discover_goes_back_to_the_relay():
    k = Kit()
    rai = b"\x01\x04port\x02\x06remote"
    r = k.offer(mac(1), giaddr=RELAY, options={wire.OPT_RELAY_INFO: rai}, prl=[1, 3])
    p = r.pkt
    assert r.dst == RELAY and r.port == wire.SERVER_PORT
    assert p.giaddr == RELAY
    assert _in_range(p.yiaddr, "198.18.1.100", "198.18.1.119")
    assert r.opt(wire.OPT_ROUTERS) == ip("198.18.1.1") and r.lease() == 7200
    assert r.opt(wire.OPT_RELAY_INFO) == rai and r.order[-1] == wire.OPT_RELAY_INFO  # RFC 3046 §2.2
    a = k.one(client(mac(1), REQUEST, 2, giaddr=RELAY, req=p.yiaddr, sid=SERVER_ID,
                     options={wire.OPT_RELAY_INFO: rai}), ACK)
    assert a.dst == RELAY and a.opt(wire.OPT_RELAY_INFO) == rai
    assert k.state(p.yiaddr, 1) == ACTIVE
    # a NAK through a relay carries the broadcast bit (§4.3.2) and 82
    n = k.one(client(mac(2), REQUEST, 3, giaddr=RELAY, req=p.yiaddr,
                     options={wire.OPT_RELAY_INFO: rai}), NAK)
    assert n.dst == RELAY and n.port == wire.SERVER_PORT
    assert n.pkt.flags & wire.BROADCAST_FLAG and n.opt(wire.OPT_RELAY_INFO) == rai


def test_subnet_and_link_selection_choose_the_scope():
    k = Kit()
    # option 118 (RFC 3011) names the client's subnet
    r = k.offer(mac(1), prl=[1, 3], options={wire.OPT_SUBNET_SELECTION: ip("198.18.1.0")})
    assert _in_range(r.yiaddr, "198.18.1.100", "198.18.1.119")
    assert r.opt(wire.OPT_ROUTERS) == ip("198.18.1.1") and r.dst == BCAST
    # link-selection sub-option 5 of option 82 (RFC 3527) beats giaddr
    rai = b"\x01\x02p1\x05\x04" + ip("198.18.1.0")
    gi = ip("198.18.0.1")
    r = k.offer(mac(2), giaddr=gi, options={wire.OPT_RELAY_INFO: rai})
    assert _in_range(r.yiaddr, "198.18.1.100", "198.18.1.119")
    assert r.dst == gi and r.port == wire.SERVER_PORT and r.opt(wire.OPT_RELAY_INFO) == rai
    a = k.one(client(mac(2), REQUEST, 2, giaddr=gi, req=r.yiaddr, sid=SERVER_ID,
                     options={wire.OPT_RELAY_INFO: rai}), ACK)
    assert k.state(a.yiaddr, 1) == ACTIVE


def test_pool_of_several_ranges_is_used_whole():
    cfg = config_dict()
    cfg["scopes"][0]["ranges"] = [{"start": "198.18.0.200", "end": "198.18.0.201"},
                                  {"start": "198.18.0.10", "end": "198.18.0.11"}]
    k = Kit(cfg)
    got = set(k.dora(mac(n), xid=4 * n).yiaddr for n in range(1, 5))
    assert got == set([ip("198.18.0.10"), ip("198.18.0.11"), ip("198.18.0.200"), ip("198.18.0.201")])
    k.silent(client(mac(5), DISCOVER, 99))


def test_relay_from_an_unknown_link_is_ignored():
    k = Kit()
    k.silent(client(mac(1), DISCOVER, 1, giaddr=ip("10.1.2.1")))
    k.silent(client(mac(1), DISCOVER, 2), local=ip("192.0.2.1"))
    assert k.count("drop.no-scope") == 2


def test_inactive_scope_is_silent():
    cfg = config_dict()
    cfg["scopes"][0]["active"] = False
    k = Kit(cfg)
    k.silent(client(mac(1), DISCOVER, 1))
    k.silent(client(mac(1), REQUEST, 2, req=ip("198.18.0.10")))
    assert k.count("drop.no-scope") == 2
    assert k.offer(mac(1), giaddr=RELAY, xid=3).yiaddr[:3] == ip("198.18.1.0")[:3]


def test_broadcast_flag_is_echoed():
    k = Kit()
    r = k.offer(mac(1), flags=wire.BROADCAST_FLAG)
    assert r.pkt.flags == wire.BROADCAST_FLAG and r.dst == BCAST
    r = k.offer(mac(2))
    assert r.pkt.flags == 0
    r = k.one(client(mac(2), REQUEST, 2, req=r.yiaddr, sid=SERVER_ID, flags=wire.BROADCAST_FLAG), ACK)
    assert r.pkt.flags == wire.BROADCAST_FLAG and r.dst == BCAST


def test_relayed_client_renews_and_releases_by_unicast():
    # RENEWING and RELEASE are unicast from the client straight to the
    # server: no relay, so no giaddr, and the packet arrives on the server's
    # own link. The lease is identified by ciaddr (§4.3.2 "the DHCP server
    # will trust the value in 'ciaddr'").
    k = Kit()
    a = k.dora(mac(1), giaddr=RELAY).yiaddr
    assert _in_range(a, "198.18.1.100", "198.18.1.119")
    k.now += 3600
    r = k.one(client(mac(1), REQUEST, 5, ciaddr=a), ACK)
    assert r.yiaddr == a and r.dst == a and r.lease() == 7200
    assert k.expiry(a, 1) == k.now + 7200 + GRACE
    r = k.one(client(mac(1), wire.INFORM, 6, ciaddr=a, prl=[3]), ACK)
    assert r.opt(wire.OPT_ROUTERS) == ip("198.18.1.1")
    k.silent(client(mac(1), wire.RELEASE, 7, ciaddr=a, sid=SERVER_ID))
    assert k.state(a, 1) == RELEASED
    # an address in no scope at all is still refused
    k.one(client(mac(2), REQUEST, 8, ciaddr=ip("10.0.0.5")), NAK)


def test_client_moving_between_scopes_is_naked_for_the_old_address():
    k = Kit()
    hw = mac(1)
    home = k.dora(hw).yiaddr
    assert _in_range(home, "198.18.0.10", "198.18.0.29")
    # moved behind the relay: INIT-REBOOT with the old address
    n = k.one(client(hw, REQUEST, 3, req=home, giaddr=RELAY), NAK)
    assert n.dst == RELAY and n.pkt.flags & wire.BROADCAST_FLAG
    away = k.dora(hw, xid=4, giaddr=RELAY).yiaddr
    assert _in_range(away, "198.18.1.100", "198.18.1.119")
    # and back on the server's own link
    n = k.one(client(hw, REQUEST, 6, req=away), NAK)
    assert n.dst == BCAST
    r = k.one(client(hw, REQUEST, 7, req=home), ACK)
    assert r.yiaddr == home


# ---------------------------------------------------------------------------
# Client identity, message size


def test_client_identifier_is_the_identity_when_present():
    k = Kit()
    hw = mac(1)
    a = k.dora(hw, cid=b"\xff\x00\x00\x00\x01")
    assert a.opt(wire.OPT_CLIENT_ID) == b"\xff\x00\x00\x00\x01"  # RFC 6842 echo
    # same chaddr, another client id: another client, another address
    b = k.dora(hw, xid=5, cid=b"\xff\x00\x00\x00\x02")
    assert a.yiaddr != b.yiaddr
    # the same client id from another NIC is the same client
    r = k.one(client(mac(2), REQUEST, 9, ciaddr=a.yiaddr, cid=b"\xff\x00\x00\x00\x01"), ACK)
    assert r.yiaddr == a.yiaddr
    assert k.offer(mac(3), xid=10, cid=b"\xff\x00\x00\x00\x02").yiaddr == b.yiaddr
    # without a client id the chaddr alone is a third client
    c = k.dora(hw, xid=11)
    assert c.yiaddr not in (a.yiaddr, b.yiaddr)
    assert c.opt(wire.OPT_CLIENT_ID) is None
    # and it may not renew the client-id clients' leases
    k.one(client(hw, REQUEST, 13, ciaddr=a.yiaddr), NAK)


def test_overlong_client_identifier_is_dropped_and_counted():
    # RFC 3396 lets option 61 arrive in several pieces; a binding (and the
    # failover client-uid) holds at most 255 octets: refuse it up front
    # rather than OFFER an address that can never be ACKed
    k = Kit()
    cid = b"\x00" + bytes(range(256)) + bytes(43)
    k.silent(client(mac(1), DISCOVER, 1, cid=cid))
    k.silent(client(mac(1), REQUEST, 2, req=ip("198.18.0.10"), sid=SERVER_ID, cid=cid))
    assert k.count("drop.bad-client-id") == 2
    assert k.table().live() == 0
    # 255 octets is fine
    a = k.dora(mac(1), xid=3, cid=cid[:255])
    assert a.opt(wire.OPT_CLIENT_ID) == cid[:255]
    k.one(client(mac(1), REQUEST, 5, ciaddr=a.yiaddr, cid=cid[:255]), ACK)


def test_non_ethernet_client_keeps_and_renews_its_lease():
    # htype 6 (IEEE 802) without a client id: identified by htype + chaddr
    k = Kit()
    hw = b"\x00\x11\x22\x33\x44\x55"
    a = k.dora(hw, htype=6).yiaddr
    k.now += 1800
    r = k.one(client(hw, REQUEST, 5, ciaddr=a, htype=6), ACK)
    assert r.yiaddr == a and r.pkt.htype == 6
    # the same chaddr on Ethernet is a different client
    k.one(client(hw, REQUEST, 6, ciaddr=a), NAK)
    assert k.offer(hw, xid=7, htype=6).yiaddr == a


def _big_option_kit():
    cfg = config_dict()
    cfg["scopes"][0]["options"]["224"] = "0x" + "ab" * 600
    return Kit(cfg)


def test_reply_fits_the_default_message_size():
    k = _big_option_kit()
    r = k.offer(mac(1), prl=[1, 3, 224, 6])
    assert len(r.raw) <= 576 - 28
    assert 224 not in r.pkt.options  # cannot fit: dropped
    for c in (53, 54, 51, 1, 3):
        assert c in r.pkt.options, c
    # a maximum size under 576 counts as 576
    r = k.offer(mac(1), xid=2, prl=[1, 3, 224], options={wire.OPT_MAX_SIZE: b"\x01\x2c"})
    assert len(r.raw) <= 576 - 28 and r.lease() == 3600


def test_reply_uses_the_clients_larger_message_size():
    k = _big_option_kit()
    r = k.offer(mac(1), prl=[1, 3, 224, 6], options={wire.OPT_MAX_SIZE: b"\x05\xdc"})  # 1500
    assert r.opt(224) == b"\xab" * 600
    assert 576 - 28 < len(r.raw) <= 1500 - 28
    a = k.one(client(mac(1), REQUEST, 2, req=r.yiaddr, sid=SERVER_ID, prl=[1, 3, 224],
                     options={wire.OPT_MAX_SIZE: b"\x05\xdc"}), ACK)
    assert a.opt(224) == b"\xab" * 600 and len(a.raw) <= 1500 - 28


# ---------------------------------------------------------------------------
# What is not a DHCP request


def test_bootp_request_is_dropped_and_counted():
    k = Kit()
    k.silent(client(mac(1), 0))
    assert k.count("drop.bootp") == 1
    assert k.table().live() == 0


def test_garbage_is_dropped_by_reason():
    k = Kit()
    good = wire.encode(client(mac(1), DISCOVER, 1))
    cases = [
        (b"", "drop.short"),
        (good[:239], "drop.short"),
        (bytes(300), "drop.bad-op"),
        (good[:236] + b"\x00\x00\x00\x00" + good[240:], "drop.bad-magic"),
        (good[:2] + b"\x11" + good[3:], "drop.bad-hlen"),
        (good[:240] + b"\x35\x01\x01\x0c\x09ab", "drop.option-overrun"),
        (good[:240] + b"\x35\x02\x01\x01\xff", "drop.bad-msg-type"),
        (good[:240] + b"\x35\x01\x00\xff", "drop.bad-msg-type"),
        (good[:240] + b"\x35\x01\x01\x34\x01\x07\xff", "drop.bad-overload"),
        (b"\x02" + good[1:], "drop.not-request"),
    ]
    for data, reason in cases:
        before = k.count(reason)
        k.silent(data)
        assert k.count(reason) == before + 1, reason
    # server message types from a client
    for mt in (OFFER, ACK, NAK, 13):
        k.silent(client(mac(1), mt, 2))
    assert k.count("drop.bad-msg-type") == 6
    assert k.table().live() == 0


def test_odd_option_values_never_raise():
    k = Kit()
    a = k.dora(mac(1)).yiaddr
    odd = [
        client(mac(2), DISCOVER, 1, req=b"\x01\x02\x03"),
        client(mac(2), DISCOVER, 2, options={wire.OPT_MAX_SIZE: b"\x05"}),
        client(mac(2), DISCOVER, 3, options={wire.OPT_SUBNET_SELECTION: b"\x01\x02\x03"}),
        client(mac(2), DISCOVER, 4, options={wire.OPT_RELAY_INFO: b"\x05\x09\x01"}),
        client(mac(2), DISCOVER, 5, prl=[]),
        client(mac(2), DISCOVER, 6, cid=b""),
        client(b"", DISCOVER, 7, hlen=0),
        client(mac(2), REQUEST, 8, req=b"\x01\x02", sid=SERVER_ID),
        client(mac(2), REQUEST, 9, sid=b"\x01"),
        client(mac(2), REQUEST, 10, req=b"\xc6\x12\x00"),
        client(mac(2), wire.DECLINE, 11, req=b"\x01"),
        client(mac(2), wire.DECLINE, 12),
        client(mac(2), wire.RELEASE, 13),
        client(mac(2), wire.INFORM, 14),
        client(mac(1), REQUEST, 15, ciaddr=ip("255.255.255.255")),
        client(mac(1), REQUEST, 16, ciaddr=ip("198.18.0.255")),
        client(mac(1), REQUEST, 17, ciaddr=ip("198.18.0.0")),
        client(mac(1), REQUEST, 18, req=ip("198.18.0.0")),
        client(mac(1), wire.RELEASE, 19, ciaddr=ip("198.18.0.255")),
    ]
    for p in odd:
        k.send(p)  # Kit fails on any internal error
        for r in k.replies:
            assert r.type in (OFFER, ACK, NAK)
    assert k.state(a) == ACTIVE and k.table().find_hw(mac(1)) == k.offset(a)


def test_mutated_datagrams_never_raise():
    k = Kit()
    k.dora(mac(1))
    seeds = [
        wire.encode(client(mac(2), DISCOVER, 1, prl=[1, 3, 6], cid=b"\x01\x02\x00\x5e\x10\x00\x02")),
        wire.encode(client(mac(1), REQUEST, 2, req=ip("198.18.0.10"), sid=SERVER_ID)),
        wire.encode(client(mac(1), REQUEST, 3, ciaddr=ip("198.18.0.10"), giaddr=RELAY,
                           options={wire.OPT_RELAY_INFO: b"\x01\x02ab"})),
        wire.encode(client(mac(1), wire.INFORM, 4, ciaddr=ip("198.18.0.99"))),
        wire.encode(client(mac(1), wire.DECLINE, 5, req=ip("198.18.0.10"))),
    ]
    x = 12345
    n = 0
    for i in range(120):
        buf = bytearray(seeds[i % len(seeds)])
        for _ in range(1 + i % 4):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            pos = 236 + x % (len(buf) - 236) if i & 1 else x % len(buf)
            buf[pos] = (x >> 8) & 255
        if i % 7 == 0:
            buf = buf[: 240 + x % 40]
        k.send(bytes(buf))
        n += len(k.replies)
    drops = sum(v for name, v in k.node.events.counters.items() if name.startswith("drop."))
    rx = sum(v for name, v in k.node.events.counters.items() if name.startswith("rx."))
    assert drops + rx >= 120  # every datagram either counted as received or as dropped
    assert k.count("drop.internal-error") == 0


def test_batch_serves_requests_before_discovers():
    k = Kit()
    o = k.offer(mac(1))
    k.node.out.clear()
    disc = wire.encode(client(mac(2), DISCOVER, 7))
    req = wire.encode(client(mac(1), REQUEST, 2, req=o.yiaddr, sid=SERVER_ID))
    k.node.handle_dhcp_batch([disc, req], LOCAL, k.now)
    types = [wire.decode(d[0]).msg_type for d in k.node.out.dhcp]
    assert types == [wire.ACK, wire.OFFER]
    k.node.out.clear()


def test_backlog_admits_new_exchanges_only_as_fast_as_others_finish():
    cfg = config_dict(first="198.18.0.10", last="198.18.0.200")
    k = Kit(cfg)
    offers = [k.offer(mac(i)) for i in (1, 2)]
    k.node.out.clear()
    batch = [wire.encode(client(mac(100 + i), DISCOVER, 50 + i)) for i in range(20)]
    batch += [wire.encode(client(mac(i + 1), REQUEST, 2, req=offers[i].yiaddr, sid=SERVER_ID)) for i in (0, 1)]
    k.node.handle_dhcp_batch(batch, LOCAL, k.now, backlog=True)
    types = [wire.decode(d[0]).msg_type for d in k.node.out.dhcp]
    assert types[:2] == [wire.ACK, wire.ACK]
    assert types[2:] == [wire.OFFER] * 8  # at least 8 new exchanges per wake-up
    assert k.count("drop.overload") == 12
    k.node.out.clear()
    # without a backlog every DISCOVER is answered
    k.node.handle_dhcp_batch(batch[:20], LOCAL, k.now)
    assert len(k.node.out.dhcp) == 20
    k.node.out.clear()
