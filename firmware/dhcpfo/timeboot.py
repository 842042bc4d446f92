# timeboot.py - the time code a node runs rarely: where local time starts
# after a (re)start, and an NTP correction while running.
#
# Node.resume_time (once, after the lease log is restored and before the
# driver's clock is made) and Node.set_wall import this module for the call
# and drop it again (dhcpfo/ondemand.py), so this code does
# not stay on a board's heap. The rules are in docs/time.md.

from dhcpfo import ondemand
from dhcpfo.lease import table as lt

ondemand.droppable(__name__)


def resume_time(node, wall_now):
    """The local time node's clock starts at; see Node.resume_time."""
    acked = 0
    for t in node.tables:
        for off in range(t.size):
            a = t.ack_pexp(off)
            if a > acked and a != lt.INFINITE:
                acked = a
    tb = node.time
    start = resume(tb, wall_now, acked)
    if tb.forgot:
        stale = set()
        for i in range(len(node.tables)):
            t = node.tables[i]
            off = t.next_flagged(lt.PENDING, 0)
            while off >= 0 and (i, off) not in stale:
                stale.add((i, off))
                off = t.next_flagged(lt.PENDING, off + 1)
        tb.stale = stale
    return start


def set_wall(node, wall_now, now, source):
    """See Node.set_wall."""
    moved = node.time.set(wall_now - now, source)
    node._note_clock(now)
    if moved:
        node.events.count("clock.offset-moved")
        node._restart_links(now, None)


def resume(tb, wall_now, acked):
    """Where local time starts after a (re)start. `wall_now`: trusted wall
    core time from the driver, or None; `acked`: the latest potential
    expiration a partner acknowledged in the restored tables.

    Local time resumes at the log's last clock note, plus the downtime
    when both that note and the driver have trusted wall time (a clock
    found earlier than the note adds nothing). Without wall time the
    downtime is forgotten: every stored time then comes out later than it
    really is, never earlier. The potential expirations the partner
    acknowledged, which must not come out later, count for nothing until
    `unsure_until` after any restart. Without a note (fresh or wiped
    store, or a log older than notes, whose times are wall times) local
    time starts at wall time, or 0."""
    n = tb.note
    if n is None:
        start = wall_now if wall_now is not None and wall_now > 0 else 0
        sure = wall_now is not None
    else:
        start, tb.unsure_until, off = n
        tb.forgot = True
        if wall_now is not None and off is not None and wall_now >= start + off:
            start = wall_now - off
            tb.forgot = False
        sure = False
    if not sure and acked > tb.unsure_until:
        tb.unsure_until = acked
    if wall_now is not None:
        tb.offset = wall_now - start
        tb.source = "clock"
    else:
        tb.offset = None
        tb.source = None
    return start
