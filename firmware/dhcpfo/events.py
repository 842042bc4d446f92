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
EV_CONFLICT = const(20260)  # binding conflict resolved (draft-12 §7.1.3)
EV_HASH_DROP = const(36)  # audit: packet dropped, client id hash mismatch or standby server
EV_LEASE = const(10)  # audit: new lease
EV_RENEW = const(11)
EV_RELEASE = const(12)
EV_DECLINE = const(13)
EV_NAK = const(15)
EV_EXPIRED = const(18)
EV_SERVICE = const(1000)  # node start/stop, configuration applied


class Events:
    """A bounded ring of (now, level, code, text) plus named counters."""

    def __init__(self, capacity=256):
        self.capacity = capacity
        self._ring = [None] * capacity
        self._next = 0
        self.total = 0  # events ever emitted (the ring keeps the newest `capacity`)
        self.counters = {}
        self.sink = None  # optional callable(event) for drivers that also log

    def emit(self, now, level, code, text):
        ev = (now, level, code, text)
        self._ring[self._next] = ev
        self._next = (self._next + 1) % self.capacity
        self.total += 1
        if self.sink is not None:
            self.sink(ev)

    def count(self, name, n=1):
        c = self.counters
        c[name] = c.get(name, 0) + n

    def get(self, name):
        return self.counters.get(name, 0)

    def recent(self, limit=50, min_level=INFO, code=None):
        """Newest-first list of events, filtered by level and code."""
        out = []
        i = self._next
        for _ in range(self.capacity):
            i = (i - 1) % self.capacity
            ev = self._ring[i]
            if ev is None:
                break
            if ev[1] >= min_level and (code is None or ev[2] == code):
                out.append(ev)
                if len(out) >= limit:
                    break
        return out
