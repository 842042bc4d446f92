"""`dhcpfo export isc|kea` outputs: the real servers' own checkers accept
them (`dhcpd -t`, `dhcpd -T` for the lease file, `kea-dhcp4 -t`; skipped
where not installed), and the Kea lease CSV has Kea's lease4 layout."""
from dhcpfo_host import boardconf
import csv
import json
import os
import shutil
import subprocess

import pytest

from dhcpfo import config
from dhcpfo.lease import table as lt
from dhcpfo_host.migrate import export_isc, export_kea
from dhcpfo_host.migrate.leasestore import Binding, write_store
from host.test_migrate_roundtrip import FULL, ip

T0 = 1796115900


def _store(tmp_path):
    doc = json.loads(json.dumps(FULL))
    cfg_path = tmp_path / "c.json"
    cfg_path.write_text(json.dumps(doc))
    cfg = boardconf.load(doc)
    rows = [Binding(ip("198.18.0.110"), lt.ACTIVE, bytes.fromhex("02005e200001"), None, T0 + 43200,
                    T0 + 40000, T0),
            Binding(ip("198.18.0.111"), lt.ACTIVE, bytes.fromhex("02005e200002"),
                    bytes.fromhex("ff00000001000102"), T0 + 43200, 0, T0),
            Binding(ip("198.18.0.112"), lt.EXPIRED, bytes.fromhex("02005e200003"), None, T0 - 10, 0,
                    T0 - 43210),
            Binding(ip("198.18.0.114"), lt.ABANDONED, None, None, T0 + 3600, 0, T0),
            Binding(ip("198.18.0.115"), lt.BACKUP, None, None, 0, 0, T0),
            Binding(ip("198.18.0.120"), lt.ACTIVE, bytes.fromhex("02005e100001"), None, T0 + 99, 0, T0),
            Binding(ip("198.18.20.30"), lt.ACTIVE, bytes.fromhex("02005e200006"), None, T0 + 99, 0, T0)]
    write_store(cfg, rows, str(tmp_path / "data"))
    return str(cfg_path), str(tmp_path / "data")


def _tool(name):
    for d in ("/usr/sbin", "/usr/bin", "/sbin"):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    return shutil.which(name)


def test_isc_export_is_accepted_by_dhcpd(tmp_path):
    cfg_path, data = _store(tmp_path)
    report, summary = export_isc.run_export(cfg_path, data, str(tmp_path / "isc"))
    conf = (tmp_path / "isc" / "dhcpd.conf").read_text()
    leases = (tmp_path / "isc" / "dhcpd.leases").read_text()
    assert 'failover peer "a-b" {' in conf and "split 192;" in conf and "mclt 600;" in conf
    assert 'allow members of "ip-phones";' in conf and "range 198.18.0.160 198.18.0.179;" in conf
    assert "option dhcpfo-opt-121 code 121 = string;" in conf
    # reserved (.120) and free/no-client addresses need no lease entry
    assert "lease 198.18.0.120 " not in leases and summary["leases_written"] == 6
    assert 'uid "\\377\\000\\000\\000\\001\\000\\001\\002";' in leases
    dhcpd = _tool("dhcpd")
    if dhcpd is None:
        pytest.skip("dhcpd not installed")
    r = subprocess.run([dhcpd, "-4", "-t", "-cf", str(tmp_path / "isc" / "dhcpd.conf")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lf = tmp_path / "isc" / "copy.leases"
    lf.write_text(leases)
    r = subprocess.run([dhcpd, "-4", "-T", "-cf", str(tmp_path / "isc" / "dhcpd.conf"), "-lf", str(lf)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "Wrote 6 leases to leases file" in r.stderr, r.stderr


def test_kea_export_config_and_lease_csv(tmp_path):
    cfg_path, data = _store(tmp_path)
    report, summary = export_kea.run_export(cfg_path, data, str(tmp_path / "kea"))
    doc = json.loads((tmp_path / "kea" / "kea-dhcp4.json").read_text())["Dhcp4"]
    s0, s1, s2 = doc["subnet4"]
    assert (s0["id"], s0["subnet"], s0["valid-lifetime"]) == (1, "198.18.0.0/24", 43200)
    assert s1["subnet"] == "198.18.10.0/23"
    pools = dict((p["pool"], p.get("client-class")) for p in s0["pools"])
    assert pools["198.18.0.180 - 198.18.0.199"] == "ip-phones"
    assert pools["198.18.0.110 - 198.18.0.119"] == "dhcpfo-rest-1"
    assert "198.18.0.150 - 198.18.0.159" not in str(pools)  # the exclusion
    classes = dict((c["name"], c) for c in doc["client-classes"])
    assert classes["ip-phones"]["test"] == \
        "(substring(option[60].hex,0,7) == 'Polycom' or option[60].hex == 'Yealink SIP')"
    assert classes["ip-phones"]["valid-lifetime"] == 604800
    assert classes["lab-ids"]["test"] == \
        "(not (option[77].hex == 'guest')) and (substring(option[61].hex,0,4) == 0x0102005E)"
    assert classes["dhcpfo-rest-1"]["test"] == "not member('ip-phones') and not member('lab-ids')"
    assert {"hw-address": "02:00:5e:10:00:01", "ip-address": "198.18.0.120"}.items() <= \
        s0["reservations"][0].items()
    assert any("failover a-b" in i["construct"] for i in report.of_kind("unmapped"))
    rows = list(csv.reader((tmp_path / "kea" / "kea-leases4.csv").read_text().splitlines()))
    assert rows[0] == export_kea.CSV_HEADER.split(",")
    by = dict((r[0], r) for r in rows[1:])
    assert by["198.18.0.110"] == ["198.18.0.110", "02:00:5e:20:00:01", "", "43200", str(T0 + 43200),
                                  "1", "0", "0", "", "0", ""]
    assert by["198.18.0.111"][2] == "ff:00:00:00:01:00:01:02"
    assert by["198.18.0.112"][9] == "2" and by["198.18.0.114"][9] == "1"
    assert by["198.18.20.30"][5] == "3"
    assert "198.18.0.115" not in by
    kea = _tool("kea-dhcp4")
    if kea is None:
        pytest.skip("kea-dhcp4 not installed")
    r = subprocess.run([kea, "-t", str(tmp_path / "kea" / "kea-dhcp4.json")], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_export_reports_store_trouble_and_a_missing_store(tmp_path):
    cfg_path, data = _store(tmp_path)
    # a torn tail: half a record appended to the log
    with open(os.path.join(data, "log"), "ab") as f:
        f.write(b"\x01" * 13)
    # a config that no longer has the third scope: its binding is skipped
    doc = json.loads(json.dumps(FULL))
    del doc["scopes"][2]
    smaller = tmp_path / "smaller.json"
    smaller.write_text(json.dumps(doc))
    report, summary = export_kea.run_export(str(smaller), data, str(tmp_path / "k"))
    reasons = [i["reason"] for i in report.of_kind("dropped")]
    assert "13 bytes of a torn log tail ignored" in reasons
    assert "1 bindings for scopes or addresses the configuration does not have" in reasons
    assert summary["bindings_read"] == 6
    with open(os.path.join(data, "log"), "rb") as f:
        assert f.read().endswith(b"\x01" * 13)  # the store itself is not touched
    with pytest.raises(FileNotFoundError):
        export_isc.run_export(cfg_path, str(tmp_path / "nope"), str(tmp_path / "i"))
