"""dhcp.server with reservations, exclusions and policies: which client may
have which address, and which options and lease time it is given.
Real packets through a standalone Node; CPython and MicroPython."""

from dhcpfo.lease import table as lt
from dhcpfo.wire import dhcp as wire
from srvkit import GRACE, ACTIVE, FREE, RELEASED, SERVER_ID, Kit, client, config_dict, ip, mac, u32

DISCOVER = wire.DISCOVER
REQUEST = wire.REQUEST
ACK = wire.ACK
NAK = wire.NAK
OPT_TFTP = wire.OPT_TFTP_SERVER

PHONE = b"Polycom-SoundPoint"
IOT_MAC = b"\x02\x00\x5e\x99\x00\x01"


def _in(addr, first, last):
    return ip(first) <= addr <= ip(last)


# ---------------------------------------------------------------------------
# reservations


def _reservation_kit(lease=3600):
    cfg = config_dict(lease=lease, first="198.18.0.10", last="198.18.0.15")
    cfg["scopes"][0]["reservations"] = [
        {"address": "198.18.0.12", "mac": "02:00:5e:10:01:f4", "name": "printer",
         "options": {"host-name": "printer-1", "routers": ["198.18.0.254"]}},
        {"address": "198.18.0.13", "client_id": "ff:00:00:00:07"},
        {"address": "198.18.0.14", "client_id": "01:02:00:5e:10:02:58"},
    ]
    return Kit(cfg)


def test_mac_reservation_goes_to_its_client_with_its_options():
    k = _reservation_kit()
    owner = mac(500)  # 02:00:5e:10:01:f4
    r = k.offer(owner, prl=[1, 3, 12])
    assert r.yiaddr == ip("198.18.0.12")
    assert r.opt(wire.OPT_HOST_NAME) == b"printer-1"
    assert r.opt(wire.OPT_ROUTERS) == ip("198.18.0.254")  # reservation beats scope
    # whatever client id it sends, the MAC decides
    a = k.dora(owner, xid=3, cid=b"\xaa\xbb\xcc")
    assert a.yiaddr == ip("198.18.0.12")
    off = k.offset(a.yiaddr)
    assert k.table().flags(off) & lt.RESERVED
    # renewals keep the reservation's options
    k.now += 1800
    r = k.one(client(owner, REQUEST, 5, ciaddr=a.yiaddr, cid=b"\xaa\xbb\xcc", prl=[12]), ACK)
    assert r.opt(wire.OPT_HOST_NAME) == b"printer-1"


def test_reserved_addresses_never_go_to_other_clients():
    k = _reservation_kit()
    reserved = [ip("198.18.0.12"), ip("198.18.0.13"), ip("198.18.0.14")]
    got = []
    for n in range(1, 4):  # three dynamic addresses: .10 .11 .15
        got.append(k.dora(mac(n), xid=n * 10).yiaddr)
    assert sorted(got) == [ip("198.18.0.10"), ip("198.18.0.11"), ip("198.18.0.15")]
    # the pool is full for everyone else, even asking for a reserved address
    k.silent(client(mac(9), DISCOVER, 1))
    for a in reserved:
        k.silent(client(mac(9), DISCOVER, 2, req=a))
        k.one(client(mac(9), REQUEST, 3, req=a, sid=SERVER_ID), NAK)
        k.silent(client(mac(9), REQUEST, 4, req=a))  # INIT-REBOOT: not our client
        assert k.state(a) == FREE
    # a released dynamic address goes round, the reserved ones stay put
    k.silent(client(mac(1), wire.RELEASE, 5, ciaddr=got[0], sid=SERVER_ID))
    assert k.dora(mac(9), xid=6).yiaddr == got[0]
    assert k.count("drop.pool-exhausted") == 4


def test_client_id_reservation():
    k = _reservation_kit()
    cid = b"\xff\x00\x00\x00\x07"
    # by option 61, from any NIC
    assert k.offer(mac(20), cid=cid).yiaddr == ip("198.18.0.13")
    assert k.dora(mac(21), xid=3, cid=cid).yiaddr == ip("198.18.0.13")
    # the same NIC without that client id is someone else
    r = k.offer(mac(21), xid=5)
    assert r.yiaddr not in (ip("198.18.0.12"), ip("198.18.0.13"), ip("198.18.0.14"))
    # "01" + MAC reserves for an Ethernet client that sends no option 61
    hw = b"\x02\x00\x5e\x10\x02\x58"
    assert k.dora(hw, xid=7).yiaddr == ip("198.18.0.14")
    # ... and for one that sends exactly that client id
    k.silent(client(hw, wire.RELEASE, 9, ciaddr=ip("198.18.0.14"), sid=SERVER_ID))
    assert k.state(ip("198.18.0.14")) == RELEASED
    assert k.offer(hw, xid=10, cid=b"\x01" + hw).yiaddr == ip("198.18.0.14")


def test_inform_from_a_reserved_client_gets_its_options():
    # §4.3.5: INFORM gets the parameters of §4.3.1, which include those
    # "specific to this client (as identified by ... 'chaddr' or 'client identifier')"
    k = _reservation_kit()
    r = k.one(client(mac(500), wire.INFORM, 1, ciaddr=ip("198.18.0.12"), prl=[3, 12]), ACK)
    assert r.yiaddr == b"\x00\x00\x00\x00" and r.lease() is None
    assert r.opt(wire.OPT_HOST_NAME) == b"printer-1"
    assert r.opt(wire.OPT_ROUTERS) == ip("198.18.0.254")
    r = k.one(client(mac(1), wire.INFORM, 2, ciaddr=ip("198.18.0.50"), prl=[3, 12]), ACK)
    assert r.opt(wire.OPT_HOST_NAME) is None and r.opt(wire.OPT_ROUTERS) == ip("198.18.0.1")
    assert k.records == []


def test_reserved_address_held_by_its_client_is_naked_for_others():
    k = _reservation_kit()
    a = k.dora(mac(500)).yiaddr
    k.one(client(mac(7), REQUEST, 3, req=a), NAK)  # INIT-REBOOT for it
    k.one(client(mac(7), REQUEST, 4, ciaddr=a), NAK)  # RENEWING it
    assert k.state(a) == ACTIVE and k.table().find_hw(mac(500)) == k.offset(a)


# ---------------------------------------------------------------------------
# exclusions


def test_exclusions_are_never_offered_or_acked():
    cfg = config_dict(first="198.18.0.10", last="198.18.0.29")
    cfg["scopes"][0]["exclusions"] = [{"start": "198.18.0.12", "end": "198.18.0.25"}]
    k = Kit(cfg)
    got = set()
    for n in range(1, 7):
        got.add(k.offer(mac(n), xid=n).yiaddr)
    assert got == set([ip("198.18.0.10"), ip("198.18.0.11"), ip("198.18.0.26"),
                       ip("198.18.0.27"), ip("198.18.0.28"), ip("198.18.0.29")])
    k.silent(client(mac(7), DISCOVER, 7))
    assert k.count("drop.pool-exhausted") == 1
    k.now += 60  # offers lapse
    excluded = ip("198.18.0.20")
    r = k.offer(mac(8), xid=8, req=excluded)
    assert r.yiaddr != excluded and r.yiaddr in got
    k.one(client(mac(8), REQUEST, 9, req=excluded, sid=SERVER_ID), NAK)
    k.silent(client(mac(9), REQUEST, 10, req=excluded))  # unknown client: silent
    assert k.state(excluded) == FREE
    assert k.count("tx.ack") == 0


# ---------------------------------------------------------------------------
# policies


def _policy_kit():
    cfg = config_dict(lease=3600, first="198.18.0.10", last="198.18.0.29")
    cfg["scopes"][0]["policies"] = [
        {"name": "phones", "order": 1,
         "conditions": {"vendor_class": ["Polycom*"]},
         "ranges": [{"start": "198.18.0.25", "end": "198.18.0.29"}],
         "options": {"tftp-server-name": "prov.lab.example"},
         "lease_time": 604800},
        {"name": "iot", "order": 2,
         "conditions": {"mac": ["02:00:5e:99:*"]},
         "options": {"domain-name": "iot.example"},
         "lease_time": 120},
    ]
    cfg["server"]["policies"] = [
        {"name": "windows", "conditions": {"vendor_class": ["MSFT*"]},
         "options": {"domain-name": "msft.example", "routers": ["198.18.0.254"]},
         "lease_time": 1800},
    ]
    return Kit(cfg)


def _phone(n, mtype=DISCOVER, xid=1, **kw):
    return client(mac(n), mtype, xid, options={wire.OPT_VENDOR_CLASS: PHONE}, **kw)


def test_vendor_class_policy_range_options_and_lease_time():
    k = _policy_kit()
    vc = {wire.OPT_VENDOR_CLASS: PHONE}
    o = k.offer(mac(1), options=vc, prl=[1, 3, 66])
    assert _in(o.yiaddr, "198.18.0.25", "198.18.0.29")
    assert o.opt(OPT_TFTP) == b"prov.lab.example"
    assert o.lease() == 604800
    assert u32(o.opt(wire.OPT_RENEWAL_TIME)) == 302400
    assert u32(o.opt(wire.OPT_REBINDING_TIME)) == 529200
    a = k.one(_phone(1, REQUEST, 2, req=o.yiaddr, sid=SERVER_ID, prl=[66]), ACK)
    assert a.opt(OPT_TFTP) == b"prov.lab.example" and a.lease() == 604800
    assert k.expiry(a.yiaddr) == k.now + 604800 + GRACE
    k.now += 302400
    r = k.one(_phone(1, REQUEST, 3, ciaddr=a.yiaddr, prl=[66]), ACK)
    assert r.lease() == 604800 and r.opt(OPT_TFTP) == b"prov.lab.example"
    # INFORM from a phone gets the policy's options, no lease
    r = k.one(_phone(2, wire.INFORM, 4, ciaddr=ip("198.18.0.5"), prl=[66]), ACK)
    assert r.opt(OPT_TFTP) == b"prov.lab.example" and r.lease() is None


def test_clients_without_the_policy_never_get_its_range():
    k = _policy_kit()
    got = []
    for n in range(1, 16):  # .10-.24: the general pool
        got.append(k.dora(mac(n), xid=n * 4).yiaddr)
    for a in got:
        assert _in(a, "198.18.0.10", "198.18.0.24"), a
    assert len(set(got)) == 15
    # general pool full: nothing for a plain client, policy range untouched
    k.silent(client(mac(16), DISCOVER, 1))
    k.silent(client(mac(16), DISCOVER, 2, req=ip("198.18.0.26")))
    k.one(client(mac(16), REQUEST, 3, req=ip("198.18.0.26"), sid=SERVER_ID), NAK)
    k.silent(client(mac(16), REQUEST, 4, req=ip("198.18.0.26")))
    assert k.count("drop.pool-exhausted") == 2
    for a in ("198.18.0.25", "198.18.0.26", "198.18.0.27", "198.18.0.28", "198.18.0.29"):
        assert k.state(ip(a)) == FREE
    # while a phone still gets one
    assert _in(k.offer(mac(17), xid=5, options={wire.OPT_VENDOR_CLASS: PHONE}).yiaddr,
               "198.18.0.25", "198.18.0.29")


def test_full_policy_range_gives_no_address_from_the_general_pool():
    k = _policy_kit()
    got = set()
    for n in range(1, 6):
        got.add(k.one(_phone(n, xid=n), wire.OFFER).yiaddr)
    assert len(got) == 5
    for a in got:
        assert _in(a, "198.18.0.25", "198.18.0.29")
    k.silent(_phone(6, xid=6))
    k.silent(_phone(6, xid=7, req=ip("198.18.0.10")))
    assert k.count("drop.pool-exhausted") == 2
    assert _in(k.offer(mac(7), xid=8).yiaddr, "198.18.0.10", "198.18.0.24")


def test_mac_prefix_policy_without_ranges():
    k = _policy_kit()
    r = k.dora(IOT_MAC, prl=[1, 3, 15])
    assert _in(r.yiaddr, "198.18.0.10", "198.18.0.24")
    assert r.lease() == 120 and r.opt(wire.OPT_DOMAIN_NAME) == b"iot.example"
    assert k.expiry(r.yiaddr) == k.now + 120 + GRACE
    plain = k.dora(mac(1), xid=5, prl=[1, 3, 15])
    assert plain.lease() == 3600 and plain.opt(wire.OPT_DOMAIN_NAME) == b"lab.example"
    # the short lease expires on its own schedule
    k.tick(120 + GRACE)
    assert k.state(r.yiaddr) == lt.EXPIRED and k.state(plain.yiaddr) == ACTIVE


def test_server_policy_sits_below_the_scope():
    k = _policy_kit()
    vc = {wire.OPT_VENDOR_CLASS: b"MSFT 5.0"}
    r = k.dora(mac(1), options=vc, prl=[1, 3, 15])
    assert r.lease() == 1800
    assert r.opt(wire.OPT_DOMAIN_NAME) == b"msft.example"  # beats server options
    assert r.opt(wire.OPT_ROUTERS) == ip("198.18.0.1")  # the scope's value beats it
    assert _in(r.yiaddr, "198.18.0.10", "198.18.0.24")
    # the relayed scope has no policies of its own; the server one still applies
    r = k.dora(mac(2), xid=5, options=vc, giaddr=ip("198.18.1.1"), prl=[3, 15])
    assert r.lease() == 1800 and r.opt(wire.OPT_ROUTERS) == ip("198.18.1.1")


def test_bootp_client_served_in_bootp_scope_only():
    from dhcpfo.lease import table as lt
    from dhcpfo.wire import dhcp as wire
    cfg = config_dict()
    cfg["scopes"][0]["bootp"] = True
    k = Kit(cfg)
    p = wire.Packet(xid=77, chaddr=b"\x02\x00\x00\x00\xb0\x01")  # no option 53: BOOTP
    replies = k.send(p)
    assert len(replies) == 1
    r = replies[0].pkt
    assert r.op == 2 and r.msg_type == 0 and r.yiaddr != b"\x00\x00\x00\x00"
    assert wire.OPT_LEASE_TIME not in r.options
    off = k.scope().offset_of(r.yiaddr)
    t = k.table()
    assert t.state(off) == lt.ACTIVE and t.flags(off) & lt.BOOTP and t.expiry(off) == lt.INFINITE
    assert k.records  # durable before the reply
    # the same client asks again: the same address
    again = k.send(p)
    assert again[0].pkt.yiaddr == r.yiaddr
    # a scope without bootp drops it, counted
    k2 = Kit(config_dict())
    assert k2.send(p) == []
    assert k2.count("drop.bootp") == 1
