"""What clients were promised, and the two checks on it.

Every DHCPACK a client got becomes a `Grant` (mac, ip, from, until) in
wall-clock seconds of the client's machine. A later ACK to the same client
ends its earlier grant; so does a hook event that says the client let its
address go. Two checks follow:

* `overlaps`: an address granted to two clients for overlapping times;
* `lost`: a grant still running that a server's table does not hold.
"""

import json

# hook events (integration/pair.py) that mean "holds new_ip" and "holds nothing"
from integration.pair import _DROP, _HOLD


class Grant:
    __slots__ = ("mac", "ip", "start", "end", "source")

    def __init__(self, mac, ip, start, end, source):
        self.mac = mac.lower()
        self.ip = ip
        self.start = start
        self.end = end
        self.source = source

    def __repr__(self):
        return "Grant(%s %s %.1f..%.1f %s)" % (self.mac, self.ip, self.start, self.end, self.source)


def from_loadclient(path, source="load"):
    """Grants from a loadclient.py output file (complete lines only)."""
    out = []
    try:
        f = open(path)
    except FileNotFoundError:
        return out
    with f:
        for line in f:
            if not line.endswith("\n"):
                break
            rec = json.loads(line)
            if rec.get("ev") == "ack" and rec.get("lease") and rec.get("wall"):
                out.append(Grant(rec["mac"], rec["ip"], rec["wall"], rec["wall"] + rec["lease"], source))
    return out


def from_client(c):
    """Grants from a real client's hook events (dhclient, udhcpc); a drop
    event ends the grant before it."""
    out = []
    for e in c.events():
        t = int(e.stamp) / 1e9
        if e.event in _HOLD and e.ip and e.lease_time:
            out.append(Grant(c.mac, e.ip, t, t + e.lease_time, c.kind))
        elif e.event in _DROP and out and out[-1].end > t:
            out[-1].end = t
    return out


def settle(grants):
    """Per client, cut each grant at the start of the client's next one."""
    by_mac = {}
    for g in sorted(grants, key=lambda g: g.start):
        prev = by_mac.get(g.mac)
        if prev is not None and prev.end > g.start:
            prev.end = g.start
        by_mac[g.mac] = g
    return grants


def overlaps(grants):
    """Text lines, one per address held by two clients at the same time."""
    by_ip = {}
    for g in grants:
        by_ip.setdefault(g.ip, []).append(g)
    out = []
    for ip, gs in sorted(by_ip.items()):
        gs.sort(key=lambda g: g.start)
        for i, a in enumerate(gs):
            for b in gs[i + 1:]:
                if b.mac != a.mac and b.start < a.end and a.start < b.end:
                    out.append("%s: %r and %r" % (ip, a, b))
    return out


def current(grants, now, margin=5.0):
    """The latest grant of every client that still runs `margin` s after now."""
    latest = {}
    for g in grants:
        if g.mac not in latest or g.start >= latest[g.mac].start:
            latest[g.mac] = g
    return [g for g in latest.values() if g.end > now + margin]


def lost(grants, table, side, now, margin=5.0):
    """Text lines, one per running grant that `table` ({ip: row}, as
    get-leases gives it) does not hold ACTIVE for the same client (the row
    it has instead is in the line: state, client, seconds left)."""
    out = []
    for g in current(grants, now, margin):
        row = table.get(g.ip)
        if row is None or row.get("mac") != g.mac or row.get("state") != "active":
            out.append("%s: %r not held (%s)" % (side, g, row and (row.get("state"), row.get("mac"),
                                                                    row.get("expires_in"))))
    return out
