"""DHCP settings ISC dhcpd users expect (issue 11, item 4): a client's own
lease time (option 51) within min/max_lease_time, T1/T2 as shares of the
lease, `authoritative`, reservations outside every range (fixed addresses,
served by either server of a pair and not failover-managed), and option
definitions for codes the option table does not know. CPython and
MicroPython."""

from dhcpfo_host import boardconf
from dhcpfo.wire import dhcp as wire
from pairlink import Pair, client_packet, dora
from srvkit import SERVER_ID, ZERO4, Kit, client, config_dict, ip, mac, u32

DISCOVER = wire.DISCOVER
REQUEST = wire.REQUEST
OFFER = wire.OFFER
ACK = wire.ACK
NAK = wire.NAK


def _asks(seconds):
    return {wire.OPT_LEASE_TIME: bytes(((seconds >> 24) & 255, (seconds >> 16) & 255,
                                        (seconds >> 8) & 255, seconds & 255))}


def _kit(**scope):
    cfg = config_dict()
    cfg["scopes"][0].update(scope)
    return Kit(cfg)


# ---------------------------------------------------------------------------
# lease time: default, min, max (ISC's default-/min-/max-lease-time)


def test_asked_lease_time_is_held_within_min_and_max():
    k = _kit(lease_time=3600, min_lease_time=600, max_lease_time=7200)
    assert k.offer(mac(1)).lease() == 3600  # asks nothing: the default
    assert k.offer(mac(2), options=_asks(100)).lease() == 600
    assert k.offer(mac(3), options=_asks(5000)).lease() == 5000
    assert k.offer(mac(4), options=_asks(86400)).lease() == 7200
    assert k.offer(mac(5), options={wire.OPT_LEASE_TIME: b"\xff\xff\xff\xff"}).lease() == 7200
    assert k.offer(mac(6), options={wire.OPT_LEASE_TIME: b"\x00\x01"}).lease() == 3600  # malformed: ignored
    # the ACK grants what was asked, and the binding holds it that long
    a = k.dora(mac(7), options=_asks(5000))
    assert a.lease() == 5000
    assert k.expiry(a.yiaddr) == k.now + 5000 + 1


def test_without_bounds_the_asked_time_changes_nothing():
    k = _kit(lease_time=3600)
    assert k.offer(mac(1), options=_asks(100)).lease() == 3600
    assert k.offer(mac(2), options=_asks(86400)).lease() == 3600
    # only a maximum: longer on request, never shorter than the default
    k = _kit(lease_time=3600, max_lease_time=7200)
    assert k.offer(mac(1), options=_asks(100)).lease() == 3600
    assert k.offer(mac(2), options=_asks(5000)).lease() == 5000


def test_a_policy_lease_time_is_the_default_inside_the_scope_bounds():
    cfg = config_dict()
    cfg["scopes"][0].update(lease_time=3600, min_lease_time=600, max_lease_time=86400)
    cfg["scopes"][0]["policies"] = [{"name": "phones", "conditions": {"vendor_class": ["Phone*"]},
                                     "lease_time": 43200}]
    k = Kit(cfg)
    phone = {wire.OPT_VENDOR_CLASS: b"Phone-1"}
    assert k.offer(mac(1), options=phone).lease() == 43200
    opts = dict(phone)
    opts.update(_asks(90000))
    assert k.offer(mac(2), options=opts).lease() == 86400
    assert k.node.scopes[0].longest_lease == 86400


def test_mclt_still_caps_an_asked_lease_time_in_failover():
    p = Pair(lease=600, mclt=60, scope_extra={"max_lease_time": 3600})
    p.connect()
    p.tick(3)
    assert p.a.node.relationships[0].desired[0] == 3600  # potential expirations cover the longest lease
    m = bytes((2, 0, 0, 0, 9, 1))
    ra, rb = p.broadcast(client_packet(m, DISCOVER, 7, o51=(3600).to_bytes(4, "big")))
    offers = [(p.a, r) for r in ra if r.msg_type == OFFER] + [(p.b, r) for r in rb if r.msg_type == OFFER]
    assert len(offers) == 1
    side, o = offers[0]
    assert o.options[wire.OPT_LEASE_TIME] == (60).to_bytes(4, "big")  # fresh: MCLT, whatever was asked
    reps = p.dhcp(side, client_packet(m, REQUEST, 8, o50=o.yiaddr, o54=o.options[wire.OPT_SERVER_ID],
                                      o51=(3600).to_bytes(4, "big")))
    assert reps[0].msg_type == ACK and reps[0].options[wire.OPT_LEASE_TIME] == (60).to_bytes(4, "big")
    p.tick(2)  # the partner acknowledges a potential expiration of the longest lease
    ren = client_packet(m, REQUEST, 9, o51=(3600).to_bytes(4, "big"))
    ren.ciaddr = o.yiaddr
    reps = p.dhcp(side, ren)
    lease = u32(reps[0].options[wire.OPT_LEASE_TIME])
    t = side.node.tables[0]
    off = side.node.scopes[0].offset_of(o.yiaddr)
    assert lease == 3600 and t.expiry(off) <= t.ack_pexp(off) + 60 + 1


# ---------------------------------------------------------------------------
# T1 and T2


def test_t1_t2_are_configurable_shares_of_the_lease():
    k = _kit(lease_time=3600, t1_percent=40, t2_percent=80)
    r = k.offer(mac(1))
    assert u32(r.opt(wire.OPT_RENEWAL_TIME)) == 1440 and u32(r.opt(wire.OPT_REBINDING_TIME)) == 2880
    k = _kit(lease_time=365 * 86400, t1_percent=33.3, t2_percent=90)
    r = k.offer(mac(1))
    assert u32(r.opt(wire.OPT_RENEWAL_TIME)) == 365 * 86400 * 333 // 1000
    assert u32(r.opt(wire.OPT_REBINDING_TIME)) == 365 * 86400 * 9 // 10
    k = _kit(lease_time=365 * 86400)  # defaults: 1/2 and 7/8 exactly
    r = k.offer(mac(1))
    assert u32(r.opt(wire.OPT_RENEWAL_TIME)) == 365 * 86400 // 2
    assert u32(r.opt(wire.OPT_REBINDING_TIME)) == 365 * 86400 * 7 // 8


def test_bad_t1_t2_and_lease_bounds_are_config_errors():
    for scope, path in (({"t1_percent": 90, "t2_percent": 80}, "scopes[0].t1_percent"),
                        ({"t1_percent": 0}, "scopes[0].t1_percent"),
                        ({"t2_percent": "87.5"}, "scopes[0].t2_percent"),
                        ({"lease_time": 3600, "min_lease_time": 7200}, "scopes[0].min_lease_time"),
                        ({"lease_time": 3600, "max_lease_time": 600}, "scopes[0].max_lease_time")):
        cfg = config_dict()
        cfg["scopes"][0].update(scope)
        try:
            boardconf.compile_config(cfg)
        except ValueError as e:
            assert [x for x in e.errors if x.startswith(path + ": ")], (e.errors, path)
            continue
        raise AssertionError("accepted %r" % (scope,))


# ---------------------------------------------------------------------------
# authoritative


def _wrong_network_requests():
    hw = mac(3)
    reboot = client(hw, REQUEST, req=ip("10.9.9.9"))  # INIT-REBOOT from another network
    renew = client(hw, REQUEST, ciaddr=ip("10.9.9.9"))  # REBINDING from another network
    return reboot, renew


def test_authoritative_scope_naks_a_client_on_the_wrong_network():
    k = Kit()
    for pkt in _wrong_network_requests():
        k.one(pkt, NAK)


def test_not_authoritative_scope_stays_silent_but_answers_its_own_offers():
    cfg = config_dict()
    cfg["server"]["authoritative"] = False  # the scopes inherit it
    k = Kit(cfg)
    assert k.node.scopes[0].authoritative is False
    for pkt in _wrong_network_requests():
        k.silent(pkt)
    assert k.count("drop.not-authoritative") == 2 and k.count("tx.nak") == 0
    # someone else's address in our subnet (INIT-REBOOT): silent as well
    a = k.dora(mac(1))
    k.silent(client(mac(2), REQUEST, req=a.yiaddr))
    # a client answering our OFFER with an address we did not offer still gets its NAK
    k.one(client(mac(2), REQUEST, req=ip("198.18.0.250"), sid=SERVER_ID), NAK)
    # and ordinary service goes on
    assert k.dora(mac(4)).type == ACK
    # a scope may say otherwise than the server
    cfg["scopes"][0]["authoritative"] = True
    k = Kit(cfg)
    assert k.node.scopes[0].authoritative is True and k.node.scopes[1].authoritative is False


# ---------------------------------------------------------------------------
# reservations outside every range (fixed addresses)


FIXED = "198.18.0.200"  # the ranges are .10-.29


def _fixed_cfg():
    cfg = config_dict()
    cfg["scopes"][0]["reservations"] = [
        {"address": FIXED, "mac": "02:00:5e:10:00:07", "options": {"host-name": "printer"}}]
    cfg["scopes"][0]["min_lease_time"] = 600
    cfg["scopes"][0]["max_lease_time"] = 7200
    return cfg


def test_fixed_address_outside_the_ranges_is_served_without_a_binding():
    k = Kit(_fixed_cfg())
    hw = mac(7)
    o = k.offer(hw, prl=[1, 3, 12])
    assert o.yiaddr == ip(FIXED) and o.opt(12) == b"printer" and o.lease() == 3600
    assert k.records == []
    a = k.one(client(hw, REQUEST, 2, req=ip(FIXED), sid=SERVER_ID, options=_asks(7000)), ACK)
    assert a.yiaddr == ip(FIXED) and a.lease() == 7000
    assert k.records == [] and k.count("lease.fixed") == 1
    assert k.table().count(2) == 0  # nothing ACTIVE in the pool
    # INIT-REBOOT and RENEWING with the fixed address: ACK
    k.one(client(hw, REQUEST, 3, req=ip(FIXED)), ACK)
    k.one(client(hw, REQUEST, 4, ciaddr=ip(FIXED)), ACK)
    # INIT-REBOOT with a pool address (a lease from before the reservation): NAK
    k.one(client(hw, REQUEST, 5, req=ip("198.18.0.15")), NAK)
    # INFORM gets the reservation's options; RELEASE and DECLINE change nothing
    r = k.one(client(hw, wire.INFORM, 6, ciaddr=ip(FIXED), prl=[12]), ACK)
    assert r.opt(12) == b"printer" and r.yiaddr == ZERO4
    k.silent(client(hw, wire.RELEASE, 7, ciaddr=ip(FIXED), sid=SERVER_ID))
    k.silent(client(hw, DECLINE_, 8, req=ip(FIXED), sid=SERVER_ID))
    assert k.count("rx.release-fixed") == 1 and k.count("rx.decline-fixed") == 1 and k.records == []
    # another client never gets it, and asking for it is NAKed / not offered
    assert k.offer(mac(8), req=ip(FIXED)).yiaddr != ip(FIXED)
    k.one(client(mac(8), REQUEST, 9, req=ip(FIXED), sid=SERVER_ID), NAK)


DECLINE_ = wire.DECLINE


def test_fixed_address_is_answered_by_both_servers_of_a_pair_and_not_failover_managed():
    p = Pair(lease=600, mclt=60, scope_extra={
        "reservations": [{"address": "198.18.0.200", "mac": "02:00:00:00:09:07"}]})
    p.connect()
    p.tick(3)
    m = bytes((2, 0, 0, 0, 9, 7))
    ra, rb = p.broadcast(client_packet(m, DISCOVER, 7))
    assert [r.yiaddr for r in ra] == [ip("198.18.0.200")] and [r.yiaddr for r in rb] == [ip("198.18.0.200")]
    # the full lease: no MCLT cap, since no partner can give the address away
    assert ra[0].options[wire.OPT_LEASE_TIME] == (600).to_bytes(4, "big")
    before = (len(p.a.records), len(p.b.records))
    reps = p.dhcp(p.b, client_packet(m, REQUEST, 8, o50=ip("198.18.0.200"), o54=ip("198.18.0.3")))
    assert reps[0].msg_type == ACK and reps[0].options[wire.OPT_LEASE_TIME] == (600).to_bytes(4, "big")
    p.tick(2)
    assert (len(p.a.records), len(p.b.records)) == before  # nothing logged, no binding update
    # an ordinary client is still split by the hash and capped by MCLT
    side, ack = dora(p, bytes((2, 0, 0, 0, 9, 8)))
    assert ack.options[wire.OPT_LEASE_TIME] == (60).to_bytes(4, "big")


# ---------------------------------------------------------------------------
# option definitions: values by type for codes the option table does not know


def test_option_definitions_give_unknown_codes_typed_values():
    cfg = config_dict()
    cfg["server"]["option_definitions"] = [
        {"code": 224, "name": "site-motd", "type": "text"},
        {"code": 225, "type": "ip-list"},
        {"code": 226, "name": "site-port", "type": "uint16"}]
    cfg["scopes"][0]["options"].update({"site-motd": "hello, lab", "225": "198.18.0.7 198.18.0.8",
                                        "SITE_PORT": 8080, "227": "0x0102"})
    k = Kit(cfg)
    r = k.offer(mac(1))
    assert r.opt(224) == b"hello, lab" and r.opt(225) == ip("198.18.0.7") + ip("198.18.0.8")
    assert r.opt(226) == b"\x1f\x90" and r.opt(227) == b"\x01\x02"


def test_bad_option_definitions_are_config_errors():
    for d, path in (({"code": 3, "type": "text"}, "server.option_definitions[0]"),
                    ({"code": 224, "name": "routers", "type": "text"}, "server.option_definitions[0]"),
                    ({"code": 224, "type": "float"}, "server.option_definitions[0]"),
                    ({"code": 300, "type": "text"}, "server.option_definitions[0].code"),
                    ({"type": "text"}, "server.option_definitions[0].code")):
        cfg = config_dict()
        cfg["server"]["option_definitions"] = [d]
        try:
            boardconf.compile_config(cfg)
        except ValueError as e:
            assert [x for x in e.errors if x.startswith(path + ": ")], (e.errors, path)
            continue
        raise AssertionError("accepted %r" % (d,))
    # a text value for a code nobody defined is still refused (hex or octets only)
    cfg = config_dict()
    cfg["scopes"][0]["options"]["224"] = "hello"
    try:
        boardconf.compile_config(cfg)
    except ValueError as e:
        assert [x for x in e.errors if x.startswith("scopes[0].options.224: ")], e.errors
    else:
        raise AssertionError("accepted text for an undefined code")
