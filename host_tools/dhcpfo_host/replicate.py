"""Configuration replication (the seed's Invoke-DhcpServerv4FailoverReplication):
copy failover scopes' configuration from this node to its partner.

Per scope, in the seed's order, each part is compared and copied when it
differs: scope properties, IP address ranges and exclusions, option values,
reservations, policies; a progress message per step in the seed's words.
A failure stops that scope and replication goes on with the next; the end
reports which scopes were replicated and which failed. Parts are compared
as the configuration digest compares them (failover/cfgdigest.py): item
order in ranges, exclusions, options and reservations does not count.

Each part is copied by replacing the partner's scope with one whose part is
this node's (set-scope-config): the partner checks it and applies it in one
step, or refuses it whole (a range change that would drop an active lease).
"""
import json

from dhcpfo_host import mgmtclient

PROPERTIES = "Scope properties"
# (part, sections, started, identical, replicated, failed): the seed's messages
STEPS = (
    ("properties", None,
     "Replication of scope properties to failover partner server initiated",
     "Scope properties of scope {scope} are identical to failover partner server.",
     "Properties of scope {scope} are replicated to failover partner server.",
     "Failed to update Scope properties for scope {scope} on partner server {partner}. {error}"),
    ("ranges", ("ranges", "exclusions"),
     "Replication of IP address ranges to failover partner server initiated",
     "IP address range and exclusion IP address ranges of scope {scope} are identical to failover partner server.",
     "IP address range and exclusion IP address ranges of scope {scope} are replicated to failover partner server.",
     "Failed to update IP Address ranges for scope {scope} on partner server {partner}. {error}"),
    ("options", ("options",),
     "Replication of scope option values to failover partner server initiated.",
     "Option values set on scope {scope} are identical to failover partner server",
     "Option values set on scope {scope} are replicated to failover partner server",
     "Failed to update option values for scope {scope} on partner server {partner}. {error}"),
    ("reservations", ("reservations",),
     "Replication of reservations to failover partner server initiated.",
     "Reservations in scope {scope} are identical to failover partner server",
     "Reservations in scope {scope} are replicated to failover partner server",
     "Failed to add or modify reserved IP address {address} on partner server {partner}. {error}"),
    ("policies", ("policies",),
     "Replication of policies to failover partner server initiated.",
     "Policies in scope {scope} are replicated to failover partner server",
     "Policies in scope {scope} are replicated to failover partner server",
     "Failed to copy policies for scope {scope} on partner server {partner}. {error}"),
)
SECTIONS = ("ranges", "exclusions", "options", "reservations", "policies")
UNORDERED = ("ranges", "exclusions", "options", "reservations")


class SelectionError(Exception):
    """The selection names nothing to replicate (a terminating error)."""


def _canon(key, v):
    if key in UNORDERED and isinstance(v, list):
        return sorted(json.dumps(x, sort_keys=True) for x in v)
    return json.dumps(v, sort_keys=True)


def _props(sc):
    return dict((k, v) for k, v in sc.items() if k not in SECTIONS)


def _same(ours, theirs, sections):
    if sections is None:
        return _canon(None, _props(ours)) == _canon(None, _props(theirs))
    return all(_canon(k, ours.get(k) or []) == _canon(k, theirs.get(k) or []) for k in sections)


def _copy_part(ours, theirs, sections):
    new = json.loads(json.dumps(theirs))
    if sections is None:
        for k in list(new):
            if k not in SECTIONS:
                del new[k]
        new.update(_props(ours))
    else:
        for k in sections:
            new[k] = json.loads(json.dumps(ours.get(k) or []))
    return new


def _first_reservation(ours, theirs):
    have = [json.dumps(r, sort_keys=True) for r in theirs.get("reservations") or []]
    for r in ours.get("reservations") or []:
        if json.dumps(r, sort_keys=True) not in have:
            return r.get("address")
    return "(removed reservations)"


def select(rels, scopes=None, names=None):
    """[(relationship, [scope ids])] for --scope / --name / --all (neither),
    plus non-terminating errors. rels: get-failover's relationships."""
    errors = []
    if names:
        out = []
        for n in names:
            r = [x for x in rels if x["name"] == n]
            if r:
                out.append((r[0], list(r[0]["scopes"])))
            else:
                errors.append("no failover relationship named %s" % n)
        return out, errors
    if scopes:
        picked = {}
        order = []
        for sid in scopes:
            r = [x for x in rels if sid in x["scopes"]]
            if not r:
                errors.append("Selected scope %s is not part of any failover relationship" % sid)
                continue
            if r[0]["name"] not in picked:
                picked[r[0]["name"]] = (r[0], [])
                order.append(r[0]["name"])
            picked[r[0]["name"]][1].append(sid)
        return [picked[n] for n in order], errors
    return [(r, list(r["scopes"])) for r in rels], errors


def replicate_scope(this, partner, partner_name, sid, say):
    """One scope, step by step; True when every part reached the partner."""
    say("Starting replication of scope %s to failover partner server %s" % (sid, partner_name))
    try:
        ours = this({"cmd": "get-scope-config", "scope": sid})["config"]
    except (OSError, mgmtclient.MgmtError) as e:
        say("Failed to read Scope properties from this server. %s" % e)
        return False
    try:
        theirs = partner({"cmd": "get-scope-config", "scope": sid})["config"]
    except (OSError, mgmtclient.MgmtError) as e:
        say("Failed to read Scope properties from partner server %s. %s" % (partner_name, e))
        return False
    for part, sections, started, identical, replicated, failed in STEPS:
        say(started)
        if _same(ours, theirs, sections):
            say(identical.format(scope=sid))
            continue
        new = _copy_part(ours, theirs, sections)
        try:
            theirs = partner({"cmd": "set-scope-config", "scope": sid, "config": new})["config"]
        except (OSError, mgmtclient.MgmtError) as e:
            address = _first_reservation(ours, theirs) if part == "reservations" else None
            say(failed.format(scope=sid, partner=partner_name, error=e, address=address))
            return False
        say(replicated.format(scope=sid))
    say("Scope %s was successfully replicated." % sid)
    return True


def run(this, partner_for, scopes=None, names=None, say=print):
    """Replicate the selection. this(req) -> answer; partner_for(relationship)
    -> (partner(req) -> answer, name to show). Returns a dict: replicated,
    failed (scope ids), errors (non-terminating)."""
    rels = this({"cmd": "get-failover"})["relationships"]
    todo, errors = select(rels, scopes, names)
    if not todo and not errors:
        errors.append("this server has no failover relationship")
    done, failed = [], []
    for rel, sids in todo:
        partner, shown = partner_for(rel)
        for sid in sids:
            (done if replicate_scope(this, partner, shown, sid, say) else failed).append(sid)
    return {"replicated": done, "failed": failed, "errors": errors}


CONFIRM = "Replicate the configuration of %s to the failover partner server? [y/N] "


def add_parser(fsub, connection_args):
    """`dhcpfo failover replicate` (under failover_cli's subcommands)."""
    p = fsub.add_parser("replicate", help="copy failover scopes' configuration to the partner "
                                          "(Invoke-DhcpServerv4FailoverReplication)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--scope", action="append", metavar="ID", help="this scope (repeatable)")
    g.add_argument("--name", action="append", help="every scope of this relationship (repeatable)")
    g.add_argument("--all", action="store_true", help="every failover scope (the default)")
    p.add_argument("--partner-tcp", metavar="HOST:PORT",
                   help="the partner's management endpoint (default: its failover address, this node's port)")
    p.add_argument("--partner-token", help="the partner's management token (default: the same as this node's)")
    p.add_argument("--partner-token-file", help="read the partner's token from this file")
    p.add_argument("--partner-role", choices=("administrator", "user"),
                   help="the role of the partner's token (default: the same as --role)")
    p.add_argument("--force", action="store_true", help="do not ask for confirmation")
    connection_args(p)


def main(args, kw):
    """Run `dhcpfo failover replicate` with the connection settings kw
    (cli._node_conn). Exit status: 0 all replicated, 1 a failure or error,
    2 not confirmed or bad arguments."""
    import sys
    what = ("scope(s) " + ", ".join(args.scope) if args.scope else
            "relationship(s) " + ", ".join(args.name) if args.name else "every failover scope")
    if not args.force:
        if not sys.stdin.isatty():
            print("dhcpfo: replication needs confirmation: add --force to confirm without a terminal",
                  file=sys.stderr)
            return 2
        if input(CONFIRM % what).strip().lower() not in ("y", "yes"):
            return 2
    token = kw["partner_token"]
    here = mgmtclient.connect(kw["host"], kw["port"], kw["serial"], kw["token"], kw["role"])
    conns = [here]

    def call(c):
        def send(req):
            resp = c.request(req)
            if not resp.get("ok"):
                raise mgmtclient.MgmtError(resp.get("error", "request failed"))
            return resp
        return send

    def partner_for(rel):
        # partner_server: its host name when given by name (partner is null until resolved)
        shown = rel["partner"] or rel["partner_server"]
        host, port = shown, kw["port"]
        if args.partner_tcp:
            host, _, p = args.partner_tcp.rpartition(":")
            port = int(p)
        try:
            c = mgmtclient.connect(host, port, None, token, args.partner_role or kw["role"])
        except (OSError, mgmtclient.MgmtError) as e:
            err = e

            def unreachable(req):
                raise mgmtclient.MgmtError("cannot reach %s:%d: %s" % (host, port, err))
            return unreachable, shown
        conns.append(c)
        return call(c), shown

    def say(msg):
        print(msg, flush=True)

    try:
        res = run(call(here), partner_for, args.scope, args.name, say if not args.json else (lambda m: None))
    except (OSError, mgmtclient.MgmtError) as e:
        print("dhcpfo: %s" % e, file=sys.stderr)
        return 1
    finally:
        for c in conns:
            c.close()
    if args.json:
        print(json.dumps(res, indent=2, sort_keys=True))
    else:
        if res["replicated"]:
            print("replicated: %s" % ", ".join(res["replicated"]))
        if res["failed"]:
            print("failed: %s" % ", ".join(res["failed"]))
    for e in res["errors"]:
        print("dhcpfo: error: %s" % e, file=sys.stderr)
    return 1 if res["failed"] or res["errors"] else 0
