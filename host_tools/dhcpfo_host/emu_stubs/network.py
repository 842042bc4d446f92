# network.py - the emulated board's stand-in for MicroPython's `network`.
#
# The unix port has real sockets but no interfaces to bring up: the
# emulator's process already sits on an address (a namespace's veth). These
# objects report that address (EMUBOARD_IP) and a link that is up unless the
# control file `link` says "0", so a firmware's bring-up and reconnect logic
# runs as on a board.
import os

STA_IF = 0
AP_IF = 1
PHY_LAN8720 = 0
PHY_IP101 = 1
PHY_RTL8201 = 2
PHY_DP83848 = 3
PHY_KSZ8041 = 5
ETH_CLOCK_GPIO0_IN = 0
ETH_CLOCK_GPIO0_OUT = 1
ETH_CLOCK_GPIO16_OUT = 2
ETH_CLOCK_GPIO17_OUT = 3
STAT_IDLE = 0
STAT_CONNECTING = 1
STAT_GOT_IP = 1010

_ctl = os.getenv("EMUBOARD_CTL") or ""
try:
    _link_f = open(_ctl + "/link", "rb") if _ctl else None
except OSError:
    _link_f = None
_given = (os.getenv("EMUBOARD_IP") or "0.0.0.0", os.getenv("EMUBOARD_NETMASK") or "255.255.255.0",
          os.getenv("EMUBOARD_GATEWAY") or "0.0.0.0", os.getenv("EMUBOARD_DNS") or "0.0.0.0")


def _link():
    if _link_f is None:
        return True
    _link_f.seek(0)
    return _link_f.read(1) != b"0"


class _Nic:
    def __init__(self, kind, kw):
        self.kind = kind
        self.kw = kw
        self._active = False
        self._wanted = None
        self._joined = kind != "sta"

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)

    def isconnected(self):
        return self._active and self._joined and _link()

    def status(self, *args):
        if args:
            return None
        return STAT_GOT_IP if self.isconnected() else STAT_IDLE

    def connect(self, ssid=None, key=None, **kw):
        self._joined = True

    def disconnect(self):
        self._joined = self.kind != "sta"

    def ifconfig(self, cfg=None):
        """Setting records the wish; reading returns the address the emulator
        was given (it cannot move the host's interface), so a firmware that
        compares the two notices a mismatch."""
        if cfg is not None:
            self._wanted = tuple(cfg)
            return None
        return _given if self._active else ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")

    def ipconfig(self, *args, **kw):
        if kw:
            if "addr4" in kw:
                self._wanted = kw["addr4"]
            return None
        if args and args[0] == "addr4":
            return (_given[0], _given[1])
        return None

    def config(self, *args, **kw):
        if args and args[0] == "mac":
            return b"\x02\x00" + bytes(int(p) for p in _given[0].split("."))
        return None


def WLAN(interface_id=STA_IF):
    return _Nic("ap" if interface_id == AP_IF else "sta", {})


def LAN(*args, **kw):
    return _Nic("lan", kw)


def WIZNET5K(*args, **kw):
    return _Nic("wiznet", kw)
