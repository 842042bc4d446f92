# failover/clockdiff.py - how far the partner's clock is from ours (draft-12 §5.10).
#
# Every failover message carries its sender's time. The largest difference
# seen since a link came up is the estimate (transit delay only ever makes a
# sample smaller); a reply's time bounds it from above. Times the partner
# sends are translated with it, and the DHCP side keeps the estimate's
# possible error back from every lease it grants.

from dhcpfo import events as ev
from dhcpfo.compat import to_unix
from dhcpfo.wire import failover as fw

WIDTH_UNKNOWN = 2  # assumed error of the estimate before any reply bounds it
TIME_EVENT_INTERVAL = 300  # at most one TimeOutOfSync event per this many seconds


class ClockDiff:
    """The partner's clock minus ours, in seconds, and how sure we are of it."""

    def __init__(self, name, skew_max, events, partner="?"):
        self.name = name
        self.skew_max = skew_max  # a larger difference refuses the partner (TimeOutOfSync)
        self.events = events
        self.partner = partner  # the partner's address or host name, for the event text
        self.out = False  # TimeOutOfSync: the last message checked was beyond skew_max
        self.last = 0  # the difference that message showed (seconds, partner minus us)
        self.skew = 0
        self._fresh = True  # the next message starts a new estimate
        self._hi = None  # upper bound from replies (None: none yet)
        self._last_event = -TIME_EVENT_INTERVAL

    def new_link(self):
        self._fresh = True

    def sample(self, msg_time, now):
        """A message stamped `msg_time` (Unix) arrived at core time `now`.
        Clocks never step under a running node (compat.Clock), and a
        partner that restarts comes on a new link, so the largest sample
        since the link came up is the best estimate."""
        est = msg_time - to_unix(now)
        if self._fresh:
            self.skew = est
            self._hi = None
            self._fresh = False
        elif est > self.skew:
            self.skew = est

    def reply(self, msg_time, request_sent):
        """A reply stamped `msg_time` to a request we sent at `request_sent`
        (core time) bounds the difference from above (1 s resolution)."""
        bound = msg_time - to_unix(request_sent) + 1
        if self._hi is None or bound < self._hi:
            self._hi = bound

    def width(self):
        """How far the estimate may be off, in seconds."""
        if self._hi is None:
            return WIDTH_UNKNOWN
        w = self._hi - self.skew
        return w if w > 0 else 0

    def to_ours(self, partner_time):
        """A time on the partner's clock (core units) on ours."""
        return partner_time - self.skew

    def out_of_sync(self, m, now):
        """Does message `m` show a clock difference beyond the limit? Counted, and
        reported at most once per TIME_EVENT_INTERVAL."""
        skew = fw.time_skew(m, now)
        self.last = skew
        self.out = skew > self.skew_max or -skew > self.skew_max
        if self.out:
            if now - self._last_event >= TIME_EVENT_INTERVAL:
                self._last_event = now
                mag = skew if skew > 0 else -skew
                self.events.emit(now, ev.ERROR, ev.EV_TIME_OUT_OF_SYNC,
                                 "The server detected that it is out of time synchronization with partner %s "
                                 "for failover relationship %s. The time is out of sync by %d minutes "
                                 "(%d s, permitted %d s)." % (self.partner, self.name, (mag + 30) // 60, skew,
                                                              self.skew_max))
            self.events.count("peer.time-out-of-sync")
            return True
        return False

    def learn(self, m, clock):
        """A board without a real-time clock adopts the partner's clock at
        connect (draft-12 §5.10: the time in each message lets a server
        without a good clock run on the partner's). True when it did."""
        if clock is not None and not clock.synced and m.time:
            step = clock.set_unix(m.time)
            self.events.count("clock.learned-from-partner")
            self.events.emit(clock.now(), ev.WARN, ev.EV_TIME_OUT_OF_SYNC,
                             "relationship %s: clock set from partner (step %d s)" % (self.name, step))
            return True
        return False
