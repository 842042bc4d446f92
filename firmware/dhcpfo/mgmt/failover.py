# mgmt/failover.py - the management commands that change failover
# relationships on a running node: the seed's Add-/Remove-DhcpServerv4Failover,
# Add-/Remove-DhcpServerv4FailoverScope and Set-DhcpServerv4Failover.
#
# This layer turns a request into the node's reconfiguration calls
# (node.py; failover/reconfig.py holds the rules) and adds the cmdlets'
# own parameter rules: parameter sets per mode, AutoStateTransition and
# SafePeriod, PartnerDown only from COMMUNICATION_INTERRUPTED, the
# shared-secret warning. A *terminating* error refuses the whole request
# (nothing changed); *non-terminating* errors (an unknown name, a scope that
# cannot take part) are listed under "errors" while the rest is done, as the
# cmdlets do.

from dhcpfo.compat import ip_str
from dhcpfo.config import FAILOVER_PORT, MAX_HOST, MAX_NAME, MAX_RELATIONSHIPS, parse_ip
from dhcpfo.failover import states as S
from dhcpfo.failover.reconfig import ReconfigError
from dhcpfo import ondemand

ondemand.droppable(__name__)  # a change command's code leaves with it

SAFE_PERIOD_DEFAULT = 3600  # seed: SafePeriod defaults to 1 hour when AutoStateTransition is true
SECRET_WARNING = ("the shared secret is stored in the configuration file and must be typed on the "
                  "partner too; anyone who can read either file or the management traffic can learn it")


class Refused(ValueError):
    """A terminating error: the request is refused and nothing changed."""


def _name(req):
    n = req.get("name")
    if type(n) is not str or not n or len(n) > MAX_NAME:
        raise Refused("name: the relationship's name is required (text, 1..%d characters)" % MAX_NAME)
    return n


def _names(req):
    n = req.get("name")
    lst = n if isinstance(n, list) else [n]
    for x in lst:
        if type(x) is not str or not x:
            raise Refused("name: one relationship name or a list of names is required")
    return lst


def is_host_name(s):
    """A DNS host name (letters, digits, hyphens; dot-separated labels of 1..63)?"""
    if type(s) is not str or not s or len(s) > MAX_HOST or parse_ip(s) is not None:
        return False
    for label in s.rstrip(".").split("."):
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            return False
        for ch in label:
            if not ("a" <= ch <= "z" or "A" <= ch <= "Z" or "0" <= ch <= "9" or ch == "-"):
                return False
    return True


def _partner(req):
    """(address text, host name or None). A host name is resolved by the
    driver (runtime/aio.py: socket.getaddrinfo) before the command runs, into
    `resolved` (or `resolve_error`): the core itself never resolves."""
    p = req.get("partner")
    if parse_ip(p) is not None:
        return p, None
    if not is_host_name(p):
        raise Refused("partner: the partner server's IPv4 address or host name is required")
    addr = req.get("resolved")
    if parse_ip(addr) is None:
        why = req.get("resolve_error")
        raise Refused("partner: host name %s could not be resolved to an IPv4 address%s"
                      % (p, (": %s" % why) if why else ""))
    return addr, p


def _scope_list(req):
    v = req.get("scopes", req.get("scope"))
    if type(v) is str:
        v = [x for x in v.split(",") if x]
    if not isinstance(v, list) or not v:
        raise Refused("scopes: one or more scope ids are required (e.g. [\"198.18.0.0\"])")
    out = []
    for x in v:
        if parse_ip(x) is None:
            raise Refused("scopes: %r is not a scope id (a dotted IPv4 network address)" % (x,))
        if x not in out:
            out.append(x)
    return out


def _int(req, key, lo, hi):
    v = req.get(key)
    if v is None:
        return None
    if type(v) is not int or v < lo or v > hi:
        raise Refused("%s must be an integer from %d to %d" % (key, lo, hi))
    return v


def _bool(req, key):
    v = req.get(key)
    if v is not None and type(v) is not bool:
        raise Refused("%s must be true or false" % key)
    return v


def _secret(req):
    v = req.get("shared_secret")
    if v is not None and (type(v) is not str or not v):
        raise Refused("shared_secret must be non-empty text (null in set-failover removes it)")
    return v


def _switchover(req, current):
    """auto_state_switchover (seconds or None) from the seed's AutoStateTransition
    and SafePeriod, or `current` when neither is given."""
    auto = _bool(req, "auto_state_transition")
    period = _int(req, "safe_period", 1, 30 * 86400)
    if auto is None and period is None:
        return current
    if auto is False:
        if period is not None:
            raise Refused("safe_period needs auto_state_transition true (it is false here)")
        return None
    if period is None:
        period = current or SAFE_PERIOD_DEFAULT
    return period


def _scope_owner(node, sid):
    for rel in node.relationships:
        if sid in [ip_str(s) for s in rel.rc.scopes]:
            return rel.name
    return None


def _usable_scopes(node, ids, errors):
    """The ids of scopes that exist and are in no relationship; others are non-terminating errors."""
    ok = []
    for sid in ids:
        owner = _scope_owner(node, sid)
        if node.scopes.by_id(parse_ip(sid)) is None:
            errors.append("scope %s does not exist on this server" % sid)
        elif owner is not None:
            errors.append("scope %s is already in failover relationship %s" % (sid, owner))
        else:
            ok.append(sid)
    return ok


def _mode(req):
    """The parameter set: load-balance (load_balance_percent) or hot-standby
    (reserve_percent, server_role); naming both sets is a terminating error."""
    mode = req.get("mode")
    hs_keys = [k for k in ("reserve_percent", "server_role") if req.get(k) is not None]
    lb_keys = [k for k in ("load_balance_percent",) if req.get(k) is not None]
    if mode is None:
        mode = "hot-standby" if hs_keys else "load-balance"
    if mode not in ("load-balance", "hot-standby"):
        raise Refused("mode must be load-balance or hot-standby")
    wrong = hs_keys if mode == "load-balance" else lb_keys
    if wrong:
        raise Refused("%s does not apply to a %s relationship" % (", ".join(wrong), mode))
    return mode


def _role(req, key):
    v = req.get(key)
    if v is None:
        return None
    if type(v) is not str or v.lower() not in ("active", "standby"):
        raise Refused("%s must be active or standby" % key)
    return v.lower()


def _answer(rel, now, errors, warning=None):
    out = {"relationship": rel.status(now) if rel is not None else None, "errors": errors}
    if warning:
        out["warning"] = warning
    return out


def add_failover(node, req, now):
    """Add-DhcpServerv4Failover: a new relationship on this node."""
    name = _name(req)
    if node.relationship(name) is not None:
        raise Refused("a failover relationship named %s already exists" % name)
    if len(node.relationships) >= MAX_RELATIONSHIPS:
        raise Refused("The local server already has %d (maximum allowed) failover relationships. A server "
                      "cannot have more than %d failover relationships." % (MAX_RELATIONSHIPS, MAX_RELATIONSHIPS))
    partner, host = _partner(req)
    local = req.get("local_address", ip_str(node.config.server.server_id))
    if parse_ip(local) is None:
        raise Refused("local_address must be an IPv4 address")
    role = req.get("role", "primary")
    if role not in ("primary", "secondary"):
        raise Refused("role must be primary (the default; the partner is then secondary) or secondary")
    errors = []
    scopes = _usable_scopes(node, _scope_list(req), errors)
    if not scopes:
        raise Refused("no usable scope: " + "; ".join(errors))
    mode = _mode(req)
    spec = {"name": name, "role": role, "mode": mode, "scopes": scopes,
            "local": {"address": local, "port": _int(req, "local_port", 1, 65535) or FAILOVER_PORT},
            "partner": {"address": partner, "port": _int(req, "partner_port", 1, 65535) or FAILOVER_PORT}}
    if host is not None:
        spec["partner_host"] = host
    for key, lo, hi in (("mclt", 1, 30 * 86400), ("load_balance_percent", 0, 100), ("reserve_percent", 0, 100)):
        v = _int(req, key, lo, hi)
        if v is not None:
            spec[key] = v
    sr = _role(req, "server_role")
    if sr is not None:
        spec["hot_standby_role"] = sr
    spec["auto_state_switchover"] = _switchover(req, None)
    secret = _secret(req)
    if secret is not None:
        spec["shared_secret"] = secret
    force = bool(req.get("force"))
    rel = node.create_relationship(spec, now)
    return _answer(rel, now, errors, SECRET_WARNING if secret is not None and not force else None)


def remove_failover(node, req, now):
    """Remove-DhcpServerv4Failover: each name removed, or a non-terminating error."""
    force = bool(req.get("force"))
    errors = []
    removed = []
    for name in _names(req):
        rel = node.relationship(name)
        if rel is None:
            errors.append("no failover relationship named %s" % name)
            continue
        before = rel.status(now)
        try:
            node.delete_relationship(name, now, force)
        except ReconfigError as e:
            errors.append("; ".join(e.errors))
            continue
        removed.append(before if req.get("passthru") else name)
    return {"removed": removed, "errors": errors}


def add_failover_scope(node, req, now):
    """Add-DhcpServerv4FailoverScope: unknown relationship is terminating; a
    scope that does not exist or is in a relationship is non-terminating."""
    name = _name(req)
    rel = node.relationship(name)
    if rel is None:
        raise Refused("no failover relationship named %s" % name)
    errors = []
    scopes = _usable_scopes(node, _scope_list(req), errors)
    if scopes:
        node.add_failover_scopes(name, scopes, now)
    return _answer(rel, now, errors)


def remove_failover_scope(node, req, now):
    """Remove-DhcpServerv4FailoverScope: scopes not in the relationship are
    non-terminating errors, checked before the others are removed; outside
    NORMAL without force is terminating."""
    name = _name(req)
    rel = node.relationship(name)
    if rel is None:
        raise Refused("no failover relationship named %s" % name)
    have = [ip_str(s) for s in rel.rc.scopes]
    errors = []
    scopes = []
    for sid in _scope_list(req):
        if sid in have:
            scopes.append(sid)
        elif node.scopes.by_id(parse_ip(sid)) is None:
            errors.append("scope %s does not exist on this server" % sid)
        else:
            errors.append("scope %s is not in failover relationship %s" % (sid, name))
    if scopes:
        node.remove_failover_scopes(name, scopes, now, bool(req.get("force")))
    return _answer(rel, now, errors)


def set_failover(node, req, now):
    """Set-DhcpServerv4Failover: settings of the relationship's mode, and
    -PartnerDown (only from COMMUNICATION_INTERRUPTED, else a non-terminating error)."""
    name = _name(req)
    rel = node.relationship(name)
    if rel is None:
        raise Refused("no failover relationship named %s" % name)
    known = ("cmd", "name", "mode", "load_balance_percent", "reserve_percent", "server_role", "mclt",
             "auto_state_transition", "safe_period", "shared_secret", "enable_auth", "partner_down", "force")
    extra = [k for k in req if k not in known]
    if extra:
        raise Refused("set-failover cannot change %s (it takes: %s)" % (", ".join(sorted(extra)), ", ".join(known[1:])))
    changes = {}
    mode = req.get("mode")
    if mode is not None:
        if mode not in ("load-balance", "hot-standby"):
            raise Refused("mode must be load-balance or hot-standby")
        if mode != rel.rc.mode:
            changes["mode"] = mode
    for key, lo, hi in (("mclt", 1, 30 * 86400), ("load_balance_percent", 0, 100), ("reserve_percent", 0, 100)):
        v = _int(req, key, lo, hi)
        if v is not None:
            changes[key] = v
    sr = _role(req, "server_role")
    if sr is not None:
        changes["hot_standby_role"] = sr
    sw = _switchover(req, rel.rc.auto_state_switchover)
    if sw != rel.rc.auto_state_switchover:
        changes["auto_state_switchover"] = sw
    auth = _bool(req, "enable_auth")
    warning = None
    if "shared_secret" in req:
        secret = _secret(req)
        if auth is False and secret is not None:
            raise Refused("enable_auth false removes the shared secret; do not give one with it")
        changes["shared_secret"] = secret
        if secret is not None and not req.get("force"):
            warning = SECRET_WARNING
    if auth is False:
        changes["shared_secret"] = None  # seed: disabling authentication sets the secret to NULL
    elif auth is True:
        changes["enable_authentication"] = True
    down = _bool(req, "partner_down")
    if not changes and not down:
        raise Refused("nothing to change: give at least one setting or partner_down")
    errors = []
    if changes:
        node.set_relationship(name, changes, now)
    if down:
        if rel.state != S.COMM_INTERRUPTED:
            errors.append("partner_down is possible only in communication-interrupted (relationship %s is %s)"
                          % (name, S.name(rel.state)))
        else:
            try:
                rel.admin("partner-down", now, node.out)
            except ValueError as e:
                errors.append(str(e))
    return _answer(rel, now, errors, warning)
