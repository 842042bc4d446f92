# timebase.py - local time, wall time and the lease log across restarts.
#
# The core never reads or sets a clock. The driver passes `now`: *local*
# seconds that never step under a running node (a monotonic counter started
# where resume() says). Wall time is local time plus an offset the core learns
# (the driver's trusted clock or NTP through Node.set_wall, or the failover
# partner's message times) and uses only at the failover wire edge. Every
# time in the lease table and log stays local, so learning or correcting the
# offset never moves a binding's expiry (docs/time.md has the whole rule).

import struct

NOTE_INTERVAL = 300  # seconds between notes of the local clock in the lease log (flash wear vs.
# how much running time a restart forgets: bindings then held longer, never shorter)
STEP_TOLERANCE = 2  # a corrected offset closer than this to the old one is kept (1 s resolution)
_NOTE = "!BIIi"  # flags (1: offset known, 2: from a trusted clock), local, unsure_until, wall - local
_TRUSTED = ("clock", "ntp")  # offsets that place a restart (a partner's may be a board's guess)


class TimeBase:
    """Wall minus local time (seconds, None while unknown) and the lease
    log's clock notes. One per node, shared by its relationships."""

    def __init__(self):
        # wall core time - local time, None: no trusted wall time yet. A node
        # the driver never places (tests) runs on wall time: 0, its own clock.
        self.offset = 0
        self.source = "clock"  # "clock" (the driver's), "ntp", "partner", "doubted" or None
        # Until this local time, what a partner acknowledged before the last
        # restart is not trusted for the MCLT rule: a restart forgets its
        # downtime, so those times may lie later than they really are.
        self.unsure_until = 0
        self.note = None  # (local, unsure_until, offset or None) read back from the log
        self.noted = None  # local time of the last note written
        self.moved = False  # learned from a partner: the node restarts its other links
        self.forgot = False  # this run resumed at a note without knowing the downtime
        # (scope index, offset) of our unacknowledged changes from before such
        # a restart: their client transaction times read late, so they lose
        # conflicts with the partner's copy (Node.resume_time fills it)
        self.stale = ()

    def wall(self, t):
        """Local time -> wall time (unchanged while the offset is unknown)."""
        return t + self.offset if self.offset is not None else t

    def restore(self, payload):
        """A clock note replayed from the lease log (the last one wins)."""
        flags, local, unsure, off = struct.unpack(_NOTE, bytes(payload[:13]))
        self.note = (local, unsure, off if flags & 2 else None)  # only a trusted offset places

    def set(self, offset, source):
        """Adopt a wall offset. Within STEP_TOLERANCE of the current one (0
        while unknown: the wire carried local time) the wire keeps its base:
        a partner's estimate of our clock stays right. Else the offset moves
        and True says so: the caller restarts the failover links."""
        base = self.offset if self.offset is not None else 0
        self.source = source
        if -STEP_TOLERANCE < offset - base < STEP_TOLERANCE:
            self.offset = base
            return False
        self.offset = offset
        return True

    def doubt(self):
        """Our wall time and the partner's differ beyond time_skew_max.
        Which one is wrong is unknown, so our offset no longer places a
        restart: the next note (written at the next tick) says so, and the
        restart forgets its downtime instead of adding one measured on a
        wrong clock (the real fault suite's skew-a-5m; docs/time.md)."""
        if self.source in _TRUSTED:
            self.source = "doubted"
            self.noted = None

    def note_payload(self, now):
        self.noted = now
        off = self.offset
        flags = 0 if off is None else (3 if self.source in _TRUSTED else 1)
        return struct.pack(_NOTE, flags, max(now, 0), max(self.unsure_until, 0),
                           off if off is not None else 0)

    def due(self, now):
        return self.noted is None or now >= self.noted + NOTE_INTERVAL
