"""The management protocol on a board's serial console (runtime/console.py),
driven through `dhcpfo call --serial` against the firmware running on an
emulated board (real MicroPython, console on a pty): answers arrive while the
node keeps serving and logging; a console password locks it like TCP; and
mpremote still regains the board (Ctrl-C reaches MicroPython)."""

import json
import os
import subprocess
import sys

import pytest

from dhcpfo_host import mgmtclient
from dhcpfo_host.emuboard import prepare_flash

from host.test_emuboard import MPREMOTE, REPO, Emu, _loopback_config, _need_micropython

PASSWORD = "console-secret-1"


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(REPO, "host_tools"),
                                                       os.path.join(REPO, "firmware")]))
    env.pop("DHCPFO_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "dhcpfo_host.cli"] + list(args), env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def _board(tmp_path, password=None):
    _need_micropython()
    flash = tmp_path / "flash"
    port = 24000 + os.getpid() % 3000 * 3
    cfg = _loopback_config(port)
    if password:
        cfg["server"]["mgmt"]["console_password"] = password
    prepare_flash(str(flash), cfg, {"network": "lan", "mdc": 23, "mdio": 18})
    e = Emu(flash, "--heap", "1M")
    e.wait(r"dhcpfo: node lnk: DHCP on 127\.0\.0\.1", timeout=120)
    return e


def test_console_answers_commands_while_the_node_runs_and_mpremote_regains_it(tmp_path):
    e = _board(tmp_path)
    try:
        r = _cli("call", "--serial", e.pty, "status")
        assert r.returncode == 0, r.stderr
        status = json.loads(r.stdout)
        assert status["ok"] and status["name"] == "lnk"
        assert status["scopes"][0]["scope"] == "10.9.0.0"

        # errors come back as answers, and the firmware is still serving after them
        r = _cli("call", "--serial", e.pty, "no-such-command")
        assert r.returncode == 1 and "unknown command 'no-such-command'" in r.stderr
        with mgmtclient.SerialConnection(e.pty) as c:
            c._send(b"hello there\n")  # a human typing: a hint, not an answer
            c._send(b"{not json\n")
            bad = json.loads(c._recv_line())
            assert bad["ok"] is False and "bad request" in bad["error"]
            assert any(line.startswith("=dfo-hint management console") for line in c.log), c.log
            page = c.request({"cmd": "get-leases", "scope": "10.9.0.0"})
            assert page["ok"] and page["leases"] == []
        assert "FAIL-STOP" not in e.text()

        # mpremote's Ctrl-C + raw REPL still reach MicroPython under the running firmware
        out = subprocess.run([MPREMOTE, "connect", e.pty, "exec", "print('regained', 6*7)"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "regained 42" in out.stdout
    finally:
        e.close()


def test_console_password_locks_the_console_like_tcp(tmp_path):
    e = _board(tmp_path, PASSWORD)
    try:
        r = _cli("call", "--serial", e.pty, "status")
        assert r.returncode == 1 and "wants a token" in r.stderr

        r = _cli("call", "--serial", e.pty, "--token", "wrong-password", "status")
        assert r.returncode == 1 and "authentication refused" in r.stderr

        # a command sent without the handshake gets an error and nothing else
        with mgmtclient.SerialConnection(e.pty, login=False) as c:
            hello = c.request({"cmd": "hello"})  # a fresh, locked session
            assert hello["auth"] == "hmac-sha256"
            ans = c.request({"cmd": "status"})
            assert ans == {"ok": False, "error": "not authenticated: send hello, then auth"}

        # the failed proof above locked the console out for a moment (back-off): wait it out
        deadline_ok = None
        for _ in range(60):
            r = _cli("call", "--serial", e.pty, "--token", PASSWORD, "status")
            if r.returncode == 0:
                deadline_ok = json.loads(r.stdout)
                break
            assert "retry in" in r.stderr or "next attempt" in r.stderr, r.stderr
        assert deadline_ok and deadline_ok["name"] == "lnk"
        counters = deadline_ok["counters"]
        assert counters.get("mgmt.auth-fail", 0) >= 1 and counters.get("mgmt.unauthenticated", 0) >= 1
    finally:
        e.close()


@pytest.mark.parametrize("bad", ["127.0.0.1:notaport"])
def test_call_tcp_option_wants_host_and_port(bad):
    r = _cli("call", "--tcp", bad, "status")
    assert r.returncode == 2 and "HOST:PORT" in r.stderr
