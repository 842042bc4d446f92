"""The `dhcpfo` command: run a node, talk to a running node, run the demo."""
import argparse
import json
import os
import sys


def _firmware_on_path():
    """Running from a checkout: the firmware package sits beside host_tools."""
    here = os.path.dirname(os.path.abspath(__file__))
    fw = os.path.normpath(os.path.join(here, "..", "..", "firmware"))
    if os.path.isdir(os.path.join(fw, "dhcpfo")) and fw not in sys.path:
        sys.path.insert(0, fw)


def _node_args(p):
    """How to reach a running node: TCP (default) or a board's serial console."""
    p.add_argument("--host", default="127.0.0.1", help="management address (TCP)")
    p.add_argument("--port", type=int, default=6470, help="management port (TCP)")
    p.add_argument("--tcp", metavar="HOST:PORT", help="management endpoint, instead of --host/--port")
    p.add_argument("--serial", metavar="PORT",
                   help="a board's serial console (device or pyserial URL) instead of TCP")
    p.add_argument("--token", default=os.environ.get("DHCPFO_TOKEN"),
                   help="management token (default: $DHCPFO_TOKEN)")
    p.add_argument("--token-file", help="read the management token from this file")
    p.add_argument("--role", default="administrator", choices=("administrator", "user"),
                   help="the role the token belongs to (default: administrator)")


class UsageError(Exception):
    pass


def _node_conn(args):
    """(host, port, token, role, serial) from _node_args' options; UsageError on bad ones."""
    from dhcpfo_host import mgmtclient

    try:
        token = mgmtclient.read_token(args.token, args.token_file)
        # the wizard's and replication's partner: its own token, else this node's
        partner_token = mgmtclient.read_token(getattr(args, "partner_token", None) or token,
                                              getattr(args, "partner_token_file", None), "partner token")
    except mgmtclient.MgmtError as e:
        raise UsageError(str(e))
    host, port = args.host, args.port
    if args.tcp:
        host, _, port_text = args.tcp.rpartition(":")
        try:
            port = int(port_text)
        except ValueError:
            raise UsageError("--tcp wants HOST:PORT, got %r" % args.tcp)
    return dict(host=host, port=port, token=token, role=args.role, serial=args.serial, partner_token=partner_token)


def _counters(args):
    from dhcpfo_host import mgmtclient, prometheus

    try:
        kw = _node_conn(args)
    except UsageError as e:
        print("dhcpfo: %s" % e, file=sys.stderr)
        return 2
    try:
        with mgmtclient.connect(kw["host"], kw["port"], kw["serial"], kw["token"], kw["role"]) as c:
            counters = c.request({"cmd": "get-counters"})
            failover = c.request({"cmd": "get-failover"})
            status = c.request({"cmd": "status"})
    except (OSError, mgmtclient.MgmtError) as e:
        print("dhcpfo: %s" % e, file=sys.stderr)
        return 1
    for resp in (counters, failover, status):
        if not resp.get("ok"):
            print("dhcpfo: %s" % resp.get("error"), file=sys.stderr)
            return 1
    rels = failover.get("relationships", [])
    if args.json:
        print(json.dumps({"node": status.get("name"), "failover": counters.get("failover"),
                          "relationships": dict((r["name"], r.get("performance")) for r in rels),
                          "counters": counters.get("counters")}, indent=2, sort_keys=True))
    elif args.prometheus:
        sys.stdout.write(prometheus.render(status.get("name"), counters.get("counters", {}), rels))
    else:
        names = [r["name"] for r in rels]
        rows = [("counter", "node") + tuple(names)]
        for key in prometheus.FAILOVER:
            rows.append((key, str(counters["failover"].get(key, 0)))
                        + tuple(str(r.get("performance", {}).get(key, "")) for r in rels))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print("  ".join(r[i].ljust(widths[i]) if i == 0 else r[i].rjust(widths[i]) for i in range(len(r))))
    return 0


def main(argv=None):
    _firmware_on_path()
    ap = argparse.ArgumentParser(prog="dhcpfo", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("node", help="run a node on this machine from a JSON config")
    p.add_argument("--config", required=True)
    p.add_argument("--data-dir", help="lease store directory (default: the config's server.data_dir)")
    p.add_argument("--verbose", action="store_true", help="print every event, not only warnings")
    p.add_argument("--check", action="store_true", help="validate the config and exit")
    p.add_argument("--profile", metavar="FILE", default=os.environ.get("DHCPFO_PROFILE"),
                   help="write cProfile statistics to FILE on exit (developers)")

    p = sub.add_parser("demo", help="two emulated boards, built and flashed, fail over and back (make run)")
    p.add_argument("--seconds", type=int, default=0,
                   help="stop this long after the start, once the failover story is over (default: at Ctrl-C)")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--dir", help="an empty folder for the logs, flash and events (default: a new one in /tmp)")
    p.add_argument("--clean", action="store_true", help="remove the folder at the end (default: keep it)")
    p.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)  # the default now
    p.add_argument("--base", default="127.77", help="127.N: the loopback /16 the demo's addresses are in")
    p.add_argument("--heap", default="1M", help="each emulated board's MicroPython heap")

    p = sub.add_parser("call", help="send a management command to a running node")
    _node_args(p)
    p.add_argument("command", help="command name, e.g. status, get-failover, get-leases")
    p.add_argument("args", nargs="*", help="key=value arguments (values parsed as JSON when possible)")

    p = sub.add_parser("counters", help="the seed's failover performance counters of a running node")
    _node_args(p)
    p.add_argument("--prometheus", action="store_true", help="Prometheus text exposition instead of a table")
    p.add_argument("--json", action="store_true", help="the raw answers as JSON")

    p = sub.add_parser("emuboard", add_help=False,
                       help="an emulated board (MicroPython unix port, flash dir, console pty); "
                            "`dhcpfo emuboard --help` for its options")
    p.add_argument("args", nargs=argparse.REMAINDER)

    p = sub.add_parser("check-firmware", help="MicroPython compatibility check of firmware modules")
    p.add_argument("paths", nargs="*", default=["firmware"])

    p = sub.add_parser("build", help="compile firmware + config into a bundle for one board")
    p.add_argument("--board", required=True, help="board name under boards/ or a board.json path")
    p.add_argument("--config", required=True)
    p.add_argument("--out", help="bundle directory (default: build/<board>)")

    p = sub.add_parser("flash", help="deploy a bundle (or --firmware: MicroPython) to a board")
    p.add_argument("--board", required=True)
    p.add_argument("--port", required=True, help="serial device or any pyserial URL")
    p.add_argument("--bundle", help="bundle directory (default: build/<board>)")
    p.add_argument("--firmware", metavar="FILE", help="install MicroPython from a .bin (ESP32) or .uf2 (RP2040)")
    p.add_argument("--drive", help="mounted RP2 bootloader drive (default: searched under /media)")
    p.add_argument("--erase", action="store_true", help="with --firmware on ESP32: erase the whole flash")
    p.add_argument("--root", default="/", help="board folder to deploy into (default: /)")
    p.add_argument("--any-platform", action="store_true", help="accept any sys.platform (emulated boards)")

    p = sub.add_parser("console", help="a serial terminal to a board's REPL (exit: Ctrl-])")
    p.add_argument("--port", required=True, help="serial device or any pyserial URL")
    p.add_argument("--baud", type=int, default=115200)

    from dhcpfo_host import failover_cli

    def failover_connection(p):
        _node_args(p)
        p.add_argument("--json", action="store_true", help="print the node's answer as JSON")

    failover_cli.add_parsers(sub, failover_connection)

    from dhcpfo_host import scope_cli
    scope_cli.add_parsers(sub, failover_connection)

    from dhcpfo_host.migrate import commands as migrate
    migrate.add_parsers(sub)

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["emuboard"]:  # its own parser, options passed through untouched
        from dhcpfo_host import emuboard
        return emuboard.main(argv[1:])
    args = ap.parse_args(argv)
    if args.cmd in ("import", "export"):
        return migrate.run(args)
    if args.cmd == "node":
        from runtime import host
        if args.check:
            cfg = host.load_config(args.config)
            print("config %s is valid: %d scope(s), %d relationship(s)"
                  % (args.config, len(cfg.scopes), len(cfg.failover)))
            return 0
        if args.profile:
            import cProfile
            prof = cProfile.Profile()
            try:
                return prof.runcall(host.run, args.config, args.data_dir, args.verbose)
            finally:
                prof.dump_stats(args.profile.replace("{pid}", str(os.getpid())))
        return host.run(args.config, args.data_dir, args.verbose)
    if args.cmd == "demo":
        from dhcpfo_host import demo
        return demo.main(args.seconds or None, args.clients, args.clean, args.dir, args.base, args.heap)
    if args.cmd == "counters":
        return _counters(args)
    if args.cmd == "failover" or args.cmd in scope_cli.GROUPS:
        from dhcpfo_host import mgmtclient
        try:
            kw = _node_conn(args)
        except UsageError as e:
            print("dhcpfo: %s" % e, file=sys.stderr)
            return 2
        if args.cmd in scope_cli.GROUPS:
            return scope_cli.run(args, lambda req: mgmtclient.call(kw["host"], kw["port"], req, token=kw["token"],
                                                                   role=kw["role"], serial=kw["serial"]))
        if args.action in ("configure", "deconfigure"):
            from dhcpfo_host import wizard
            return wizard.main(args, kw)
        if args.action == "replicate":
            from dhcpfo_host import replicate
            return replicate.main(args, kw)
        return failover_cli.run(args, lambda req: mgmtclient.call(kw["host"], kw["port"], req, token=kw["token"],
                                                                  role=kw["role"], serial=kw["serial"]))
    if args.cmd == "call":
        from dhcpfo_host import mgmtclient
        req = {"cmd": args.command}
        try:
            kw = _node_conn(args)
        except UsageError as e:
            print("dhcpfo: %s" % e, file=sys.stderr)
            return 2
        for kv in args.args:
            if "=" not in kv:
                print("dhcpfo: argument %r is not key=value" % kv, file=sys.stderr)
                return 2
            k, v = kv.split("=", 1)
            try:
                req[k] = json.loads(v)
            except ValueError:
                req[k] = v
        try:
            resp = mgmtclient.call(kw["host"], kw["port"], req, token=kw["token"], role=kw["role"],
                                   serial=kw["serial"])
        except (OSError, mgmtclient.MgmtError) as e:
            print("dhcpfo: %s" % e, file=sys.stderr)
            return 1
        print(json.dumps(resp, indent=2, sort_keys=True))
        return 0
    if args.cmd == "build":
        from dhcpfo_host import build
        return build.main(args.board, args.config, args.out)
    if args.cmd == "flash":
        from dhcpfo_host import flash
        return flash.main(args.board, args.port, args.bundle, args.firmware, args.drive, args.erase,
                          args.root, args.any_platform)
    if args.cmd == "console":
        from dhcpfo_host import console
        return console.main(args.port, args.baud)
    if args.cmd == "check-firmware":
        from dhcpfo_host import fwcheck
        return fwcheck.main(args.paths)
    return 2


if __name__ == "__main__":
    sys.exit(main())
