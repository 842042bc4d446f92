"""`dhcpfo scope|range|exclusion|reservation|option|policy|lease|config ...`:
what a remote administrator changes on a running node, over the management
port or the serial console (mgmt/scopes.py on the node; docs/operations.md).

The node takes values in the compiled form of its configuration file; this
module turns option names and typed values into it (wire.options), reads
JSON files for whole scopes and policies, and pages through leases. Each
change is made on the node it is sent to; `dhcpfo failover replicate`
copies a failover scope's configuration to the partner.
"""
import json
import sys

from dhcpfo_host import mgmtclient

GROUPS = ("scope", "range", "exclusion", "reservation", "option", "policy", "lease", "config")


def _level(p):
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--scope", metavar="ID", help="scope id (e.g. 198.18.0.0)")
    g.add_argument("--server", action="store_true", help="server level (every scope)")


def add_parsers(sub, connection_args):
    """The subcommand groups; connection_args(p) adds --host/--tcp/--serial/--token/--json."""
    def leaf(parent, name, help_text):
        p = parent.add_parser(name, help=help_text)
        connection_args(p)
        return p

    sp = sub.add_parser("scope", help="show, add, change and remove scopes of a running node")
    ss = sp.add_subparsers(dest="action", required=True)
    p = leaf(ss, "show", "the scopes, or one scope as the node's configuration file holds it")
    p.add_argument("--scope", metavar="ID")
    p = leaf(ss, "add", "a new scope from a JSON file (compiled form, as `scope show --json` prints it)")
    p.add_argument("file", help="JSON file holding the scope ('-': standard input)")
    p = leaf(ss, "set", "scope properties (Set-DhcpServerv4Scope)")
    p.add_argument("--scope", required=True, metavar="ID")
    p.add_argument("--name")
    p.add_argument("--active", choices=("true", "false"))
    p.add_argument("--lease-time", type=int, metavar="SECONDS")
    p.add_argument("--min-lease-time", type=int, metavar="SECONDS")
    p.add_argument("--max-lease-time", type=int, metavar="SECONDS")
    p.add_argument("--offer-delay-ms", type=int, metavar="MS")
    p = leaf(ss, "replace", "replace a scope with a JSON file in one step (set-scope-config)")
    p.add_argument("--scope", required=True, metavar="ID")
    p.add_argument("file")
    p.add_argument("--force", action="store_true")
    p = leaf(ss, "remove", "remove a scope (refused in a relationship, or with active leases unless --force)")
    p.add_argument("--scope", required=True, metavar="ID")
    p.add_argument("--force", action="store_true")

    for group, what in (("range", "an address range of a scope"), ("exclusion", "an exclusion range of a scope")):
        gp = sub.add_parser(group, help="add or remove " + what)
        gs = gp.add_subparsers(dest="action", required=True)
        for action in ("add", "remove"):
            p = leaf(gs, action, action + " " + what)
            p.add_argument("--scope", required=True, metavar="ID")
            p.add_argument("start")
            p.add_argument("end", nargs="?" if group == "exclusion" else None)

    rp = sub.add_parser("reservation", help="add or remove a reservation")
    rs = rp.add_subparsers(dest="action", required=True)
    p = leaf(rs, "add", "reserve an address for a client (Add-DhcpServerv4Reservation)")
    p.add_argument("--scope", required=True, metavar="ID")
    p.add_argument("--address", required=True, metavar="IP")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--mac", help="the client's MAC address")
    g.add_argument("--client-id", metavar="HEX", help="the client identifier (option 61)")
    p.add_argument("--name", default="")
    p = leaf(rs, "remove", "remove a reservation")
    p.add_argument("--scope", required=True, metavar="ID")
    p.add_argument("--address", required=True, metavar="IP")

    op = sub.add_parser("option", help="set or remove an option value (scope or server level)")
    os_ = op.add_subparsers(dest="action", required=True)
    p = leaf(os_, "set", "set an option (name or code, typed value or 0x-hex)")
    _level(p)
    p.add_argument("option", help="name or code, e.g. domain-name-servers or 6")
    p.add_argument("value", help="e.g. 198.18.0.1,198.18.0.2 or 0xc6120001")
    p = leaf(os_, "remove", "remove an option value")
    _level(p)
    p.add_argument("option")

    pp = sub.add_parser("policy", help="add or remove a policy")
    ps = pp.add_subparsers(dest="action", required=True)
    p = leaf(ps, "add", "add a policy from a JSON file (compiled form)")
    _level(p)
    p.add_argument("file")
    p = leaf(ps, "remove", "remove a policy by name")
    _level(p)
    p.add_argument("--name", required=True)

    lp = sub.add_parser("lease", help="list or delete leases")
    ls = lp.add_subparsers(dest="action", required=True)
    p = leaf(ls, "list", "a scope's leases, every page")
    p.add_argument("--scope", required=True, metavar="ID")
    p.add_argument("--state", help="only this state (active, expired, released, ...)")
    p = leaf(ls, "delete", "release an active lease (Remove-DhcpServerv4Lease)")
    p.add_argument("--scope", required=True, metavar="ID")
    p.add_argument("--address", required=True, metavar="IP")

    cp = sub.add_parser("config", help="export or import a running node's whole configuration")
    cs = cp.add_subparsers(dest="action", required=True)
    p = leaf(cs, "export", "the node's configuration document (holds tokens and secrets: keep it private)")
    p.add_argument("--out", metavar="FILE", help="write it here (mode 0600) instead of standard output")
    p = leaf(cs, "import", "apply a document's scopes and server options/policies live")
    p.add_argument("file")
    p.add_argument("--force", action="store_true", help="remove scopes even with active leases")


class UsageError(Exception):
    pass


def _read_json(path):
    try:
        text = sys.stdin.read() if path == "-" else open(path).read()
    except OSError as e:
        raise UsageError("cannot read %s: %s" % (path, e))
    try:
        return json.loads(text)
    except ValueError as e:
        raise UsageError("%s is not JSON: %s" % (path, e))


def _option(name, value=None):
    """(code, hex) from an option name or code and a typed value."""
    from dhcpfo.wire import options as wo
    try:
        if value is None:
            return wo.option_code(int(name) if name.isdigit() else name), None
        code, b = wo.encode_option_value(int(name) if name.isdigit() else name, value)
    except ValueError as e:
        raise UsageError(str(e))
    return code, b.hex()


def _at(args, req):
    if getattr(args, "server", False):
        req["level"] = "server"
    else:
        req["scope"] = args.scope
    return req


def requests(args):
    """The management request(s) for parsed arguments."""
    g, a = args.cmd, args.action
    if g == "scope":
        if a == "show":
            return [{"cmd": "get-scope-config", "scope": args.scope}] if args.scope else [{"cmd": "status"}]
        if a == "add":
            return [{"cmd": "add-scope", "config": _read_json(args.file)}]
        if a == "replace":
            return [{"cmd": "set-scope-config", "scope": args.scope, "config": _read_json(args.file),
                     "force": args.force}]
        if a == "remove":
            return [{"cmd": "remove-scope", "scope": args.scope, "force": args.force}]
        req = {"cmd": "set-scope", "scope": args.scope}
        for k in ("name", "lease_time", "min_lease_time", "max_lease_time", "offer_delay_ms"):
            if getattr(args, k) is not None:
                req[k] = getattr(args, k)
        if args.active is not None:
            req["active"] = args.active == "true"
        if len(req) == 2:
            raise UsageError("scope set: give at least one of --name, --active, --lease-time, "
                             "--min-lease-time, --max-lease-time, --offer-delay-ms")
        return [req]
    if g in ("range", "exclusion"):
        return [{"cmd": "%s-%s" % (a, g), "scope": args.scope, "start": args.start, "end": args.end or args.start}]
    if g == "reservation":
        req = {"cmd": a + "-reservation", "scope": args.scope, "address": args.address}
        if a == "add":
            req["name"] = args.name
            if args.mac:
                req["mac"] = args.mac
            else:
                req["client_id"] = args.client_id
        return [req]
    if g == "option":
        code, value = _option(args.option, getattr(args, "value", None))
        req = _at(args, {"cmd": a + "-option", "code": code})
        if a == "set":
            req["value"] = value
        return [req]
    if g == "policy":
        if a == "add":
            return [_at(args, {"cmd": "add-policy", "policy": _read_json(args.file)})]
        return [_at(args, {"cmd": "remove-policy", "name": args.name})]
    if g == "lease":
        if a == "delete":
            return [{"cmd": "delete-lease", "scope": args.scope, "address": args.address}]
        req = {"cmd": "get-leases", "scope": args.scope}
        if args.state:
            req["state"] = args.state
        return [req]
    if a == "export":
        return [{"cmd": "export-config"}]
    return [{"cmd": "import-config", "config": _read_json(args.file), "force": args.force}]


def _leases(conn, req):
    """Every page of get-leases (the node gives at most a page per request)."""
    rows = []
    offset = 0
    while offset is not None:
        page = conn(dict(req, offset=offset))
        rows.extend(page["leases"])
        offset = page.get("next")
    return {"scope": req["scope"], "leases": rows}


def _print(args, resp):
    g, a = args.cmd, args.action
    if g == "lease" and a == "list":
        head = ["ADDRESS", "STATE", "MAC", "CLIENT ID", "EXPIRES IN"]
        rows = [[r["address"], r["state"], r["mac"] or "", r["client_id"] or "", str(r["expires_in"])]
                for r in resp["leases"]]
        print(_table(head, rows) if rows else "no leases in scope %s" % resp["scope"])
    elif g == "scope" and a == "show" and "scopes" in resp:
        head = ["SCOPE", "NAME", "ACTIVE", "SIZE", "ACTIVE LEASES"]
        rows = [[s["scope"], s["name"], "yes" if s["active"] else "no", str(s["size"]),
                 str(s["bindings"].get("active", 0))] for s in resp["scopes"]]
        print(_table(head, rows))
    elif "config" in resp and (g == "scope" or a == "export"):
        print(json.dumps(resp["config"], indent=2, sort_keys=True))
    else:
        what = resp.get("scope") or resp.get("level") or "node"
        moved = resp.get("moved")
        print("%s %s: done%s" % (g, a, " (%s: addresses moved, bindings kept)" % ", ".join(moved) if moved else "")
              if what == "node" else "%s %s on %s: done" % (g, a, what))


def _table(head, rows):
    rows = [head] + rows
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def run(args, conn):
    """conn(req) -> answer (raising mgmtclient.MgmtError / OSError). Exit
    status: 0 done, 1 refused or unreachable, 2 bad arguments."""
    try:
        reqs = requests(args)
    except UsageError as e:
        print("dhcpfo: %s" % e, file=sys.stderr)
        return 2
    try:
        if args.cmd == "lease" and args.action == "list":
            resp = _leases(conn, reqs[0])
        else:
            resp = conn(reqs[0])
    except (OSError, mgmtclient.MgmtError) as e:
        print("dhcpfo: %s %s refused: %s" % (args.cmd, args.action, e), file=sys.stderr)
        return 1
    if args.cmd == "config" and args.action == "export" and args.out:
        import os
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(resp["config"], f, indent=2, sort_keys=True)
        print("configuration written to %s" % args.out)
        return 0
    if args.json:
        resp.pop("ok", None)
        print(json.dumps(resp, indent=2, sort_keys=True))
    else:
        _print(args, resp)
    return 0
