# runtime/eventlog.py - the event ring's persisted tail.
#
# The ring (dhcpfo/events.py) lives on the heap and is gone after a reset,
# which is exactly when an admin wants to know what happened. Events at
# Warning and above are appended to <data_dir>/events.log, one line each:
#
#   <unix time or -> <level> <code> <text>
#
# The file is bounded: past MAX_BYTES it is renamed to events.old (one
# generation kept) and a new one started. Writes are rate-limited (at most
# PER_MINUTE lines a minute; the rest are counted as eventlog.skipped) so an
# event storm, such as a stream of refused logins, cannot wear out a board's
# flash. At boot the last RESTORE lines come back into the ring, marked as
# from before the restart, with their wall time when it was known.

import os

LOG = "events.log"
OLD = "events.old"
MAX_BYTES = 8192
PER_MINUTE = 12
RESTORE = 16
LINE_MAX = 300


def _join(d, name):
    return d + "/" + name if d else name


class EventLog:
    """An event sink (events.sink) that appends to the tail file."""

    def __init__(self, data_dir, wall, events, monotonic):
        self.path = _join(data_dir, LOG)
        self.old = _join(data_dir, OLD)
        self.wall = wall  # () -> Unix seconds, or None without wall time
        self.events = events
        self.monotonic = monotonic  # () -> seconds, for the rate limit only
        self.window = None
        self.written = 0

    def __call__(self, event):
        now, level, code, text = event
        if level < 1:  # Information stays in the ring only
            return
        t = self.monotonic()
        if self.window is None or t - self.window >= 60:
            self.window = t
            self.written = 0
        if self.written >= PER_MINUTE:
            self.events.count("eventlog.skipped")
            return
        self.written += 1
        unix = self.wall()
        line = "%s %d %d %s\n" % ("-" if unix is None else "%d" % unix, level, code,
                                  text.replace("\n", " ")[:LINE_MAX])
        try:
            try:
                size = os.stat(self.path)[6]
            except OSError:
                size = 0
            if size + len(line) > MAX_BYTES:
                try:
                    os.remove(self.old)
                except OSError:
                    pass
                os.rename(self.path, self.old)
            with open(self.path, "a") as f:
                f.write(line)
        except OSError:
            self.events.count("eventlog.write-failed")  # the node serves on; the tail is best effort


def _parse(line):
    parts = line.rstrip("\n").split(" ", 3)
    if len(parts) != 4:
        return None
    try:
        unix = None if parts[0] == "-" else int(parts[0])
        level = int(parts[1])
        code = int(parts[2])
    except ValueError:
        return None
    if level < 0 or level > 2:
        return None
    return unix, level, code, parts[3]


def restore(data_dir, events, now):
    """Put the last RESTORE persisted events back into the ring (before any
    event of this run); a missing or damaged file restores what it can."""
    lines = []
    for name in (OLD, LOG):
        try:
            with open(_join(data_dir, name)) as f:
                for line in f:
                    lines.append(line)
                    if len(lines) > RESTORE:
                        lines.pop(0)
        except (OSError, UnicodeError, ValueError):
            pass
    n = 0
    for line in lines:
        ev = _parse(line)
        if ev is None:
            events.count("eventlog.bad-line")
            continue
        unix, level, code, text = ev
        events.emit(now, level, code, "(before restart, %s) %s"
                    % ("unix time %d" % unix if unix is not None else "time unknown", text))
        n += 1
    return n


def install(node, data_dir, wall, monotonic):
    """Restore the tail into the ring, then persist new events (chained after
    the node's other sinks)."""
    from runtime.syslog import chain

    restore(data_dir, node.events, monotonic())
    node.events.sink = chain(node.events.sink, EventLog(data_dir, wall, node.events, monotonic))
