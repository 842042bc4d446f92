# Typed option values: config JSON -> wire bytes -> display values, and the
# errors an admin sees for bad values. Runs under pytest and MicroPython.

from dhcpfo.wire import options as o
from dhcpfo.wire.options import OptionValueError, decode_option_value, encode_option_value


def err(name, value):
    try:
        encode_option_value(name, value)
    except OptionValueError as e:
        return e.reason, str(e)
    raise AssertionError("accepted %r=%r" % (name, value))


def test_names_codes_and_aliases():
    assert encode_option_value("routers", "198.18.0.1") == (3, b"\xc6\x12\x00\x01")
    for name in ("domain-name-servers", "Domain_Name_Servers", "DNS-SERVERS", "dns_servers", 6, "6", "option-6"):
        assert encode_option_value(name, ["9.9.9.9"])[0] == 6
    assert o.option_code("classless_static_routes") == 121
    assert o.option_code("rfc3442-classless-static-routes") == 121
    assert o.option_name(42) == "ntp-servers" and o.option_name(200) == "option-200"
    assert o.option_type(121) == o.T_ROUTES and o.option_type(200) == o.T_BYTES


def test_unknown_and_reserved_options():
    assert err("no-such-option", 1)[0] == "unknown-option"
    assert err(0, "0x01")[0] == "unknown-option"
    assert err(255, "0x01")[0] == "unknown-option"
    assert err("1234", "0x01")[0] == "unknown-option"
    assert err(None, 1)[0] == "unknown-option"
    for code in (52, 53):
        assert err(code, "0x01")[0] == "reserved-option"


def test_addresses():
    assert encode_option_value("subnet-mask", "255.255.255.128")[1] == b"\xff\xff\xff\x80"
    assert encode_option_value("domain-name-servers", ["9.9.9.9", "1.1.1.1"])[1] == b"\x09\x09\x09\x09\x01\x01\x01\x01"
    assert encode_option_value("ntp-servers", "10.0.0.1, 10.0.0.2 10.0.0.3")[1] == bytes([10, 0, 0, 1, 10, 0, 0, 2, 10, 0, 0, 3])
    assert encode_option_value(150, ["198.18.0.5"])[1] == b"\xc6\x12\x00\x05"
    assert o.parse_ip(" 0.0.0.0 ") == b"\x00\x00\x00\x00"
    assert o.parse_ip("255.255.255.255") == b"\xff\xff\xff\xff"


def test_address_errors():
    for bad in ("256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.-4", "1. 2.3.4", "a.b.c.d", "", "1.2.3.4/24"):
        r, msg = err("routers", [bad])
        assert r == "bad-ip" and "routers" in msg, bad
    assert err("routers", 3232235521)[0] == "bad-type"  # an int is not an address here
    assert err("routers", [])[0] == "empty"
    assert err("subnet-mask", "255.0.255.0")[0] == "bad-mask"
    assert err("subnet-mask", "255.255.255.1")[0] == "bad-mask"
    assert err("broadcast-address", ["1.2.3.4"])[0] == "bad-ip"


def test_integers_and_limits():
    assert encode_option_value("dhcp-lease-time", 3600)[1] == b"\x00\x00\x0e\x10"
    assert encode_option_value("lease-time", "infinite")[1] == b"\xff\xff\xff\xff"
    assert encode_option_value("dhcp-lease-time", 4294967295)[1] == b"\xff\xff\xff\xff"
    assert encode_option_value("time-offset", -18000)[1] == b"\xff\xff\xb9\xb0"
    assert encode_option_value("interface-mtu", 1500)[1] == b"\x05\xdc"
    assert encode_option_value("default-ip-ttl", 64)[1] == b"\x40"
    assert encode_option_value("netbios-node-type", 8)[1] == b"\x08"
    assert err("interface-mtu", 67)[0] == "out-of-range"
    assert err("dhcp-lease-time", 4294967296)[0] == "out-of-range"
    assert err("dhcp-lease-time", -1)[0] == "out-of-range"
    assert err("default-ip-ttl", 0)[0] == "out-of-range"
    assert err("netbios-node-type", 3)[0] == "out-of-range"
    assert err("dhcp-lease-time", "3600")[0] == "bad-type"
    assert err("dhcp-lease-time", 3600.5)[0] == "bad-type"
    assert err("dhcp-lease-time", True)[0] == "bad-type"


def test_booleans_and_strings():
    assert encode_option_value("ip-forwarding", False)[1] == b"\x00"
    assert encode_option_value("ip-forwarding", True)[1] == b"\x01"
    assert encode_option_value("ip-forwarding", 1)[1] == b"\x01"
    assert err("ip-forwarding", "yes")[0] == "bad-type"
    assert err("ip-forwarding", 2)[0] == "bad-type"
    assert encode_option_value("domain-name", "example.org")[1] == b"example.org"
    assert encode_option_value("tftp-server-name", "boot.example.org")[1] == b"boot.example.org"
    assert encode_option_value("wpad", "http://wpad.example.org/wpad.dat")[0] == 252
    assert err("host-name", "")[0] == "empty"
    assert err("domain-name", ["example.org"])[0] == "bad-type"
    assert err("domain-name", "x" * 1025)[0] == "too-long"


def test_raw_hex_values():
    assert encode_option_value("vendor-encapsulated-options", "0x0104c0a80001")[1] == b"\x01\x04\xc0\xa8\x00\x01"
    assert encode_option_value(43, "01:04:c0:a8:00:01")[1] == b"\x01\x04\xc0\xa8\x00\x01"
    assert encode_option_value(43, [1, 2, 255])[1] == b"\x01\x02\xff"
    assert encode_option_value("option-224", "0xDEADbeef") == (224, b"\xde\xad\xbe\xef")
    # raw hex overrides the type of any option
    assert encode_option_value("routers", "0xc6120001")[1] == b"\xc6\x12\x00\x01"
    assert err(43, "0x123")[0] == "bad-hex"
    assert err(43, "0xzz")[0] == "bad-hex"
    assert err(43, "0x")[0] == "bad-hex"
    assert err(43, "plain text")[0] == "bad-hex"
    assert err(43, [1, 256])[0] == "out-of-range"
    assert err(43, 5)[0] == "bad-type"


def test_lists_of_small_ints():
    assert encode_option_value("dhcp-parameter-request-list", [1, 3, 6])[1] == b"\x01\x03\x06"
    assert encode_option_value("path-mtu-plateau-table", [68, 1500])[1] == b"\x00\x44\x05\xdc"
    assert err("path-mtu-plateau-table", [67])[0] == "out-of-range"
    assert err("dhcp-parameter-request-list", [])[0] == "bad-type"


def test_domain_search_rfc3397_example():
    # RFC 3397 §3: "eng.apple.com." and "marketing.apple.com." with a pointer.
    want = (b"\x03eng\x05apple\x03com\x00"
            b"\x09marketing\xc0\x04")
    assert encode_option_value("domain-search", ["eng.apple.com.", "marketing.apple.com."]) == (119, want)
    assert decode_option_value(119, want) == ["eng.apple.com", "marketing.apple.com"]
    # a repeated name becomes a single pointer
    b = encode_option_value(119, "example.com example.com")[1]
    assert b == b"\x07example\x03com\x00\xc0\x00"
    assert decode_option_value(119, b) == ["example.com", "example.com"]


def test_domain_search_errors_and_hostile_pointers():
    assert err("domain-search", ["a..b"])[0] == "bad-domain"
    assert err("domain-search", ["bad label.com"])[0] == "bad-domain"
    assert err("domain-search", ["x" * 64 + ".com"])[0] == "bad-domain"
    assert err("domain-search", [("a" * 60 + ".") * 5])[0] == "bad-domain"
    assert err("domain-search", [])[0] == "bad-type"
    assert decode_option_value(119, b"\xc0\x00") == "0xc000"  # points at itself
    assert decode_option_value(119, b"\x03abc") == "0x03616263"  # no terminator
    assert decode_option_value(119, b"\x01a\xc0\x05") == "0x0161c005"  # points forward


def test_classless_static_routes_rfc3442():
    code, b = encode_option_value("classless-static-routes", [
        "0.0.0.0/0 198.18.0.1",
        "10.0.0.0/8 via 198.18.0.2",
        ["10.17.0.0/16", "198.18.0.3"],
        "10.229.0.128/25,198.18.0.4",
        "192.0.2.7/32 198.18.0.5",
    ])
    assert code == 121
    assert b == (b"\x00\xc6\x12\x00\x01"
                 b"\x08\x0a\xc6\x12\x00\x02"
                 b"\x10\x0a\x11\xc6\x12\x00\x03"
                 b"\x19\x0a\xe5\x00\x80\xc6\x12\x00\x04"
                 b"\x20\xc0\x00\x02\x07\xc6\x12\x00\x05")
    assert decode_option_value(121, b) == [
        "0.0.0.0/0 198.18.0.1", "10.0.0.0/8 198.18.0.2", "10.17.0.0/16 198.18.0.3",
        "10.229.0.128/25 198.18.0.4", "192.0.2.7/32 198.18.0.5",
    ]
    assert err(121, ["10.0.0.1/8 198.18.0.1"])[0] == "bad-route"  # host bits
    assert err(121, ["10.0.0.0/33 198.18.0.1"])[0] == "bad-route"
    assert err(121, ["10.0.0.0 198.18.0.1"])[0] == "bad-route"
    assert err(121, ["10.0.0.0/8"])[0] == "bad-route"
    assert err(121, "10.0.0.0/8 198.18.0.1")[0] == "bad-type"
    assert decode_option_value(121, b"\x21\x0a") == "0x210a"


def test_static_routes_pairs():
    b = encode_option_value("static-routes", [["192.0.2.0", "198.18.0.1"], "198.51.100.0 198.18.0.2"])[1]
    assert b == b"\xc0\x00\x02\x00\xc6\x12\x00\x01\xc6\x33\x64\x00\xc6\x12\x00\x02"
    assert decode_option_value(33, b) == [["192.0.2.0", "198.18.0.1"], ["198.51.100.0", "198.18.0.2"]]
    assert err("static-routes", [["0.0.0.0", "198.18.0.1"]])[0] == "bad-route"
    assert err("static-routes", [["192.0.2.0"]])[0] == "bad-type"


def test_decode_for_display():
    assert decode_option_value(1, b"\xff\xff\xff\x00") == "255.255.255.0"
    assert decode_option_value(3, b"\x0a\x00\x00\x01\x0a\x00\x00\x02") == ["10.0.0.1", "10.0.0.2"]
    assert decode_option_value(51, b"\x00\x00\x0e\x10") == 3600
    assert decode_option_value(2, b"\xff\xff\xb9\xb0") == -18000
    assert decode_option_value(26, b"\x05\xdc") == 1500
    assert decode_option_value(19, b"\x01") is True
    assert decode_option_value(12, b"laptop\x00") == "laptop"
    assert decode_option_value(12, b"bad\x01name") == "0x626164016e616d65"
    assert decode_option_value(12, b"\xff\xfe") == "0xfffe"
    assert decode_option_value(12, "café".encode()) == "café"
    assert decode_option_value(55, b"\x01\x03") == [1, 3]
    assert decode_option_value(61, b"\x01\x00\x0c") == "0x01000c"
    assert decode_option_value(200, b"") == "0x"
    # wrong lengths never raise, they show as hex
    assert decode_option_value(1, b"\xff") == "0xff"
    assert decode_option_value(3, b"\x0a\x00\x00") == "0x0a0000"
    assert decode_option_value(19, b"\x07") == "0x07"
    assert decode_option_value(25, b"\x01") == "0x01"


def test_encode_decode_agree_for_every_table_type():
    samples = {
        o.T_IP: "198.18.0.1", o.T_IPS: ["198.18.0.1", "198.18.0.2"],
        o.T_IPPAIRS: [["192.0.2.0", "198.18.0.1"]], o.T_U8: 64, o.T_U16: 1500,
        o.T_U32: 86400, o.T_I32: -3600, o.T_BOOL: True, o.T_STR: "text",
        o.T_BYTES: "0x0102", o.T_U8S: [1, 2], o.T_U16S: [576, 1500],
        o.T_DOMAINS: ["example.org"], o.T_ROUTES: ["10.0.0.0/8 198.18.0.1"],
    }
    for code, name, t in o.OPTIONS:
        if code in (52, 53):
            continue
        value = samples[t]
        if code == 46:
            value = 8
        elif code == 1:
            value = "255.255.255.0"
        got_code, b = encode_option_value(name, value)
        assert got_code == code
        shown = decode_option_value(code, b)
        if t == o.T_ROUTES:
            assert shown == ["10.0.0.0/8 198.18.0.1"]
        else:
            assert shown == value, (name, shown)
