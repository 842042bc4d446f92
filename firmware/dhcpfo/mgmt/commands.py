# mgmt/commands.py - the management command table, above the node.
#
# A request is a JSON object {"cmd": name, ...args}; the answer is
# {"ok": true, ...} or {"ok": false, "error": text}. The same table serves
# the TCP management port, the serial console and the host CLI. Commands
# follow the seed's cmdlets where one exists (Get-DhcpServerv4Failover ->
# "get-failover", Get-DhcpServerv4ScopeStatistics -> "get-scope-statistics").

from dhcpfo.compat import ip_str
from dhcpfo import ondemand

ondemand.droppable(__name__)  # loaded per request by mgmt.handler


def _scope_id(sc):
    return ip_str(sc.network)


class CommandError(ValueError):
    pass


def _count_arg(req, key, default, lo):
    v = req.get(key, default)
    if type(v) is not int or v < lo:
        raise CommandError("%s must be an integer >= %d" % (key, lo))
    return v


# Which module answers which command, as strings rather than a table of
# functions (a board's heap): a request imports only the module its command
# is in (droppable, dhcpfo/ondemand.py), never the others. The read commands
# (mgmt/reads.py, mgmt/cmdlets.py) and the leases list (mgmt/leases.py) take
# (cmds, req, now);
# the failover changes (mgmt/failover.py) and the scope commands
# (mgmt/scopes.py: SCOPE_READS only read, SCOPE_CHANGES change the node, the
# export too: it holds the management tokens and shared secrets) take
# (node, req, now). `help` lists mgmt/helptext.py's names.
READS = " help status get-counters get-events "
CMDLETS = " get-scope-statistics get-failover "
FAILOVER_CHANGES = " add-failover remove-failover add-failover-scope remove-failover-scope set-failover "
SCOPE_READS = " get-scope-config get-config-digest help-scopes "
SCOPE_CHANGES = (" set-scope-config add-scope remove-scope set-scope add-range remove-range add-exclusion"
                 " remove-exclusion add-reservation remove-reservation set-option remove-option add-policy"
                 " remove-policy delete-lease import-config export-config ")
OTHERS = " get-leases get-server-info set-failover-state "


def names():
    """Every command name answered here (tests drive each one)."""
    return (READS + CMDLETS + FAILOVER_CHANGES + SCOPE_READS + SCOPE_CHANGES + OTHERS).split()

# Rows per page of a list reply (leases, events) unless the driver allows
# more: a leases row is ~250 B of heap while the reply is built and again
# while it is encoded, so 16 rows keep a reply under ~8 KB on a board.
MAX_PAGE = 16


class Commands:
    def __init__(self, node, max_page=MAX_PAGE):
        self.node = node
        self.max_page = max_page

    def handle(self, req, now, role="administrator"):
        if not isinstance(req, dict):
            return {"ok": False, "error": "a request is a JSON object {\"cmd\": name, ...}"}
        name = req.get("cmd")
        key = " %s " % name if isinstance(name, str) and name and " " not in name else "  "
        changes = key in FAILOVER_CHANGES or key in SCOPE_CHANGES or name == "set-failover-state"
        known = changes or key in READS or key in CMDLETS or key in SCOPE_READS or key in OTHERS
        if role != "administrator" and changes:
            return {"ok": False, "error": "the %s role may only read; %s changes the node" % (role, name)}
        if not known:
            return {"ok": False, "error": "unknown command %r; try 'help'" % (name,)}
        try:
            res = self._run(key, name, req, now)
        except CommandError as e:
            return {"ok": False, "error": str(e)}
        res["ok"] = True
        return res

    def _run(self, key, name, req, now):
        """The command's module, imported for this request; its answer."""
        fn = name.replace("-", "_")
        if key in READS:
            from dhcpfo.mgmt import reads
            return getattr(reads, fn)(self, req, now)
        if key in CMDLETS:
            from dhcpfo.mgmt import cmdlets
            return getattr(cmdlets, fn)(self, req, now)
        if name == "get-leases":
            from dhcpfo.mgmt import leases
            return leases.get_leases(self, req, now)
        if name == "set-failover-state":
            return self.set_failover_state(req, now)
        if name == "get-server-info":
            from dhcpfo.mgmt.serverinfo import server_info
            return server_info(self.node, now)
        if key in FAILOVER_CHANGES:
            # mgmt/failover.py and failover/reconfig.py: a board that is
            # never reconfigured never loads them
            from dhcpfo.failover.reconfig import ReconfigError
            from dhcpfo.mgmt import failover as fo
            try:
                return getattr(fo, fn)(self.node, req, now)
            except fo.Refused as e:
                raise CommandError(str(e))
            except ReconfigError as e:  # a rule of failover/reconfig.py: nothing was changed
                raise CommandError("; ".join(e.errors))
        # mgmt/scopes.py and rescope.py (~10 KB of code): rare, a board's heap is not
        from dhcpfo.mgmt import scopes
        try:
            return getattr(scopes, fn)(self.node, req, now)
        except scopes.Refused as e:
            raise CommandError(str(e))

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
