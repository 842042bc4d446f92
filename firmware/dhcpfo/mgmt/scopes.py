# mgmt/scopes.py - the management commands that read and change scopes on a
# running node: the whole scope as the configuration file holds it
# (get-/set-scope-config, add-/remove-scope), the fine-grained commands a
# remote administrator uses (ranges, exclusions, reservations, options,
# policies, scope properties), delete-lease, export-/import-config, and the
# configuration digest a pair compares (failover/cfgdigest.py).
#
# Every change edits a copy of the configuration document and hands the
# whole of it to rescope.apply (the node level), which checks it, applies
# it in one step and has the driver write it atomically; so a refused
# change leaves the node and its file as they were. Values are in the
# compiled form of the file (options as [code, hex]): the host CLI
# (dhcpfo_host/scope_cli.py) turns option names and typed values into it.
# Imported on first use (Commands._run), like mgmt/failover.py.

from dhcpfo import ondemand
from dhcpfo.compat import ip_str, json_dumps, json_loads
from dhcpfo.config import parse_ip
from dhcpfo.lease import table as lt

ondemand.droppable(__name__)


class Refused(ValueError):
    """The request is refused; nothing changed."""


# what a replicated scope consists of (the seed's replication steps), and
# what every other key of a compiled scope is: its properties
SECTIONS = ("ranges", "exclusions", "options", "reservations", "policies")
# server settings an import may not change on a running node (a restart or
# the failover commands change them)
IMPORT_LIVE = ("options", "policies")


def _copy(v):
    return json_loads(json_dumps(v))


def _doc(node):
    try:
        return _copy(node._doc())
    except ValueError as e:  # ReconfigError: no document to edit
        raise Refused(str(e))


def _sid(req, key="scope"):
    v = req.get(key)
    if type(v) is not str or parse_ip(v) is None:
        raise Refused("%s: the scope id is required (a dotted IPv4 network address, e.g. 198.18.0.0)" % key)
    return ip_str(parse_ip(v))


def _find(doc, sid):
    scopes = doc.get("scopes") or []
    for i in range(len(scopes)):
        if parse_ip(scopes[i].get("id")) == parse_ip(sid):
            return i
    raise Refused("scope %s does not exist on this server" % sid)


def _owner(node, sid):
    for rel in node.relationships:
        if parse_ip(sid) in rel.rc.scopes:
            return rel.name
    return None


def _apply(node, doc, now, force=False):
    from dhcpfo import rescope
    try:
        moved = rescope.apply(node, doc, now, force)
    except rescope.ScopeChangeError as e:
        raise Refused("; ".join(e.errors))
    return {"moved": moved}


def _edit(node, req, now, change):
    """Apply change(scope dict) to a copy of the scope named by req; answer
    with the scope as it now stands."""
    sid = _sid(req)
    doc = _doc(node)
    i = _find(doc, sid)
    change(doc["scopes"][i])
    res = _apply(node, doc, now, bool(req.get("force")))
    res["scope"] = sid
    res["config"] = doc["scopes"][i]
    return res


def _level(node, req, doc):
    """The dict that holds options/policies: a scope's, or the server's
    (no scope, or level "server")."""
    if req.get("level") == "server":
        return doc["server"]
    if req.get("scope") is None:
        raise Refused("scope: give the scope id, or level \"server\" for a server-level setting")
    return doc["scopes"][_find(doc, _sid(req))]


def _span(req):
    s = req.get("start")
    e = req.get("end", s)
    if parse_ip(s) is None or parse_ip(e) is None:
        raise Refused("start and end: IPv4 addresses are required (end defaults to start)")
    return [ip_str(parse_ip(s)), ip_str(parse_ip(e))]


def _list(d, key):
    v = d.get(key)
    if v is None:
        v = d[key] = []
    return v


# -- the scope as a whole ----------------------------------------------------


def get_scope_config(node, req, now):
    sid = _sid(req)
    doc = node._doc()
    return {"scope": sid, "config": doc["scopes"][_find(doc, sid)], "failover": _owner(node, sid)}


def set_scope_config(node, req, now):
    sid = _sid(req)
    new = req.get("config")
    if not isinstance(new, dict):
        raise Refused("config: the scope as get-scope-config gives it is required")
    if parse_ip(new.get("id")) != parse_ip(sid):
        raise Refused("config.id %r is not scope %s (a scope's id cannot change: add-scope and remove-scope)"
                      % (new.get("id"), sid))

    def change(sc):
        sc.clear()
        sc.update(new)
    return _edit(node, req, now, change)


def add_scope(node, req, now):
    new = req.get("config")
    if not isinstance(new, dict) or parse_ip(new.get("id")) is None:
        raise Refused("config: a compiled scope with its id is required (see get-scope-config)")
    sid = ip_str(parse_ip(new["id"]))
    doc = _doc(node)
    try:
        _find(doc, sid)
    except Refused:
        doc["scopes"].append(new)
        res = _apply(node, doc, now)
        res["scope"] = sid
        return res
    raise Refused("scope %s already exists on this server" % sid)


def remove_scope(node, req, now):
    sid = _sid(req)
    owner = _owner(node, sid)
    if owner is not None:
        raise Refused("scope %s is in failover relationship %s: remove it from the relationship first "
                      "(remove-failover-scope)" % (sid, owner))
    doc = _doc(node)
    del doc["scopes"][_find(doc, sid)]
    res = _apply(node, doc, now, bool(req.get("force")))
    res["scope"] = sid
    return res


def set_scope(node, req, now):
    """Scope properties (name, active, lease times, ...): every key but the
    id, the prefix and the sections."""
    props = dict((k, v) for k, v in req.items() if k not in ("cmd", "scope", "force"))
    bad = [k for k in props if k in SECTIONS or k in ("id", "prefix")]
    if bad or not props:
        raise Refused("set-scope changes scope properties (name, active, lease_time, ...), not %s"
                      % (", ".join(bad) or "nothing"))

    def change(sc):
        for k in props:
            if props[k] is None:
                sc.pop(k, None)
            else:
                sc[k] = props[k]
    return _edit(node, req, now, change)


# -- ranges and exclusions ---------------------------------------------------


def _span_cmd(key, add):
    def cmd(node, req, now):
        span = _span(req)

        def change(sc):
            lst = _list(sc, key)
            have = [[ip_str(parse_ip(a)), ip_str(parse_ip(b))] for a, b in lst]
            if add:
                if span in have:
                    raise Refused("%s %s-%s is already in scope %s" % (key[:-1], span[0], span[1], sc["id"]))
                lst.append(span)
            else:
                if span not in have:
                    raise Refused("scope %s has no %s %s-%s" % (sc["id"], key[:-1], span[0], span[1]))
                del lst[have.index(span)]
        return _edit(node, req, now, change)
    return cmd


add_range = _span_cmd("ranges", True)
remove_range = _span_cmd("ranges", False)
add_exclusion = _span_cmd("exclusions", True)
remove_exclusion = _span_cmd("exclusions", False)


# -- reservations ------------------------------------------------------------


def add_reservation(node, req, now):
    addr = req.get("address")
    if parse_ip(addr) is None:
        raise Refused("address: the reserved IPv4 address is required")
    res = {"address": ip_str(parse_ip(addr)), "name": req.get("name") or ""}
    for k in ("mac", "client_id", "options"):
        if req.get(k) is not None:
            res[k] = req[k]
    if "options" not in res:
        res["options"] = []

    def change(sc):
        lst = _list(sc, "reservations")
        for r in lst:
            if parse_ip(r.get("address")) == parse_ip(addr):
                raise Refused("%s is already reserved in scope %s (for %s)"
                              % (res["address"], sc["id"], r.get("mac") or r.get("client_id")))
        lst.append(res)
    return _edit(node, req, now, change)


def remove_reservation(node, req, now):
    addr = req.get("address")
    if parse_ip(addr) is None:
        raise Refused("address: the reserved IPv4 address is required")

    def change(sc):
        lst = _list(sc, "reservations")
        for i in range(len(lst)):
            if parse_ip(lst[i].get("address")) == parse_ip(addr):
                del lst[i]
                return
        raise Refused("scope %s has no reservation of %s" % (sc["id"], addr))
    return _edit(node, req, now, change)


# -- options (scope or server level) -----------------------------------------


def _code(req):
    c = req.get("code")
    if type(c) is not int or c < 1 or c > 254:
        raise Refused("code: an option code 1..254 is required")
    return c


def _level_edit(node, req, now, change):
    doc = _doc(node)
    d = _level(node, req, doc)
    change(d)
    res = _apply(node, doc, now, bool(req.get("force")))
    res["level"] = "server" if d is doc["server"] else d["id"]
    return res


def set_option(node, req, now):
    code = _code(req)
    value = req.get("value")
    if type(value) is not str:
        raise Refused("value: the option's value as hex is required (the CLI encodes named values)")

    def change(d):
        lst = _list(d, "options")
        for item in lst:
            if item[0] == code:
                item[1] = value
                return
        lst.append([code, value])
    return _level_edit(node, req, now, change)


def remove_option(node, req, now):
    code = _code(req)

    def change(d):
        lst = _list(d, "options")
        for i in range(len(lst)):
            if lst[i][0] == code:
                del lst[i]
                return
        raise Refused("option %d is not set at this level" % code)
    return _level_edit(node, req, now, change)


# -- policies ----------------------------------------------------------------


def add_policy(node, req, now):
    pol = req.get("policy")
    if not isinstance(pol, dict) or type(pol.get("name")) is not str:
        raise Refused("policy: a compiled policy with its name is required")

    def change(d):
        lst = _list(d, "policies")
        for p in lst:
            if p.get("name") == pol["name"]:
                raise Refused("a policy named %s already exists at this level" % pol["name"])
        lst.append(pol)
    return _level_edit(node, req, now, change)


def remove_policy(node, req, now):
    name = req.get("name")
    if type(name) is not str:
        raise Refused("name: the policy's name is required")

    def change(d):
        lst = _list(d, "policies")
        for i in range(len(lst)):
            if lst[i].get("name") == name:
                del lst[i]
                return
        raise Refused("no policy named %s at this level" % name)
    return _level_edit(node, req, now, change)


# -- leases ------------------------------------------------------------------


def delete_lease(node, req, now):
    """Remove-DhcpServerv4Lease: the binding is released (draft-12: a
    RELEASED address is reusable), durably and, in a failover scope, sent
    to the partner like a client's DHCPRELEASE."""
    sid = _sid(req)
    sc = node.scopes.by_id(parse_ip(sid))
    if sc is None:
        raise Refused("scope %s does not exist on this server" % sid)
    addr = parse_ip(req.get("address"))
    if addr is None:
        raise Refused("address: the leased IPv4 address is required")
    off = sc.offset_of(addr)
    t = node.tables[sc.index]
    if off < 0 or t.state(off) != lt.ACTIVE:
        raise Refused("%s has no active lease in scope %s" % (ip_str(addr), sid))
    t.set_state(off, lt.RELEASED, now)
    t.set_expiry(off, now)
    node.server._changed(sc, off, now, node.out)
    return {"scope": sid, "address": ip_str(addr)}


# -- the whole configuration --------------------------------------------------


def export_config(node, req, now):
    return {"config": node._doc()}


def import_config(node, req, now):
    """A whole compiled document: its scopes and server options/policies are
    applied live; anything else (server settings, relationships) must match
    the running one, or the import is refused naming what differs."""
    new = req.get("config")
    if not isinstance(new, dict) or not isinstance(new.get("server"), dict):
        raise Refused("config: a whole compiled configuration (export-config gives one) is required")
    doc = _doc(node)
    diff = []
    for k in new:
        if k not in ("scopes", "server") and json_dumps(new[k]) != json_dumps(doc.get(k)):
            diff.append(k)
    for k in doc:
        if k not in new:
            diff.append(k)
    srv = doc["server"]
    for k in new["server"]:
        if k not in IMPORT_LIVE and json_dumps(new["server"][k]) != json_dumps(srv.get(k)):
            diff.append("server." + k)
    if diff:
        raise Refused("import-config changes scopes and server options/policies on a running node; "
                      "these differ and need the failover commands or a restart: %s" % ", ".join(diff))
    return _apply(node, _copy(new), now, bool(req.get("force")))


def get_config_digest(node, req, now):
    """The digest of each relationship's replicated scope configuration."""
    from dhcpfo.failover import cfgdigest
    return {"digests": dict((rel.name, cfgdigest.hex_of(cfgdigest.of(node._doc(), rel.rc.scopes)))
                            for rel in node.relationships)}


def help_scopes(node, req, now):
    """The arguments of this module's commands (kept here, off the command table)."""
    return {"commands": {
        "get-scope-config": "{scope}: the scope as the configuration file holds it, and its relationship",
        "set-scope-config": "{scope, config, force?}: replace the scope in one step",
        "add-scope": "{config}: a new scope (compiled form)",
        "remove-scope": "{scope, force?}: refused in a relationship; with active leases unless force",
        "set-scope": "{scope, name?, active?, lease_time?, min_lease_time?, max_lease_time?, ...}",
        "add-range": "{scope, start, end}", "remove-range": "{scope, start, end}",
        "add-exclusion": "{scope, start, end?}", "remove-exclusion": "{scope, start, end?}",
        "add-reservation": "{scope, address, mac | client_id, name?, options?}",
        "remove-reservation": "{scope, address}",
        "set-option": "{scope | level: \"server\", code, value: hex}",
        "remove-option": "{scope | level: \"server\", code}",
        "add-policy": "{scope | level: \"server\", policy}", "remove-policy": "{scope | level: \"server\", name}",
        "delete-lease": "{scope, address}: release an active lease (Remove-DhcpServerv4Lease)",
        "export-config": "the whole configuration document (administrator: it holds tokens and secrets)",
        "import-config": "{config, force?}: its scopes and server options/policies applied live",
        "get-config-digest": "each relationship's configuration digest"}}
