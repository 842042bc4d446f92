# mgmt/commands.py - the management command table, above the node.
#
# A request is a JSON object {"cmd": name, ...args}; the answer is
# {"ok": true, ...} or {"ok": false, "error": text}. The same table serves
# the TCP management port, the serial console and the host CLI. Commands
# follow the seed's cmdlets where one exists (Get-DhcpServerv4Failover ->
# "get-failover", Get-DhcpServerv4ScopeStatistics -> "get-scope-statistics").

from dhcpfo.compat import ip_str
from dhcpfo.lease import status
from dhcpfo.lease import table as lt
from dhcpfo import events as ev
from dhcpfo import ondemand

ondemand.droppable(__name__)  # loaded per request by mgmt.handler

STATE_NAMES = dict((i, status.NAMES[i]) for i in range(1, len(status.NAMES)))




def _scope_id(sc):
    return ip_str(sc.network)


def _mac(b):
    return ":".join("%02x" % x for x in b)


class CommandError(ValueError):
    pass


def _count_arg(req, key, default, lo):
    v = req.get(key, default)
    if type(v) is not int or v < lo:
        raise CommandError("%s must be an integer >= %d" % (key, lo))
    return v


# Rows per page of a list reply (leases, events) unless the driver allows
# more: a leases row is ~250 B of heap while the reply is built and again
# while it is encoded, so 16 rows keep a reply under ~8 KB on a board.
MAX_PAGE = 16


class Commands:
    def __init__(self, node, max_page=MAX_PAGE):
        self.node = node
        self.max_page = max_page
        self.table = {
            "help": (self.help, "list commands"),
            "status": (self.status, "node summary: scopes, relationships, counters"),
            "get-leases": (self.get_leases, "bindings of a scope, one page: {scope, state?, offset?, limit?} -> next"),
            "get-scope-statistics": (self.scope_stats, "addresses free/in use per scope, per server"),
            "get-failover": (self.get_failover, "relationships with mode, state, partner state, MCLT"),
            "set-failover-state": (self.set_failover_state, "{name, state: partner-down|shutdown|pause|resume}"),
            "get-counters": (self.get_counters, "performance counters"),
            "get-events": (self.get_events, "recent events, newest first: {offset?, limit?, level?}"),
            # the change commands of mgmt/failover.py; arguments in docs/operations.md
            "add-failover": (self.reconfigure, "new relationship (Add-DhcpServerv4Failover)"),
            "remove-failover": (self.reconfigure, "delete relationships (Remove-DhcpServerv4Failover)"),
            "add-failover-scope": (self.reconfigure, "Add-DhcpServerv4FailoverScope"),
            "remove-failover-scope": (self.reconfigure, "Remove-DhcpServerv4FailoverScope"),
            "set-failover": (self.reconfigure, "change a relationship (Set-DhcpServerv4Failover)"),
        }

    # commands that change the node: the read-only role may not run them
    CHANGES = ("set-failover-state", "add-failover", "remove-failover", "add-failover-scope",
               "remove-failover-scope", "set-failover")

    def handle(self, req, now, role="administrator"):
        if not isinstance(req, dict):
            return {"ok": False, "error": "a request is a JSON object {\"cmd\": name, ...}"}
        name = req.get("cmd")
        entry = self.table.get(name) if isinstance(name, str) else None
        if role != "administrator" and name in self.CHANGES:
            return {"ok": False, "error": "the %s role may only read; %s changes the node" % (role, name)}
        if entry is None:
            return {"ok": False, "error": "unknown command %r; try 'help'" % (name,)}
        try:
            res = entry[0](req, now)
        except CommandError as e:
            return {"ok": False, "error": str(e)}
        res["ok"] = True
        return res

    def reconfigure(self, req, now):
        """A command of mgmt/failover.py ("add-failover" -> add_failover).
        Imported on first use: a board that is never reconfigured keeps that
        code (and failover/reconfig.py) off its heap."""
        from dhcpfo.failover.reconfig import ReconfigError
        from dhcpfo.mgmt import failover as fo
        try:
            return getattr(fo, req["cmd"].replace("-", "_"))(self.node, req, now)
        except fo.Refused as e:
            raise CommandError(str(e))
        except ReconfigError as e:  # a rule of failover/reconfig.py: nothing was changed
            raise CommandError("; ".join(e.errors))

    # ------------------------------------------------------------------

    def help(self, req, now):
        return {"commands": dict((k, v[1]) for k, v in self.table.items())}

    def status(self, req, now):
        n = self.node
        return {
            "name": n.config.server.name,
            "time": now,
            "scopes": [self._scope_summary(sc) for sc in n.scopes],
            "relationships": [r.status(now) for r in n.relationships],
            "counters": dict(n.events.counters),
        }

    def _scope(self, req):
        sid = req.get("scope")
        sc = None
        if sid is not None:
            try:
                sc = self.node.scopes.by_id(bytes([int(p) for p in str(sid).split(".")]))
            except ValueError:
                sc = None
        if sc is None:
            if sid is None and len(self.node.scopes) == 1:
                return self.node.scopes[0]
            raise CommandError("unknown scope %r (give the scope id, e.g. 198.18.0.0)" % (sid,))
        return sc

    def _scope_summary(self, sc):
        t = self.node.tables[sc.index]
        counts = dict((STATE_NAMES[s], t.count(s)) for s in STATE_NAMES)
        return {"scope": _scope_id(sc), "name": sc.name, "size": sc.size, "active": sc.active, "bindings": counts}

    def get_leases(self, req, now):
        """One page of a scope's bindings in address order. `offset` is the pool
        offset to start at (0, or the `next` of the previous page); `next` is
        None on the last page. A page holds at most max_page rows, so a reply
        never needs more heap than that on a board."""
        sc = self._scope(req)
        t = self.node.tables[sc.index]
        want = req.get("state")
        limit = _count_arg(req, "limit", self.max_page, 1)
        offset = _count_arg(req, "offset", 0, 0)
        if want is None:
            states = (lt.ACTIVE, lt.EXPIRED, lt.RELEASED, lt.ABANDONED)
        else:
            states = tuple(s for s, nm in STATE_NAMES.items() if nm == want)
            if not states:
                raise CommandError("unknown state %r" % (want,))
        limit = min(limit, self.max_page)
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
            rows.append({"address": ip_str(sc.addr_of(off)), "state": STATE_NAMES.get(state, str(state)),
                         "mac": _mac(mac) if mac else None, "client_id": _mac(cid) if cid else None,
                         "expires_in": expiry - now, "acked_pexp_in": ack_pexp - now if ack_pexp else None})
        return {"scope": _scope_id(sc), "leases": rows, "offset": offset, "next": nxt}

    def scope_stats(self, req, now):
        out = []
        for sc in self.node.scopes:
            t = self.node.tables[sc.index]
            free = t.count(lt.FREE)
            backup = t.count(lt.BACKUP)
            usable = sc.size - sc.excluded_count()
            in_use = t.count(lt.ACTIVE)
            row = {"scope": _scope_id(sc), "name": sc.name, "addresses": usable, "in_use": in_use,
                   "free": usable - in_use, "percent_in_use": (100 * in_use // usable) if usable else 0,
                   "free_primary": free, "free_backup": backup}
            auth = self.node.server.authorities[sc.index]
            if getattr(auth, "failover", False):
                row.update(auth.scope_statistics(sc, now))
            out.append(row)
        return {"scopes": out}

    def get_failover(self, req, now):
        return {"relationships": [r.status(now) for r in self.node.relationships]}

    def set_failover_state(self, req, now):
        rel = self.node.relationship(req.get("name"))
        if rel is None:
            raise CommandError("unknown relationship %r" % (req.get("name"),))
        what = req.get("state")
        try:
            rel.admin(what, now, self.node.out)
        except ValueError as e:
            raise CommandError(str(e))
        return {"relationship": rel.status(now)}

    def get_counters(self, req, now):
        """The node's named counters, and the seed's ten failover counters
        summed over its relationships (each relationship's own are in get-failover)."""
        from dhcpfo.failover import perf

        return {"counters": dict(self.node.events.counters), "failover": perf.counters(self.node.relationships),
                "time": now}

    def get_events(self, req, now):
        """Newest first, one page: `offset` events skipped, at most max_page."""
        limit = min(_count_arg(req, "limit", 50, 1), self.max_page)
        offset = _count_arg(req, "offset", 0, 0)
        level = req.get("level", "info")
        if level not in ev.LEVEL_NAMES:
            raise CommandError("level must be one of %s" % ", ".join(ev.LEVEL_NAMES))
        rows = self.node.events.recent(limit, ev.LEVEL_NAMES.index(level), skip=offset)
        return {"events": [{"time": e[0], "level": ev.LEVEL_NAMES[e[1]], "code": e[2], "text": e[3]} for e in rows],
                "offset": offset}
