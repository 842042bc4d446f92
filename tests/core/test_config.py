"""config: the board's loader of the compiled form. It trusts the host's
validation for everything but what keeps the node safe (field types, sizes,
ranges inside the subnet) and refuses a damaged file by path."""
from dhcpfo import config
from dhcpfo.config import ConfigError
from dhcpfo_host import boardconf

IP = bytes


def _human():
    return {
        "server": {"server_id": "198.18.0.2"},
        "scopes": [{
            "id": "198.18.0.0", "mask": 24,
            "ranges": [{"start": "198.18.0.100", "end": "198.18.0.199"}],
            "exclusions": [{"start": "198.18.0.150", "end": "198.18.0.151"}],
            "reservations": [{"address": "198.18.0.120", "mac": "02:00:5e:10:00:01"}],
            "options": {"routers": ["198.18.0.1"], "domain-name": "lab"},
            "policies": [{"name": "phones", "conditions": {"vendor_class": ["Poly*"]},
                          "ranges": [{"start": "198.18.0.180", "end": "198.18.0.189"}]}],
        }],
        "failover": [{"name": "pair", "role": "primary", "partner": {"address": "198.18.0.3"},
                      "scopes": ["198.18.0.0"], "shared_secret": "s3cret"}],
    }


def _doc():
    return boardconf.compile_config(_human())


def _refused(doc, path):
    try:
        config.load(doc)
    except ConfigError as e:
        assert len(e.errors) == 1 and e.errors[0].startswith(path + ": "), e.errors
        return e.errors[0]
    raise AssertionError("loaded a malformed compiled document")


def test_compiled_document_loads_into_plain_attributes():
    c = config.load(_doc())
    s = c.server
    assert s.server_id == IP((198, 18, 0, 2)) and s.listen_port == 67
    assert s.mgmt_address == IP((127, 0, 0, 1)) and s.log_level == "info"
    sc = c.scopes[0]
    assert sc.id == IP((198, 18, 0, 0)) and sc.prefix == 24 and sc.mask == IP((255, 255, 255, 0))
    assert sc.ranges == [(IP((198, 18, 0, 100)), IP((198, 18, 0, 199)))]
    assert sc.exclusions == [(IP((198, 18, 0, 150)), IP((198, 18, 0, 151)))]
    assert sc.options == {3: IP((198, 18, 0, 1)), 15: b"lab"}
    assert sc.reservations[0].mac == IP((2, 0, 0x5E, 0x10, 0, 1))
    pol = sc.policies[0]
    assert pol.vendor_class[0].value == b"Poly" and pol.vendor_class[0].prefix is True
    assert pol.ranges == [(IP((198, 18, 0, 180)), IP((198, 18, 0, 189)))]
    f = c.failover[0]
    assert f.name == "pair" and f.is_primary and f.shared_secret == b"s3cret"
    assert f.enable_authentication is True and f.scopes == [sc.id] and sc.failover == "pair"


def test_compiled_text_round_trips():
    text = boardconf.compiled_text(_human())
    c = config.load_text(text.encode())
    assert c.scopes[0].options[15] == b"lab"


def test_human_document_is_refused_with_a_pointer_to_the_compiler():
    msg = _refused(_human(), "format")
    assert "compile" in msg


def test_bad_json_and_wrong_types_are_refused():
    for text in ("{", b"\xff", "[]"):
        try:
            config.load_text(text)
        except ConfigError as e:
            assert e.errors[0].startswith("config: ") or e.errors[0].startswith("format: ")
        else:
            raise AssertionError(text)
    d = _doc()
    d["server"]["listen_port"] = "67"
    _refused(d, "server.listen_port")
    d = _doc()
    d["scopes"][0]["active"] = 1
    _refused(d, "scopes[0].active")
    d = _doc()
    del d["scopes"][0]["lease_time"]
    _refused(d, "scopes[0].lease_time")
    d = _doc()
    d["scopes"] = {}
    _refused(d, "scopes")


def test_ranges_must_lie_inside_the_subnet():
    for bad in (["198.18.0.100", "198.18.1.5"], ["198.18.0.0", "198.18.0.9"],
                ["198.18.0.250", "198.18.0.255"], ["198.18.0.20", "198.18.0.10"],
                ["198.18.0.1"], ["198.18.0.1", "1.2.3"]):
        d = _doc()
        d["scopes"][0]["ranges"] = [bad]
        d["scopes"][0]["exclusions"] = []
        d["scopes"][0]["reservations"] = []
        d["scopes"][0]["policies"] = []
        _refused(d, "scopes[0].ranges[0]")
    d = _doc()
    d["scopes"][0]["exclusions"] = [["10.0.0.1", "10.0.0.2"]]
    _refused(d, "scopes[0].exclusions[0]")


def test_overlaps_and_pool_size_are_refused():
    d = _doc()
    d["scopes"][0]["ranges"].append(["198.18.0.199", "198.18.0.210"])
    _refused(d, "scopes[0].ranges[1]")
    d = _doc()
    d["scopes"][0]["id"] = "10.0.0.0"
    d["scopes"][0]["prefix"] = 8
    d["scopes"][0]["ranges"] = [["10.0.0.1", "10.1.0.1"]]
    d["scopes"][0]["exclusions"] = []
    d["scopes"][0]["reservations"] = []
    d["scopes"][0]["policies"] = []
    d["failover"] = []
    _refused(d, "scopes[0].ranges[0]")
    d = _doc()
    d["scopes"].append(dict(d["scopes"][0]))
    d["scopes"][1]["id"] = "198.18.0.0"
    _refused(d, "scopes[1]")


def test_scope_network_and_prefix_are_checked():
    d = _doc()
    d["scopes"][0]["prefix"] = 31
    _refused(d, "scopes[0].prefix")
    d = _doc()
    d["scopes"][0]["id"] = "198.18.0.1"
    _refused(d, "scopes[0].id")


def test_reservations_stay_in_the_subnet_and_policy_ranges_inside_the_pool():
    d = _doc()
    d["scopes"][0]["reservations"][0]["address"] = "198.18.0.20"  # outside the ranges: a fixed address
    assert config.load(d).scopes[0].reservations[0].address == bytes((198, 18, 0, 20))
    for bad in ("198.18.1.20", "198.18.0.0", "198.18.0.255"):
        d["scopes"][0]["reservations"][0]["address"] = bad
        _refused(d, "scopes[0].reservations[0].address")
    d = _doc()
    d["scopes"][0]["reservations"][0]["client_id"] = "0102"
    _refused(d, "scopes[0].reservations[0]")
    d = _doc()
    d["scopes"][0]["reservations"][0]["mac"] = "0200"
    _refused(d, "scopes[0].reservations[0].mac")
    d = _doc()
    d["scopes"][0]["policies"][0]["ranges"] = [["198.18.0.90", "198.18.0.110"]]
    _refused(d, "scopes[0].policies[0].ranges[0]")
    d = _doc()
    d["server"]["policies"] = d["scopes"][0]["policies"]
    _refused(d, "server.policies[0].ranges")


def test_option_items_are_checked_for_code_and_size():
    for bad in ([0, "00"], [255, ""], ["3", "c6120001"], [3, "zz"], [3, "00" * 1025], [3]):
        d = _doc()
        d["scopes"][0]["options"] = [bad]
        _refused(d, "scopes[0].options[0]")
    d = _doc()
    d["scopes"][0]["options"] = [[3, "c6120001"], [3, "c6120002"]]
    _refused(d, "scopes[0].options[1]")


def test_relationships_reference_known_scopes_once():
    d = _doc()
    d["failover"][0]["scopes"] = ["198.18.5.0"]
    _refused(d, "failover[0].scopes[0]")
    d = _doc()
    d["failover"].append(dict(d["failover"][0]))
    _refused(d, "failover[1].scopes[0]")
    d = _doc()
    d["failover"][0]["shared_secret"] = None
    _refused(d, "failover[0].enable_authentication")
    d = _doc()
    d["failover"][0]["load_balance_percent"] = None
    _refused(d, "failover[0].load_balance_percent")
    d = _doc()
    d["failover"][0]["mode"] = "hot standby"
    _refused(d, "failover[0].mode")


def test_address_and_mask_helpers():
    assert config.parse_ip("198.18.0.1") == IP((198, 18, 0, 1))
    for bad in ("198.18.0.01", "198.18.0", "198.18.0.256", " 1.2.3.4", 5, "1.2.3.a"):
        assert config.parse_ip(bad) is None, bad
    assert config.mask_of(20) == IP((255, 255, 240, 0)) and config.prefix_of(config.mask_of(20)) == 20
    assert config.prefix_of(IP((255, 0, 255, 0))) == -1
    assert config.addr_delta(IP((10, 0, 0, 1)), IP((10, 0, 1, 0))) == 255
    assert config.parse_mac("02-00-5e-10-00-01") == IP((2, 0, 0x5E, 0x10, 0, 1))
    assert config.mac_str(IP((2, 0, 0x5E, 0x10, 0, 1))) == "02:00:5e:10:00:01"
