"""The `dhcpfo import ...` and `dhcpfo export ...` subcommands.

Exit status: 0 done (unmapped constructs are listed, not fatal), 1 the
result would not be a valid dhcpfo configuration, 2 unreadable or
syntactically bad input, 3 an internal error. Errors never end in a
traceback.
"""

from dhcpfo_host import boardconf
import json
import sys


def add_parsers(sub):
    p = sub.add_parser("import", help="migrate another server's configuration and leases in")
    isub = p.add_subparsers(dest="source", required=True)
    q = isub.add_parser("isc", help="ISC dhcpd: dhcpd.conf [dhcpd.leases] -> dhcpfo.json + lease store")
    q.add_argument("conf", help="dhcpd.conf")
    q.add_argument("leases", nargs="?", help="dhcpd.leases (optional)")
    q.add_argument("--out", required=True, help="directory for dhcpfo.json, data/ and report.json")
    q.add_argument("--server-id", help="this server's address (default: the failover peer's address, "
                                       "server-identifier, or the first subnet's router)")
    q.add_argument("--name", help="server.name of the new node")
    q.add_argument("--no-failover", action="store_true",
                   help="serve the scopes alone: leave failover peers out")
    q.add_argument("--json", action="store_true", help="print the report as JSON")

    p = sub.add_parser("export", help="migrate our configuration and leases out")
    esub = p.add_subparsers(dest="target", required=True)
    for name, what in (("isc", "ISC dhcpd 4.4: dhcpd.conf + dhcpd.leases"),
                       ("kea", "Kea kea-dhcp4: kea-dhcp4.json + memfile kea-leases4.csv")):
        q = esub.add_parser(name, help=what)
        q.add_argument("--config", required=True, help="our JSON configuration")
        q.add_argument("--leases", help="lease store directory (default: the config's data_dir)")
        q.add_argument("--out", required=True, help="output directory")
        q.add_argument("--json", action="store_true", help="print the report as JSON")
        if name == "kea":
            q.add_argument("--interface", action="append",
                           help="interfaces-config entry (repeatable; default '*')")


def _err(msg):
    print("dhcpfo: " + msg, file=sys.stderr)


def run(args):
    from dhcpfo import config as cfgmod
    from dhcpfo_host.migrate.iscsyntax import IscSyntaxError

    try:
        if args.cmd == "import":
            return _import(args)
        return _export(args)
    except IscSyntaxError as e:
        _err(str(e))
        return 2
    except cfgmod.ConfigError as e:
        _err("the result is not a valid dhcpfo configuration:")
        for line in e.errors:
            print("  " + line, file=sys.stderr)
        return 1
    except OSError as e:
        _err("%s: %s" % (getattr(e, "filename", "") or "I/O", e.strerror or e))
        return 2
    except Exception as e:  # a bug here must still end in a message, not a traceback
        _err("internal error while migrating (%s: %s); please report it with the input file"
             % (type(e).__name__, e))
        return 3


def _import(args):
    from dhcpfo_host.migrate import isc_import as ii
    from dhcpfo.wire.options import ip_or_none

    sid = None
    if args.server_id:
        sid = ip_or_none(args.server_id)
        if sid is None:
            _err("--server-id: not an IPv4 address: %s" % args.server_id)
            return 2
    try:
        doc, report, summary = ii.run_import(args.conf, args.leases, args.out, sid, args.name,
                                             not args.no_failover)
    except ii.IscImportError as e:
        _err(str(e))
        return 1
    if args.json:
        print(json.dumps({"summary": summary, "items": report.items, "counts": report.counts},
                         indent=1, sort_keys=True))
    else:
        print("imported %(scopes)d scope(s), %(reservations)d reservation(s), %(policies)d "
              "policies, %(relationships)d relationship(s), %(leases)d lease(s)" % summary)
        print("wrote %s/dhcpfo.json, %s/data/ (lease store), %s/report.json" % ((args.out,) * 3))
        sys.stdout.write(report.as_text())
    return 0


def _export(args):
    from dhcpfo import config as cfgmod
    from dhcpfo_host.migrate import export_isc, export_kea

    leases = args.leases
    if leases is None:
        with open(args.config) as f:
            leases = boardconf.load_text(f.read()).server.data_dir
    if args.target == "isc":
        report, summary = export_isc.run_export(args.config, leases, args.out)
        files = "dhcpd.conf, dhcpd.leases"
    else:
        report, summary = export_kea.run_export(args.config, leases, args.out,
                                                args.interface or ("*",))
        files = "kea-dhcp4.json, kea-leases4.csv"
    if args.json:
        print(json.dumps({"summary": summary, "items": report.items, "counts": report.counts},
                         indent=1, sort_keys=True))
    else:
        print("exported %d scope(s), %d lease(s) to %s (%s)" % (summary["scopes"],
                                                              summary["leases_written"], args.out, files))
        sys.stdout.write(report.as_text())
    return 0
