# events.py - the node's audit/state-change event ring and its counters.
#
# Admins read these through the management surface (the seed's event channels
# and performance counters). A fixed-size ring: a board never grows it.

from dhcpfo.compat import const

INFO = const(0)
WARN = const(1)
ERROR = const(2)
LEVEL_NAMES = ("info", "warning", "error")

# Event codes, after the Windows DHCP failover events the seed describes,
# so an admin can search for the same numbers.
EV_STATE_CHANGE = const(20252)  # own or partner failover state changed
EV_TIME_OUT_OF_SYNC = const(20253)  # partner clock differs by more than the limit
EV_COMM_UP = const(20254)
EV_COMM_DOWN = const(20255)
EV_AUTH_FAIL = const(20256)  # message digest missing or wrong; connection closed
EV_CONNECT_REJECT = const(20257)  # CONNECT/CONNECTACK refused (reason in the text)
EV_BNDUPD_REJECT = const(20258)
EV_POOL_LOW = const(20259)
EV_MGMT_AUTH_FAIL = const(20261)  # management authentication refused (source, back-off)
# configuration audit (the seed's opcodes; failover/audit.py)
EV_CREATE_FAILOVER = const(20262)
EV_DELETE_FAILOVER = const(20263)
EV_ADD_FAILOVER_SCOPE = const(20264)
EV_REMOVE_FAILOVER_SCOPE = const(20265)
EV_CHANGE_FAILOVER_CONFIG = const(20266)
EV_CONFIG_DRIFT = const(20267)  # the partner's replicated scope configuration differs (failover/cfgdigest.py)
# lease audit (DHCP audit log codes): only the ones worth an event; new
# leases, renewals and expiries are counters (lease.new, lease.renew, ...)
EV_RELEASE = const(12)
EV_DECLINE = const(13)
EV_NAK = const(15)
EV_SERVICE = const(1000)  # node start/stop, configuration applied
EV_SEND_FAIL = const(1002)  # (1001: board fail-stop report) a DHCP reply the socket refused (no route, no interface): not sent


# Heap an event costs besides its text on MicroPython: the 4-tuple and the str header.
EVENT_OVERHEAD = const(48)


class Events:
    """A ring of (now, level, code, text), bounded both in count and in bytes
    (texts vary in length: a count alone does not bound the heap), plus named
    counters. Counter names should be literals or preallocated strings so a
    count() per packet allocates nothing."""

    def __init__(self, capacity=96, max_bytes=4096):
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._ring = [None] * capacity
        self._head = 0  # where the next event goes
        self._len = 0  # events held
        self.bytes = 0  # heap the held events cost (texts + EVENT_OVERHEAD each)
        self.total = 0  # events ever emitted (the ring keeps the newest)
        self.dropped = 0  # events pushed out to stay inside the bounds
        self.counters = {}
        self._names = {}  # prefix -> {suffix: prefix + suffix}, see count_as
        self.sink = None  # optional callable(event) for drivers that also log

    def _drop_oldest(self):
        i = (self._head - self._len) % self.capacity
        self.bytes -= len(self._ring[i][3]) + EVENT_OVERHEAD
        self._ring[i] = None
        self._len -= 1
        self.dropped += 1

    def emit(self, now, level, code, text):
        if len(text) > self.max_bytes // 4:  # one event never takes over the ring
            text = text[:self.max_bytes // 4]
        cost = len(text) + EVENT_OVERHEAD
        while self._len and (self._len == self.capacity or self.bytes + cost > self.max_bytes):
            self._drop_oldest()
        ev = (now, level, code, text)
        self._ring[self._head] = ev
        self._head = (self._head + 1) % self.capacity
        self._len += 1
        self.bytes += cost
        self.total += 1
        if self.sink is not None:
            self.sink(ev)

    def count(self, name, n=1):
        c = self.counters
        c[name] = c.get(name, 0) + n

    def count_as(self, prefix, suffix, n=1):
        """count(prefix + suffix) without building the name on every call: each
        name is made once (suffixes are fixed reason/type strings, so the set
        is small and bounded)."""
        names = self._names.get(prefix)
        if names is None:
            names = self._names[prefix] = {}
        name = names.get(suffix)
        if name is None:
            name = names[suffix] = prefix + suffix
        c = self.counters
        c[name] = c.get(name, 0) + n

    def get(self, name):
        return self.counters.get(name, 0)

    def recent(self, limit=50, min_level=INFO, code=None, skip=0):
        """Newest-first list of events, filtered by level and code; `skip`
        matching events are passed over first (paging)."""
        out = []
        i = self._head
        for _ in range(self._len):
            i = (i - 1) % self.capacity
            ev = self._ring[i]
            if ev[1] >= min_level and (code is None or ev[2] == code):
                if skip:
                    skip -= 1
                    continue
                out.append(ev)
                if len(out) >= limit:
                    break
        return out
