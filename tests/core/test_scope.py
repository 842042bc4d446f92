"""dhcp.scope and dhcp.policy: pool offsets, exclusions, reservations,
scope selection, policy matching, option merging and ordering."""
from dhcpfo import config
from dhcpfo_host import boardconf
from dhcpfo.dhcp import policy as P
from dhcpfo.dhcp import scope as S
from dhcpfo.wire.dhcp import Packet

IP = bytes


def ip(s):
    return config.parse_ip(s)


def _build(scopes, server=None):
    srv = {"server_id": "198.18.0.2"}
    if server:
        srv.update(server)
    return S.build(boardconf.load({"server": srv, "scopes": scopes}))


def _pkt(mac=b"\x02\x00\x00\x00\x00\x01", giaddr=b"\x00\x00\x00\x00", **opts):
    o = {}
    for k in opts:
        o[int(k[1:])] = opts[k]  # o55=..., o60=...
    return Packet(chaddr=mac, giaddr=giaddr, options=o)


def test_offsets_cross_octet_boundary():
    ss = _build([{"id": "198.18.0.0", "mask": 23,
                  "ranges": [{"start": "198.18.0.250", "end": "198.18.1.10"}]}])
    s = ss.by_id(ip("198.18.0.0"))
    assert s.size == 17
    expect = ["198.18.0.%d" % i for i in range(250, 256)] + ["198.18.1.%d" % i for i in range(11)]
    for off in range(s.size):
        a = s.addr_of(off)
        assert a == ip(expect[off]), (off, a)
        assert s.offset_of(a) == off
    assert s.addr_of(17) is None and s.addr_of(-1) is None
    assert s.offset_of(ip("198.18.0.249")) == -1 and s.offset_of(ip("198.18.1.11")) == -1
    assert s.offset_of(b"\x01\x02") == -1
    assert s.ranges() == [(0, 17, ip("198.18.0.250"), ip("198.18.1.10"))]


def test_offsets_across_ranges_in_address_order():
    ss = _build([{"id": "198.18.0.0", "mask": 24,
                  "ranges": [{"start": "198.18.0.200", "end": "198.18.0.202"},
                             {"start": "198.18.0.10", "end": "198.18.0.11"},
                             {"start": "198.18.0.100", "end": "198.18.0.100"}]}])
    s = list(ss)[0]
    got = [config.ip_str(s.addr_of(i)) for i in range(s.size)]
    assert got == ["198.18.0.10", "198.18.0.11", "198.18.0.100", "198.18.0.200",
                   "198.18.0.201", "198.18.0.202"]
    assert s.offset_of(ip("198.18.0.100")) == 2 and s.offset_of(ip("198.18.0.150")) == -1
    assert [r[:2] for r in s.ranges()] == [(0, 2), (2, 1), (3, 3)]


def test_largest_pool_crosses_16_bit_halves():
    # 65536 addresses, 10.0.0.1 .. 10.1.0.0: the high half carries once.
    ss = _build([{"id": "10.0.0.0", "mask": 8, "ranges": [{"start": "10.0.0.1", "end": "10.1.0.0"}],
                  "exclusions": [{"start": "10.0.255.250", "end": "10.1.0.0"}]}])
    s = ss.by_addr(ip("10.200.0.1"))
    assert s.size == 65536
    assert s.addr_of(0) == ip("10.0.0.1")
    assert s.addr_of(65534) == ip("10.0.255.255")
    assert s.addr_of(65535) == ip("10.1.0.0")
    assert s.offset_of(ip("10.1.0.0")) == 65535 and s.offset_of(ip("10.0.1.0")) == 255
    assert s.offset_of(ip("10.1.0.1")) == -1
    assert s.is_excluded(65535) and s.is_excluded(65529) and not s.is_excluded(65528)
    assert len(s._excl) == 8192


def test_exclusion_bitmap_and_allocation():
    ss = _build([{"id": "198.18.0.0", "mask": 24,
                  "ranges": [{"start": "198.18.0.10", "end": "198.18.0.60"}],
                  "exclusions": [{"start": "198.18.0.13", "end": "198.18.0.41"},
                                 {"start": "198.18.0.5", "end": "198.18.0.10"},
                                 {"start": "198.18.0.60", "end": "198.18.0.70"}],
                  "reservations": [{"address": "198.18.0.50", "mac": "02:00:00:00:00:50"}]}])
    s = list(ss)[0]
    excluded = [i for i in range(s.size) if s.is_excluded(i)]
    want = [0] + list(range(3, 32)) + [50]
    assert excluded == want, excluded
    free = [i for i in range(s.size) if s.can_allocate(i)]
    assert free == [1, 2] + [i for i in range(32, 50) if i != 40]
    assert s.is_reserved(40) and not s.can_allocate(40)
    assert not s.can_allocate(-1) and not s.can_allocate(s.size)


def test_mark_fills_whole_bytes():
    for lo, hi in ((0, 0), (3, 4), (5, 21), (8, 15), (7, 8), (0, 63)):
        bits = bytearray(8)
        S._mark(bits, lo, hi)
        got = [i for i in range(64) if bits[i >> 3] & (1 << (i & 7))]
        assert got == list(range(lo, hi + 1)), (lo, hi, got)


def test_reservations_by_mac_client_id_and_key():
    ss = _build([{"id": "198.18.0.0", "mask": 24,
                  "ranges": [{"start": "198.18.0.100", "end": "198.18.0.199"}],
                  "reservations": [
                      {"address": "198.18.0.120", "mac": "02:00:5e:10:00:01", "name": "printer",
                       "options": {"host-name": "printer"}},
                      {"address": "198.18.0.121", "client_id": "ff:00:00:00:01:00:01"}]}])
    s = list(ss)[0]
    mac = IP((2, 0, 0x5E, 0x10, 0, 1))
    assert s.reservation_for(None, mac) == 20
    assert s.reservation_for(b"\x01" + mac) == 20  # client_key without option 61
    assert s.reservation_for(b"\xff\x00\x00\x00\x01\x00\x01") == 21
    assert s.reservation_for(b"\x01" + IP(6), IP(6)) == -1
    r = s.reservation_at(20)
    assert r.address == ip("198.18.0.120") and r.name == "printer" and r.offset == 20
    assert s.reservation_at(22) is None
    # a client sending a DUID-style option 61 still finds its MAC reservation
    p = _pkt(mac=mac, o61=b"\xff\x12\x34\x56\x78\x00\x01")
    assert s.reservation_for_packet(p) == 20 and s.reservation_for(p) == 20
    assert s.reservation_for_packet(_pkt(o61=b"\xff\x00\x00\x00\x01\x00\x01")) == 21


def test_scope_selection():
    ss = _build([
        {"id": "198.18.0.0", "mask": 24, "ranges": [{"start": "198.18.0.10", "end": "198.18.0.20"}]},
        {"id": "198.18.16.0", "mask": 20, "ranges": [{"start": "198.18.17.10", "end": "198.18.17.20"}]},
        {"id": "198.18.32.0", "mask": 24, "active": False,
         "ranges": [{"start": "198.18.32.10", "end": "198.18.32.20"}]},
    ])
    assert len(ss) == 3 and [s.index for s in ss] == [0, 1, 2] and ss[2].active is False
    assert ss.select(ip("198.18.0.1")).network == ip("198.18.0.0")
    assert ss.select(ip("198.18.31.254")).network == ip("198.18.16.0")
    assert ss.select(ip("198.18.1.1")) is None
    assert ss.select(ip("198.18.32.1")) is None  # inactive
    assert ss.by_addr(ip("198.18.32.1")).network == ip("198.18.32.0")
    assert ss.by_addr(None) is None and ss.by_addr(b"\x01") is None
    s = ss.by_id(ip("198.18.16.0"))
    assert s.in_subnet(ip("198.18.20.1")) and not s.in_subnet(ip("198.18.32.1"))
    assert s.broadcast == ip("198.18.31.255")
    local = ip("198.18.0.2")
    # relayed: giaddr names the link
    assert ss.for_packet(_pkt(giaddr=ip("198.18.17.1")), local) is s
    # direct: the receiving interface names the link
    assert ss.for_packet(_pkt(), local).network == ip("198.18.0.0")
    # RFC 3011 subnet selection and RFC 3527 link selection win over giaddr
    assert ss.for_packet(_pkt(giaddr=ip("198.18.0.1"), o118=ip("198.18.17.1")), local) is s
    rai = b"\x01\x03eth" + b"\x05\x04" + ip("198.18.16.9")
    assert ss.link_address(_pkt(giaddr=ip("198.18.0.1"), o82=rai), local) == ip("198.18.16.9")
    assert ss.link_address(_pkt(giaddr=ip("198.18.0.1"), o82=b"\x05\x09"), local) == ip("198.18.0.1")


def _policy_scope():
    return _build([{
        "id": "198.18.0.0", "mask": 24,
        "ranges": [{"start": "198.18.0.10", "end": "198.18.0.59"}],
        "options": {"routers": "198.18.0.1", "domain-name": "scope.example"},
        "policies": [
            {"name": "phones", "order": 1, "lease_time": 600,
             "conditions": {"vendor_class": ["Polycom*"]},
             "ranges": [{"start": "198.18.0.50", "end": "198.18.0.59"}],
             "options": {"tftp-server-name": "prov.example", "domain-name": "phones.example"}},
            {"name": "lab-macs", "order": 2,
             "conditions": {"operator": "and", "mac": ["02:00:5e:*"],
                            "user_class": [{"op": "ne", "value": "guest"}]}},
            {"name": "off", "order": 3, "enabled": False, "conditions": {"mac": ["02:*"]}},
        ]}],
        server={"options": {"domain-name-servers": "198.18.0.53", "domain-name": "server.example",
                            "ntp-servers": "198.18.0.123"},
                "policies": [{"name": "android", "conditions": {"vendor_class": ["android-dhcp-*"]},
                              "options": {"domain-name": "android.example",
                                          "ntp-servers": "198.18.0.124"}}]})


def test_policy_matching_in_order():
    s = list(_policy_scope())[0]
    assert [p.name for p in s.policies] == ["phones", "lab-macs", "off", "android"]
    assert [p.level for p in s.policies] == ["scope", "scope", "scope", "server"]
    ph = s.match_policy(_pkt(o60=b"Polycom-VVX"))
    assert ph.name == "phones" and ph.has_ranges
    lab = b"\x02\x00\x5e\x00\x00\x07"
    assert s.match_policy(_pkt(mac=lab)).name == "lab-macs"
    # "and": the ne user-class condition fails for guests (raw or RFC 3004 form)
    assert s.match_policy(_pkt(mac=lab, o77=b"guest")) is None
    assert s.match_policy(_pkt(mac=lab, o77=b"\x05guest")) is None
    assert s.match_policy(_pkt(mac=lab, o77=b"staff")).name == "lab-macs"
    # the disabled policy never matches; the server-level one comes last
    assert s.match_policy(_pkt(mac=b"\x02\x99\x00\x00\x00\x01")) is None
    assert s.match_policy(_pkt(o60=b"android-dhcp-13")).name == "android"
    assert s.policy_for(_pkt(o60=b"android-dhcp-13")).name == "android"
    assert s.match_policy(_pkt(mac=lab, o60=b"Polycom")).name == "phones"
    assert P.select(s.policies, _pkt(o60=b"android-dhcp-13")).name == "android"
    assert P.select([], _pkt()) is None


def test_condition_semantics():
    def pol(**cond):
        pc = config.PolicyConfig()
        pc.name = "t"
        pc.order = 1
        pc.operator = cond.pop("operator", "or")
        for k in cond:
            setattr(pc, k, [config.MatchConfig(op, v, pre) for op, v, pre in cond[k]])
        return P.Policy(pc)

    attrs = P.client_attrs(_pkt(o60=b"MSFT 5.0", o61=b"\x01\x02\x00\x00\x00\x00\x01"))
    assert attrs[0] == [b"MSFT 5.0"] and attrs[1] == [] and attrs[3][0][0] == 1
    assert pol(vendor_class=[("eq", b"MSFT 5.0", False)]).matches(attrs)
    assert not pol(vendor_class=[("eq", b"MSFT", False)]).matches(attrs)
    assert pol(vendor_class=[("eq", b"MSFT", True)]).matches(attrs)
    # eq values are ORed, ne values ANDed
    assert pol(vendor_class=[("eq", b"x", False), ("eq", b"MSFT 5.0", False)]).matches(attrs)
    assert not pol(vendor_class=[("ne", b"x", False), ("ne", b"MSFT", True)]).matches(attrs)
    assert pol(vendor_class=[("ne", b"x", False), ("ne", b"y", False)]).matches(attrs)
    # a missing attribute fails eq and passes ne
    assert not pol(user_class=[("eq", b"guest", False)]).matches(attrs)
    assert pol(user_class=[("ne", b"guest", False)]).matches(attrs)
    # operators across criteria
    vc_no = ("eq", b"nope", False)
    cid_yes = ("eq", b"\x01\x02", True)
    assert pol(vendor_class=[vc_no], client_id=[cid_yes]).matches(attrs)
    assert not pol(operator="and", vendor_class=[vc_no], client_id=[cid_yes]).matches(attrs)
    assert pol(operator="and", mac=[("eq", b"\x02\x00", True)], client_id=[cid_yes]).matches(attrs)
    assert not pol().matches(attrs)  # no conditions: never
    assert P.user_classes(b"\x03abc\x02de") == [b"\x03abc\x02de", b"abc", b"de"]
    assert P.user_classes(b"\x09abc") == [b"\x09abc"]
    assert P.user_classes(None) == []


def test_policy_ranges_restrict_allocation():
    s = list(_policy_scope())[0]
    phones, lab = s.policies[0], s.policies[1]
    assert phones.spans == [(40, 49)] and lab.spans is None
    assert [i for i in range(s.size) if s.can_allocate(i, phones)] == list(range(40, 50))
    general = list(range(0, 40))
    assert [i for i in range(s.size) if s.can_allocate(i)] == general
    assert [i for i in range(s.size) if s.can_allocate(i, lab)] == general
    assert phones.allows(45) and not phones.allows(39) and lab.allows(3)


def test_options_merge_levels():
    s = list(_policy_scope())[0]
    base = S.options_for(s, _pkt(), -1, None)
    assert base[1] == ip("255.255.255.0") and base[3] == ip("198.18.0.1")
    assert base[15] == b"scope.example" and base[6] == ip("198.18.0.53")
    assert base[42] == ip("198.18.0.123")
    ph = s.policies[0]
    o = s.options_for(_pkt(), 45, ph)
    assert o[15] == b"phones.example" and o[66] == b"prov.example" and o[6] == ip("198.18.0.53")
    # a server-level policy sits between server and scope options
    an = s.policies[3]
    o = s.options_for(_pkt(), -1, an)
    assert o[15] == b"scope.example" and o[42] == ip("198.18.0.124")
    assert s.lease_time_for(ph) == 600 and s.lease_time_for(an) == 86400
    assert s.lease_time_for(None) == 86400


def test_reservation_options_win():
    ss = _build([{"id": "198.18.0.0", "mask": 24,
                  "ranges": [{"start": "198.18.0.100", "end": "198.18.0.199"}],
                  "options": {"routers": "198.18.0.1", "domain-name": "scope.example"},
                  "reservations": [{"address": "198.18.0.120", "mac": "02:00:5e:10:00:01",
                                    "options": {"domain-name": "printers.example",
                                                "host-name": "printer"}}]}])
    s = list(ss)[0]
    o = s.options_for(_pkt(), 20)
    assert o[15] == b"printers.example" and o[12] == b"printer" and o[3] == ip("198.18.0.1")
    o = s.options_for(_pkt(), 21)
    assert o[15] == b"scope.example" and 12 not in o


def test_parameter_request_list_orders_and_filters():
    s = list(_policy_scope())[0]
    o = S.options_for(s, _pkt(o55=bytes((15, 6, 66, 99, 6, 42))), -1, None)
    assert list(o) == [15, 6, 42, 1, 3]  # client order, unknown/dups skipped, then mandatory
    o = S.options_for(s, _pkt(o55=bytes((3, 1, 15))), -1, None)
    assert list(o) == [3, 1, 15]
    # no request list: every configured option, mask and routers first
    o = S.options_for(s, _pkt(), -1, None)
    assert list(o) == [1, 3, 6, 15, 42]
    # routers are mandatory only when configured
    ss = _build([{"id": "198.18.0.0", "mask": 24,
                  "ranges": [{"start": "198.18.0.100", "end": "198.18.0.199"}]}])
    o = S.options_for(list(ss)[0], _pkt(o55=bytes((3, 6))), -1, None)
    assert list(o) == [1]
