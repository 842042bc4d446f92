# failover/holds.py - addresses held after a loss of stable storage.
#
# A server that lost its bindings cannot vouch, when it acknowledges an
# expiry, for renewals it granted before the loss; and a server that
# recovered from such a loss knows the bindings only as its partner
# told them. Within MCLT past the latest potential expiration either
# side knew, such a lease may still be in a client's hands (the MCLT
# rule bounds it there), so the address is held, on both sides, until
# then; after that it goes to the primary's pool as usual.

from dhcpfo.lease import log as ll
from dhcpfo.lease import table as lt

QUEUE_MAX = 512  # holds tracked in a list before falling back to a table scan


class Holds:
    def __init__(self, scopes, tables, events):
        self.scopes = scopes
        self.tables = tables
        self.events = events
        # until when a loss of stable storage (ours, or the partner's: it
        # sent UPDREQALL) may have left leases out that nobody recorded
        self.amnesia_until = 0
        self.partner_amnesia_until = 0
        # when each loss was found: every lease it erased was granted before
        # then, so ran at most MCLT past then (or past its acknowledged
        # potential expiration) however often it was renewed while cut off
        self.amnesia_since = 0
        self.partner_amnesia_since = 0
        self._held = []  # (si, off) of EXPIRED bindings held
        self._scan = False  # holds beyond the list (or from before a restart): scan the tables

    def active(self):
        return bool(self._held) or self._scan

    def rescan(self):
        """Holds recorded before a restart are found by a table scan and released by time."""
        self._scan = True

    def until(self, t, off, extra_times, now, mclt, partner_down=False):
        """0, or the time until which an expired address must stay held.
        partner_down: acknowledged while we are in PARTNER-DOWN, by a partner
        that may not vouch for what it granted (in RECOVER it takes our copy
        over its own): §9.4.2 keeps the address from another client until
        MCLT past every time either side knew (sim seed 1302, I1)."""
        if not partner_down and now >= self.amnesia_until and now >= self.partner_amnesia_until:
            return 0
        base = t.ack_pexp(off)
        v = t.expiry(off)
        if v > base:
            base = v
        if now < self.amnesia_until and self.amnesia_since > base:
            base = self.amnesia_since
        if now < self.partner_amnesia_until and self.partner_amnesia_since > base:
            base = self.partner_amnesia_since
        for v in extra_times:
            if v and v > base:
                base = v
        until = base + mclt
        return until if until > now else 0

    def hold(self, si, off, until, now):
        """Keep the binding EXPIRED (not reusable) until `until`, then FREE."""
        t = self.tables[si]
        t.set_state(off, lt.EXPIRED, now)
        t.set_expiry(off, until)
        if len(self._held) < QUEUE_MAX:
            self._held.append((si, off))
        else:
            self._scan = True
        self.events.count("peer.held-after-storage-loss")

    def release(self, now, out):
        """Move holds whose time has passed to the primary's pool."""
        keep = []
        for si, off in self._held:
            t = self.tables[si]
            if t.state(off) != lt.EXPIRED or t.flags(off) & lt.PENDING:
                continue  # the binding moved on
            if t.expiry(off) < now:
                t.set_state(off, lt.FREE, now)
                out.records.append(ll.encode_binding(si, off, t))
            else:
                keep.append((si, off))
        self._held = keep
        if self._scan and not keep:
            self._scan = False
            for sc in self.scopes:
                si = sc.index
                t = self.tables[si]
                if t.count(lt.EXPIRED):
                    o = t.next_in_state(lt.EXPIRED, 0)
                    first = o
                    while o >= 0 and len(self._held) < QUEUE_MAX:
                        if not t.flags(o) & lt.PENDING:
                            self._held.append((si, o))
                        o = t.next_in_state(lt.EXPIRED, (o + 1) % t.size)
                        if o == first:
                            break
