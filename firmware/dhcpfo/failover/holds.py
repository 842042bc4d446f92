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


def hold_until(rel, t, off, extra_times, now):
    """0, or the time until which an expired address must stay held."""
    if now >= rel.amnesia_until and now >= rel.partner_amnesia_until:
        return 0
    base = t.ack_pexp(off)
    v = t.expiry(off)
    if v > base:
        base = v
    for v in extra_times:
        if v and v > base:
            base = v
    until = base + rel.mclt
    return until if until > now else 0

def hold(rel, si, off, until, now):
    """Keep the binding EXPIRED (not reusable) until `until`, then FREE."""
    t = rel.tables[si]
    t.set_state(off, lt.EXPIRED, now)
    t.set_expiry(off, until)
    if len(rel._holds) < QUEUE_MAX:
        rel._holds.append((si, off))
    else:
        rel._hold_scan = True
    rel.events.count("peer.held-after-storage-loss")

def release(rel, now, out):
    """Move holds whose time has passed to the primary's pool."""
    keep = []
    for si, off in rel._holds:
        t = rel.tables[si]
        if t.state(off) != lt.EXPIRED or t.flags(off) & lt.PENDING:
            continue  # the binding moved on
        if t.expiry(off) < now:
            t.set_state(off, lt.FREE, now)
            out.records.append(ll.encode_binding(si, off, t))
        else:
            keep.append((si, off))
    rel._holds = keep
    if rel._hold_scan and not keep:
        rel._hold_scan = False
        for sc in rel.scopes:
            si = sc.index
            t = rel.tables[si]
            if t.count(lt.EXPIRED):
                o = t.next_in_state(lt.EXPIRED, 0)
                first = o
                while o >= 0 and len(rel._holds) < QUEUE_MAX:
                    if not t.flags(o) & lt.PENDING:
                        rel._holds.append((si, o))
                    o = t.next_in_state(lt.EXPIRED, (o + 1) % t.size)
                    if o == first:
                        break
