# mgmt/leases.py - `get-leases`: one page of a scope's bindings. Its own
# module (droppable, dhcpfo/ondemand.py) because a leases list is the
# request a board answers most often in a row (page after page), so each
# page loads this code and no other command's.

from dhcpfo import ondemand
from dhcpfo.compat import ip_str
from dhcpfo.lease import status
from dhcpfo.lease import table as lt
from dhcpfo.mgmt.commands import CommandError, _count_arg, _scope_id

ondemand.droppable(__name__)


def _mac(b):
    return ":".join("%02x" % x for x in b)


def get_leases(cmds, req, now):
    """One page of a scope's bindings in address order. `offset` is the pool
    offset to start at (0, or the `next` of the previous page); `next` is
    None on the last page. A page holds at most max_page rows, so a reply
    never needs more heap than that on a board."""
    sc = cmds._scope(req)
    t = cmds.node.tables[sc.index]
    want = req.get("state")
    limit = _count_arg(req, "limit", cmds.max_page, 1)
    offset = _count_arg(req, "offset", 0, 0)
    names = status.NAMES
    if want is None:
        states = (lt.ACTIVE, lt.EXPIRED, lt.RELEASED, lt.ABANDONED)
    else:
        states = tuple(s for s in range(1, len(names)) if names[s] == want)
        if not states:
            raise CommandError("unknown state %r" % (want,))
    limit = min(limit, cmds.max_page)
    rows = []
    nxt = None
    for off in range(offset, sc.size):
        if t.state(off) not in states:
            continue
        if len(rows) == limit:
            nxt = off
            break
        state, flags, mac, expiry, ack_pexp, stamp = t.get(off)
        cid = t.client_id(off)
        rows.append({"address": ip_str(sc.addr_of(off)),
                     "state": names[state] if 0 < state < len(names) else str(state),
                     "mac": _mac(mac) if mac else None, "client_id": _mac(cid) if cid else None,
                     "expires_in": expiry - now, "acked_pexp_in": ack_pexp - now if ack_pexp else None})
    return {"scope": _scope_id(sc), "leases": rows, "offset": offset, "next": nxt}
