"""`dhcpfo failover ...`: readable subcommands for a running node's failover
relationships, over the management port (the same commands `dhcpfo call`
sends: add-failover, remove-failover, add-failover-scope,
remove-failover-scope, set-failover, get-failover; docs/operations.md).

Each change is made on the node it is sent to; a pair is changed by running
the command against both nodes (the partner's role and addresses mirrored),
or by `configure`/`deconfigure` (dhcpfo_host/wizard.py), which do both.
"""
import json
import re
import sys

from dhcpfo_host import mgmtclient

SECRET_PROMPT = ("The shared secret is stored in the node's configuration file and must be given to the "
                 "partner too. Continue? [y/N] ")


def seconds(text):
    """A time span: 3600, 90s, 30m, 1h, 2d or H:MM:SS (the seed's TimeSpan)."""
    m = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if m:
        return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    m = re.fullmatch(r"(\d+):([0-5]\d):([0-5]\d)", text.strip())
    if m:
        return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3))
    raise ValueError("%r is not a time span (seconds, 30m, 1h, 2d or H:MM:SS)" % text)


def _bool(text):
    t = text.lower()
    if t in ("true", "yes", "1", "on"):
        return True
    if t in ("false", "no", "0", "off"):
        return False
    raise ValueError("%r is not true or false" % text)


def _span(text):
    try:
        return seconds(text)
    except ValueError as e:
        import argparse
        raise argparse.ArgumentTypeError(str(e))


def _flag(text):
    try:
        return _bool(text)
    except ValueError as e:
        import argparse
        raise argparse.ArgumentTypeError(str(e))


def _settings(p, add):
    g = p.add_argument_group("settings (load balance: --load-balance-percent; hot standby: "
                             "--reserve-percent, --server-role)")
    g.add_argument("--load-balance-percent", type=int, metavar="PCT", help="this server's share of clients (0..100)")
    g.add_argument("--reserve-percent", type=int, metavar="PCT", help="addresses kept for the standby (0..100)")
    g.add_argument("--server-role", choices=("active", "standby"), help="this server's hot-standby role")
    g.add_argument("--mclt", type=_span, metavar="SPAN", help="maximum client lead time (default 1h)")
    g.add_argument("--auto-state-transition", type=_flag, metavar="BOOL",
                   help="go to partner-down after the safe period (true/false)")
    g.add_argument("--safe-period", type=_span, metavar="SPAN",
                   help="time in communication-interrupted before partner-down (turns the above on; default 1h)")
    g.add_argument("--shared-secret", metavar="TEXT", help="authenticate failover messages (asks to confirm)")
    if not add:
        g.add_argument("--no-shared-secret", action="store_true", help="remove the secret (no authentication)")
        g.add_argument("--enable-auth", type=_flag, metavar="BOOL", help="false removes the shared secret")
        g.add_argument("--mode", choices=("load-balance", "hot-standby"), help="change the mode")
        g.add_argument("--partner-down", action="store_true",
                       help="declare the partner down (only from communication-interrupted)")
    p.add_argument("--force", action="store_true", help="no confirmation for a shared secret")


def add_parsers(sub, connection_args):
    """The `failover` subcommand and its own subcommands; connection_args(p) adds --host etc."""
    fp = sub.add_parser("failover", help="show and change a running node's failover relationships")
    fsub = fp.add_subparsers(dest="action", required=True)

    p = fsub.add_parser("show", help="relationships with state, partner, settings (Get-DhcpServerv4Failover)")
    p.add_argument("--name", action="append", help="only this relationship (repeatable)")
    connection_args(p)

    p = fsub.add_parser("add", help="create a relationship on this node (Add-DhcpServerv4Failover)")
    p.add_argument("--name", required=True)
    p.add_argument("--partner", required=True, metavar="HOST",
                   help="the partner server's IPv4 address or host name (the node resolves it)")
    p.add_argument("--scope", required=True, action="append", metavar="ID", help="scope id (repeatable)")
    p.add_argument("--secondary", action="store_true",
                   help="this node is the protocol's secondary (default: primary; the partner takes the other)")
    p.add_argument("--local-address", metavar="IP", help="this node's failover address (default: server_id)")
    p.add_argument("--local-port", type=int, metavar="PORT", help="default 647")
    p.add_argument("--partner-port", type=int, metavar="PORT", help="default 647")
    _settings(p, True)
    connection_args(p)

    p = fsub.add_parser("remove", help="delete relationships (Remove-DhcpServerv4Failover)")
    p.add_argument("--name", required=True, action="append", help="relationship name (repeatable)")
    p.add_argument("--force", action="store_true", help="even outside the normal state")
    connection_args(p)

    p = fsub.add_parser("add-scope", help="scopes join a relationship (Add-DhcpServerv4FailoverScope)")
    p.add_argument("--name", required=True)
    p.add_argument("--scope", required=True, action="append", metavar="ID", help="scope id (repeatable)")
    connection_args(p)

    p = fsub.add_parser("remove-scope", help="scopes leave a relationship (Remove-DhcpServerv4FailoverScope)")
    p.add_argument("--name", required=True)
    p.add_argument("--scope", required=True, action="append", metavar="ID", help="scope id (repeatable)")
    p.add_argument("--force", action="store_true", help="even outside the normal state")
    connection_args(p)

    p = fsub.add_parser("set", help="change a relationship's settings (Set-DhcpServerv4Failover)")
    p.add_argument("--name", required=True)
    _settings(p, False)
    connection_args(p)

    _wizard_parsers(fsub, connection_args)


def _partner_args(p):
    g = p.add_argument_group("the partner server (its management endpoint; the token defaults to this node's)")
    g.add_argument("--partner", "--partner-tcp", metavar="HOST[:PORT]",
                   help="host name or address of the partner's management port (default port 6470)")
    g.add_argument("--partner-serial", metavar="PORT", help="the partner board's serial console instead")
    g.add_argument("--partner-token", help="the partner's administrator token")
    g.add_argument("--partner-token-file", help="read the partner's token from this file")
    g.add_argument("--partner-wait", type=_span, default=30, metavar="SPAN",
                   help="after losing the partner, wait this long for it to finish the rollback there (default 30s)")


def _wizard_parsers(fsub, connection_args):
    """`configure` and `deconfigure`: the seed's wizard on both nodes (dhcpfo_host/wizard.py)."""
    p = fsub.add_parser("configure", help="the Configure Failover wizard: checks, then the scopes created on "
                                          "the partner and the relationship on both nodes, rolled back on any "
                                          "failure")
    p.add_argument("--scope", action="append", metavar="ID",
                   help="scope id (repeatable; default: every scope in no relationship, the seed's Select All)")
    p.add_argument("--name", help="relationship name (default: <this node>-<partner>)")
    p.add_argument("--mode", choices=("load-balance", "hot-standby"), help="default load-balance")
    p.add_argument("--secondary", action="store_true", help="this node is the protocol's secondary")
    p.add_argument("--local-address", metavar="IP", help="this node's failover address (default: its server_id)")
    p.add_argument("--partner-address", metavar="IP",
                   help="the partner's failover address (default: the server_id it reports)")
    p.add_argument("--local-port", type=int, metavar="PORT", help="default 647")
    p.add_argument("--partner-port", type=int, metavar="PORT", help="default 647")
    p.add_argument("--no-reuse", action="store_true",
                   help="a new relationship even if one with this partner exists (default: reuse it)")
    p.add_argument("--connect-wait", type=_span, default=60, metavar="SPAN",
                   help="how long the last step waits for the pair to connect (default 60s)")
    _settings(p, True)
    _partner_args(p)
    connection_args(p)

    p = fsub.add_parser("deconfigure", help="Deconfigure Failover: scopes (or the whole relationship) leave it "
                                            "on both nodes and are deleted from the partner, rolled back on any "
                                            "failure")
    p.add_argument("--name", required=True)
    p.add_argument("--scope", action="append", metavar="ID", help="scope id (repeatable; default: all of them)")
    p.add_argument("--force", action="store_true",
                   help="continue when the pair is not in the normal state (this node only)")
    p.add_argument("--shared-secret", metavar="TEXT",
                   help="the relationship's secret, needed to recreate it if a rollback must")
    _partner_args(p)
    connection_args(p)
    from dhcpfo_host import replicate
    replicate.add_parser(fsub, connection_args)


def _confirm_secret(args):
    """The seed's confirmation for a shared secret: asked on a terminal, else --force."""
    if getattr(args, "shared_secret", None) is None or args.force:
        return True
    if not sys.stdin.isatty():
        print("dhcpfo: a shared secret needs confirmation: add --force to confirm without a terminal",
              file=sys.stderr)
        return False
    return input(SECRET_PROMPT).strip().lower() in ("y", "yes")


def request(args):
    """The management request for parsed `dhcpfo failover ...` arguments."""
    a = args.action
    if a == "show":
        return {"cmd": "get-failover"}
    if a == "remove":
        return {"cmd": "remove-failover", "name": args.name, "force": args.force}
    if a in ("add-scope", "remove-scope"):
        req = {"cmd": "add-failover-scope" if a == "add-scope" else "remove-failover-scope",
               "name": args.name, "scopes": args.scope}
        if a == "remove-scope":
            req["force"] = args.force
        return req
    req = {"cmd": "add-failover" if a == "add" else "set-failover", "name": args.name}
    keys = ["load_balance_percent", "reserve_percent", "server_role", "mclt", "auto_state_transition",
            "safe_period", "shared_secret"]
    if a == "add":
        req["partner"] = args.partner
        req["scopes"] = args.scope
        req["role"] = "secondary" if args.secondary else "primary"
        keys += ["local_address", "local_port", "partner_port"]
    else:
        keys += ["enable_auth", "mode"]
        if args.partner_down:
            req["partner_down"] = True
        if args.no_shared_secret:
            req["shared_secret"] = None
    for k in keys:
        v = getattr(args, k)
        if v is not None:
            req[k] = v
    if args.force or "shared_secret" in req and req["shared_secret"] is not None:
        req["force"] = True  # confirmed (asked before sending) or forced
    return req


def _row(r):
    split = ("reserve %s%%" % r.get("reserve_percent") if r.get("mode") == "hot-standby"
             else "%s%% here" % r.get("load_balance_percent"))
    auto = r.get("auto_state_switchover")
    return [r.get("name"), r.get("role"), r.get("mode"), r.get("state"), r.get("partner_state"),
            r.get("partner_server") or r.get("partner"), "up" if r.get("connected") else "down", str(r.get("mclt")), split,
            "%ss" % auto if auto else "off", "yes" if r.get("authentication") else "no",
            ",".join(r.get("scopes") or [])]


HEAD = ["NAME", "ROLE", "MODE", "STATE", "PARTNER STATE", "PARTNER", "LINK", "MCLT", "SPLIT",
        "AUTO PD", "AUTH", "SCOPES"]


def table(rows):
    rows = [HEAD] + rows
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(HEAD))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def run(args, connect):
    """Send the request to the node (connect(req) -> answer dict, raising
    mgmtclient.MgmtError or OSError) and print the result. Exit status: 0 done,
    1 refused or a non-terminating error, 2 not confirmed."""
    if not _confirm_secret(args):
        return 2
    req = request(args)
    try:
        resp = connect(req)
    except (OSError, mgmtclient.MgmtError) as e:
        print("dhcpfo: %s" % e, file=sys.stderr)
        return 1
    errors = list(resp.get("errors") or [])
    if args.action == "show" and args.name:
        rels = dict((r["name"], r) for r in resp["relationships"])
        errors = ["no failover relationship named %s" % n for n in args.name if n not in rels]
        resp["relationships"] = [rels[n] for n in args.name if n in rels]
        resp["errors"] = errors
    if args.json:
        print(json.dumps(resp, indent=2, sort_keys=True))
    elif args.action == "show":
        print(table([_row(r) for r in resp["relationships"]]) if resp["relationships"]
              else "no failover relationships")
    elif args.action == "remove":
        for n in resp.get("removed") or []:
            print("removed %s" % n)
    elif resp.get("relationship"):
        print(table([_row(resp["relationship"])]))
    if resp.get("warning") and not args.json:
        print("dhcpfo: warning: %s" % resp["warning"], file=sys.stderr)
    for e in errors:
        print("dhcpfo: error: %s" % e, file=sys.stderr)
    return 1 if errors else 0
