# runtime/syslog.py - node events to a syslog collector (RFC 5424 over UDP, RFC 5426).
#
# An event sink for the driver: each event at or above the configured level
# leaves as one datagram
#
#   <PRI>1 TIMESTAMP HOSTNAME dhcpfo - MSGID - TEXT
#
# PRI = facility * 8 + severity (error 3, warning 4, information 6); MSGID is
# the event code (20252, ...); TIMESTAMP is UTC wall time when the node knows
# it (NTP or the partner), else the NILVALUE "-" (RFC 5424 §6.2.3: a sender
# without a reliable clock must not invent one). A send that fails (no route,
# a full buffer) is counted, never raised: logging must not stop the node.

import socket

from dhcpfo.compat import to_unix

SEVERITY = (6, 4, 3)  # by events level: INFO, WARN, ERROR
APP = "dhcpfo"
MAX_DATAGRAM = 480  # RFC 5426 §3.2: every receiver takes 480 octets over IPv4


def civil(unix):
    """(year, month, day, hour, minute, second) in UTC of Unix seconds
    (days-to-civil, no platform epoch involved: ports differ on theirs)."""
    days, rem = divmod(int(unix), 86400)
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400 + (1 if m <= 2 else 0)
    return y, m, d, rem // 3600, rem // 60 % 60, rem % 60


def format_message(event, hostname, facility, unix_now):
    """One event as an RFC 5424 message (bytes, at most MAX_DATAGRAM)."""
    now, level, code, text = event
    pri = facility * 8 + SEVERITY[level]
    if unix_now is None:
        stamp = "-"
    else:
        stamp = "%04d-%02d-%02dT%02d:%02d:%02dZ" % civil(unix_now)
    head = "<%d>1 %s %s %s - %d - " % (pri, stamp, hostname or "-", APP, code)
    msg = (head + text).encode()
    return msg[:MAX_DATAGRAM]


class Syslog:
    """The sink: `wall()` -> Unix seconds now, or None while the node has no wall time."""

    def __init__(self, host, port, hostname, min_level, facility, wall, events):
        self.addr = socket.getaddrinfo(host, port)[0][-1]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
        except (AttributeError, OSError):
            pass
        self.hostname = hostname.replace(" ", "-")[:48] if hostname else None
        self.min_level = min_level
        self.facility = facility
        self.wall = wall
        self.events = events

    def __call__(self, event):
        if event[1] < self.min_level:
            return
        try:
            self.sock.sendto(format_message(event, self.hostname, self.facility, self.wall()), self.addr)
            self.events.count("syslog.sent")
        except OSError:
            self.events.count("syslog.send-failed")

    def close(self):
        self.sock.close()


def wall_clock(time, clock):
    """() -> Unix seconds now, or None while the node has no wall time:
    `time` is the node's TimeBase (its learned offset), `clock` the driver's
    local clock (dhcpfo/timebase.py). The event sinks stamp with it."""

    def wall():
        off = time.offset
        return None if off is None else to_unix(clock.now() + off)

    return wall


def install(node, srv, wall):
    """Add a Syslog sink to the node's events when the configuration asks
    for one (server.syslog); returns it (or None)."""
    if srv.syslog_address is None:
        return None
    from dhcpfo.compat import ip_str
    from dhcpfo.events import LEVEL_NAMES

    sink = Syslog(ip_str(srv.syslog_address), srv.syslog_port, srv.name,
                  LEVEL_NAMES.index(srv.syslog_level), srv.syslog_facility, wall, node.events)
    node.events.sink = chain(node.events.sink, sink)
    return sink


def chain(first, second):
    """Two sinks as one (a driver's own printer and syslog)."""
    if first is None:
        return second

    def both(event):
        first(event)
        second(event)
    return both
