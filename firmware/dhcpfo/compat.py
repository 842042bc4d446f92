# compat.py - the one module that knows CPython from MicroPython.
#
# Everything else in the firmware imports runtime-dependent names from here,
# so the core reads the same on both runtimes. Feature detection only, no
# version checks (the microdot way).

import sys

IS_MICROPYTHON = sys.implementation.name == "micropython"

try:
    from micropython import const  # noqa: F401  (MicroPython: folded at compile time)
except ImportError:  # CPython

    def const(x):
        return x


try:
    import asyncio  # noqa: F401  (MicroPython >= 1.21 and CPython)
except ImportError:  # very old MicroPython
    import uasyncio as asyncio  # noqa: F401

try:
    import json as _json
except ImportError:
    import ujson as _json

import hashlib
import time as _time

# ---------------------------------------------------------------------------
# Time.
#
# The core never reads a clock: every call takes `now`, an int number of
# local seconds (timebase.py), which on a node with a trusted clock are
# seconds since EPOCH (2023-11-14 22:13:20 UTC). Unix seconds are >= 2**30 and
# therefore boxed heap ints on 32-bit boards; core time stays a small int until
# about 2057. Conversion to and from Unix time happens only at the wire edge.
EPOCH = 1700000000
TICKS_PERIOD = 1 << 30  # MicroPython's ticks wrap (small-int range)
_TICKS_HALF = TICKS_PERIOD >> 1


def to_unix(t):
    """Core time -> Unix seconds (for the failover wire)."""
    return t + EPOCH


def from_unix(u):
    """Unix seconds -> core time."""
    return u - EPOCH


if hasattr(_time, "ticks_ms"):
    ticks_ms = _time.ticks_ms
    ticks_diff = _time.ticks_diff
    ticks_add = _time.ticks_add
else:

    def ticks_ms():
        """Milliseconds on a wrapping counter with board semantics (period 2**30)."""
        return int(_time.monotonic() * 1000) & (TICKS_PERIOD - 1)

    def ticks_add(t, delta):
        return (t + delta) & (TICKS_PERIOD - 1)

    def ticks_diff(a, b):
        """Signed difference a - b on the wrapping counter, as time.ticks_diff."""
        return ((a - b + _TICKS_HALF) & (TICKS_PERIOD - 1)) - _TICKS_HALF


def unix_time():
    """The platform's wall clock in Unix seconds (ESP32 counts from 2000)."""
    t = int(_time.time())
    if _time.gmtime(0)[0] == 2000:
        t += 946684800
    return t


def wall_now():
    """The platform's wall clock in core time, or None when it cannot be
    trusted (a board without a battery-backed clock boots in 1970 or 2000)."""
    w = from_unix(unix_time())
    return w if w > 0 else None


class Clock:
    """The driver's local time: whole seconds on a monotonic tick counter,
    counting from `start` (Node.resume_time says where). It never steps:
    wall time is the core's business (dhcpfo/timebase.py: an offset the
    core learns), so nothing here can move a stored time."""

    def __init__(self, start=0, ticks=ticks_ms):
        self._ticks = ticks
        self._last_ticks = ticks()
        self._ms = 0  # monotonic ms not yet whole seconds
        self._sec = start

    def now(self):
        """Local core time (int seconds), never decreasing."""
        t = self._ticks()
        d = ticks_diff(t, self._last_ticks)
        if d > 0:
            self._last_ticks = t
            self._ms += d
            if self._ms >= 1000:
                self._sec += self._ms // 1000
                self._ms %= 1000
        return self._sec


# ---------------------------------------------------------------------------
# Integers. MicroPython rejects keyword byteorder, so positional only.


def int_from_be(b):
    return int.from_bytes(b, "big")


def int_to_be(n, length):
    return n.to_bytes(length, "big")


# ---------------------------------------------------------------------------
# JSON. MicroPython's json has no sort_keys/indent: canonical output is ours.


def json_loads(s):
    return _json.loads(s)


def json_dumps(obj):
    """Compact JSON with sorted keys: the same bytes on both runtimes."""
    if isinstance(obj, dict):
        keys = sorted(obj)
        return "{" + ",".join(_json.dumps(str(k)) + ":" + json_dumps(obj[k]) for k in keys) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(json_dumps(v) for v in obj) + "]"
    return _json.dumps(obj)


# ---------------------------------------------------------------------------
# Hashing. MicroPython's sha256 has only update() and digest().


def sha256(data=b""):
    h = hashlib.sha256()
    if data:
        h.update(data)
    return h.digest()


def hexlify(b):
    """Lower-case hex of bytes (MicroPython has no hexdigest)."""
    return "".join("%02x" % x for x in b)


_BLOCK = 64


_PADS = {}  # shared secret -> (ipad, opad): built once per key, not per message


def _pads(key):
    pads = _PADS.get(key)
    if pads is None:
        k = sha256(key) if len(key) > _BLOCK else key
        ipad = bytearray(_BLOCK)
        opad = bytearray(_BLOCK)
        for i in range(_BLOCK):
            b = k[i] if i < len(k) else 0
            ipad[i] = b ^ 0x36
            opad[i] = b ^ 0x5C
        # keys: the configured secrets plus one per live failover connection
        # (wire/failover.py connection_key); a dropped connection's key is
        # forgotten at the next clear, so a few entries of heap at most
        if len(_PADS) >= 8:
            _PADS.clear()
        pads = _PADS[bytes(key)] = (bytes(ipad), bytes(opad))
    return pads


def hmac_sha256(key, msg):
    """HMAC-SHA256 (RFC 2104) built on sha256, identical on both runtimes."""
    ipad, opad = _pads(key)
    inner = hashlib.sha256()
    inner.update(ipad)
    inner.update(msg)
    outer = hashlib.sha256()
    outer.update(opad)
    outer.update(inner.digest())
    return outer.digest()


def digest_eq(a, b):
    """Constant-time comparison of two byte strings (no hmac.compare_digest on boards)."""
    if len(a) != len(b):
        return False
    r = 0
    for i in range(len(a)):
        r |= a[i] ^ b[i]
    return r == 0


# ---------------------------------------------------------------------------
# CRC-32 (IEEE, as zlib/binascii). binascii.crc32 is optional on ports.

try:
    from binascii import crc32 as _crc32

    _crc32(b"")
except (ImportError, AttributeError):
    _crc32 = None

_CRC_TABLE = None


def crc32(data, crc=0):
    if _crc32 is not None:
        return _crc32(data, crc) & 0xFFFFFFFF
    global _CRC_TABLE
    if _CRC_TABLE is None:
        tbl = []
        for n in range(256):
            c = n
            for _ in range(8):
                c = (0xEDB88320 ^ (c >> 1)) if c & 1 else (c >> 1)
            tbl.append(c)
        _CRC_TABLE = tbl
    c = crc ^ 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


# ---------------------------------------------------------------------------
# Memory, for budgets measured on both runtimes.

try:
    import gc as _gc

    mem_alloc = _gc.mem_alloc  # MicroPython only
except AttributeError:
    mem_alloc = None


def ip_str(b):
    """Dotted-quad text of a 4-byte IPv4 address (the one formatter every
    layer uses; anything else is shown as hex)."""
    if b is None:
        return "?"
    if len(b) != 4:
        return hexlify(b)
    return "%d.%d.%d.%d" % (b[0], b[1], b[2], b[3])


_HEXDIGITS = "0123456789abcdef"
_HEXSEP = ":-. "


def parse_hex(s):
    """Hex text -> bytes, or None. One syntax everywhere: an optional "0x",
    then either bytes of one or two digits between separators (':', '-',
    '.' or space: "1:4", "aa-bb") or runs of digit pairs ("0a0b",
    "aabb.ccdd.eeff")."""
    if type(s) is not str:
        return None
    t = s.strip().lower()
    if t[:2] == "0x":
        t = t[2:]
    t = t.strip(_HEXSEP)  # "00:04:f2:" (a prefix) reads as its bytes
    groups = [""]
    for ch in t:
        if ch in _HEXSEP:
            groups.append("")
        elif ch in _HEXDIGITS:
            groups[-1] += ch
        else:
            return None
    if len(groups) > 1 and all(1 <= len(g) <= 2 for g in groups):
        return bytes(int(g, 16) for g in groups)
    digits = "".join(groups)
    if not digits or len(digits) & 1 or any(g == "" for g in groups):
        return None
    return bytes(int(digits[i:i + 2], 16) for i in range(0, len(digits), 2))
