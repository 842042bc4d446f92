"""Scope configuration over the `dhcpfo` CLI and replication between two real
CPython nodes (`dhcpfo node` processes on 127.0.0.x, management over TCP):
changes made on A with the scope/option/reservation/... commands appear on B
after `dhcpfo failover replicate`, with the seed's per-step messages; a
partner that refuses a step fails that scope and replication goes on with
the next; a pair whose configurations drifted while one was down is flagged
at connect (get-failover config_drift, event 20267) on both nodes."""

import json
import os
import subprocess
import sys

from dhcpfo_host import mgmtclient
from host import test_live_reconfig as live
from host.test_live_reconfig import _until

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = 30000 + (os.getpid() % 4000) * 4  # DHCP, relay, failover
ADDR = ("127.83.0.2", "127.83.0.3")
NET1, NET2, NET3 = "127.83.1.0", "127.83.2.0", "127.83.3.0"
TOKEN = "replicate-admin-token"
USER = "replicate-user-token"


def _mgmt_port(i):
    return 47000 + (os.getpid() % 4000) * 2 + i


def _config(tmp_path, i):
    scopes = [{"id": net, "mask": 24, "lease_time": 900,
               "ranges": [{"start": net[:-1] + "10", "end": net[:-1] + "49"}]} for net in (NET1, NET2, NET3)]
    return {
        "server": {"name": "n%d" % i, "server_id": ADDR[i],
                   "listen": {"address": ADDR[i], "port": BASE, "relay_port": BASE + 1},
                   "data_dir": str(tmp_path / ("data%d" % i)),
                   "mgmt": {"address": "127.0.0.1", "port": _mgmt_port(i), "token": TOKEN, "user_token": USER}},
        "scopes": scopes,
        "failover": [{"name": "pair", "role": "primary" if i == 0 else "secondary", "mode": "load-balance",
                      "local": {"address": ADDR[i], "port": BASE + 2},
                      "partner": {"address": ADDR[1 - i], "port": BASE + 2},
                      "scopes": [NET1, NET3], "mclt": 300}],
    }


class Proc(live.Proc):
    """test_live_reconfig's node process on this test's addresses and ports."""

    def __init__(self, tmp_path, i):
        super().__init__(tmp_path, i, _config(tmp_path, i), _mgmt_port(i), token=TOKEN)

    def rel(self):
        return self.call({"cmd": "get-failover"})["relationships"][0]

    def scope(self, net):
        return self.call({"cmd": "get-scope-config", "scope": net})["config"]


def _normal(a, b, drift):
    def both():
        try:
            rels = [a.rel(), b.rel()]
        except (OSError, mgmtclient.MgmtError):
            return False
        return all(r["state"] == "normal" and r["config_drift"] is drift for r in rels)
    _until(both, "pair normal with config_drift %s on both" % drift, a, b)


def dhcpfo(i, *argv, check=True):
    """Run the CLI against node i; (exit status, stdout, stderr)."""
    cmd = [sys.executable, "-m", "dhcpfo_host.cli"] + list(argv) + ["--tcp", "127.0.0.1:%d" % _mgmt_port(i)]
    if "--token" not in argv:
        cmd += ["--token", TOKEN]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)
    if check:
        assert r.returncode == 0, (argv, r.stdout, r.stderr)
    return r.returncode, r.stdout, r.stderr


def _canon(sc):
    out = dict(sc)
    for k in ("ranges", "exclusions", "options", "reservations"):
        out[k] = sorted(json.dumps(x, sort_keys=True) for x in sc.get(k) or [])
    return out


def test_changes_on_a_reach_b_with_the_step_messages_and_drift_is_flagged_at_connect(tmp_path):
    a = Proc(tmp_path, 0).start()
    b = Proc(tmp_path, 1).start()
    try:
        _normal(a, b, False)
        # -- changes on A through the CLI
        dhcpfo(0, "option", "set", "--scope", NET1, "domain-name-servers", "127.83.1.1,127.83.1.2")
        dhcpfo(0, "option", "set", "--scope", NET3, "routers", "127.83.3.1")
        dhcpfo(0, "reservation", "add", "--scope", NET1, "--address", "127.83.1.20", "--mac", "02:00:00:00:00:20",
               "--name", "printer")
        dhcpfo(0, "range", "add", "--scope", NET1, "127.83.1.60", "127.83.1.69")
        dhcpfo(0, "exclusion", "add", "--scope", NET1, "127.83.1.45", "127.83.1.49")
        dhcpfo(0, "scope", "set", "--scope", NET1, "--name", "lab", "--lease-time", "1200")
        pol = tmp_path / "policy.json"
        pol.write_text(json.dumps({"name": "phones", "order": 1, "enabled": True, "operator": "or",
                                   "vendor_class": [["eq", "706f6c79", True]], "user_class": [], "mac": [],
                                   "client_id": [], "options": [], "ranges": [["127.83.1.60", "127.83.1.64"]]}))
        dhcpfo(0, "policy", "add", "--scope", NET1, str(pol))
        rc, out, err = dhcpfo(0, "scope", "show", "--scope", NET1, "--json")
        assert json.loads(out)["config"]["name"] == "lab"
        assert b.scope(NET1) != a.scope(NET1)
        # A changed while connected: B hears A's new digest and flags the drift
        _normal(a, b, True)

        # -- replicate the relationship: every step, in the seed's words
        rc, out, err = dhcpfo(0, "failover", "replicate", "--name", "pair", "--force",
                              "--partner-tcp", "127.0.0.1:%d" % _mgmt_port(1))
        lines = out.splitlines()
        want = [
            "Starting replication of scope %s to failover partner server %s" % (NET1, ADDR[1]),
            "Replication of scope properties to failover partner server initiated",
            "Properties of scope %s are replicated to failover partner server." % NET1,
            "Replication of IP address ranges to failover partner server initiated",
            "IP address range and exclusion IP address ranges of scope %s are replicated to failover partner server."
            % NET1,
            "Replication of scope option values to failover partner server initiated.",
            "Option values set on scope %s are replicated to failover partner server" % NET1,
            "Replication of reservations to failover partner server initiated.",
            "Reservations in scope %s are replicated to failover partner server" % NET1,
            "Replication of policies to failover partner server initiated.",
            "Policies in scope %s are replicated to failover partner server" % NET1,
            "Scope %s was successfully replicated." % NET1,
            "Starting replication of scope %s to failover partner server %s" % (NET3, ADDR[1]),
            "Scope properties of scope %s are identical to failover partner server." % NET3,
            "IP address range and exclusion IP address ranges of scope %s are identical to failover partner server."
            % NET3,
            "Option values set on scope %s are replicated to failover partner server" % NET3,
            "Reservations in scope %s are identical to failover partner server" % NET3,
            "Scope %s was successfully replicated." % NET3,
        ]
        pos = [lines.index(w) if w in lines else -1 for w in want]
        assert -1 not in pos and pos == sorted(pos), out
        assert "replicated: %s, %s" % (NET1, NET3) in out
        for net in (NET1, NET3):
            assert _canon(b.scope(net)) == _canon(a.scope(net))
        assert b.scope(NET2) == a.scope(NET2)  # outside the relationship: untouched (and equal anyway)
        _normal(a, b, False)

        # -- a scope outside every relationship is a non-terminating error
        rc, out, err = dhcpfo(0, "failover", "replicate", "--scope", NET2, "--force",
                              "--partner-tcp", "127.0.0.1:%d" % _mgmt_port(1), check=False)
        assert rc == 1 and "Selected scope %s is not part of any failover relationship" % NET2 in err

        # -- a partner that refuses (a read-only token there): each scope fails, the next is still tried
        dhcpfo(0, "scope", "set", "--scope", NET1, "--name", "lab2")
        dhcpfo(0, "scope", "set", "--scope", NET3, "--name", "other")
        rc, out, err = dhcpfo(0, "failover", "replicate", "--all", "--force", "--partner-token", USER,
                              "--partner-role", "user", "--partner-tcp", "127.0.0.1:%d" % _mgmt_port(1), check=False)
        assert rc == 1, out
        for net in (NET1, NET3):
            assert "Starting replication of scope %s" % net in out
            assert "Failed to update Scope properties for scope %s on partner server %s." % (net, ADDR[1]) in out
        assert "failed: %s, %s" % (NET1, NET3) in out

        # -- drift while B is down is flagged when the pair connects again
        dhcpfo(0, "failover", "replicate", "--all", "--force", "--partner-tcp", "127.0.0.1:%d" % _mgmt_port(1))
        _normal(a, b, False)
        b.stop()
        dhcpfo(0, "option", "set", "--scope", NET3, "domain-name", "drifted.example")
        b.start()
        _normal(a, b, True)
        for n in (a, b):
            ev = n.call({"cmd": "get-events", "level": "warning"})["events"]
            assert any(e["code"] == 20267 for e in ev), ev
            r = n.rel()
            assert r["config_digest"] != r["partner_config_digest"]
        rc, out, err = dhcpfo(0, "failover", "show", "--json")
        assert json.loads(out)["relationships"][0]["config_drift"] is True
    finally:
        a.stop()
        b.stop()


def test_cli_leases_export_import_and_refusals(tmp_path):
    a = Proc(tmp_path, 0).start()
    try:
        rc, out, err = dhcpfo(0, "lease", "list", "--scope", NET2)
        assert "no leases in scope %s" % NET2 in out
        rc, out, err = dhcpfo(0, "lease", "delete", "--scope", NET2, "--address", "127.83.2.10", check=False)
        assert rc == 1 and "has no active lease" in err
        rc, out, err = dhcpfo(0, "scope", "remove", "--scope", NET1, check=False)
        assert rc == 1 and "in failover relationship pair" in err
        rc, out, err = dhcpfo(0, "option", "set", "--scope", NET2, "no-such-option", "1", check=False)
        assert rc == 2 and "unknown DHCP option" in err
        rc, out, err = dhcpfo(0, "scope", "show", "--scope", NET2, "--role", "user", "--token", USER, check=False)
        assert rc == 0
        rc, out, err = dhcpfo(0, "scope", "remove", "--scope", NET2, "--role", "user", "--token", USER, check=False)
        assert rc == 1 and "may only read" in err
        path = tmp_path / "export.json"
        dhcpfo(0, "config", "export", "--out", str(path))
        assert os.stat(path).st_mode & 0o077 == 0
        doc = json.loads(path.read_text())
        doc["scopes"] = [s for s in doc["scopes"] if s["id"] != NET2]
        path.write_text(json.dumps(doc))
        dhcpfo(0, "config", "import", str(path))
        rc, out, err = dhcpfo(0, "scope", "show")
        assert NET2 not in out and NET1 in out
        # the node wrote it: a restart comes back without the scope
        a.stop()
        a.start()
        assert [s["scope"] for s in a.call({"cmd": "status"})["scopes"]] == [NET1, NET3]
    finally:
        a.stop()
