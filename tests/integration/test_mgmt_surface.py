"""Every management command on two running nodes: an emulated board (real
MicroPython, firmware/main.py) driven over its serial console (a pty), and a
CPython `dhcpfo node` driven over TCP. They are failover partners on
loopback (no root needed), each with 30 more relationships whose partners
never answer, so each holds 31, the seed's maximum; two of those name their
partner by host name in the configuration file (one resolves, one never).

Both go through every command the firmware answers (mgmt/commands.names():
a command added there without a call here fails the test), each with a call whose result is
checked (a lease taken by a real DHCP exchange is deleted), including the
error paths the seed defines: an unknown relationship name is a non-terminating error (the
answer carries the errors and the other names' results), PartnerDown outside
COMMUNICATION_INTERRUPTED is refused (and works once the partner is gone),
a safe period with AutoStateTransition false is refused, the 32nd
relationship is refused, a user-role token is refused a change. Over TCP, a
command without a token, a wrong token and a replayed handshake get an error
and nothing else, and are counted and logged; one connection over the
configured maximum gets a one-line error and is closed; a request longer than
the line limit too."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from dhcpfo.mgmt import session
from dhcpfo.mgmt import commands
from dhcpfo.wire import dhcp as dhcpwire
from dhcpfo_host import mgmtclient
from dhcpfo_host.vclients import VClient
from dhcpfo_host.emuboard import prepare_flash

from host.test_emuboard import REPO, Emu, _need_micropython

# 100 ports unique to this run, below the ephemeral range (32768-): the nodes'
# many outgoing connections must not sit on a port a listener wants
BASE = 10000 + (os.getpid() % 220) * 100
SPARES = 30  # relationships besides the pair: 31 in all (config.MAX_RELATIONSHIPS)
MAX_CONN = 3
ADMIN = "admin-token-surface"
READER = "reader-token-surface"
PAIR = "surface"
PAIR_SCOPE = "10.9.0.0"
FREE_SCOPES = ("10.150.0.0", "10.151.0.0")  # in no relationship
EV_MGMT_AUTH_FAIL = 20261
SEED_STATS = ("ScopeId", "SuperscopeName", "AddressesFree", "AddressesInUse", "PendingOffers", "ReservedAddresses",
              "PercentageInUse", "AddressesFreeOnThisServer", "AddressesFreeOnPartnerServer",
              "AddressesInUseOnThisServer", "AddressesInUseOnPartnerServer")
# the sides: the board on 127.0.0.1, the CPython node on 127.0.0.2
SIDES = {
    "board": {"ip": "127.0.0.1", "dhcp": BASE, "mgmt": BASE + 2, "fo": BASE + 3, "spare_fo": BASE + 10,
              "spare_net": 100},
    "node": {"ip": "127.0.0.2", "dhcp": BASE + 4, "mgmt": BASE + 6, "fo": BASE + 7, "spare_fo": BASE + 50,
             "spare_net": 200},
}


def _scope(net, n=4):
    base = net.rsplit(".", 1)[0]
    return {"id": net, "mask": 24, "lease_time": 3600,
            "ranges": [{"start": base + ".10", "end": "%s.%d" % (base, 10 + n - 1)}]}


def _config(side, data_dir=None):
    me = SIDES[side]
    other = SIDES["node" if side == "board" else "board"]
    mgmt = {"address": "127.0.0.1", "port": me["mgmt"], "token": ADMIN, "user_token": READER,
            "max_connections": MAX_CONN}
    server = {"name": side, "server_id": me["ip"],
              "listen": {"address": me["ip"], "port": me["dhcp"], "relay_port": me["dhcp"] + 1}, "mgmt": mgmt}
    if data_dir:
        server["data_dir"] = data_dir
    scopes = [_scope(PAIR_SCOPE, 10)] + [_scope(n) for n in FREE_SCOPES]
    rels = [{"name": PAIR, "role": "primary" if side == "board" else "secondary", "mode": "load-balance",
             "local": {"address": me["ip"], "port": me["fo"]}, "partner": {"address": other["ip"], "port": other["fo"]},
             "scopes": [PAIR_SCOPE], "mclt": 60, "max_response_delay": 30}]
    for i in range(SPARES):
        net = "10.%d.%d.0" % (me["spare_net"], i)
        scopes.append(_scope(net))
        # a partner nobody plays: its address refuses connections
        rels.append({"name": "spare-%d" % i, "role": "primary",
                     "local": {"address": me["ip"], "port": me["spare_fo"] + i},
                     "partner": {"address": "127.0.%d.%d" % (me["spare_net"] // 100 + 10, i + 1), "port": 9},
                     "scopes": [net]})
    # two given by host name in the file: one resolves (the driver looks it up at start), one never does
    rels[1]["partner"] = {"host": "localhost", "port": 9}
    rels[2]["partner"] = {"host": "no-such-host.invalid", "port": 9}
    return {"server": server, "scopes": scopes, "failover": rels}


class _Nodes:
    def __init__(self, tmp):
        self.tmp = tmp
        self.board = None
        self.node = None
        self.node_log = os.path.join(tmp, "node.log")
        self.data = os.path.join(tmp, "node-data")

    def start(self):
        flash = os.path.join(self.tmp, "flash")
        prepare_flash(flash, _config("board"), {"network": "lan", "mdc": 23, "mdio": 18, "wdt_ms": 120000})
        self.board = Emu(flash, "--heap", "2M")
        path = os.path.join(self.tmp, "node.json")
        with open(path, "w") as f:
            json.dump(_config("node", self.data), f)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(REPO, "firmware"),
                                                           os.path.join(REPO, "host_tools")]))
        with open(self.node_log, "ab") as log:
            self.node = subprocess.Popen([sys.executable, "-m", "dhcpfo_host.cli", "node", "--config", path],
                                         stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        self.board.wait(r"dhcpfo: node board: DHCP on 127\.0\.0\.1", timeout=180)
        _poll(lambda: _try(lambda: self.tcp("node").request({"cmd": "status"})), 60, "node management port",
              self.node_log_text)

    def node_log_text(self):
        with open(self.node_log, errors="replace") as f:
            return f.read()[-3000:]

    def tcp(self, side, token=ADMIN, role=session.ADMIN):
        return mgmtclient.Connection("127.0.0.1", SIDES[side]["mgmt"], token, role, timeout=30)

    def serial(self):
        return mgmtclient.SerialConnection(self.board.pty, timeout=60)

    def stop_node(self):
        if self.node is not None and self.node.poll() is None:
            self.node.send_signal(signal.SIGTERM)
            self.node.wait(20)

    def close(self):
        self.stop_node()
        if self.board is not None:
            self.board.close()


def _try(fn):
    try:
        return fn()
    except (OSError, mgmtclient.MgmtError):
        return None


def _poll(fn, timeout, what, tail=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out waiting for %s\n%s" % (what, tail()))


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    _need_micropython()
    n = _Nodes(str(tmp_path_factory.mktemp("surface")))
    try:
        n.start()
        yield n
    finally:
        n.close()


def _ask(c, req):
    ans = c.request(req)
    assert isinstance(ans, dict) and "ok" in ans, (req, ans)
    return ans


def _ok(c, req):
    ans = _ask(c, req)
    assert ans["ok"], (req, ans)
    return ans


def _refused(c, req, words):
    ans = _ask(c, req)
    assert not ans["ok"] and words in ans["error"], (req, ans)
    return ans


def _state(c, name=PAIR):
    return _ok(c, {"cmd": "get-failover", "name": name})["relationships"][0]["state"]


def _wait_state(c, want, timeout, name=PAIR):
    _poll(lambda: _state(c, name) in want, timeout, "%s in %s" % (name, want))


def _every_command(c, side):
    """Each command the node lists, with its error paths; returns the names run."""
    ran = set()

    def run(req, ok=True, words=None):
        ran.add(req["cmd"])
        return _ok(c, req) if ok else _refused(c, req, words)

    cmds = run({"cmd": "help"})["commands"]
    st = run({"cmd": "status"})
    assert st["name"] == side and len(st["relationships"]) == 31
    # one line per relationship (get-failover has the rest): 31 in full were ~37 KB, past a board's heap
    assert set(st["relationships"][0]) == {"name", "state", "partner_state", "partner", "partner_server",
                                           "connected"}
    assert [r["name"] for r in st["relationships"]][:2] == [PAIR, "spare-0"]
    run({"cmd": "get-leases", "scope": PAIR_SCOPE})
    run({"cmd": "get-leases", "scope": "10.99.99.0"}, False, "unknown scope")
    run({"cmd": "get-counters"})
    # Get-DhcpServerv4ScopeStatistics -Failover: the seed's fields; an unknown scope is non-terminating
    stats = run({"cmd": "get-scope-statistics", "scope": [PAIR_SCOPE, "10.99.99.0"], "failover": True})
    assert [r["ScopeId"] for r in stats["scopes"]] == [PAIR_SCOPE]
    assert stats["errors"] == ["scope 10.99.99.0 does not exist on this server"]
    row = stats["scopes"][0]
    for k in SEED_STATS:
        assert k in row, k
    assert row["AddressesFreeOnThisServer"] + row["AddressesFreeOnPartnerServer"] == 10  # NORMAL: pool split
    # Get-DhcpServerv4Failover: an unknown name is non-terminating, the other names answered
    fo = run({"cmd": "get-failover", "name": [PAIR, "no-such-relationship", "spare-3"]})
    assert [r["name"] for r in fo["relationships"]] == [PAIR, "spare-3"]
    assert fo["errors"] == ["no failover relationship named no-such-relationship"]
    rel = fo["relationships"][0]
    assert rel["state"] == "normal" and rel["time_out_of_sync"] is False and rel["time_skew_max"] == 60
    # partners named in the configuration file: looked up by the node's driver when it started
    _poll(lambda: _ok(c, {"cmd": "get-failover", "name": "spare-0"})["relationships"][0]["partner"], 60,
          "spare-0's partner host name looked up")
    named = run({"cmd": "get-failover", "name": ["spare-0", "spare-1"]})["relationships"]
    assert (named[0]["partner"], named[0]["partner_server"]) == ("127.0.0.1", "localhost"), named
    assert (named[1]["partner"], named[1]["partner_server"]) == (None, "no-such-host.invalid"), named
    assert run({"cmd": "get-counters"})["counters"].get("peer.resolve-failed", 0) >= 1
    fo = run({"cmd": "get-failover", "scope": [FREE_SCOPES[0], PAIR_SCOPE]})
    assert [r["name"] for r in fo["relationships"]] == [PAIR]
    assert fo["errors"] == ["scope %s is not part of any failover relationship" % FREE_SCOPES[0]]
    # events, newest first, with a wall time (both nodes know it: a host clock / the emulator's)
    evs = run({"cmd": "get-events", "limit": 5})["events"]
    assert evs and all(abs(e["wall_time"] - time.time()) < 3600 for e in evs if e["wall_time"] is not None)
    assert side == "board" or evs[0]["wall_time"] is not None
    # set-failover-state: an unknown name
    run({"cmd": "set-failover-state", "name": "no-such-relationship", "state": "pause"}, False,
        "unknown relationship")
    # PartnerDown outside COMMUNICATION_INTERRUPTED: a non-terminating error, nothing done
    ans = run({"cmd": "set-failover", "name": PAIR, "partner_down": True})
    assert ans["errors"] == ["partner_down is possible only in communication-interrupted (relationship %s is normal)"
                             % PAIR] and ans["relationship"]["state"] == "normal"
    # a state-switch interval with AutoStateTransition false: terminating
    run({"cmd": "set-failover", "name": PAIR, "auto_state_transition": False, "safe_period": 600}, False,
        "safe_period needs auto_state_transition true")
    run({"cmd": "set-failover", "name": "no-such-relationship", "mclt": 90}, False,
        "no failover relationship named no-such-relationship")
    # the 32nd relationship
    run({"cmd": "add-failover", "name": "thirty-second", "partner": "127.0.9.9", "scopes": [FREE_SCOPES[0]]}, False,
        "The local server already has 31 (maximum allowed) failover relationships. "
        "A server cannot have more than 31 failover relationships.")
    # remove: an unknown name next to a real one; outside NORMAL only with force
    gone = run({"cmd": "remove-failover", "name": ["no-such-relationship", "spare-29"]})
    assert gone["removed"] == [] and gone["errors"][0] == "no failover relationship named no-such-relationship"
    assert "not normal" in gone["errors"][1]
    gone = run({"cmd": "remove-failover", "name": "spare-29", "force": True})
    assert gone["removed"] == ["spare-29"] and gone["errors"] == []
    # room again: a partner given by host name, resolved by the node's driver
    run({"cmd": "add-failover", "name": "bad-name", "partner": "no-such-host.invalid", "scopes": [FREE_SCOPES[1]]},
        False, "no-such-host.invalid could not be resolved")
    added = run({"cmd": "add-failover", "name": "by-name", "partner": "localhost", "partner_port": 9,
                 "local_port": SIDES[side]["spare_fo"] + 35, "scopes": [FREE_SCOPES[0], "10.99.99.0"],
                 "force": True})
    assert added["relationship"]["partner"] == "127.0.0.1" and added["relationship"]["partner_server"] == "localhost"
    assert added["errors"] == ["scope 10.99.99.0 does not exist on this server"]
    sc = run({"cmd": "add-failover-scope", "name": "by-name", "scopes": [FREE_SCOPES[1], PAIR_SCOPE]})
    assert sc["relationship"]["scopes"] == list(FREE_SCOPES)
    assert sc["errors"] == ["scope %s is already in failover relationship %s" % (PAIR_SCOPE, PAIR)]
    run({"cmd": "add-failover-scope", "name": "no-such-relationship", "scopes": [FREE_SCOPES[1]]}, False,
        "no failover relationship named no-such-relationship")
    sc = run({"cmd": "remove-failover-scope", "name": "by-name", "scopes": [FREE_SCOPES[1], "10.99.99.0"],
              "force": True})
    assert sc["relationship"]["scopes"] == [FREE_SCOPES[0]]
    assert sc["errors"] == ["scope 10.99.99.0 does not exist on this server"]
    ch = run({"cmd": "set-failover", "name": "by-name", "mclt": 120, "auto_state_transition": True})
    assert ch["relationship"]["mclt"] == 120 and ch["relationship"]["auto_state_switchover"] == 3600
    run({"cmd": "set-failover-state", "name": "by-name", "state": "pause"})
    assert _state(c, "by-name") == "paused"
    run({"cmd": "set-failover-state", "name": "by-name", "state": "resume"})
    assert run({"cmd": "remove-failover", "name": "by-name", "force": True})["removed"] == ["by-name"]
    # the audit trail of those changes
    codes = [e["code"] for e in run({"cmd": "get-events", "limit": 16})["events"]]
    assert 20262 in codes and 20263 in codes and 20266 in codes, codes  # Create/Delete/ChangeFailoverConfig
    # what the wizard checks: counts, limits, each scope's relationship, never a secret
    info = run({"cmd": "get-server-info"})
    assert info["name"] == side and info["serving"] is True
    assert info["relationship_count"] == 30 and info["max_relationships"] == 31
    owners = dict((sc["scope"], sc["relationship"]) for sc in info["scopes"])
    assert owners[PAIR_SCOPE] == PAIR and owners[FREE_SCOPES[0]] is None and len(owners) == 33
    assert all("shared_secret" not in r for r in info["relationships"])
    listed = _scope_commands(c, side, run)
    # what the node lists is what the firmware's table holds, and every one of
    # them ran above with its result checked: a new command without a call
    # here fails this test
    assert set(cmds) | set(listed) | {"help-scopes"} == _firmware_commands()
    assert ran == _firmware_commands(), sorted(_firmware_commands() - ran)
    return ran


def _firmware_commands():
    """Every management command the firmware answers (mgmt/commands.py)."""
    return set(commands.names())


def _scope_commands(c, side, run):
    """mgmt/scopes.py's commands on a scope in no relationship (FREE_SCOPES[1];
    FREE_SCOPES[0] is removed and added back), each checked by its answer or
    by reading the scope back; returns what help-scopes lists."""
    sid = FREE_SCOPES[1]
    net = sid.rsplit(".", 1)[0]
    listed = run({"cmd": "help-scopes"})["commands"]

    def cfg(scope=sid):
        return run({"cmd": "get-scope-config", "scope": scope})["config"]

    got = run({"cmd": "get-scope-config", "scope": sid})
    assert got["failover"] is None and got["config"]["id"] == sid
    assert got["config"]["ranges"] == [[net + ".10", net + ".13"]]
    assert run({"cmd": "get-scope-config", "scope": PAIR_SCOPE})["failover"] == PAIR
    run({"cmd": "get-scope-config", "scope": "10.99.99.0"}, False, "scope 10.99.99.0 does not exist on this server")
    digests = run({"cmd": "get-config-digest"})["digests"]
    assert len(digests) == 30 and all(len(d) == 16 for d in digests.values()), digests  # spare-29 removed above
    # scope properties, and the whole scope in one step
    ans = run({"cmd": "set-scope", "scope": sid, "name": "renamed", "lease_time": 1800})
    assert ans["scope"] == sid and ans["config"]["name"] == "renamed" and ans["config"]["lease_time"] == 1800
    run({"cmd": "set-scope", "scope": sid, "ranges": []}, False, "not ranges")
    whole = dict(cfg(), name="whole")
    assert run({"cmd": "set-scope-config", "scope": sid, "config": whole})["config"]["name"] == "whole"
    assert cfg()["name"] == "whole"
    # ranges and exclusions
    ans = run({"cmd": "add-range", "scope": sid, "start": net + ".20", "end": net + ".23"})
    assert [net + ".20", net + ".23"] in ans["config"]["ranges"]
    run({"cmd": "add-range", "scope": sid, "start": net + ".20", "end": net + ".23"}, False, "already")
    ans = run({"cmd": "remove-range", "scope": sid, "start": net + ".20", "end": net + ".23"})
    assert ans["config"]["ranges"] == [[net + ".10", net + ".13"]]
    ans = run({"cmd": "add-exclusion", "scope": sid, "start": net + ".11"})
    assert ans["config"]["exclusions"] == [[net + ".11", net + ".11"]]
    ans = run({"cmd": "remove-exclusion", "scope": sid, "start": net + ".11"})
    assert ans["config"]["exclusions"] == []
    run({"cmd": "remove-exclusion", "scope": sid, "start": net + ".11"}, False, "has no exclusion")
    # reservations
    ans = run({"cmd": "add-reservation", "scope": sid, "address": net + ".12", "mac": "02:00:00:00:00:07",
               "name": "printer"})
    assert [(r["address"], r["name"]) for r in ans["config"]["reservations"]] == [(net + ".12", "printer")]
    run({"cmd": "add-reservation", "scope": sid, "address": net + ".12", "mac": "02:00:00:00:00:08"}, False,
        "already reserved")
    assert run({"cmd": "remove-reservation", "scope": sid, "address": net + ".12"})["config"]["reservations"] == []
    # options, scope and server level
    assert run({"cmd": "set-option", "scope": sid, "code": 6, "value": "0a970001"})["level"] == sid
    assert [6, "0a970001"] in cfg()["options"]
    assert run({"cmd": "set-option", "level": "server", "code": 42, "value": "0a970002"})["level"] == "server"
    run({"cmd": "remove-option", "scope": sid, "code": 6})
    run({"cmd": "remove-option", "level": "server", "code": 42})
    assert all(o[0] != 6 for o in cfg()["options"])
    run({"cmd": "remove-option", "scope": sid, "code": 6}, False, "not set")
    # policies
    pol = {"name": "phones", "order": 1, "enabled": True, "operator": "or",
           "vendor_class": [["eq", "706f6c79", True]], "user_class": [], "mac": [], "client_id": [],
           "options": [[66, "74667470"]], "ranges": []}
    run({"cmd": "add-policy", "scope": sid, "policy": pol})
    assert [p["name"] for p in cfg()["policies"]] == ["phones"]
    run({"cmd": "add-policy", "scope": sid, "policy": pol}, False, "already exists")
    run({"cmd": "remove-policy", "scope": sid, "name": "phones"})
    assert cfg()["policies"] == []
    # a lease a real DHCP exchange took, deleted (Remove-DhcpServerv4Lease)
    addr = _lease(side, sid, b"\x02\xdf\x51\x00\x00\x01")
    active = run({"cmd": "get-leases", "scope": sid, "state": "active"})["leases"]
    assert [(r["address"], r["mac"]) for r in active] == [(addr, "02:df:51:00:00:01")]
    assert run({"cmd": "delete-lease", "scope": sid, "address": addr})["address"] == addr
    assert run({"cmd": "get-leases", "scope": sid, "state": "active"})["leases"] == []
    run({"cmd": "delete-lease", "scope": sid, "address": addr}, False, "has no active lease")
    # a scope removed and added back; one in a relationship cannot go
    other = FREE_SCOPES[0]
    saved = cfg(other)
    assert run({"cmd": "remove-scope", "scope": other})["scope"] == other
    run({"cmd": "get-scope-config", "scope": other}, False, "does not exist")
    assert run({"cmd": "add-scope", "config": saved})["scope"] == other
    assert cfg(other) == saved
    run({"cmd": "remove-scope", "scope": PAIR_SCOPE}, False, "is in failover relationship %s" % PAIR)
    # the whole configuration: exported, and an import that would change the
    # relationships refused naming them
    doc = run({"cmd": "export-config"})["config"]
    assert doc["server"]["name"] == side and sid in [s["id"] for s in doc["scopes"]]
    assert len(doc["failover"]) == 30 and doc["server"]["mgmt_token"] == ADMIN
    run({"cmd": "import-config", "config": {"format": doc["format"], "server": doc["server"], "scopes": []}},
        False, "these differ and need the failover commands or a restart: failover")
    if side == "node":
        # a Linux node takes a whole document in one request (~24 KB here;
        # runtime/host.py HOST_REQUEST_MAX); a board's line stays 4 KB
        assert len(json.dumps(doc)) > 4096
        changed = json.loads(json.dumps(doc))
        changed["scopes"][[x["id"] for x in doc["scopes"]].index(sid)]["name"] = "imported whole"
        run({"cmd": "import-config", "config": changed})
        assert run({"cmd": "get-scope-config", "scope": sid})["config"]["name"] == "imported whole"
    return listed


def _lease(side, sid, mac, timeout=60):
    """DISCOVER/OFFER/REQUEST/ACK through a loopback relay (giaddr 127.0.0.1 on
    the node's relay port) with subnet selection (option 118) naming `sid`;
    retransmitted each second until the node answers. Returns the address."""
    me = SIDES[side]
    sel = bytes(int(p) for p in sid.split("."))
    client = VClient(mac)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", me["dhcp"] + 1))
    s.settimeout(1.0)

    def exchange(mtype, want, **opts):
        pkt = client.packet(mtype, o118=sel, **opts)
        pkt.giaddr = bytes([127, 0, 0, 1])
        pkt.hops = 1
        data = dhcpwire.encode(pkt)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.sendto(data, (me["ip"], me["dhcp"]))
            try:
                got = dhcpwire.decode(s.recvfrom(2048)[0])
            except socket.timeout:
                continue
            if got.xid == client.xid and got.msg_type == want:
                return got
        raise AssertionError("%s: no answer of type %d from the %s" % (sid, want, side))

    try:
        offer = exchange(dhcpwire.DISCOVER, dhcpwire.OFFER)
        sid_opt = offer.options.get(dhcpwire.OPT_SERVER_ID)
        ack = exchange(dhcpwire.REQUEST, dhcpwire.ACK, o50=offer.yiaddr, o54=sid_opt)
    finally:
        s.close()
    return ".".join(str(b) for b in ack.yiaddr)


def test_every_command_on_the_board_over_its_console_and_the_node_over_tcp(nodes):
    with nodes.serial() as c:
        _wait_state(c, ("normal",), 180)
        ran = _every_command(c, "board")
        board_digest = _ok(c, {"cmd": "get-config-digest"})["digests"][PAIR]
    with nodes.tcp("node") as c:
        assert _every_command(c, "node") == ran
        # the pair's scope is configured alike on both: the same digest, no drift flagged
        assert _ok(c, {"cmd": "get-config-digest"})["digests"][PAIR] == board_digest
        assert _ok(c, {"cmd": "get-failover", "name": PAIR})["relationships"][0]["config_drift"] is False


def _raw(side):
    s = socket.create_connection(("127.0.0.1", SIDES[side]["mgmt"]), timeout=30)
    return s, s.makefile("rb")


def _drop(s, f):
    """Close a raw connection for real (the makefile object holds the socket open)."""
    f.close()
    s.close()


def _line(f):
    return json.loads(f.readline())


def _closed(s, f):
    s.settimeout(30)
    try:
        return f.readline() == b""
    except ConnectionResetError:  # closed with our unread bytes in its buffer: a reset
        return True


@pytest.mark.parametrize("side", ["board", "node"])
def test_tcp_user_role_bad_tokens_replay_and_bounds(nodes, side):
    # the user role reads and may not change anything
    with nodes.tcp(side, READER, session.USER) as c:
        assert _ok(c, {"cmd": "get-failover", "name": PAIR})["relationships"][0]["name"] == PAIR
        _refused(c, {"cmd": "set-failover", "name": PAIR, "mclt": 90}, "the user role may only read")
        _refused(c, {"cmd": "add-failover", "name": "x", "partner": "127.0.9.9", "scopes": [FREE_SCOPES[1]]},
                 "the user role may only read")
        # the scope commands too (export-config as well: it holds the tokens and secrets)
        assert _ok(c, {"cmd": "get-scope-config", "scope": PAIR_SCOPE})["failover"] == PAIR
        _refused(c, {"cmd": "add-range", "scope": FREE_SCOPES[1], "start": "10.151.0.30", "end": "10.151.0.31"},
                 "the user role may only read")
        _refused(c, {"cmd": "export-config"}, "the user role may only read")
    before = _ok_login(nodes, side, {"cmd": "get-counters"})["counters"]

    # no token: an error and nothing else, four times, then the connection is closed
    s, f = _raw(side)
    for _ in range(session.MAX_UNAUTH_REQUESTS):
        s.sendall(b'{"cmd": "get-leases", "scope": "10.9.0.0"}\n')
        assert _line(f) == {"ok": False, "error": "not authenticated: send hello, then auth"}
    assert _closed(s, f)
    _drop(s, f)

    # a wrong token: refused with no data, and the node does not prove anything
    s, f = _raw(side)
    s.sendall(b'{"cmd": "hello"}\n')
    hello = _line(f)
    nonce = bytes.fromhex(hello["nonce"])
    cnonce = os.urandom(16)
    s.sendall((json.dumps({"cmd": "auth", "role": "administrator", "cnonce": cnonce.hex(),
                           "proof": session.client_proof(b"wrong-token-here", nonce, cnonce, "administrator")})
               + "\n").encode())
    ans = _line(f)
    assert set(ans) == {"ok", "error"} and not ans["ok"] and "wrong role or token" in ans["error"]
    s.sendall(b'{"cmd": "status"}\n')
    assert _line(f) == {"ok": False, "error": "not authenticated: send hello, then auth"}
    _drop(s, f)

    # a handshake recorded on one connection and replayed on another
    s, f = _raw(side)
    s.sendall(b'{"cmd": "hello"}\n')
    nonce = bytes.fromhex(_line(f)["nonce"])
    cnonce = os.urandom(16)
    recorded = (json.dumps({"cmd": "auth", "role": "administrator", "cnonce": cnonce.hex(),
                            "proof": session.client_proof(ADMIN.encode(), nonce, cnonce, "administrator")})
                + "\n").encode()
    _poll(lambda: _after_lockout(s, f, recorded), 60, "the back-off after the wrong token")
    _drop(s, f)
    s, f = _raw(side)
    s.sendall(b'{"cmd": "hello"}\n')
    assert bytes.fromhex(_line(f)["nonce"]) != nonce  # a fresh nonce per connection
    replayed = [None]

    def replay():
        s.sendall(recorded)
        ans = _line(f)
        if "retry in" in ans.get("error", ""):
            return None  # still backing off: not an attempt; try again shortly
        replayed[0] = ans
        return True

    _poll(replay, 60, "the replay to be judged")
    assert set(replayed[0]) == {"ok", "error"} and "wrong role or token" in replayed[0]["error"]
    s.sendall(b'{"cmd": "get-failover"}\n')
    assert _line(f) == {"ok": False, "error": "not authenticated: send hello, then auth"}
    _drop(s, f)

    # counted and logged
    after = _ok_login(nodes, side, {"cmd": "get-counters"})["counters"]
    assert after.get("mgmt.auth-fail", 0) - before.get("mgmt.auth-fail", 0) >= 2
    assert after.get("mgmt.unauthenticated", 0) - before.get("mgmt.unauthenticated", 0) >= 6
    evs = _ok_login(nodes, side, {"cmd": "get-events", "level": "warning", "limit": 16})["events"]
    assert any(e["code"] == EV_MGMT_AUTH_FAIL and "management authentication from 127.0.0.1 refused" in e["text"]
               for e in evs), evs

    # bounded connections: MAX_CONN open, one more gets one line and is closed
    def served():
        s, f = _raw(side)
        s.sendall(b'{"cmd": "hello"}\n')
        ans = _line(f)
        if ans["ok"]:
            return s, f
        _drop(s, f)  # the node has not yet seen an earlier connection close
        return None

    held = [_poll(served, 60, "a management slot") for _ in range(MAX_CONN)]
    s, f = _raw(side)
    assert _line(f) == {"ok": False, "error": "too many management connections (at most %d); try again later"
                        % MAX_CONN}
    assert _closed(s, f)
    _drop(s, f)
    for s, f in held:
        _drop(s, f)
    # a request longer than the line limit: an error line, then closed
    def too_long():
        s, f = _raw(side)
        s.sendall(b'{"cmd": "hello", "pad": "' + b"x" * 6000)
        ans = _line(f)
        if "too many management connections" in ans.get("error", ""):
            _drop(s, f)  # the node has not yet seen the held ones close
            return None
        return s, f, ans

    s, f, ans = _poll(too_long, 60, "a free management slot")
    assert ans == {"ok": False, "error": "request longer than 4096 bytes; connection closed"}
    assert _closed(s, f)
    _drop(s, f)
    counters = _ok_login(nodes, side, {"cmd": "get-counters"})["counters"]
    assert counters.get("mgmt.conn-refused", 0) >= 1 and counters.get("mgmt.too-long", 0) >= 1


def _after_lockout(s, f, recorded):
    """Sign in with the recorded handshake once the back-off allows (a real login)."""
    s.sendall(recorded)
    ans = _line(f)
    if not ans["ok"]:
        assert "retry in" in ans["error"], ans
        return False
    return True


def _ok_login(nodes, side, req):
    """A request on a fresh administrator connection, once the back-off lets it in."""
    def attempt():
        try:
            with nodes.tcp(side) as c:
                return c.request(req)
        except mgmtclient.MgmtError as e:
            if "retry in" in str(e):
                return None
            raise
    ans = _poll(attempt, 120, "an administrator login")
    assert ans["ok"], ans
    return ans


def test_partner_down_once_the_partner_is_gone(nodes):
    """Last (it stops the CPython node): the board's pair relationship loses its
    partner, reaches COMMUNICATION_INTERRUPTED, and partner_down is taken."""
    nodes.stop_node()
    with nodes.serial() as c:
        _wait_state(c, ("communications-interrupted",), 120)
        ans = _ok(c, {"cmd": "set-failover", "name": PAIR, "partner_down": True})
        assert ans["errors"] == [], ans
        _wait_state(c, ("partner-down",), 60)
        evs = _ok(c, {"cmd": "get-events", "limit": 16})["events"]
        assert any(e["code"] == 20255 for e in evs), evs  # CommDown
    assert "FAIL-STOP" not in nodes.board.text() and "Traceback" not in nodes.board.text()
