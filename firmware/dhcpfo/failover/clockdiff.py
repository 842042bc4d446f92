# failover/clockdiff.py - how far the partner's clock is from ours (draft-12 §5.10).
#
# Every failover message carries its sender's time. The largest difference
# seen since a link came up is the estimate (transit delay only ever makes a
# sample smaller); a reply's time bounds it from above. Times the partner
# sends are translated with it, and the DHCP side keeps the estimate's
# possible error back from every lease it grants.

from dhcpfo import events as ev
from dhcpfo.compat import from_unix, to_unix

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
        # the widest estimate a stored partner time was translated with, and
        # until when (local time) such a time is still ahead: a later, better
        # estimate does not make those stored times any more accurate
        self._wide = 0
        self._wide_until = 0
        self._last_event = -TIME_EVENT_INTERVAL

    def new_link(self):
        self._fresh = True

    def sample(self, msg_time, now):
        """A message stamped `msg_time` (Unix) arrived at local time `now`.
        The estimate is the partner's wire time minus our local time, so our
        own wall offset is not in it. Local time never steps, a partner that
        restarts comes on a new link, and a node whose wall offset moves
        restarts its links (Node.set_wall), so the largest sample since the
        link came up is the best estimate."""
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

    def stored(self, t, now):
        """A partner time translated with the current estimate was stored
        (our time `t`): margin() keeps this estimate's width until t passes."""
        w = self.width()
        if now >= self._wide_until:
            self._wide = 0
        if w > self._wide:
            self._wide = w
        if t > self._wide_until:
            self._wide_until = t

    def margin(self, now):
        """How far a stored partner time may be off: the current width, or
        the width one still ahead of `now` was translated with (MCLT rule)."""
        w = self.width()
        if now < self._wide_until and self._wide > w:
            return self._wide
        return w

    def to_ours(self, partner_time):
        """A time on the partner's clock (core units) on ours."""
        return partner_time - self.skew

    def out_of_sync(self, m, now, time):
        """Does message `m` show a clock difference to our wall time beyond
        the limit? Counted, and reported at most once per TIME_EVENT_INTERVAL.
        Without wall time there is nothing to compare: times are translated
        with the estimate, which needs no wall time."""
        if time.offset is None:
            return False
        skew = m.time - to_unix(time.wall(now))
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
            time.doubt()
            return True
        return False

    def learn(self, m, now, time):
        """A node without trusted wall time takes the partner's (draft-12
        §5.10: the time in each message lets a server without a good clock
        run on its partner's). Only the wall offset is learned: local time,
        and every time stored in it, stays where it is. An offset learned
        from a partner is learned again at every handshake (the partner may
        have found wall time since). True when learned."""
        if not m.time or (time.offset is not None and time.source != "partner"):
            return False
        moved = time.set(from_unix(m.time) - now, "partner")
        time.moved = moved
        self.events.count("clock.learned-from-partner")
        self.events.emit(now, ev.WARN, ev.EV_TIME_OUT_OF_SYNC,
                         "relationship %s: wall time learned from the partner (offset %d s)"
                         % (self.name, time.offset))
        return True
