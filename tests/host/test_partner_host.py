"""A failover partner given by host name in a node's configuration file
(`"partner": {"host": ...}`, docs/config.md): compiled with the name, looked
up by the driver when the node starts (runtime/aio.py; the core never
resolves), and a name that does not resolve is counted and logged and tried
again, never a crash. Two `dhcpfo node` processes on loopback, no root."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from dhcpfo import config as fwconfig
from dhcpfo.config import UNRESOLVED, ConfigError
from dhcpfo_host import boardconf, confcheck, mgmtclient

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = 9000 + (os.getpid() % 99) * 10  # ports unique to this run, below the ephemeral range
# the two nodes: "named" dials its partner by the name localhost (127.0.0.1)
SIDES = {"named": {"ip": "127.0.0.2", "dhcp": BASE, "mgmt": BASE + 2, "fo": BASE + 3, "role": "primary"},
         "plain": {"ip": "127.0.0.1", "dhcp": BASE + 4, "mgmt": BASE + 6, "fo": BASE + 7, "role": "secondary"}}
SCOPE = "10.77.0.0"
LOST_SCOPE = "10.78.0.0"


def _scope(net):
    base = net.rsplit(".", 1)[0]
    return {"id": net, "mask": 24, "lease_time": 3600, "ranges": [{"start": base + ".10", "end": base + ".19"}]}


def _config(side, data_dir):
    me = SIDES[side]
    other = SIDES["plain" if side == "named" else "named"]
    partner = {"host": "localhost", "port": other["fo"]} if side == "named" else \
        {"address": other["ip"], "port": other["fo"]}
    doc = {"server": {"name": side, "server_id": me["ip"], "data_dir": data_dir,
                      "listen": {"address": me["ip"], "port": me["dhcp"], "relay_port": me["dhcp"] + 1},
                      "mgmt": {"address": "127.0.0.1", "port": me["mgmt"]}},
           "scopes": [_scope(SCOPE)],
           "failover": [{"name": "by-name", "role": me["role"], "local": {"address": me["ip"], "port": me["fo"]},
                         "partner": partner, "scopes": [SCOPE], "mclt": 60}]}
    if side == "named":  # and one whose name resolves nowhere
        doc["scopes"].append(_scope(LOST_SCOPE))
        doc["failover"].append({"name": "lost", "role": "primary", "scopes": [LOST_SCOPE],
                                "local": {"address": me["ip"], "port": me["fo"] + 1},
                                "partner": {"host": "no-such-host.invalid", "port": 9}})
    return doc


def test_the_configuration_file_takes_a_partner_host_name():
    doc = _config("named", "/tmp/unused")
    compiled = boardconf.compile_config(doc)
    rel = compiled["failover"][0]
    assert rel["partner_host"] == "localhost" and rel["partner_address"] is None
    cfg = fwconfig.load(compiled)  # the board's loader: no lookup, the address is unresolved
    assert cfg.failover[0].partner_host == "localhost" and cfg.failover[0].partner_address == UNRESOLVED
    # an address next to the name: kept (used while the name does not resolve)
    doc["failover"][0]["partner"]["address"] = "127.0.0.1"
    assert boardconf.compile_config(doc)["failover"][0]["partner_address"] == "127.0.0.1"
    # an address alone compiles as before, without partner_host
    plain = boardconf.compile_config(_config("plain", "/tmp/unused"))["failover"][0]
    assert "partner_host" not in plain and plain["partner_address"] == "127.0.0.2"
    for partner, words in (({"host": "bad_name!"}, "failover[0].partner.host: not a DNS host name"),
                           ({"host": "10.1.2.3"}, "failover[0].partner.host: not a DNS host name"),
                           ({"port": 647}, "failover[0].partner.address: required (the partner's IPv4 address; "
                                           "or host, its DNS host name)")):
        doc["failover"][0]["partner"] = partner
        with pytest.raises(ConfigError) as e:
            boardconf.compile_config(doc)
        assert any(err.startswith(words) for err in e.value.errors), e.value.errors
    # the pair check compares what it can without a lookup: the ports
    a = confcheck.load(_config("named", "/tmp/unused"))
    b = confcheck.load(_config("plain", "/tmp/unused"))
    assert confcheck.pair_errors(a, b) == [] and confcheck.pair_errors(b, a) == []
    wrong = _config("named", "/tmp/unused")
    wrong["failover"][0]["partner"]["port"] = 1
    assert confcheck.pair_errors(confcheck.load(wrong), b) == \
        ["failover by-name: partner address here is not the partner's local address"]


def _call(side, req):
    return mgmtclient.call("127.0.0.1", SIDES[side]["mgmt"], req, timeout=10)


def _poll(fn, timeout, what, tail=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            v = fn()
        except (OSError, mgmtclient.MgmtError):
            v = None
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out waiting for %s\n%s" % (what, tail()))


def _rel(side, name):
    return _call(side, {"cmd": "get-failover", "name": name})["relationships"][0]


def test_a_pair_whose_partner_is_named_localhost_reaches_normal(tmp_path):
    procs = {}
    logs = dict((side, tmp_path / (side + ".log")) for side in SIDES)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(REPO, "firmware"),
                                                       os.path.join(REPO, "host_tools")]))

    def tail():
        return "\n".join("%s:\n%s" % (s, logs[s].read_text()[-2000:]) for s in SIDES if logs[s].exists())

    try:
        for side in SIDES:
            path = tmp_path / (side + ".json")
            path.write_text(json.dumps(_config(side, str(tmp_path / (side + "-data")))))
            with open(logs[side], "ab") as log:
                procs[side] = subprocess.Popen([sys.executable, "-m", "dhcpfo_host.cli", "node", "--config",
                                                str(path)], stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        for side in SIDES:
            _poll(lambda: _call(side, {"cmd": "status"}), 60, "%s management port" % side, tail)
        # the name resolved at start: the link comes up from both ends
        for side in SIDES:
            _poll(lambda: _rel(side, "by-name")["state"] == "normal", 120, "%s normal" % side, tail)
        rel = _rel("named", "by-name")
        assert rel["partner"] == "127.0.0.1" and rel["partner_server"] == "localhost", rel
        # the name that resolves nowhere: counted, one warning, no address, and the node serves on
        lost = _rel("named", "lost")
        assert lost["partner"] is None and lost["partner_server"] == "no-such-host.invalid", lost
        counters = _call("named", {"cmd": "get-counters"})["counters"]
        assert counters.get("peer.resolve-failed", 0) >= 1, counters
        texts = [e["text"] for e in _call("named", {"cmd": "get-events", "level": "info", "limit": 16})["events"]]
        assert "failover relationship by-name: partner host name localhost is 127.0.0.1" in texts, texts
        warned = [t for t in texts if t.startswith("failover relationship lost: partner host name "
                                                   "no-such-host.invalid could not be resolved")]
        assert len(warned) == 1, texts
        assert procs["named"].poll() is None and "Traceback" not in tail()
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
                p.wait(20)


def test_a_failed_lookup_is_tried_again_before_the_next_connect(tmp_path, monkeypatch):
    """The driver's retry, in process: the resolver fails once, then names a
    real listener (a stand-in for DNS, which a test cannot make fail and then
    answer); the connector then dials it."""
    from runtime import aio, host

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(30)
    doc = _config("named", str(tmp_path / "data"))
    doc["failover"][0]["partner"]["port"] = listener.getsockname()[1]
    compiled = boardconf.compile_config(doc)
    node, store, clock = host.build(fwconfig.load(compiled), doc=compiled)
    runner = aio.NodeRunner(node, store, clock, None, bytes([127, 0, 0, 2]))
    answers = [OSError("[addrinfo error -3] temporary failure"), bytes([127, 0, 0, 1])]

    async def fake_lookup(name, port):
        a = answers.pop(0) if answers else bytes([127, 0, 0, 1])
        if isinstance(a, Exception):
            raise a
        return a

    monkeypatch.setattr(aio, "lookup_async", fake_lookup)
    monkeypatch.setattr(aio, "RESOLVE_RETRY", 0)
    rel = node.relationship("by-name")

    async def run():
        task = asyncio.create_task(runner.connector_task(rel, None, rel.rc.partner_port, "127.0.0.2"))
        try:
            conn, peer = await asyncio.get_running_loop().run_in_executor(None, listener.accept)
            conn.close()
            return peer
        finally:
            runner.running = False
            task.cancel()

    try:
        peer = asyncio.run(run())
    finally:
        listener.close()
        store.close()
    assert peer[0] == "127.0.0.2" and not answers
    assert rel.partner_address == bytes([127, 0, 0, 1])
    assert node.events.counters.get("peer.resolve-failed") == 1
    texts = [e[3] for e in node.events.recent(16, 0)]
    assert any("partner host name localhost could not be resolved" in t for t in texts), texts
    assert "failover relationship by-name: partner host name localhost is 127.0.0.1" in texts, texts
