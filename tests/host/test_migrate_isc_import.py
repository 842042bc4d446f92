"""`dhcpfo import isc` on the pfSense-style sample and on bad input: the
result loads with config.load, its store loads into a real node, every
unmapped construct is reported with file and line, errors never traceback."""
from dhcpfo_host import boardconf
import calendar
import json
import os
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from dhcpfo import config
from dhcpfo.compat import EPOCH
from dhcpfo.lease import table as lt
from dhcpfo.node import Node
from dhcpfo_host.migrate import isc_import as ii
from dhcpfo_host.migrate.iscsyntax import IscSyntaxError, parse, tokenize
from runtime.store import LeaseStore

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONF = os.path.join(ROOT, "examples", "isc", "dhcpd.conf")
LEASES = os.path.join(ROOT, "examples", "isc", "dhcpd.leases")
B = bytes


def ip(s):
    return B(int(x) for x in s.split("."))


def mac(s):
    return B(int(x, 16) for x in s.split(":"))


def _import(tmp_path, **kw):
    out = str(tmp_path / "out")
    doc, report, summary = ii.run_import(CONF, LEASES, out, **kw)
    with open(os.path.join(out, "dhcpfo.json")) as f:
        cfg = boardconf.load_text(f.read())
    return out, doc, cfg, report, summary


def _node_with_store(cfg, data_dir):
    node = Node(cfg)
    store = LeaseStore(data_dir)
    stats = store.load(node.tables_by_scope(), node.restore_meta)
    store.close()
    return node, stats


def test_sample_config_maps_scopes_pools_hosts_classes_failover(tmp_path):
    out, doc, cfg, report, summary = _import(tmp_path)
    assert cfg.server.server_id == ip("198.18.0.2")  # the failover peer's own address
    assert cfg.server.options == {15: b"home.arpa"}
    lan, guest = cfg.scopes
    assert (lan.id, lan.prefix, lan.lease_time) == (ip("198.18.0.0"), 24, 7200)
    assert (guest.id, guest.lease_time) == (ip("198.18.1.0"), 3600)
    # both pools joined; fixed addresses outside them stay reservations outside the ranges
    assert lan.ranges == [(ip("198.18.0.100"), ip("198.18.0.219"))]
    assert guest.ranges == [(ip("198.18.1.50"), ip("198.18.1.150"))]
    # min/max-lease-time (the global max for the LAN, the guest subnet's own), authoritative
    assert (lan.min_lease_time, lan.max_lease_time) == (None, 86400)
    assert (guest.min_lease_time, guest.max_lease_time) == (None, 7200)
    assert cfg.server.authoritative is True and lan.authoritative and guest.authoritative
    # a declared code our table lacks: a definition, and its value as text
    assert doc["server"]["option_definitions"] == [
        {"code": 95, "name": "ldap-server", "type": "string"},
        {"code": 93, "name": "arch", "type": "uint16"},
        {"code": 224, "name": "custom-lan-224", "type": "string"}]  # 119 and 121 we know
    assert doc["scopes"][0]["options"]["custom-lan-224"] == "lab-lan"
    assert doc["scopes"][0]["options"]["ldap-server"] == "ldap://198.18.0.7/"
    # options: standard names, and the declared ones (224 text, 121 as octets)
    assert lan.options[3] == ip("198.18.0.1")
    assert lan.options[6] == ip("198.18.0.1") + ip("198.18.0.53")
    assert lan.options[224] == b"lab-lan"
    assert lan.options[121] == B([24, 10, 1, 2, 198, 18, 0, 254, 0, 198, 18, 0, 1])
    assert lan.options[95] == b"ldap://198.18.0.7/"
    # hosts -> reservations (mac, client id, options)
    res = dict((r.address, r) for r in lan.reservations)
    assert res[ip("198.18.0.10")].mac == mac("02:00:5e:10:00:10")
    assert res[ip("198.18.0.10")].options == {12: b"printer"}
    assert res[ip("198.18.0.11")].client_id == B([1, 2, 0, 0x5e, 0x10, 0, 0x11])
    assert res[ip("198.18.0.150")].options == {6: ip("198.18.0.53")}
    # class with an allow-members pool -> scope policy owning that pool
    (voip,) = lan.policies
    assert voip.name == "s_lan_voip" and voip.operator == "or"
    assert [(m.op, m.value, m.prefix) for m in voip.vendor_class] == [
        ("eq", b"Polycom", True), ("eq", b"Yealink", True)]
    assert voip.ranges == [(ip("198.18.0.200"), ip("198.18.0.219"))]
    assert voip.lease_time == 86400 and voip.options == {66: b"198.18.0.5"}
    # class used by no pool but setting an option -> server-level policy
    (cams,) = cfg.server.policies
    assert [(m.op, m.value, m.prefix) for m in cams.mac] == [("eq", mac("00:04:f2:00:00:00")[:3], True)]
    assert cams.options == {42: ip("198.18.0.1")}
    # failover peer -> relationship on the scope whose pools name it
    (rel,) = cfg.failover
    assert (rel.name, rel.role, rel.mode) == ("dhcp_lan", "primary", "load-balance")
    assert (rel.local_address, rel.local_port) == (ip("198.18.0.2"), 519)
    assert (rel.partner_address, rel.partner_port) == (ip("198.18.0.3"), 520)
    assert (rel.mclt, rel.max_response_delay, rel.max_unacked) == (600, 10, 10)
    assert (rel.load_balance_percent, rel.load_balance_max_seconds) == (50, 3)
    assert rel.scopes == [lan.id] and guest.failover is None
    assert summary == {"scopes": 2, "relationships": 1, "reservations": 3, "policies": 2,
                       "leases": 9, "leases_outside_scopes": 1}


def test_report_lists_unmapped_constructs_with_file_and_line(tmp_path):
    out, doc, cfg, report, summary = _import(tmp_path)
    lines = open(CONF).read().split("\n")
    unmapped = report.of_kind("unmapped")
    for item in unmapped:
        assert item["file"] == CONF and item["line"] >= 1
        # the reported line really holds the construct's first word
        assert item["construct"].split()[0] in lines[item["line"] - 1], item
    by_word = dict((i["construct"].split()[0], i) for i in unmapped)
    for word in ("log-facility", "ping-check", "if", "else",
                 "next-server", "on", "fixed-address", "ddns-update-style"):
        assert word in by_word, word
    assert "host names are not resolved" in by_word["fixed-address"]["reason"]
    dropped = report.of_kind("dropped")
    assert any(i["file"] == LEASES and i["construct"].startswith("failover peer") for i in dropped)
    assert any(i["file"] == LEASES and i["construct"].startswith("lease 198.18.0.30") for i in dropped)
    assert any(i["construct"] == "client-hostname" for i in dropped)
    # the same report is written as JSON next to the config
    with open(os.path.join(out, "report.json")) as f:
        assert json.load(f)["items"] == report.items


def test_sample_leases_load_into_a_node_through_the_real_store(tmp_path):
    out, doc, cfg, report, summary = _import(tmp_path)
    node, stats = _node_with_store(cfg, os.path.join(out, "data"))
    assert not stats["lost"] and stats["ignored"] == 0 and stats["skipped"] == 0
    assert stats["snap_records"] >= 9
    lan = node.scopes.by_id(ip("198.18.0.0"))
    t = node.tables[lan.index]

    def rec(a):
        return t.get(lan.offset_of(ip(a)))

    far = calendar.timegm((2035, 6, 1, 12, 0, 0, 0, 0, 0)) - EPOCH
    st_, fl, m, exp, ack, stamp = rec("198.18.0.142")
    assert (st_, m, exp, ack) == (lt.ACTIVE, mac("02:00:5e:10:00:64"), far, far)
    # cltt of the last entry for the address (2026/12/01 09:05:00) wins
    assert stamp == calendar.timegm((2026, 12, 1, 9, 5, 0, 0, 0, 0)) - EPOCH
    off101 = lan.offset_of(ip("198.18.0.101"))
    assert t.client_id(off101) == B([1, 2, 0, 0x5e, 0x10, 0, 0x65])
    assert t.find_client(None, 1, mac("02:00:5e:10:00:64")) == lan.offset_of(ip("198.18.0.142"))
    assert rec("198.18.0.102")[0] == lt.FREE and rec("198.18.0.102")[2] is None
    assert rec("198.18.0.103")[0] == lt.BACKUP
    assert rec("198.18.0.104")[0] == lt.EXPIRED
    assert rec("198.18.0.105")[0] == lt.RELEASED
    assert rec("198.18.0.106")[0] == lt.ABANDONED
    assert rec("198.18.0.200")[0] == lt.ACTIVE
    guest = node.scopes.by_id(ip("198.18.1.0"))
    g = node.tables[guest.index]
    assert g.get(guest.offset_of(ip("198.18.1.60")))[2] == mac("02:00:5e:10:01:3c")


def test_no_failover_serves_alone_and_turns_backup_into_free(tmp_path):
    out, doc, cfg, report, summary = _import(tmp_path, failover=False)
    assert cfg.failover == [] and cfg.scopes[0].failover is None
    node, stats = _node_with_store(cfg, os.path.join(out, "data"))
    lan = node.scopes.by_id(ip("198.18.0.0"))
    t = node.tables[lan.index]
    assert t.state(lan.offset_of(ip("198.18.0.103"))) == lt.FREE
    assert t.ack_pexp(lan.offset_of(ip("198.18.0.142"))) == 0
    assert any("--no-failover" in i["reason"] for i in report.of_kind("note"))


def test_lexer_strings_comments_escapes():
    toks = tokenize('uid "\\001\\002a\\"b\\x41"; # comment "x"\nhardware ethernet 1:2:3:4:5:6;')
    assert [t.value for t in toks] == ["uid", "\x01\x02a\"bA", ";", "hardware", "ethernet",
                                       "1:2:3:4:5:6", ";"]
    assert toks[3].line == 2
    tree = parse('a { b; c { d e; } }; f;')
    assert [s.key for s in tree] == ["a", "f"]
    assert [s.key for s in tree[0].block] == ["b", "c"]


def test_record_type_declaration_is_one_statement():
    tree = parse("option x code 200 = { ip-address, text };\nsubnet 1.0.0.0 netmask 255.0.0.0 {}")
    assert [s.key for s in tree] == ["option", "subnet"]


def test_lease_bounds_authoritative_and_hosts_only_subnets(tmp_path):
    conf = tmp_path / "dhcpd.conf"
    conf.write_text(
        "min-lease-time 300;\nmax-lease-time 3600;\ndefault-lease-time 1800;\n"
        'class "long" { match if substring(option vendor-class-identifier, 0, 4) = "long"; }\n'
        "subnet 198.18.0.0 netmask 255.255.255.0 {\n  not authoritative;\n"
        "  pool { range 198.18.0.10 198.18.0.20; }\n"
        '  pool { allow members of "long"; default-lease-time 86400; range 198.18.0.30 198.18.0.40; }\n}\n'
        "subnet 198.18.1.0 netmask 255.255.255.0 { }\n"
        "host a { hardware ethernet 02:00:5e:00:00:01; fixed-address 198.18.1.5; }\n")
    doc, report, _ = ii.run_import(str(conf), None, str(tmp_path / "o"), server_id=ip("198.18.0.1"))
    a, b = doc["scopes"]
    assert doc["server"]["authoritative"] is False  # dhcpd's default: no `authoritative;`
    assert any(i["construct"] == "authoritative" for i in report.of_kind("note"))
    assert "authoritative" not in a  # the same as the server's
    assert (a["lease_time"], a["min_lease_time"], a["max_lease_time"]) == (1800, 300, 86400)
    assert any("raised to 86400" in i["reason"] for i in report.items)  # the class's default
    # a subnet of hosts only: each fixed address is its own range (a scope needs one)
    assert b["ranges"] == [{"start": "198.18.1.5", "end": "198.18.1.5"}]
    assert b["reservations"][0]["address"] == "198.18.1.5"


def test_includes_keep_their_own_file_and_line(tmp_path):
    inc = tmp_path / "hosts.conf"
    inc.write_text("\n\nhost a {\n  hardware ethernet 02:00:5e:00:00:01;\n  fixed-address 198.18.0.9;\n"
                   "  bogus-statement 1;\n}\n")
    main = tmp_path / "dhcpd.conf"
    main.write_text('subnet 198.18.0.0 netmask 255.255.255.0 {\n  range 198.18.0.10 198.18.0.20;\n}\n'
                    'include "hosts.conf";\n')
    doc, report, _ = ii.run_import(str(main), None, str(tmp_path / "o"), server_id=ip("198.18.0.1"))
    assert doc["scopes"][0]["ranges"] == [{"start": "198.18.0.10", "end": "198.18.0.20"}]
    assert doc["scopes"][0]["reservations"][0]["address"] == "198.18.0.9"  # a fixed address
    (item,) = [i for i in report.items if i["construct"].startswith("bogus")]
    assert item["file"] == str(inc) and item["line"] == 6


BAD = [
    ("subnet 198.18.0.0 netmask 255.255.255.0 {\n range 198.18.0.1 198.18.0.5\n}\n", 2, "no ';'"),
    ("subnet 198.18.0.0 netmask 255.255.255.0 {\n range 198.18.0.1 198.18.0.5;\n", 1, "never closed"),
    ("option domain-name \"abc;\n", 1, "string not terminated"),
    ("}\n", 1, "without a matching"),
    ("\n\noption x `y`;\n", 3, "unexpected character"),
    ('include "/nonexistent/x.conf";\n', 1, "cannot read include"),
]


def test_bad_input_is_a_clear_error_with_file_and_line(tmp_path):
    for i, (text, line, words) in enumerate(BAD):
        p = tmp_path / ("bad%d.conf" % i)
        p.write_text(text)
        try:
            ii.run_import(str(p), None, str(tmp_path / "o"), server_id=ip("198.18.0.1"))
        except IscSyntaxError as e:
            assert str(e).startswith("%s:%d: " % (p, line)), str(e)
            assert words in str(e)
        else:
            raise AssertionError("accepted: %r" % text)


def test_cli_reports_errors_without_traceback(tmp_path):
    p = tmp_path / "bad.conf"
    p.write_text(BAD[0][0])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.join(ROOT, "firmware"), os.path.join(ROOT, "host_tools")]))
    r = subprocess.run([sys.executable, "-m", "dhcpfo_host.cli", "import", "isc", str(p), "--out",
                        str(tmp_path / "o")], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == "dhcpfo: %s:2: statement 'range 198.18.0.1 198.18.0.5' has no ';' before '}'" % p
    # a valid file without any way to find the server's address: exit 1, a hint
    p.write_text("subnet 198.18.0.0 netmask 255.255.255.0 { range 198.18.0.9 198.18.0.20; }\n")
    r = subprocess.run([sys.executable, "-m", "dhcpfo_host.cli", "import", "isc", str(p), "--out",
                        str(tmp_path / "o")], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1 and "--server-id" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "dhcpfo_host.cli", "import", "isc", CONF, LEASES,
                        "--out", str(tmp_path / "ok"), "--json"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["summary"]["leases"] == 9 and any(i["kind"] == "unmapped" for i in rep["items"])


_ALPHABET = st.sampled_from(list('{};,="#\n \\()!') + ["subnet", "198.18.0.0", "netmask",
                            "255.255.255.0", "range", "198.18.0.9", "198.18.0.20", "host",
                            "hardware", "ethernet", "02:00:5e:00:00:01", "fixed-address",
                            "option", "routers", "code", "224", "text", "class", "match", "if",
                            "substring", "pool", "failover", "peer", "\"x\"", "lease", "1", "abc"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_ALPHABET, max_size=60))
def test_any_input_gives_a_result_or_a_clear_error(tmp_path_factory, parts):
    d = tmp_path_factory.mktemp("fuzz")
    p = d / "f.conf"
    p.write_text(" ".join(parts))
    try:
        ii.run_import(str(p), str(p), str(d / "o"), server_id=ip("198.18.0.1"))
    except IscSyntaxError as e:
        assert str(e).startswith(str(p) + ":")
    except config.ConfigError as e:
        assert e.errors


SECONDARY = """
failover peer "fo" {
  secondary;
  address 198.18.4.3;
  peer address 198.18.4.2;
  max-response-delay 2;
  max-unacked-updates 5000;
  max-lease-misbalance 15;
  auto-partner-down 600;
}
class "odd" { match if option vendor-class-identifier = "a" and option user-class = "b" or hardware = 1:2:3:4:5:6:7; }
class "hw" { match hardware; }
subclass "hw" 1:2:0:5e:0:0:1;
subclass "hw" 1:2:0:5e:0:0:2;
shared-network "site" {
  option domain-name "site";
  default-lease-time 30;
  subnet 198.18.4.0 netmask 255.255.255.0 {
    pool { failover peer "fo"; range 198.18.4.50 198.18.4.60; allow members of "hw"; }
  }
  subnet 198.18.5.0 netmask 255.255.255.0 {
    option domain-name "five";
    range 198.18.5.10 198.18.5.20;
    host in5 { hardware ethernet 02:00:5e:00:05:01; fixed-address 198.18.5.200, 198.18.5.15; }
  }
  pool { range 198.18.5.30 198.18.5.40; }
}
"""


def test_secondary_peer_shared_network_subclasses(tmp_path):
    p = tmp_path / "s.conf"
    p.write_text(SECONDARY)
    doc, report, _ = ii.run_import(str(p), None, str(tmp_path / "o"))
    cfg = boardconf.load(doc)
    assert cfg.server.server_id == ip("198.18.4.3")
    (rel,) = cfg.failover
    assert (rel.role, rel.local_address, rel.partner_address) == ("secondary", ip("198.18.4.3"),
                                                                  ip("198.18.4.2"))
    # clamped into our limits, each with a note; unknown tuning reported
    assert (rel.max_response_delay, rel.max_unacked, rel.auto_state_switchover) == (3, 1000, 600)
    reasons = [i["reason"] for i in report.items]
    assert any("clamped" in r for r in reasons)
    assert any(i["construct"].startswith("max-lease-misbalance") for i in report.of_kind("unmapped"))
    assert any("100 minus" in r for r in reasons)
    four, five = cfg.scopes
    assert four.lease_time == 60 and four.options == {15: b"site"}  # 30 s raised to our minimum
    assert five.options == {15: b"five"}  # the subnet's own value beats the shared-network's
    (pol,) = four.policies
    assert [(m.op, m.value) for m in pol.mac] == [("eq", mac("02:00:5e:00:00:01")),
                                                   ("eq", mac("02:00:5e:00:00:02"))]
    # the pool at shared-network level went to the subnet holding its range;
    # the host's second fixed address is the one in this subnet
    assert five.ranges == [(ip("198.18.5.10"), ip("198.18.5.20")), (ip("198.18.5.30"), ip("198.18.5.40"))]
    assert [r.address for r in five.reservations] == [ip("198.18.5.200")]
    odd = [i for i in report.of_kind("unmapped") if "class odd" in i["reason"]]
    assert odd and "mixed" in odd[0]["reason"] and odd[0]["line"] == 11


def test_hosts_that_cannot_be_reservations_are_reported(tmp_path):
    p = tmp_path / "h.conf"
    p.write_text("subnet 198.18.0.0 netmask 255.255.255.0 { range 198.18.0.10 198.18.0.20; }\n"
                 "host nofix { hardware ethernet 02:00:5e:00:00:01; option host-name \"x\"; }\n"
                 "host far { hardware ethernet 02:00:5e:00:00:02; fixed-address 10.9.9.9; }\n")
    doc, report, _ = ii.run_import(str(p), None, str(tmp_path / "o"), server_id=ip("198.18.0.1"))
    assert "reservations" not in doc["scopes"][0]
    got = dict((i["line"], i["reason"]) for i in report.of_kind("unmapped"))
    assert "no fixed-address" in got[2] and "lies in no declared subnet" in got[3]
