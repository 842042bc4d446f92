"""A `dhcpfo node` process on loopback, no root needed: the CPython driver,
the lease store and the management port, driven with real DHCP packets
through a loopback relay agent."""
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from dhcpfo_host import mgmtclient
from dhcpfo_host.vclients import Relay

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = 20000 + (os.getpid() % 5000) * 4  # ports unique to this run


def _config(tmp_path, token=None, user_token=None):
    mgmt = {"address": "127.0.0.1", "port": BASE + 2}
    if token:
        mgmt["token"] = token
    if user_token:
        mgmt["user_token"] = user_token
    return {
        "server": {"name": "t", "server_id": "127.78.0.2",
                   "listen": {"address": "127.78.0.2", "port": BASE, "relay_port": BASE + 1},
                   "data_dir": str(tmp_path / "data"), "mgmt": mgmt},
        "scopes": [{"id": "127.78.1.0", "mask": 24, "lease_time": 300,
                    "ranges": [{"start": "127.78.1.10", "end": "127.78.1.60"}]}],
    }


def _start(tmp_path, cfg):
    path = tmp_path / "node.json"
    path.write_text(json.dumps(cfg))
    log = open(tmp_path / "node.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "dhcpfo_host.cli", "node", "--config", str(path)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    deadline = time.time() + 15
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError("node exited: " + (tmp_path / "node.log").read_text())
        try:
            mgmtclient.call("127.0.0.1", BASE + 2, {"cmd": "help"}, token=cfg["server"]["mgmt"].get("token"),
                            timeout=0.5)
            return proc
        except (OSError, mgmtclient.MgmtError):
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("node did not come up: " + (tmp_path / "node.log").read_text())


def _stop(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        proc.send_signal(sig)
        proc.wait(10)


def _serve_clients(n, seconds=3.0, relay_ip="127.78.1.1", servers=None, seed=1, base=BASE):
    """n clients behind a loopback relay (port base + 1) until all are bound
    or `seconds` pass; the relay."""
    relay = Relay(relay_ip, base + 1, servers or [("127.78.0.2", base)], count=n, seed=seed)
    relay.open()
    try:
        async def go():
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            while loop.time() - t0 < seconds and any(c.state != "bound" for c in relay.clients.values()):
                relay.receive(loop.time())
                relay.kick(loop.time())
                await asyncio.sleep(0.05)
        asyncio.run(go())
    finally:
        relay.close()
    return relay


def test_node_serves_relayed_clients_and_keeps_leases_across_kill(tmp_path):
    proc = _start(tmp_path, _config(tmp_path, token="sekrit-token"))
    try:
        relay = _serve_clients(6)
        bound = {c.mac: c.addr for c in relay.clients.values() if c.state == "bound"}
        assert len(bound) == 6 and len(set(bound.values())) == 6
    finally:
        _stop(proc, signal.SIGKILL)  # no clean shutdown: only flushed records survive
    proc = _start(tmp_path, _config(tmp_path, token="sekrit-token"))
    try:
        rows = mgmtclient.call("127.0.0.1", BASE + 2, {"cmd": "get-leases", "limit": 100},
                               token="sekrit-token")["leases"]
        active = dict((r["mac"], r["address"]) for r in rows if r["state"] == "active")
        for mac, addr in bound.items():
            assert active[":".join("%02x" % b for b in mac)] == "%d.%d.%d.%d" % tuple(addr)
    finally:
        _stop(proc)
    assert proc.returncode == 0


def _raw(lines):
    """Send raw request lines on one connection; the answers (None once closed)."""
    out = []
    with socket.create_connection(("127.0.0.1", BASE + 2), timeout=5) as c:
        f = c.makefile("rwb")
        for ln in lines:
            try:
                f.write((json.dumps(ln) + "\n").encode())
                f.flush()
                got = f.readline()
            except OSError:
                got = b""
            out.append(json.loads(got) if got else None)
    return out


def _call_after_backoff(req, token, within=15):
    """A call that may first be told to wait out a back-off (and nothing else)."""
    deadline = time.time() + within
    while True:
        try:
            return mgmtclient.call("127.0.0.1", BASE + 2, req, token=token)
        except mgmtclient.MgmtError as e:
            assert "retry in" in str(e) and time.time() < deadline, e
            time.sleep(0.2)


def test_management_authentication_roles_replay_and_backoff(tmp_path):
    proc = _start(tmp_path, _config(tmp_path, token="sekrit-token", user_token="reader-token"))
    try:
        # nothing but hello is answered before authentication
        with pytest.raises(mgmtclient.MgmtError, match="not authenticated"):
            mgmtclient.call("127.0.0.1", BASE + 2, {"cmd": "status"})
        # a wrong token is refused (and the node does not prove itself to us)
        with pytest.raises(mgmtclient.MgmtError, match="wrong role or token"):
            mgmtclient.call("127.0.0.1", BASE + 2, {"cmd": "status"}, token="wrong-token")
        # back-off: right after a failure even the right token waits
        with pytest.raises(mgmtclient.MgmtError, match="retry in"):
            mgmtclient.call("127.0.0.1", BASE + 2, {"cmd": "status"}, token="sekrit-token")
        st = _call_after_backoff({"cmd": "status"}, "sekrit-token")
        assert st["name"] == "t"
        with pytest.raises(mgmtclient.MgmtError, match="unknown command"):
            mgmtclient.call("127.0.0.1", BASE + 2, {"cmd": "no-such"}, token="sekrit-token")
        # the read-only role reads but may not change anything
        assert mgmtclient.call("127.0.0.1", BASE + 2, {"cmd": "get-scope-statistics"}, token="reader-token",
                               role="user")["ok"]
        with pytest.raises(mgmtclient.MgmtError, match="may only read"):
            mgmtclient.call("127.0.0.1", BASE + 2, {"cmd": "set-failover-state", "name": "x", "state": "pause"},
                            token="reader-token", role="user")
        # a recorded handshake replayed on a new connection fails: the nonce differs
        from dhcpfo.mgmt import session
        hello = _raw([{"cmd": "hello"}])[0]
        cn = b"0123456789abcdef"
        proof = session.client_proof(b"sekrit-token", bytes.fromhex(hello["nonce"]), cn, "administrator")
        ans = _raw([{"cmd": "hello"}, {"cmd": "auth", "role": "administrator", "cnonce": cn.hex(), "proof": proof},
                    {"cmd": "status"}])
        assert ans[0]["ok"] and ans[0]["nonce"] != hello["nonce"]
        assert not ans[1]["ok"] and not ans[2]["ok"] and "name" not in ans[2]
        # a connection that keeps sending commands unauthenticated is closed
        ans = _raw([{"cmd": "status"}] * 6)
        assert ans[-1] is None and all(a is None or not a["ok"] for a in ans)
        # every refusal was counted
        c = _call_after_backoff({"cmd": "get-counters"}, "sekrit-token")
        text = json.dumps(c)
        assert "mgmt.auth-fail" in text and "mgmt.unauthenticated" in text
    finally:
        _stop(proc)


def test_bad_config_is_refused_with_every_error(tmp_path):
    cfg = _config(tmp_path)
    cfg["scopes"][0]["ranges"].append({"start": "127.78.1.90", "end": "127.78.1.80"})
    cfg["scopes"][0]["lease_time"] = -5
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(cfg))
    r = subprocess.run([sys.executable, "-m", "dhcpfo_host.cli", "node", "--config", str(path)],
                       capture_output=True, text=True, cwd=REPO, timeout=30)
    assert r.returncode == 2
    assert "scopes[0].ranges[1]" in r.stderr and "scopes[0].lease_time" in r.stderr
    assert not (tmp_path / "data").exists()  # nothing applied
