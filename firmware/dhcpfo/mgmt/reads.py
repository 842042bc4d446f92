# mgmt/reads.py - the plain read commands: help, status, counters, events
# (the seed's cmdlet reads are in mgmt/cmdlets.py). Imported for the
# request (mgmt/commands.py Commands._run) and dropped after it, so between
# requests a board keeps this code off its heap.

from dhcpfo import ondemand
from dhcpfo import events as ev
from dhcpfo.compat import to_unix
from dhcpfo.lease import status as ls
from dhcpfo.mgmt.commands import CommandError, _count_arg, _scope_id

ondemand.droppable(__name__)


def help(cmds, req, now):
    from dhcpfo.mgmt.helptext import TEXT

    return {"commands": dict(TEXT)}


def status(cmds, req, now):
    """The node at a glance: each relationship as one line (its name,
    states, partner, link; get-failover has the rest): with 31 of them
    in full the answer was ~37 KB, past what a board can build."""
    from dhcpfo.failover.report import summary

    n = cmds.node
    return {
        "name": n.config.server.name,
        "time": now,
        "scopes": [_scope_summary(cmds, sc) for sc in n.scopes],
        "relationships": [summary(r) for r in n.relationships],
        "counters": dict(n.events.counters),
    }


def _scope_summary(cmds, sc):
    t = cmds.node.tables[sc.index]
    counts = dict((ls.NAMES[s], t.count(s)) for s in range(1, len(ls.NAMES)))
    return {"scope": _scope_id(sc), "name": sc.name, "size": sc.size, "active": sc.active, "bindings": counts}


def get_counters(cmds, req, now):
    """The node's named counters, and the seed's ten failover counters
    summed over its relationships (each relationship's own are in get-failover)."""
    from dhcpfo.failover import perf

    return {"counters": dict(cmds.node.events.counters), "failover": perf.counters(cmds.node.relationships),
            "time": now}


def get_events(cmds, req, now):
    """Newest first, one page: `offset` events skipped, at most max_page."""
    limit = min(_count_arg(req, "limit", 50, 1), cmds.max_page)
    offset = _count_arg(req, "offset", 0, 0)
    level = req.get("level", "info")
    if level not in ev.LEVEL_NAMES:
        raise CommandError("level must be one of %s" % ", ".join(ev.LEVEL_NAMES))
    rows = cmds.node.events.recent(limit, ev.LEVEL_NAMES.index(level), skip=offset)
    off = cmds.node.time.offset  # None while the node does not know wall time (timebase.py)
    return {"events": [{"time": e[0], "wall_time": None if off is None else to_unix(e[0] + off),
                        "level": ev.LEVEL_NAMES[e[1]], "code": e[2], "text": e[3]} for e in rows],
            "offset": offset}
