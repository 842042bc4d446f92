"""The host-side validator and compiler: schema, defaults, one path-qualified
message per problem. Every valid document here goes the board's way (compile,
then the firmware's dhcpfo.config.load), so the compiled form carries it all."""
from dhcpfo import config as fw
from dhcpfo.config import ConfigError
from dhcpfo_host import boardconf, confcheck


class config:
    """The names these tests use: loading goes through compile + firmware load."""
    load = staticmethod(boardconf.load)
    load_text = staticmethod(boardconf.load_text)
    pair_errors = staticmethod(confcheck.pair_errors)
    addr_delta = staticmethod(fw.addr_delta)
    ip_str = staticmethod(fw.ip_str)
    mac_str = staticmethod(fw.mac_str)
    mask_of = staticmethod(fw.mask_of)
    parse_hex = staticmethod(fw.parse_hex)
    parse_ip = staticmethod(fw.parse_ip)
    parse_mac = staticmethod(fw.parse_mac)
    prefix_of = staticmethod(fw.prefix_of)

IP = bytes


def _doc():
    """A fresh valid document; tests mutate their own copy."""
    return {
        "server": {"server_id": "198.18.0.2"},
        "scopes": [{
            "id": "198.18.0.0",
            "mask": "255.255.255.0",
            "ranges": [{"start": "198.18.0.100", "end": "198.18.0.199"}],
        }],
    }


def _fo(**kw):
    f = {"name": "pair", "role": "primary", "partner": {"address": "198.18.0.3"},
         "scopes": ["198.18.0.0"]}
    for k in kw:
        f[k] = kw[k]
    return f


def _errors(doc):
    try:
        config.load(doc)
    except ConfigError as e:
        assert isinstance(e, ValueError)
        assert str(e) == "\n".join(e.errors)
        return e.errors
    raise AssertionError("document loaded but should not have")


def _has(errors, line):
    assert line in errors, "missing %r in %r" % (line, errors)


def test_minimal_document_gets_every_default():
    c = config.load(_doc())
    s = c.server
    assert s.name == "dhcpfo"
    assert s.server_id == IP((198, 18, 0, 2))
    assert s.listen_address == IP(4) and s.listen_port == 67 and s.interface is None
    assert s.data_dir == "data" and s.options == {} and s.policies == []
    assert s.mgmt_address == IP((127, 0, 0, 1)) and s.mgmt_port == 6470 and s.mgmt_token is None
    assert s.decline_hold == 3600 and s.offer_hold == 60 and s.time_skew_max == 60
    assert s.log_level == "info"
    sc = c.scopes[0]
    assert sc.id == sc.network == IP((198, 18, 0, 0))
    assert sc.mask == IP((255, 255, 255, 0)) and sc.prefix == 24
    assert sc.name == "198.18.0.0" and sc.description == ""
    assert sc.active is True and sc.bootp is False
    assert sc.lease_time == 86400 and sc.offer_delay_ms == 0
    assert sc.ranges == [(IP((198, 18, 0, 100)), IP((198, 18, 0, 199)))]
    assert sc.exclusions == [] and sc.reservations == [] and sc.policies == []
    assert sc.failover is None
    assert c.failover == []
    assert c.scope(IP((198, 18, 0, 0))) is sc and c.scope(IP(4)) is None


def test_failover_defaults_load_balance():
    d = _doc()
    d["failover"] = [_fo()]
    c = config.load(d)
    f = c.failover[0]
    assert f.name == "pair" and f.role == "primary" and f.is_primary
    assert f.mode == "load-balance" and not f.hot_standby
    assert f.partner_address == IP((198, 18, 0, 3)) and f.partner_port == 647
    assert f.local_address == IP((198, 18, 0, 2)) and f.local_port == 647  # server_id
    assert f.scopes == [IP((198, 18, 0, 0))]
    assert f.mclt == 3600 and f.load_balance_percent == 50
    assert f.reserve_percent is None and f.hot_standby_role is None
    assert f.auto_state_switchover is None
    assert f.shared_secret is None and f.enable_authentication is False
    assert f.max_unacked == 10 and f.max_response_delay == 30
    assert f.load_balance_max_seconds == 3
    assert c.scopes[0].failover == "pair"
    assert c.relationship("pair") is f and c.relationship("x") is None


def test_failover_hot_standby_defaults_follow_role():
    d = _doc()
    d["failover"] = [_fo(mode="hot-standby")]
    f = config.load(d).failover[0]
    assert f.reserve_percent == 5 and f.hot_standby_role == "active"
    assert f.load_balance_percent is None
    d["failover"] = [_fo(mode="hot-standby", role="secondary")]
    assert config.load(d).failover[0].hot_standby_role == "standby"
    d["failover"] = [_fo(mode="hot-standby", role="secondary", hot_standby_role="active",
                         reserve_percent=0)]
    f = config.load(d).failover[0]
    assert f.hot_standby_role == "active" and f.reserve_percent == 0


def test_secret_enables_authentication():
    d = _doc()
    d["failover"] = [_fo(shared_secret="s3cret-value", auto_state_switchover=600,
                         receive_timer=45)]
    f = config.load(d).failover[0]
    assert f.shared_secret == b"s3cret-value" and f.enable_authentication is True
    assert f.auto_state_switchover == 600 and f.max_response_delay == 45
    d["failover"] = [_fo(shared_secret="s3cret-value", enable_authentication=False,
                         auto_state_switchover=False)]
    f = config.load(d).failover[0]
    assert f.enable_authentication is False and f.auto_state_switchover is None


def test_every_error_is_reported_at_once():
    d = {
        "server": {"server_id": "1.2.3", "bogus": 1, "listen": {"prot": 67}},
        "scopes": [{"id": "10.0.0.1", "mask": "255.0.255.0", "lease_tme": 5,
                    "ranges": [{"start": "10.0.0.9", "end": "10.0.0.5"}]}],
        "failover": [{"mclt": 0, "scopes": ["10.9.0.0"]}],
    }
    e = _errors(d)
    _has(e, "server.bogus: unknown key")
    _has(e, "server.listen.prot: unknown key (did you mean port?)")
    _has(e, 'server.server_id: not an IPv4 address: "1.2.3"')
    _has(e, "scopes[0].lease_tme: unknown key (did you mean lease_time?)")
    _has(e, 'scopes[0].mask: not a subnet mask: "255.0.255.0"')
    _has(e, "scopes[0].ranges[0]: end before start")
    _has(e, "failover[0].name: required")
    _has(e, "failover[0].role: required (primary or secondary)")
    _has(e, "failover[0].partner: required")
    _has(e, "failover[0].mclt: must be 1..2592000")
    _has(e, "failover[0].scopes[0]: no scope 10.9.0.0 is configured")
    assert len(e) == 11, e


def test_comment_keys_are_ignored_and_top_level_checked():
    d = _doc()
    d["_comment"] = "x"
    d["server"]["_note"] = {"anything": 1}
    d["scopes"][0]["_why"] = [1, 2]
    config.load(d)
    _has(_errors([]), "config: must be an object")
    e = _errors({"scopes": [], "failovr": []})
    _has(e, "server: required")
    _has(e, "failovr: unknown key (did you mean failover?)")
    _has(_errors({"server": {"server_id": "198.18.0.2"}, "scopes": {}}), "scopes: must be a list")


def test_server_fields():
    d = _doc()
    d["server"] = {"listen": {"address": "198.18.0.9", "port": 6767, "interface": "eth1"},
                   "id": "node-a", "decline_hold": 0, "log_level": "debug"}
    s = config.load(d).server
    assert s.server_id == IP((198, 18, 0, 9))  # from listen.address
    assert s.listen_port == 6767 and s.interface == "eth1" and s.name == "node-a"
    assert s.decline_hold == 0 and s.log_level == "debug"
    d["server"] = {"listen": {"port": 0}, "id": "a", "name": "b", "offer_hold": 0,
                   "time_skew_max": "60", "log_level": "loud", "data_dir": 5}
    e = _errors(d)
    _has(e, "server.id: give either id or name, not both")
    _has(e, "server.listen.port: must be 1..65535")
    _has(e, "server.server_id: required (or give a specific server.listen.address)")
    _has(e, "server.offer_hold: must be 1..3600")
    _has(e, "server.time_skew_max: must be an integer")
    _has(e, "server.log_level: must be one of debug, info, warning, error")
    _has(e, "server.data_dir: must be a string")
    d["server"] = {"server_id": "0.0.0.0"}
    _has(_errors(d), "server.server_id: must be a unicast address")


def test_mgmt_token_rules():
    d = _doc()
    d["server"]["mgmt"] = {"address": "198.18.0.2"}
    _has(_errors(d), "server.mgmt.token: required when mgmt.address is not a loopback address")
    d["server"]["mgmt"] = {"address": "198.18.0.2", "token": "short"}
    _has(_errors(d), "server.mgmt.token: too short (at least 8 characters)")
    d["server"]["mgmt"] = {"address": "198.18.0.2", "token": "long-enough-token", "port": 7000}
    s = config.load(d).server
    assert s.mgmt_token == "long-enough-token" and s.mgmt_port == 7000
    assert s.mgmt_address == IP((198, 18, 0, 2))


def test_ip_strings_are_strict():
    assert config.parse_ip("198.18.0.1") == IP((198, 18, 0, 1))
    assert config.parse_ip("255.255.255.255") == IP((255, 255, 255, 255))
    for bad in ("198.18.0", "198.18.0.1.2", "198.018.0.1", "198.18.0.256", "1.2.3.-4",
                "a.b.c.d", "", " 1.2.3.4", 3325165569, None):
        assert config.parse_ip(bad) is None, bad
    assert config.ip_str(IP((10, 0, 0, 1))) == "10.0.0.1"


def test_hex_and_mac_parsing():
    assert config.parse_mac("AA:bb:cc:dd:ee:ff") == IP((0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF))
    assert config.parse_mac("aa-bb-cc-dd-ee-ff") == config.parse_mac("aabb.ccdd.eeff")
    assert config.parse_mac("aabbccddeeff") == config.parse_mac("aa:bb:cc:dd:ee:ff")
    assert config.parse_mac("aa:bb:cc:dd:ee") is None
    assert config.parse_mac("aa:bb:cc:dd:ee:fg") is None
    assert config.parse_hex("01:02") == b"\x01\x02" and config.parse_hex("abc") is None
    assert config.mac_str(IP((2, 0, 0x5E, 0, 0, 1))) == "02:00:5e:00:00:01"


def test_masks_and_deltas():
    assert config.mask_of(24) == IP((255, 255, 255, 0))
    assert config.mask_of(23) == IP((255, 255, 254, 0))
    assert config.mask_of(0) == IP(4) and config.mask_of(32) == IP((255,) * 4)
    assert config.prefix_of(IP((255, 255, 248, 0))) == 21
    assert config.prefix_of(IP((255, 0, 255, 0))) == -1
    a = IP((198, 18, 0, 250))
    assert config.addr_delta(a, IP((198, 18, 1, 10))) == 16
    assert config.addr_delta(IP((198, 18, 1, 10)), a) == -16
    assert config.addr_delta(IP((10, 0, 255, 255)), IP((10, 1, 0, 0))) == 1
    assert config.addr_delta(IP((10, 0, 0, 0)), IP((200, 0, 0, 0))) == 1 << 25  # clamped


def test_scope_mask_and_id():
    d = _doc()
    d["scopes"][0]["mask"] = 23
    d["scopes"][0]["ranges"] = [{"start": "198.18.0.250", "end": "198.18.1.10"}]
    sc = config.load(d).scopes[0]
    assert sc.prefix == 23 and sc.mask == IP((255, 255, 254, 0))
    d = _doc()
    d["scopes"][0]["id"] = "198.18.0.7"
    _has(_errors(d), "scopes[0].id: not the network address of its mask (did you mean 198.18.0.0?)")
    d = _doc()
    d["scopes"][0]["mask"] = 31
    _has(_errors(d), "scopes[0].mask: prefix length must be 8..30")
    d["scopes"][0]["mask"] = "255.255.255.254"
    _has(_errors(d), "scopes[0].mask: prefix length must be 8..30")
    del d["scopes"][0]["mask"]
    del d["scopes"][0]["id"]
    e = _errors(d)
    _has(e, "scopes[0].id: required")
    _has(e, "scopes[0].mask: required")


def test_scope_fields_are_range_checked():
    d = _doc()
    s = d["scopes"][0]
    s["lease_time"] = 30
    s["offer_delay_ms"] = 5000
    s["active"] = "yes"
    s["bootp"] = 1
    s["name"] = "x" * 65
    e = _errors(d)
    _has(e, "scopes[0].lease_time: must be 60..31536000")
    _has(e, "scopes[0].offer_delay_ms: must be 0..1000")
    _has(e, "scopes[0].active: must be true or false")
    _has(e, "scopes[0].bootp: must be true or false")
    _has(e, "scopes[0].name: longer than 64 characters")
    s = _doc()
    s["scopes"][0]["lease_time"] = 3600.0
    _has(_errors(s), "scopes[0].lease_time: must be an integer")


def test_ranges_errors():
    d = _doc()
    d["scopes"][0]["ranges"] = [
        {"start": "198.18.0.10", "end": "198.18.0.20"},
        {"start": "198.18.0.20", "end": "198.18.0.30"},
        {"start": "198.18.0.0", "end": "198.18.0.5"},
        {"start": "198.18.0.250", "end": "198.18.0.255"},
        {"start": "198.18.1.1", "end": "198.18.1.2"},
        {"start": "198.18.0.40"},
        {"start": "198.18.0.50", "end": "198.18.0.60", "size": 3},
        "198.18.0.70-198.18.0.80",
    ]
    e = _errors(d)
    _has(e, "scopes[0].ranges[1]: overlaps scopes[0].ranges[0]")
    _has(e, "scopes[0].ranges[2].start: 198.18.0.0 is the network address")
    _has(e, "scopes[0].ranges[3].end: 198.18.0.255 is the broadcast address")
    _has(e, "scopes[0].ranges[4].start: 198.18.1.1 is outside 198.18.0.0/24")
    _has(e, "scopes[0].ranges[4].end: 198.18.1.2 is outside 198.18.0.0/24")
    _has(e, "scopes[0].ranges[5].end: required")
    _has(e, "scopes[0].ranges[6].size: unknown key")
    _has(e, "scopes[0].ranges[7]: must be an object")
    assert len(e) == 8, e
    d["scopes"][0]["ranges"] = []
    _has(_errors(d), "scopes[0].ranges: at least one range is required")


def test_pool_size_limit():
    d = _doc()
    d["scopes"][0].update({"id": "10.0.0.0", "mask": 8,
                           "ranges": [{"start": "10.0.0.1", "end": "10.1.0.0"}]})
    assert config.load(d).scopes[0].prefix == 8  # exactly 65536 addresses
    d["scopes"][0]["ranges"].append({"start": "10.2.0.0", "end": "10.2.0.0"})
    _has(_errors(d), "scopes[0].ranges: 65537 addresses in all, more than the limit of 65536 per scope")
    d["scopes"][0]["ranges"] = [{"start": "10.0.0.1", "end": "10.254.0.0"}]
    e = _errors(d)
    assert len(e) == 1 and e[0].startswith("scopes[0].ranges: ") and "more than the limit" in e[0]


def test_exclusions_and_reservations_errors():
    d = _doc()
    s = d["scopes"][0]
    s["exclusions"] = [{"start": "198.18.0.110", "end": "198.18.0.119"},
                       {"start": "198.18.0.20", "end": "198.18.0.30"},
                       {"start": "198.18.0.120", "end": "198.18.0.110"}]
    s["reservations"] = [
        {"address": "198.18.0.150", "mac": "02:00:00:00:00:01"},
        {"address": "198.18.0.150", "mac": "02:00:00:00:00:01"},
        {"address": "198.18.0.115", "client_id": "01:02:00:00:00:00:02"},
        {"address": "198.18.0.50", "client_id": "01:02:00:00:00:00:02"},
        {"address": "198.18.0.151", "mac": "02:00:00:00:00:03", "client_id": "0102"},
        {"address": "198.18.0.152"},
        {"address": "198.18.0.153", "mac": "02:00:00:00:00"},
        {"address": "198.18.0.154", "client_id": "zz"},
        {"mac": "02:00:00:00:00:09", "option": {}},
    ]
    e = _errors(d)
    _has(e, "scopes[0].exclusions[1]: 198.18.0.20-198.18.0.30 does not overlap any range")
    _has(e, "scopes[0].exclusions[2]: end before start")
    _has(e, "scopes[0].reservations[1].address: same address as scopes[0].reservations[0]")
    _has(e, "scopes[0].reservations[1].mac: same MAC as scopes[0].reservations[0]")
    _has(e, "scopes[0].reservations[2].address: 198.18.0.115 is inside exclusions[0]")
    # outside the ranges is a fixed address now: only its duplicate client id is wrong
    assert not [x for x in e if x.startswith("scopes[0].reservations[3].address")], e
    _has(e, "scopes[0].reservations[3].client_id: same client_id as scopes[0].reservations[2]")
    _has(e, "scopes[0].reservations[4]: give only one of mac and client_id")
    _has(e, "scopes[0].reservations[5]: mac or client_id is required")
    _has(e, 'scopes[0].reservations[6].mac: not a MAC address: "02:00:00:00:00"')
    _has(e, 'scopes[0].reservations[7].client_id: not a client identifier (hex, 2+ bytes): "zz"')
    _has(e, "scopes[0].reservations[8].address: required")
    _has(e, "scopes[0].reservations[8].option: unknown key (did you mean options?)")
    assert len(e) == 12, e


def test_reservation_values():
    d = _doc()
    d["scopes"][0]["reservations"] = [
        {"address": "198.18.0.150", "mac": "02-00-00-00-00-01", "name": "printer",
         "options": {"host-name": "printer"}},
        {"address": "198.18.0.151", "client_id": "01:02:00:00:00:00:02"},
    ]
    r = config.load(d).scopes[0].reservations
    assert r[0].address == IP((198, 18, 0, 150)) and r[0].mac == IP((2, 0, 0, 0, 0, 1))
    assert r[0].client_id is None and r[0].name == "printer"
    assert r[0].options == {12: b"printer"}
    assert r[1].client_id == IP((1, 2, 0, 0, 0, 0, 2)) and r[1].mac is None


def test_scope_overlap_and_duplicates():
    d = _doc()
    d["scopes"].append({"id": "198.18.0.0", "mask": 24,
                        "ranges": [{"start": "198.18.0.10", "end": "198.18.0.20"}]})
    d["scopes"].append({"id": "198.16.0.0", "mask": 14,
                        "ranges": [{"start": "198.17.5.10", "end": "198.17.5.20"}]})
    d["scopes"].append({"id": "198.19.0.0", "mask": "255.255.0.0",
                        "ranges": [{"start": "198.19.1.10", "end": "198.19.1.20"}]})
    e = _errors(d)
    _has(e, "scopes[1].id: duplicate of scopes[0]")
    _has(e, "scopes[2].id: 198.16.0.0/14 overlaps scopes[0] (198.18.0.0/24)")
    _has(e, "scopes[3].id: 198.19.0.0/16 overlaps scopes[2] (198.16.0.0/14)")
    assert len(e) == 3, e


def test_options_are_encoded_and_checked():
    d = _doc()
    d["server"]["options"] = {"domain-name-servers": ["198.18.0.53", "198.18.0.54"],
                              "15": "lab.example", "_c": "ignored"}
    d["scopes"][0]["options"] = {"routers": "198.18.0.1", "interface-mtu": 1400}
    c = config.load(d)
    assert c.server.options == {6: IP((198, 18, 0, 53, 198, 18, 0, 54)), 15: b"lab.example"}
    assert c.scopes[0].options == {3: IP((198, 18, 0, 1)), 26: b"\x05\x78"}
    d["scopes"][0]["options"] = {"routers": "198.18.0.300", "3": "198.18.0.1",
                                 "dhcp-lease-time": 60, "54": "198.18.0.2",
                                 "subnet-mask": "255.255.255.0", "no-such-option": 1,
                                 "interface-mtu": 10}
    e = _errors(d)
    _has(e, "scopes[0].options.routers: option 3 is also given as 3")
    _has(e, "scopes[0].options.dhcp-lease-time: option 51 cannot be configured (use lease_time)")
    _has(e, "scopes[0].options.54: option 54 cannot be configured (use server.server_id)")
    _has(e, "scopes[0].options.subnet-mask: option 1 cannot be configured "
            "(the subnet mask comes from the scope's mask)")
    _has(e, "scopes[0].options.interface-mtu: 10 is outside 68..65535")
    assert [x for x in e if x.startswith("scopes[0].options.no-such-option: ")], e
    assert len(e) == 6, e
    d["scopes"][0]["options"] = {"routers": "198.18.0.300"}
    e = _errors(d)
    assert len(e) == 1 and e[0].startswith("scopes[0].options.routers: ") and "198.18.0.300" in e[0]
    d["scopes"][0]["options"] = ["routers"]
    _has(_errors(d), "scopes[0].options: must be an object")


def test_policies_load_sorted_with_conditions():
    d = _doc()
    d["scopes"][0]["policies"] = [
        {"name": "late", "order": 5, "conditions": {"user_class": ["guest"]}},
        {"name": "phones", "order": 2, "lease_time": 600,
         "conditions": {"operator": "and",
                        "vendor_class": ["Polycom*", {"op": "ne", "value": "PolycomX"}],
                        "mac": ["00:04:f2:*"], "client_id": [{"value": "01:00:04", "prefix": True}]},
         "ranges": [{"start": "198.18.0.180", "end": "198.18.0.189"}],
         "options": {"tftp-server-name": "prov.example"}},
    ]
    pols = config.load(d).scopes[0].policies
    assert [p.name for p in pols] == ["phones", "late"]
    p = pols[0]
    assert p.order == 2 and p.enabled is True and p.operator == "and" and p.lease_time == 600
    assert [(m.op, m.value, m.prefix) for m in p.vendor_class] == [
        ("eq", b"Polycom", True), ("ne", b"PolycomX", False)]
    assert [(m.op, m.value, m.prefix) for m in p.mac] == [("eq", IP((0, 4, 0xF2)), True)]
    assert [(m.value, m.prefix) for m in p.client_id] == [(IP((1, 0, 4)), True)]
    assert p.ranges == [(IP((198, 18, 0, 180)), IP((198, 18, 0, 189)))]
    assert p.options == {66: b"prov.example"}
    assert pols[1].operator == "or" and pols[1].lease_time is None
    # order defaults to the position in the list
    d["scopes"][0]["policies"] = [{"name": "a", "conditions": {"user_class": ["x"]}},
                                  {"name": "b", "conditions": {"user_class": ["y"]}}]
    assert [p.order for p in config.load(d).scopes[0].policies] == [1, 2]


def test_policy_errors():
    d = _doc()
    d["scopes"][0]["ranges"].append({"start": "198.18.0.210", "end": "198.18.0.220"})
    d["scopes"][0]["policies"] = [
        {"name": "a", "conditions": {}},
        {"name": "a", "order": 1, "conditions": {"operator": "xor", "mac": ["02:00"]}},
        {"order": 3, "conditions": {"vendor_class": [{"op": "lt", "value": "x"}, 7, {"prefix": True}]},
         "ranges": [{"start": "198.18.0.195", "end": "198.18.0.212"}]},
        {"name": "c", "conditions": {"client_id": ["xyz"], "hostname": ["a"]},
         "ranges": [{"start": "198.18.0.150", "end": "198.18.0.160"},
                    {"start": "198.18.0.155", "end": "198.18.0.165"}]},
        {"name": "d"},
    ]
    e = _errors(d)
    _has(e, "scopes[0].policies[0].conditions: at least one condition is required")
    _has(e, "scopes[0].policies[1].name: duplicate of scopes[0].policies[0]")
    _has(e, "scopes[0].policies[1].order: order 1 is also used by scopes[0].policies[0]")
    _has(e, "scopes[0].policies[1].conditions.operator: must be one of or, and")
    _has(e, "scopes[0].policies[1].conditions.mac[0].value: a MAC is 6 bytes (end with * for a prefix)")
    _has(e, "scopes[0].policies[2].name: required")
    _has(e, "scopes[0].policies[2].conditions.vendor_class[0].op: must be one of eq, ne")
    _has(e, "scopes[0].policies[2].conditions.vendor_class[1]: must be an object")
    _has(e, "scopes[0].policies[2].conditions.vendor_class[2].value: required")
    _has(e, "scopes[0].policies[2].ranges[0]: 198.18.0.195-198.18.0.212 is not inside one range of the scope")
    _has(e, 'scopes[0].policies[3].conditions.client_id[0].value: not hex bytes: "xyz"')
    _has(e, "scopes[0].policies[3].conditions.hostname: unknown key")
    _has(e, "scopes[0].policies[3].ranges[1]: overlaps scopes[0].policies[3].ranges[0]")
    _has(e, "scopes[0].policies[4].conditions: required")
    assert len(e) == 14, e


def test_server_level_policies():
    d = _doc()
    d["server"]["policies"] = [{"name": "android", "conditions": {"vendor_class": ["android-dhcp-*"]},
                                "options": {"domain-name": "mobile.example"}}]
    p = config.load(d).server.policies[0]
    assert p.name == "android" and p.vendor_class[0].value == b"android-dhcp-"
    assert p.options == {15: b"mobile.example"}
    d["server"]["policies"][0]["ranges"] = [{"start": "198.18.0.100", "end": "198.18.0.110"}]
    _has(_errors(d), "server.policies[0].ranges: server-level policies cannot have ranges")


def test_failover_field_errors():
    d = _doc()
    d["failover"] = [_fo(name="x" * 127, role="boss", mode="active-active", mclt=-5,
                         load_balance_percent=101, max_unacked=0, max_response_delay=1,
                         load_balance_max_seconds=-1, auto_state_switchover=0,
                         partner={"address": "198.18.0.3", "port": 70000},
                         local={"adress": "198.18.0.2"}, shared_secret=5)]
    e = _errors(d)
    _has(e, "failover[0].name: longer than 126 characters")
    _has(e, "failover[0].role: must be one of primary, secondary")
    _has(e, "failover[0].mode: must be one of load-balance, hot-standby")
    _has(e, "failover[0].mclt: must be 1..2592000")
    _has(e, "failover[0].load_balance_percent: must be 0..100")
    _has(e, "failover[0].max_unacked: must be 1..1000")
    _has(e, "failover[0].max_response_delay: must be 3..3600")
    _has(e, "failover[0].load_balance_max_seconds: must be 0..3600")
    _has(e, "failover[0].auto_state_switchover: must be 1..2592000")
    _has(e, "failover[0].partner.port: must be 1..65535")
    _has(e, "failover[0].local.adress: unknown key (did you mean address?)")
    _has(e, "failover[0].shared_secret: must be a string")
    assert len(e) == 12, e


def test_failover_mode_specific_settings():
    d = _doc()
    d["failover"] = [_fo(reserve_percent=5, hot_standby_role="standby")]
    e = _errors(d)
    _has(e, "failover[0].reserve_percent: applies to hot-standby mode only")
    _has(e, "failover[0].hot_standby_role: applies to hot-standby mode only")
    d["failover"] = [_fo(mode="hot-standby", load_balance_percent=50, reserve_percent=101,
                         hot_standby_role="passive")]
    e = _errors(d)
    _has(e, "failover[0].load_balance_percent: applies to load-balance mode only")
    _has(e, "failover[0].reserve_percent: must be 0..100")
    _has(e, "failover[0].hot_standby_role: must be one of active, standby")


def test_failover_scope_rules():
    d = _doc()
    d["scopes"].append({"id": "198.18.1.0", "mask": 24, "bootp": True,
                        "ranges": [{"start": "198.18.1.10", "end": "198.18.1.20"}]})
    d["failover"] = [
        _fo(scopes=["198.18.0.0", "198.18.1.0", "198.18.0.0", "nope"]),
        _fo(name="other", scopes=["198.18.0.0"]),
        _fo(name="pair", scopes=[]),
    ]
    e = _errors(d)
    _has(e, "failover[0].scopes[1]: failover is not supported for BOOTP scopes (scope 198.18.1.0)")
    _has(e, "failover[0].scopes[2]: listed twice")
    _has(e, 'failover[0].scopes[3]: not a scope id (IPv4 network address): "nope"')
    _has(e, "failover[1].scopes[0]: scope 198.18.0.0 is already in relationship pair")
    _has(e, "failover[2].scopes: at least one scope is required")
    _has(e, "failover[2].name: duplicate of failover[0]")
    assert len(e) == 6, e


def test_failover_endpoints_and_auth():
    d = _doc()
    d["failover"] = [_fo(partner={"address": "198.18.0.2"}, enable_authentication=True)]
    e = _errors(d)
    _has(e, "failover[0].partner: same address and port as local")
    _has(e, "failover[0].enable_authentication: needs a shared_secret")
    # two nodes on one host: same address, different ports is fine
    d["failover"] = [_fo(partner={"address": "127.0.0.1", "port": 6471},
                         local={"address": "127.0.0.1", "port": 6470})]
    f = config.load(d).failover[0]
    assert (f.local_address, f.local_port, f.partner_port) == (IP((127, 0, 0, 1)), 6470, 6471)
    d["failover"] = [_fo(max_response_delay=20, receive_timer=20)]
    _has(_errors(d), "failover[0].receive_timer: give either max_response_delay or receive_timer")
    d["failover"] = [_fo(shared_secret="")]
    _has(_errors(d), "failover[0].shared_secret: must not be empty")


def test_at_most_31_relationships():
    d = _doc()
    d["scopes"] = []
    d["failover"] = []
    for i in range(32):
        net = "198.18.%d.0" % i
        d["scopes"].append({"id": net, "mask": 24,
                            "ranges": [{"start": "198.18.%d.10" % i, "end": "198.18.%d.20" % i}]})
        d["failover"].append(_fo(name="r%d" % i, scopes=[net]))
    _has(_errors(d), "failover: 32 relationships, at most 31 are allowed")
    d["failover"].pop()
    assert len(config.load(d).failover) == 31


def test_load_text():
    c = config.load_text('{"server": {"server_id": "198.18.0.2"}}')
    assert c.scopes == [] and c.failover == []
    c = config.load_text(b'{"server": {"server_id": "198.18.0.2"}}')
    assert c.server.server_id == IP((198, 18, 0, 2))
    for bad in ('{"server": ', "", "[1,", b"\xff\xfe"):
        try:
            config.load_text(bad)
        except ConfigError as e:
            assert len(e.errors) == 1 and e.errors[0].startswith("config: not "), e.errors
        else:
            raise AssertionError("accepted %r" % (bad,))
    try:
        config.load_text('"just a string"')
    except ConfigError as e:
        assert e.errors == ["config: must be an object"]


def test_input_document_is_not_modified():
    d = _doc()
    d["failover"] = [_fo()]
    before = repr(d)
    config.load(d)
    assert repr(d) == before


def test_pair_errors_find_mismatches():
    a = _doc()
    a["failover"] = [_fo(load_balance_percent=70, local={"address": "198.18.0.2"})]
    b = _doc()
    b["server"]["server_id"] = "198.18.0.3"
    b["failover"] = [_fo(role="secondary", load_balance_percent=30,
                         partner={"address": "198.18.0.2"})]
    ca, cb = config.load(a), config.load(b)
    assert config.pair_errors(ca, cb) == [] and config.pair_errors(cb, ca) == []
    b["failover"][0]["load_balance_percent"] = 50
    b["failover"][0]["mclt"] = 600
    b["scopes"][0]["lease_time"] = 3600
    out = config.pair_errors(ca, config.load(b))
    assert "failover pair: mclt 3600 here, 600 on the partner" in out
    assert "failover pair: load_balance_percent 70 + 50 is not 100" in out
    assert "failover pair: scope 198.18.0.0 is configured differently" in out
    assert len(out) == 3, out
    b["failover"][0]["role"] = "primary"
    b["failover"][0]["partner"] = {"address": "198.18.0.9"}
    out = config.pair_errors(ca, config.load(b))
    assert "failover pair: both ends are primary" in out
    assert "failover pair: local address here is not the partner's partner address" in out
    assert "failover pair: partner address here is not the partner's local address" in \
        config.pair_errors(config.load(b), ca)


def test_manifest_freezes_every_board_module_and_nothing_host_only():
    """firmware/manifest.py lists the board's module set: every firmware module
    but the host-only ones (option tables, CPython drivers)."""
    import os
    root = os.path.join(os.path.dirname(__file__), "..", "..", "firmware")
    calls = []
    env = {"module": lambda path, base_path=".", opt=None: calls.append(path)}
    with open(os.path.join(root, "manifest.py")) as f:
        exec(compile(f.read(), "manifest.py", "exec"), env)
    found = set()
    for sub in ("dhcpfo", "runtime"):
        for dirpath, dirs, files in os.walk(os.path.join(root, sub)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for n in files:
                if n.endswith(".py"):
                    found.add(os.path.relpath(os.path.join(dirpath, n), root).replace(os.sep, "/"))
    host_only = {"dhcpfo/wire/options.py", "runtime/host.py", "runtime/udp.py"}
    assert sorted(calls) == sorted(found - host_only)


def test_write_compiled_gives_the_file_a_board_loads(tmp_path):
    doc = {"server": {"server_id": "198.18.0.2"},
           "scopes": [{"id": "198.18.0.0", "mask": 24, "description": "lab",
                       "ranges": [{"start": "198.18.0.10", "end": "198.18.0.20"}],
                       "options": {"domain-name-servers": ["198.18.0.1"]}}]}
    path = str(tmp_path / "config.json")
    n = boardconf.write_compiled(doc, path)
    text = open(path).read()
    assert n == len(text) and '"format":"dhcpfo-compiled-1"' in text
    assert "description" not in text and "domain-name-servers" not in text
    c = fw.load_text(text)
    assert c.scopes[0].options == {6: b"\xc6\x12\x00\x01"}
    assert boardconf.load_file(path).scopes[0].ranges == c.scopes[0].ranges  # compiled file
    human = str(tmp_path / "human.json")
    with open(human, "w") as f:
        import json
        json.dump(doc, f)
    assert boardconf.load_file(human).scopes[0].options == c.scopes[0].options  # human file
    try:
        fw.load_text(open(human).read())
    except ConfigError as e:
        assert e.errors[0].startswith("format: ")
    else:
        raise AssertionError("the board loader took a human document")


def test_compile_refuses_what_a_board_would_refuse():
    doc = {"server": {"server_id": "198.18.0.2"},
           "scopes": [{"id": "198.18.0.0", "mask": 24,
                       "ranges": [{"start": "198.18.0.10", "end": "198.18.0.20"}]}],
           "failover": [{"name": "p", "role": "primary", "partner": {"address": "198.18.0.3"},
                         "scopes": ["198.18.0.0"], "shared_secret": "\u00e9" * 600}]}
    try:
        boardconf.compile_config(doc)
    except ConfigError as e:
        assert e.errors == ["failover[0].shared_secret: must be 1..1024 bytes as hex"], e.errors
    else:
        raise AssertionError("compiled a secret longer than a board takes")
