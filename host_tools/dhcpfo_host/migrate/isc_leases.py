"""dhcpd.leases -> `Binding` rows for our lease store.

The last entry of an address wins, as when dhcpd reads its file. What a
binding record cannot hold (client-hostname, tstp, atsfp, variables, the
failover state block) is reported or counted; see docs/migration.md.
"""

import calendar

from dhcpfo.lease import table as lt
from dhcpfo.wire.options import ip_or_none

from dhcpfo_host.migrate.iscsyntax import colon_hex
from dhcpfo_host.migrate.leasestore import STATE_CODES, Binding


class Origin:
    """Where a lease came from, without keeping its tokens (report items)."""

    __slots__ = ("path", "line", "_text")

    def __init__(self, st):
        self.path = st.path
        self.line = st.line
        self._text = st.text()

    def text(self):
        return self._text


def _ip(tok):
    return ip_or_none(tok.value) if tok is not None and tok.kind == "word" else None


_WEEKDAYS = set("0123456")


def lease_time(st):
    """Unix seconds of `starts 4 2026/12/03 08:00:00;` (UTC), `epoch N`, or
    None for `never`. Raises ValueError on anything else."""
    w = st.words[1:]
    if w == ["never"]:
        return None
    if len(w) >= 2 and w[0] == "epoch":
        return int(w[1])
    if len(w) == 3 and w[0] in _WEEKDAYS:
        d = w[1].split("/")
        t = w[2].split(":")
        if len(d) == 3 and len(t) == 3:
            y, mo, da = (int(x) for x in d)
            h, mi, s = (int(x) for x in t)
            if y < 100:
                y += 1900
            return calendar.timegm((y, mo, da, h, mi, s, 0, 0, 0))
    raise ValueError("not a dhcpd lease time: %s" % " ".join(w))


def import_leases(stmts, report, keep_failover=True):
    """[(Binding, Origin)] from dhcpd.leases statements (an iterable: a lazy
    parse keeps memory flat on large files); the last entry
    of an address wins, as when dhcpd reads the file."""
    by_addr = {}
    for st in stmts:
        k = st.key
        if k == "lease" and st.block is not None and len(st.head) == 2:
            addr = _ip(st.head[1])
            if addr is None:
                report.unmapped(st, "lease for a non-IPv4 address")
                continue
            b = _lease(st, addr, report, keep_failover)
            if b is not None:
                by_addr[addr] = (b, Origin(st))
        elif k == "failover" and st.block is not None:
            report.dropped(st, "failover state is not carried over: a dhcpfo node without saved "
                               "state starts in RECOVER and learns every binding from its partner")
        elif k in ("server-duid", "authoring-byte-order", "db-time-format"):
            continue
        elif k in ("host", "class", "subclass"):
            report.dropped(st, "objects created through OMAPI / dynamically are not imported")
        else:
            report.unmapped(st, "unknown statement in a lease file")
    return [by_addr[a] for a in sorted(by_addr)]


def _lease(st, addr, report, keep_failover):
    times = {}
    state = None
    mac = None
    cid = None
    host = None
    for s in st.block:
        k = s.key
        w = s.words
        lw = [x.lower() for x in w]
        if k in ("starts", "ends", "tstp", "tsfp", "atsfp", "cltt"):
            try:
                times[k] = lease_time(s)
            except ValueError as e:
                report.dropped(s, str(e))
        elif lw[:2] == ["binding", "state"] and len(w) == 3:
            state = lw[2]
        elif lw[:3] in (["next", "binding", "state"], ["rewind", "binding", "state"]):
            continue  # derived again by dhcpfo from its own state machine
        elif k == "hardware" and len(w) == 3:
            m = colon_hex(w[2])
            if lw[1] == "ethernet" and m is not None and len(m) == 6:
                mac = m
            else:
                report.dropped(s, "only Ethernet hardware addresses are imported")
        elif k == "uid" and len(s.head) == 2:
            t = s.head[1]
            cid = t.value.encode("latin-1") if t.kind == "string" else colon_hex(t.value)
            if cid is None or len(cid) > 255:
                report.dropped(s, "uid is neither a string nor colon hex")
                cid = None
        elif k == "client-hostname":
            host = w[1] if len(w) > 1 else None
            report.count("client-hostname dropped")
        elif k == "abandoned":
            state = "abandoned"
        elif k in ("set", "on", "vendor-class-identifier", "bootp", "reserved", "ddns-text",
                   "ddns-fwd-name", "ddns-rev-name", "ddns-client-fqdn"):
            report.count("lease statement dropped: %s" % k)
        else:
            report.dropped(s, "unknown lease statement")
    if state is None:
        state = "active" if times.get("ends", 0) is None or times.get("ends", 0) else "free"
    code = STATE_CODES.get(state)
    if state == "bootp":
        report.dropped(st, "BOOTP lease: not imported (BOOTP scopes are not mapped)")
        return None
    if code is None:
        report.dropped(st, "binding state %s is not known" % state)
        return None
    if code == lt.BACKUP and not keep_failover:
        code = lt.FREE
    b = Binding(addr, code, mac, cid)
    b.hostname = host
    ends = times.get("ends", 0)
    starts = times.get("starts", 0) or 0
    cltt = times.get("cltt") or starts
    if code in (lt.ACTIVE, lt.EXPIRED, lt.RELEASED):
        b.expiry = ends
        b.stamp = cltt
        if mac is None and cid is None:
            report.dropped(st, "a %s lease without hardware address or uid: imported as free" % state)
            b.state = lt.FREE
            b.expiry = 0
    elif code == lt.ABANDONED:
        b.expiry = ends
        b.stamp = starts
    else:
        b.expiry = 0
        b.stamp = ends if ends else starts
        if mac is not None or cid is not None:
            report.count("client of a free/backup lease not kept (no lease affinity)")
    if keep_failover and times.get("tsfp"):
        b.ack_pexp = times["tsfp"]
    if times.get("tstp"):
        report.count("tstp dropped (dhcpfo derives the sent potential expiration)")
    if times.get("atsfp"):
        report.count("atsfp dropped")
    return b
