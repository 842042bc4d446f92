"""Live reconfiguration on real CPython nodes (issue 8 item 2): two `dhcpfo
node` processes on loopback, changed only through management commands over
TCP. Each change takes effect without a restart (a created relationship
connects and reaches NORMAL, a scope joins and serves, new settings reach
the partner), then each node is restarted (SIGKILL or SIGTERM) and must come
back with the change and every lease it had. A configuration write that
fails is a fail-stop, never a node running on a configuration it could not
persist."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dhcpfo_host import mgmtclient
from host.test_node_process import _serve_clients

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = 40000 + (os.getpid() % 5000) * 4  # DHCP, relay, failover; management below
ADDR = ("127.81.0.2", "127.81.0.3")
NET1, NET2 = "127.81.1.0", "127.81.2.0"
TOKEN = "reconfig-admin-token"
DEADLINE = 60.0  # generous: a loaded 2-core machine


def _mgmt_port(i):
    return 45000 + (os.getpid() % 5000) * 2 + i


def _config(tmp_path, i):
    return {
        "server": {"name": "n%d" % i, "server_id": ADDR[i],
                   "listen": {"address": ADDR[i], "port": BASE, "relay_port": BASE + 1},
                   "data_dir": str(tmp_path / ("data%d" % i)),
                   "mgmt": {"address": "127.0.0.1", "port": _mgmt_port(i), "token": TOKEN}},
        "scopes": [{"id": net, "mask": 24, "lease_time": 900,
                    "ranges": [{"start": net[:-1] + "10", "end": net[:-1] + "49"}]} for net in (NET1, NET2)],
    }


class Proc:
    """One node process; its config file is written once and then only by the node."""

    def __init__(self, tmp_path, i, doc=None, mgmt_port=None, env=None, token=TOKEN):
        self.i = i
        self.port = mgmt_port or _mgmt_port(i)
        self.token = token
        self.env = env  # None: this process's environment
        self.path = tmp_path / ("node%d.json" % i)
        self.log = tmp_path / ("node%d.log" % i)
        self.path.write_text(json.dumps(_config(tmp_path, i) if doc is None else doc))
        self.proc = None

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "dhcpfo_host.cli", "node", "--config",
                                          str(self.path)], stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                         env=self.env)
        _until(lambda: self._answers(), "node %d management port" % self.i, self)
        return self

    def _answers(self):
        if self.proc.poll() is not None:
            raise AssertionError("node %d exited: %s" % (self.i, self.log.read_text()[-3000:]))
        try:
            return self.call({"cmd": "help"}, timeout=1)
        except (OSError, mgmtclient.MgmtError):
            return None

    def call(self, req, timeout=10):
        return mgmtclient.call("127.0.0.1", self.port, req, timeout=timeout, token=self.token)

    def answer(self, req):
        """The node's answer, refusals included (call() raises on those)."""
        with mgmtclient.Connection("127.0.0.1", self.port, self.token) as c:
            return c.request(req)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(20)
        return self.proc.returncode

    def restart(self, sig):
        self.stop(sig)
        return self.start()

    def rels(self):
        return dict((r["name"], r) for r in self.call({"cmd": "get-failover"})["relationships"])

    def leases(self, net):
        rows = self.call({"cmd": "get-leases", "scope": net, "state": "active", "limit": 1000})["leases"]
        return dict((r["mac"], r["address"]) for r in rows)


def _until(fn, what, *procs):
    deadline = time.time() + DEADLINE
    while time.time() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError("timed out waiting for %s; logs:\n%s" % (
        what, "\n".join(p.log.read_text()[-2000:] for p in procs)))


def _normal(nodes, name="pair"):
    def both():
        try:
            return all(n.rels().get(name, {}).get("state") == "normal" for n in nodes)
        except mgmtclient.MgmtError:
            return False
    _until(both, "%s normal on both" % name, *nodes)


def _serve(net, servers, n, seed, seconds=30.0):
    """n clients behind a relay on `net` until all are bound; {mac text: address text}."""
    relay = _serve_clients(n, seconds, net[:-1] + "1", [(a, BASE) for a in servers], seed, BASE)
    bound = dict((":".join("%02x" % b for b in c.mac), ".".join(str(b) for b in c.addr))
                 for c in relay.clients.values() if c.state == "bound")
    assert len(bound) == n and len(set(bound.values())) == n, relay.table()
    return bound


def _has(node, net, bound):
    have = node.leases(net)
    missing = dict((m, a) for m, a in bound.items() if have.get(m) != a)
    assert not missing, "node %d lost leases on %s: %s" % (node.i, net, missing)


def _add(i, **kw):
    req = {"cmd": "add-failover", "name": "pair", "partner": ADDR[1 - i], "local_address": ADDR[i],
           "role": "primary" if i == 0 else "secondary", "scopes": [NET1], "local_port": BASE + 2,
           "partner_port": BASE + 2, "mclt": 300}
    req.update(kw)
    return req


@pytest.fixture
def pair(tmp_path):
    nodes = [Proc(tmp_path, 0), Proc(tmp_path, 1)]
    try:
        yield nodes
    finally:
        for n in nodes:
            n.stop(signal.SIGKILL)


def test_each_change_live_then_a_restart_keeps_it_and_every_lease(pair):
    a, b = pair
    a.start()
    b.start()
    # standalone first: only A serves NET1
    early = _serve(NET1, [ADDR[0]], 4, seed=11)
    # create the relationship on both: links open without a restart
    _refused = a.answer(_add(0, load_balance_percent=60, reserve_percent=5))
    assert not _refused["ok"] and "does not apply" in _refused["error"]
    a.call(_add(0))
    b.call(_add(1))
    _normal(pair)
    _until(lambda: b.leases(NET1).keys() >= early.keys(), "B learned A's leases", a, b)  # first contact
    _has(b, NET1, early)
    net1 = dict(early, **_serve(NET1, ADDR, 6, seed=12))
    a.restart(signal.SIGKILL)
    b.restart(signal.SIGTERM)
    _normal(pair)
    for n in pair:
        assert n.rels()["pair"]["scopes"] == [NET1]
        _has(n, NET1, net1)

    # a scope joins on both, serves, survives a restart
    for n in pair:
        ans = n.call({"cmd": "add-failover-scope", "name": "pair", "scopes": [NET2, "127.81.9.0"]})
        assert ans["errors"] == ["scope 127.81.9.0 does not exist on this server"]
    net2 = _serve(NET2, ADDR, 6, seed=13)
    a.restart(signal.SIGTERM)
    b.restart(signal.SIGKILL)
    _normal(pair)
    for n in pair:
        assert n.rels()["pair"]["scopes"] == [NET1, NET2]
        _has(n, NET1, net1)
        _has(n, NET2, net2)

    # settings: MCLT and split reach the partner (re-established link), the safe period is local
    bad = b.answer({"cmd": "set-failover", "name": "pair", "auto_state_transition": False, "safe_period": 60})
    assert not bad["ok"] and "safe_period" in bad["error"]
    ans = a.call({"cmd": "set-failover", "name": "pair", "partner_down": True})
    assert "communication-interrupted" in ans["errors"][0] and ans["relationship"]["state"] == "normal"
    a.call({"cmd": "set-failover", "name": "pair", "mclt": 240, "load_balance_percent": 70})
    b.call({"cmd": "set-failover", "name": "pair", "mclt": 240, "load_balance_percent": 30, "safe_period": 900})
    _normal(pair)
    _until(lambda: b.rels()["pair"]["load_balance_percent"] == 30, "B took the primary's new split", a, b)
    a.restart(signal.SIGKILL)
    b.restart(signal.SIGKILL)
    _normal(pair)
    ra, rb = a.rels()["pair"], b.rels()["pair"]
    assert ra["mclt"] == 240 and rb["mclt"] == 240
    assert ra["load_balance_percent"] == 70 and rb["load_balance_percent"] == 30
    assert rb["auto_state_switchover"] == 900 and ra["auto_state_switchover"] is None
    for n in pair:
        _has(n, NET1, net1)
        _has(n, NET2, net2)

    # a scope leaves (in NORMAL), then the relationship goes; leases stay
    for n in pair:
        n.call({"cmd": "remove-failover-scope", "name": "pair", "scopes": [NET2]})
    a.restart(signal.SIGTERM)
    b.restart(signal.SIGTERM)
    _normal(pair)
    for n in pair:
        assert n.rels()["pair"]["scopes"] == [NET1]
    ans = a.call({"cmd": "remove-failover", "name": ["pair", "nope"]})
    assert ans["removed"] == ["pair"] and ans["errors"] == ["no failover relationship named nope"]
    assert a.rels() == {}
    # B lost its partner: outside NORMAL only a forced removal goes (non-terminating error otherwise)
    _until(lambda: b.rels()["pair"]["state"] == "communications-interrupted", "B interrupted", a, b)
    ans = b.call({"cmd": "remove-failover", "name": "pair"})
    assert ans["removed"] == [] and "not normal" in ans["errors"][0]
    ans = b.call({"cmd": "remove-failover", "name": "pair", "force": True})
    assert ans["removed"] == ["pair"] and b.rels() == {}
    a.restart(signal.SIGKILL)
    b.restart(signal.SIGTERM)
    for n in pair:
        assert n.rels() == {}
        _has(n, NET1, net1)
        _has(n, NET2, net2)
        doc = json.loads(n.path.read_text())  # rewritten whole, in compiled form
        assert doc["failover"] == [] and not os.path.exists(str(n.path) + ".new")


def test_a_configuration_that_cannot_be_written_is_a_fail_stop(pair):
    a = pair[0]
    a.start()
    bound = _serve(NET1, [ADDR[0]], 3, seed=21)
    before = a.path.read_text()
    os.mkdir(str(a.path) + ".new")  # the temporary file cannot be created
    with pytest.raises((OSError, mgmtclient.MgmtError)):
        a.call(_add(0), timeout=20)  # no answer: the node stopped before answering
    assert a.proc.wait(20) == 3
    assert "FAIL-STOP: configuration write failed" in a.log.read_text()
    assert a.path.read_text() == before
    os.rmdir(str(a.path) + ".new")
    a.start()
    assert a.rels() == {}  # the change was never acknowledged and is not there
    _has(a, NET1, bound)


def _cli(*argv):
    """`dhcpfo failover ...` as an admin would run it (no terminal on stdin)."""
    r = subprocess.run([sys.executable, "-m", "dhcpfo_host.cli", "failover"] + list(argv)
                       + ["--port", str(_mgmt_port(0)), "--token", TOKEN],
                       capture_output=True, text=True, cwd=REPO, timeout=60, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout, r.stderr


def test_failover_cli_subcommands(pair):
    a = pair[0]
    a.start()
    port = str(BASE + 2)
    rc, out, err = _cli("add", "--name", "p", "--partner", ADDR[1], "--scope", NET1, "--local-address", ADDR[0],
                        "--local-port", port, "--partner-port", port, "--mclt", "5m", "--json")
    assert rc == 0, err
    assert json.loads(out)["relationship"]["mclt"] == 300
    rc, out, err = _cli("show")
    assert rc == 0 and out.splitlines()[0].split()[:3] == ["NAME", "ROLE", "MODE"] and "\np " in out
    rc, out, err = _cli("show", "--name", "nope")
    assert rc == 1 and "no failover relationship named nope" in err
    # the shared secret is confirmed: without a terminal only --force does it
    rc, out, err = _cli("set", "--name", "p", "--shared-secret", "s3cret")
    assert rc == 2 and "--force" in err
    rc, out, err = _cli("set", "--name", "p", "--shared-secret", "s3cret", "--force")
    assert rc == 0 and "yes" in out.splitlines()[1].split()
    rc, out, err = _cli("set", "--name", "p", "--auto-state-transition", "false", "--safe-period", "1m")
    assert rc == 1 and "safe_period needs auto_state_transition true" in err
    rc, out, err = _cli("set", "--name", "p", "--mclt", "soon")
    assert rc == 2 and "not a time span" in err
    rc, out, err = _cli("add-scope", "--name", "p", "--scope", NET2, "--scope", "127.81.9.0")
    assert rc == 1 and "127.81.9.0 does not exist" in err and NET2 in out
    rc, out, err = _cli("remove-scope", "--name", "p", "--scope", NET2)
    assert rc == 1 and "not normal" in err  # the partner never came: a terminating error
    rc, out, err = _cli("remove-scope", "--name", "p", "--scope", NET2, "--force")
    assert rc == 0 and NET2 not in out
    rc, out, err = _cli("remove", "--name", "p", "--name", "nope", "--force")
    assert rc == 1 and "removed p" in out and "nope" in err
    assert a.rels() == {}
    doc = json.loads(a.path.read_text())
    assert doc["failover"] == []


def test_the_rewritten_configuration_keeps_the_file_permissions(tmp_path):
    from runtime.cfgfile import ConfigFile
    path = tmp_path / "node.json"
    path.write_text("{}")
    os.chmod(path, 0o600)  # it holds the management token and shared secrets
    ConfigFile(str(path)).write({"failover": []})
    assert json.loads(path.read_text()) == {"failover": []}
    assert os.stat(path).st_mode & 0o777 == 0o600


def _reloaded(node, marker, count):
    """SIGHUP, then wait until the node's log says `marker` `count` times."""
    node.proc.send_signal(signal.SIGHUP)
    _until(lambda: node.log.read_text().count(marker) >= count, "%r in the log" % marker, node)


def test_sighup_reloads_the_edited_file_live_and_refuses_what_needs_more(pair):
    """`kill -HUP` / `systemctl reload`: scope changes in the edited file apply
    without a restart and without losing a lease; a file that is not valid,
    or that changes what a reload may not (a relationship), is refused with
    the reason and changes nothing; the node keeps serving throughout."""
    a = pair[0]
    a.start()
    bound = _serve(NET1, [ADDR[0]], 3, seed=23)
    doc = json.loads(a.path.read_text())
    doc["scopes"][1]["lease_time"] = 1234
    doc["scopes"][1]["ranges"].append({"start": "127.81.2.60", "end": "127.81.2.69"})
    a.path.write_text(json.dumps(doc))
    _reloaded(a, "configuration reloaded from", 1)
    got = a.call({"cmd": "get-scope-config", "scope": NET2})["config"]
    assert got["lease_time"] == 1234 and len(got["ranges"]) == 2, got
    _has(a, NET1, bound)

    good = a.path.read_text()  # the node rewrote it, compiled
    a.path.write_text(good[: len(good) // 2])  # cut short: not JSON
    _reloaded(a, "configuration reload refused, nothing changed", 1)
    doc = _config(a.path.parent, 0)  # a valid file (human form) that adds a relationship
    doc["failover"] = [{"name": "p", "role": "primary", "mode": "load-balance",
                        "local": {"address": ADDR[0], "port": BASE + 2},
                        "partner": {"address": ADDR[1], "port": BASE + 2}, "scopes": [NET1], "mclt": 300}]
    a.path.write_text(json.dumps(doc))
    _reloaded(a, "configuration reload refused, nothing changed", 2)
    assert a.log.read_text().rsplit("reload refused", 1)[1].splitlines()[0].endswith(
        "need the failover commands or a restart: failover")
    assert a.rels() == {} and a.proc.poll() is None
    assert a.call({"cmd": "get-scope-config", "scope": NET2})["config"]["lease_time"] == 1234
    _has(a, NET1, bound)
