# mgmt/commands.py - the management command table, above the node.
#
# A request is a JSON object {"cmd": name, ...args}; the answer is
# {"ok": true, ...} or {"ok": false, "error": text}. The same table serves
# the TCP management port, the serial console and the host CLI. Commands
# follow the seed's cmdlets where one exists (Get-DhcpServerv4Failover ->
# "get-failover", Get-DhcpServerv4ScopeStatistics -> "get-scope-statistics").

from dhcpfo.compat import ip_str, to_unix
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


# mgmt/scopes.py's commands, as two strings rather than table entries (a
# board's heap): the first only read, the second change the node (the
# export too: it holds the management tokens and shared secrets)
SCOPE_READS = " get-scope-config get-config-digest help-scopes "
SCOPE_CHANGES = (" set-scope-config add-scope remove-scope set-scope add-range remove-range add-exclusion"
                 " remove-exclusion add-reservation remove-reservation set-option remove-option add-policy"
                 " remove-policy delete-lease import-config export-config ")

# Rows per page of a list reply (leases, events) unless the driver allows
# more: a leases row is ~250 B of heap while the reply is built and again
# while it is encoded, so 16 rows keep a reply under ~8 KB on a board.
MAX_PAGE = 16


class Commands:
    def __init__(self, node, max_page=MAX_PAGE):
        self.node = node
        self.max_page = max_page
        # name -> handler; the descriptions `help` lists are in mgmt/helptext.py
        # (loaded by `help` only: a board answers every other request without them)
        self.table = {
            "help": self.help,
            "status": self.status,
            "get-leases": self.get_leases,
            "get-scope-statistics": self.read,
            "get-failover": self.read,
            "set-failover-state": self.set_failover_state,
            "get-counters": self.get_counters,
            "get-events": self.get_events,
            # the change commands of mgmt/failover.py; arguments in docs/operations.md
            "add-failover": self.reconfigure,
            "remove-failover": self.reconfigure,
            "add-failover-scope": self.reconfigure,
            "remove-failover-scope": self.reconfigure,
            "set-failover": self.reconfigure,
            "get-server-info": self.server_info,
            # scopes, leases and the whole configuration (mgmt/scopes.py): the
            # commands are named in SCOPE_READS/SCOPE_CHANGES, their arguments
            # by help-scopes (docs/operations.md)
            "help-scopes": self.scopecmd,
        }

    # commands that change the node: the read-only role may not run them
    CHANGES = ("set-failover-state", "add-failover", "remove-failover", "add-failover-scope",
               "remove-failover-scope", "set-failover")

    def handle(self, req, now, role="administrator"):
        if not isinstance(req, dict):
            return {"ok": False, "error": "a request is a JSON object {\"cmd\": name, ...}"}
        name = req.get("cmd")
        entry = self.table.get(name) if isinstance(name, str) else None
        changes = name in self.CHANGES
        if entry is None and isinstance(name, str) and name and " " not in name:
            key = " " + name + " "
            if key in SCOPE_CHANGES or key in SCOPE_READS:
                entry = self.scopecmd
                changes = key in SCOPE_CHANGES
        if role != "administrator" and changes:
            return {"ok": False, "error": "the %s role may only read; %s changes the node" % (role, name)}
        if entry is None:
            return {"ok": False, "error": "unknown command %r; try 'help'" % (name,)}
        try:
            res = entry(req, now)
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

    def server_info(self, req, now):
        # mgmt/serverinfo.py, imported on first use
        from dhcpfo.mgmt.serverinfo import server_info
        return server_info(self.node, now)

    def scopecmd(self, req, now):
        """A command of mgmt/scopes.py. It and rescope.py (~10 KB of code)
        are droppable: on a board they leave the heap after the request
        (dhcpfo/ondemand.py); scope changes are rare, a board's heap is not."""
        from dhcpfo.mgmt import scopes
        try:
            return getattr(scopes, req["cmd"].replace("-", "_"))(self.node, req, now)
        except scopes.Refused as e:
            raise CommandError(str(e))

    def read(self, req, now):
        """A read command of mgmt/reads.py ("get-failover" -> get_failover),
        imported on first use like the change commands: heap on a board."""
        from dhcpfo.mgmt import reads
        return getattr(reads, req["cmd"].replace("-", "_"))(self, req, now)

    # ------------------------------------------------------------------

    def help(self, req, now):
        from dhcpfo.mgmt.helptext import TEXT

        return {"commands": dict((k, TEXT.get(k, "")) for k in self.table)}

    def status(self, req, now):
        """The node at a glance: each relationship as one line (its name,
        states, partner, link; get-failover has the rest): with 31 of them
        in full the answer was ~37 KB, past what a board can build."""
        from dhcpfo.failover.admin import summary

        n = self.node
        return {
            "name": n.config.server.name,
            "time": now,
            "scopes": [self._scope_summary(sc) for sc in n.scopes],
            "relationships": [summary(r) for r in n.relationships],
            "counters": dict(n.events.counters),
        }

    def _scope(self, req, errors=None):
        """The scope a request names (or the only one); unknown: a
        terminating error, or None and a line in `errors` when given."""
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
            if errors is not None:
                errors.append("scope %s does not exist on this server" % (sid,))
                return None
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
        off = self.node.time.offset  # None while the node does not know wall time (timebase.py)
        return {"events": [{"time": e[0], "wall_time": None if off is None else to_unix(e[0] + off),
                            "level": ev.LEVEL_NAMES[e[1]], "code": e[2], "text": e[3]} for e in rows],
                "offset": offset}
