# machine.py - the emulated board's stand-in for MicroPython's `machine`.
#
# Only what a unix port lacks and the firmware uses: reset (the emulator
# restarts the interpreter, as a board reboots), a watchdog the emulator
# enforces, Pin (levels given on the emulator's command line), unique_id,
# reset_cause. Control files live in EMUBOARD_CTL, opened at import (before
# the flash directory becomes the root).
import os

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

_ctl = os.getenv("EMUBOARD_CTL") or ""
_reset_f = open(_ctl + "/reset", "wb") if _ctl else None
_wdt_f = open(_ctl + "/wdt", "wb") if _ctl else None


def _pins():
    got = {}
    for item in (os.getenv("EMUBOARD_PINS") or "").split(","):
        if "=" in item:
            k, v = item.split("=", 1)
            got[k.strip()] = int(v)
    return got


_PIN_LEVELS = _pins()


def reset_cause():
    return int(os.getenv("EMUBOARD_RESET_CAUSE") or PWRON_RESET)


def unique_id():
    name = (os.getenv("EMUBOARD_NAME") or "emuboard").encode()
    out = bytearray(6)
    for i, c in enumerate(name):
        out[i % 6] ^= c
    return bytes(out)


def freq(hz=None):
    return 240000000


def reset():
    """A hard reset: the emulator sees the request and starts a new interpreter."""
    if _reset_f is not None:
        _reset_f.write(b"reset\n")
        _reset_f.flush()
    os.system("kill -9 $PPID")  # the shell's parent is this interpreter
    while True:
        pass


def soft_reset():
    raise SystemExit


def idle():
    pass


class WDT:
    """Started once, never stopped (as on ESP32/RP2040). Each feed is written
    to the control file; the emulator resets the board after `timeout` ms
    without one."""

    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.feeds = 0
        self.feed()

    def feed(self):
        self.feeds += 1
        if _wdt_f is not None:
            _wdt_f.seek(0)
            _wdt_f.write(b"%10d %10d\n" % (self.timeout, self.feeds))
            _wdt_f.flush()


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self._value = _PIN_LEVELS.get(str(id), 1 if pull == Pin.PULL_UP else 0)
        if value is not None:
            self._value = value

    def value(self, v=None):
        if v is None:
            return self._value
        self._value = 1 if v else 0

    def on(self):
        self._value = 1

    def off(self):
        self._value = 0

    def __call__(self, v=None):
        return self.value(v)


class SPI:
    def __init__(self, *args, **kw):
        pass
