"""`dhcpfo console` on a real terminal (a pty) to real MicroPython: Enter runs
a line, Ctrl-C interrupts a loop on the board, Ctrl-] leaves; on an emulated
board running the firmware, the console attaches without stopping the node."""
import os
import pty
import re
import select
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _read_until(fd, want, timeout=60):
    buf = b""
    deadline = time.monotonic() + timeout
    while want not in buf and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                buf += os.read(fd, 4096)
            except OSError:
                break
    return buf


def test_console_passes_keys_through_and_exits_on_ctrl_bracket(pty_board):
    m, s = pty.openpty()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.join(ROOT, "firmware"), os.path.join(ROOT, "host_tools")]))
    p = subprocess.Popen([sys.executable, "-m", "dhcpfo_host.cli", "console", "--port", pty_board.port],
                         stdin=s, stdout=s, stderr=s, env=env, close_fds=True, start_new_session=True)
    os.close(s)
    try:
        assert b"Ctrl-] to leave" in _read_until(m, b"Ctrl-] to leave")
        os.write(m, b"\r")
        _read_until(m, b">>> ")
        os.write(m, b"print(6*7)\r")
        assert b"42" in _read_until(m, b"42")
        os.write(m, b"while True: pass\r\r")
        time.sleep(0.5)  # let the loop start; the assertion below does not depend on it
        os.write(m, b"\x03")
        assert b"KeyboardInterrupt" in _read_until(m, b"KeyboardInterrupt")
        os.write(m, b"\x1d")
        assert p.wait(30) == 0
        assert b"left" in _read_until(m, b"left", 5)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
        os.close(m)


def test_console_reaches_a_running_board_without_stopping_it(emulated_board):
    """An emulated board running the deployed firmware: attaching the console
    leaves the node serving; Ctrl-C through it gives the REPL (how a deploy
    regains a board), Ctrl-D boots the firmware again and its start line
    shows in the console; leaving the console leaves the node running."""
    from dhcpfo_host import mgmtclient
    from dhcpfo_host.emuboard import prepare_flash

    net = "127.%d" % (100 + os.getpid() % 150)
    server = net + ".9.1"
    board = emulated_board("running", ip=server)
    prepare_flash(board.flash, {
        "server": {"name": "con", "server_id": server, "listen": {"address": server, "port": 18767},
                   "mgmt": {"address": server, "port": 18770, "token": "console-test-token"}},
        "scopes": [{"id": net + ".10.0", "mask": 24, "ranges": [{"start": net + ".10.10", "end": net + ".10.20"}]}],
    }, {"network": "lan", "mdc": 23, "mdio": 18}, mpy=True)
    board.power_off()
    board.power_on()
    board.wait(r"dhcpfo: node con: DHCP on")

    def status():
        """The node's name over management; the start line shows just before the listener opens."""
        deadline = time.monotonic() + 60
        while True:
            try:
                return mgmtclient.call(server, 18770, {"cmd": "status"}, token="console-test-token", timeout=10)["name"]
            except (OSError, mgmtclient.MgmtError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    assert status() == "con"
    m, s = pty.openpty()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.join(ROOT, "firmware"), os.path.join(ROOT, "host_tools")]))
    p = subprocess.Popen([sys.executable, "-m", "dhcpfo_host.cli", "console", "--port", board.port],
                         stdin=s, stdout=s, stderr=s, env=env, close_fds=True, start_new_session=True)
    os.close(s)
    try:
        assert b"Ctrl-] to leave" in _read_until(m, b"Ctrl-] to leave")
        assert status() == "con"  # attached: the node still runs
        # Ctrl-C until the board answers: one typed before miniterm has put the
        # terminal in raw mode is eaten by the line discipline (shown as ^C)
        got = b""
        deadline = time.monotonic() + 120
        while not re.search(rb"KeyboardInterrupt.*>>> ", got, re.S) and time.monotonic() < deadline:
            os.write(m, b"\x03")
            got += _read_until(m, b">>> ", 5)
        assert re.search(rb"KeyboardInterrupt.*>>> ", got, re.S), got[-500:]
        os.write(m, b"\x04")  # soft reset: main.py starts the node again; its output comes through
        assert b"dhcpfo: node con: DHCP on" in _read_until(m, b"dhcpfo: node con: DHCP on")
        assert status() == "con"
        os.write(m, b"\x1d")
        assert p.wait(30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
        os.close(m)
    assert status() == "con"  # left: the node keeps running
