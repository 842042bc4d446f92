"""Migrated leases served by real servers to a real client (root, netns).

* In: the pfSense-style examples/isc/dhcpd.conf + dhcpd.leases imported
  with `dhcpfo import isc`, a `dhcpfo node` started on the result, and
  ISC dhclient on a host whose MAC holds an imported active lease: it
  gets that lease's address, not the first free one.
* Half-way: the imported primary (a dhcpfo node) with the secondary still
  ISC dhcpd on files `export isc` wrote from the same import: the pair
  reaches NORMAL and the imported lease is kept.
* Out: a dhcpfo config and store with an active lease for a known MAC,
  exported with `dhcpfo export isc` / `dhcpfo export kea`, Debian's
  dhcpd (after `dhcpd -t`) and kea-dhcp4 started on the exported files:
  the client with that MAC gets its existing lease back; both ends of an
  exported relationship run as a dhcpd failover pair.

Leases are hours long (the sample's run to 2035), so none can expire on a
loaded machine; every wait is a bounded poll.
"""

from dhcpfo_host import boardconf
import json
import os
import subprocess
import sys
import time

import pytest

from dhcpfo import config
from dhcpfo.lease import table as lt
from dhcpfo_host.migrate.leasestore import Binding, write_store
from integration.conftest import require
from integration.netns import Dhclient, Dhcpd, tool, wait_for_text, wait_until
from integration.nodes import FIRMWARE, PYTHON, REPO, Node

pytestmark = pytest.mark.netns

SAMPLE_CONF = os.path.join(REPO, "examples", "isc", "dhcpd.conf")
SAMPLE_LEASES = os.path.join(REPO, "examples", "isc", "dhcpd.leases")
IMPORTED_MAC = "02:00:5e:10:00:64"  # active lease 198.18.0.142 in the sample
IMPORTED_ADDR = "198.18.0.142"  # not the first free address: only the lease leads there
SERVER = "198.18.0.1"
KNOWN_MAC = "02:00:5e:33:00:07"
KNOWN_ADDR = "198.18.0.177"  # deep inside the pool: not what a new client would get first
LEASE = 7200


def cli(*args):
    """`dhcpfo ...` from this checkout; returns the CompletedProcess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([FIRMWARE, os.path.join(REPO, "host_tools")])
    r = subprocess.run([PYTHON if os.path.exists(PYTHON) else sys.executable, "-m", "dhcpfo_host.cli"]
                       + [str(a) for a in args], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def client_with_mac(lab, name, mac):
    host = lab.add_host(name)
    host.ip("link", "set", "eth0", "address", mac)
    assert host.mac() == mac
    return host


def test_imported_router_leases_are_served_by_a_node(lab):
    require("ip", "dhclient")
    out = lab.path("imported")
    r = cli("import", "isc", SAMPLE_CONF, SAMPLE_LEASES, "--out", out, "--no-failover", "--name", "migrated")
    assert "imported 2 scope(s)" in r.stdout and "Not mapped" in r.stdout
    with open(os.path.join(out, "dhcpfo.json")) as f:
        cfg = json.load(f)
    # the node runs where the router's dhcpd ran: same address, this lab's link
    assert cfg["server"]["server_id"] == "198.18.0.2"
    cfg["server"]["listen"] = {"address": "0.0.0.0", "port": 67, "interface": "eth0"}
    cfg["server"]["mgmt"] = {"address": "127.0.0.1", "port": 6470}
    srv = lab.add_host("srv", "198.18.0.2/24")
    node = Node(srv, cfg).start()
    before = node.leases("198.18.0.0")
    assert before[IMPORTED_ADDR]["state"] == "active" and before[IMPORTED_ADDR]["mac"] == IMPORTED_MAC
    assert before["198.18.0.104"]["state"] == "expired"

    host = client_with_mac(lab, "cli", IMPORTED_MAC)
    c = Dhclient(host)
    lease = c.acquire(timeout=30)
    assert lease.ip == IMPORTED_ADDR and lease.server_id == "198.18.0.2"
    assert lease.routers == ["198.18.0.1"] and lease.domain == "home.arpa"
    row = node.wait_lease("198.18.0.0", IMPORTED_ADDR, "active", timeout=10)
    assert row["mac"] == IMPORTED_MAC
    # a client nobody knows gets a free address, never one of the imported leases
    other = lab.add_host("new")
    lease2 = Dhclient(other).acquire(timeout=30)
    taken = {a for a, r in before.items() if r["state"] in ("active", "expired", "released", "abandoned")}
    assert lease2.ip not in taken and lease2.ip.startswith("198.18.0.")
    c.stop()


def _our_store(lab):
    """A dhcpfo config + store with an active lease of KNOWN_ADDR for KNOWN_MAC,
    written by a real node (so the store is what a node writes), via the CLI."""
    cfg = {"server": {"name": "src", "server_id": SERVER, "data_dir": lab.path("ourdata"),
                      "options": {"domain-name": "lab.example"},
                      "option_definitions": [{"code": 224, "name": "site-motd", "type": "text"},
                                             {"code": 225, "name": "site-hosts", "type": "ip-list"}]},
           "scopes": [{"id": "198.18.0.0", "mask": 24, "lease_time": LEASE,
                       "min_lease_time": 600, "max_lease_time": 4 * LEASE,
                       "t1_percent": 40, "t2_percent": 80, "authoritative": False,
                       "ranges": [{"start": "198.18.0.100", "end": "198.18.0.199"}],
                       "exclusions": [{"start": "198.18.0.150", "end": "198.18.0.159"}],
                       "reservations": [{"address": "198.18.0.120", "mac": "02:00:5e:33:00:99"},
                                        {"address": "198.18.0.20", "mac": "02:00:5e:33:00:98"}],
                       "options": {"routers": [SERVER], "domain-name-servers": [SERVER],
                                   "site-motd": "hello", "site-hosts": [SERVER]}}],
           "failover": []}
    path = lab.path("ours.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    now = int(time.time())
    write_store(boardconf.load(cfg), [
        Binding(bytes([198, 18, 0, 177]), lt.ACTIVE, bytes.fromhex(KNOWN_MAC.replace(":", "")), None,
                now + LEASE, 0, now - 60),
        Binding(bytes([198, 18, 0, 100]), lt.ACTIVE, bytes.fromhex("02005e3300aa"), None,
                now + LEASE, 0, now - 60)], cfg["server"]["data_dir"])
    return path, cfg["server"]["data_dir"]


def test_isc_export_is_served_by_dhcpd(lab):
    require("ip", "dhclient", "dhcpd")
    path, data = _our_store(lab)
    out = lab.path("isc")
    cli("export", "isc", "--config", path, "--leases", data, "--out", out)
    conf = open(os.path.join(out, "dhcpd.conf")).read()
    leases = open(os.path.join(out, "dhcpd.leases")).read()
    chk = subprocess.run([tool("dhcpd"), "-4", "-t", "-cf", os.path.join(out, "dhcpd.conf")],
                         capture_output=True, text=True, timeout=60)
    assert chk.returncode == 0, chk.stderr
    srv = lab.add_host("srv", SERVER + "/24")
    d = Dhcpd(srv, conf, leases=leases).start()
    host = client_with_mac(lab, "cli", KNOWN_MAC)
    lease = Dhclient(host).acquire(timeout=30)
    assert lease.ip == KNOWN_ADDR and lease.server_id == SERVER
    assert lease.domain == "lab.example"
    got = d.leases()
    assert got[KNOWN_ADDR]["hw"] == KNOWN_MAC and got[KNOWN_ADDR]["state"] == "active"


def test_kea_export_is_served_by_kea(lab):
    require("ip", "dhclient", "kea-dhcp4")
    path, data = _our_store(lab)
    out = lab.path("kea")
    cli("export", "kea", "--config", path, "--leases", data, "--out", out, "--interface", "eth0")
    conf_path = os.path.join(out, "kea-dhcp4.json")
    with open(conf_path) as f:
        doc = json.load(f)
    log_path = lab.path("kea.log")
    doc["Dhcp4"]["loggers"] = [{"name": "kea-dhcp4", "severity": "INFO",
                                "output_options": [{"output": log_path}]}]
    with open(conf_path, "w") as f:
        json.dump(doc, f)
    chk = subprocess.run([tool("kea-dhcp4"), "-t", conf_path], capture_output=True, text=True, timeout=60)
    assert chk.returncode == 0, chk.stdout + chk.stderr
    srv = lab.add_host("srv", SERVER + "/24")
    env = dict(os.environ, KEA_PIDFILE_DIR=lab.workdir, KEA_LOCKFILE_DIR=lab.workdir)
    proc = srv.run_logged([tool("kea-dhcp4"), "-c", conf_path], "kea", env=env)
    wait_for_text(log_path, r"DHCP4_STARTED", 30, proc, "kea-dhcp4 start")
    host = client_with_mac(lab, "cli", KNOWN_MAC)
    lease = Dhclient(host).acquire(timeout=30)
    assert lease.ip == KNOWN_ADDR and lease.server_id == SERVER
    with open(os.path.join(out, "kea-leases4.csv")) as f:
        rows = [line.split(",") for line in f.read().splitlines()]
    mine = [r for r in rows[1:] if r[0] == KNOWN_ADDR]
    assert mine and mine[-1][1] == KNOWN_MAC and mine[-1][9] == "0"
    srv.stop(proc)


def test_isc_export_of_a_pair_is_served_by_a_dhcpd_pair(lab):
    """Both ends of a relationship exported: two dhcpd reach NORMAL with the
    exported failover peers, and the client keeps its existing lease."""
    require("ip", "dhclient", "dhcpd")
    paths = {}
    for role, me, peer in (("primary", "198.18.0.2", "198.18.0.3"),
                           ("secondary", "198.18.0.3", "198.18.0.2")):
        cfg = {"server": {"name": role, "server_id": me, "data_dir": lab.path("data-" + role)},
               "scopes": [{"id": "198.18.0.0", "mask": 24, "lease_time": LEASE,
                           "ranges": [{"start": "198.18.0.100", "end": "198.18.0.199"}],
                           "options": {"routers": [SERVER]}}],
               "failover": [{"name": "a-b", "role": role, "local": {"address": me},
                             "partner": {"address": peer}, "scopes": ["198.18.0.0"],
                             "mclt": 10, "max_response_delay": 10}]}
        path = lab.path("%s.json" % role)
        with open(path, "w") as f:
            json.dump(cfg, f)
        now = int(time.time())
        # both stores hold the binding, as a synchronised pair's would
        write_store(boardconf.load(cfg), [
            Binding(bytes([198, 18, 0, 177]), lt.ACTIVE, bytes.fromhex(KNOWN_MAC.replace(":", "")),
                    None, now + LEASE, now + LEASE, now - 60)], cfg["server"]["data_dir"])
        out = lab.path("isc-" + role)
        cli("export", "isc", "--config", path, "--out", out)
        paths[role] = out
    hosts = {"primary": lab.add_host("srva", "198.18.0.2/24"),
             "secondary": lab.add_host("srvb", "198.18.0.3/24")}
    servers = {}
    for role, out in paths.items():
        conf = open(os.path.join(out, "dhcpd.conf")).read()
        leases = open(os.path.join(out, "dhcpd.leases")).read()
        assert 'failover peer "a-b" {' in conf and ("split 128;" in conf) == (role == "primary")
        servers[role] = Dhcpd(hosts[role], conf, leases=leases, name="dhcpd-" + role).start(timeout=60)
    for d in servers.values():
        d.wait_log(r"I move from \S+ to normal", 120)
    host = client_with_mac(lab, "cli", KNOWN_MAC)
    lease = Dhclient(host).acquire(timeout=30)
    assert lease.ip == KNOWN_ADDR and lease.server_id in ("198.18.0.2", "198.18.0.3")


def test_imported_primary_runs_with_an_isc_secondary(lab):
    """The router pair migrated half-way: the pfSense primary replaced by a
    dhcpfo node imported from its files, the secondary still ISC dhcpd (its
    files written by `export isc` from the same import, with the roles
    turned round). The pair reaches NORMAL over the imported failover peer
    settings and the client with an imported lease keeps its address."""
    require("ip", "dhclient", "dhcpd")
    out = lab.path("imported")
    cli("import", "isc", SAMPLE_CONF, SAMPLE_LEASES, "--out", out, "--name", "migrated")
    with open(os.path.join(out, "dhcpfo.json")) as f:
        cfg = json.load(f)
    (rel,) = cfg["failover"]
    assert (rel["local"], rel["partner"]) == ({"address": "198.18.0.2", "port": 519},
                                              {"address": "198.18.0.3", "port": 520})
    rel["mclt"] = 10  # the sample's 600 s would make a fresh pair wait that long in RECOVER-WAIT
    cfg["server"]["listen"] = {"address": "0.0.0.0", "port": 67, "interface": "eth0"}
    cfg["server"]["mgmt"] = {"address": "127.0.0.1", "port": 6470}
    # the secondary: same scopes and leases, roles and ends swapped
    sec = json.loads(json.dumps(cfg))
    sec["server"]["server_id"] = "198.18.0.3"
    sec["failover"][0].update({"role": "secondary", "local": rel["partner"], "partner": rel["local"]})
    sec_path = lab.path("secondary.json")
    with open(sec_path, "w") as f:
        json.dump(sec, f)
    sec_out = lab.path("isc-secondary")
    cli("export", "isc", "--config", sec_path, "--leases", os.path.join(out, "data"), "--out", sec_out)
    conf = open(os.path.join(sec_out, "dhcpd.conf")).read()
    assert "secondary;" in conf and "port 520;" in conf and "peer port 519;" in conf
    srv_a = lab.add_host("srva", "198.18.0.2/24")
    srv_b = lab.add_host("srvb", "198.18.0.3/24")
    node = Node(srv_a, cfg).start()
    Dhcpd(srv_b, conf, leases=open(os.path.join(sec_out, "dhcpd.leases")).read(),
          name="dhcpd-secondary").start(timeout=60)

    def normal():
        (r,) = node.call("get-failover")["relationships"]
        return r if r["state"] == "normal" and r["partner_state"] == "normal" else None

    wait_until(normal, 120, 0.5, "dhcpfo primary and dhcpd secondary in NORMAL")
    assert node.leases("198.18.0.0")[IMPORTED_ADDR]["mac"] == IMPORTED_MAC
    host = client_with_mac(lab, "cli", IMPORTED_MAC)
    lease = Dhclient(host).acquire(timeout=30)
    assert lease.ip == IMPORTED_ADDR and lease.server_id in ("198.18.0.2", "198.18.0.3")
