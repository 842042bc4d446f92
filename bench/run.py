"""`make bench`: new-client DORA/s at saturation, measured with Kea's perfdhcp.

Topology (the same for every server): a lab segment with the server host
"srv" 198.18.0.1/16 (a pair adds "srvb" 198.18.0.3/16) and the perfdhcp host
198.18.0.2/16, all in network namespaces this run creates and deletes.
perfdhcp broadcasts from its host and puts its own address in giaddr, so
every server sees the same relayed-looking traffic for 198.18.0.0/16.

For each server:
  1. probe: one fresh start, perfdhcp steps of PROBE_STEP s at doubling
     rates until fewer than 80 % of the offered exchanges complete; the best
     completed rate is the capacity estimate C;
  2. RUNS measured runs, each on a freshly started server with empty lease
     storage: perfdhcp offers 1.1 x C new clients per second for DURATION s
     (1.3 x more after a run the server kept up with); the result is
     perfdhcp's completed 4-way exchanges per second.
The table shows the median of the runs and its ratio to Kea measured in the
same invocation. Read bench/README.md before quoting a number.
"""

import argparse
import glob
import importlib
import json
import os
import statistics
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import refservers  # noqa: E402
from integration.netns import ROOT_REASON, Lab, LabError, have_root, missing_tools, perfdhcp, tail  # noqa: E402

CLIENTS = 16000000      # distinct MACs perfdhcp draws from: repeats stay < 0.2 %
OVERLOAD = 1.1
BUMP = 1.3
SATURATED = 0.8
BASE_TOOLS = ("ip", "perfdhcp")


def load_plugins():
    """Import bench/srv_*.py so that their @register'ed servers join in."""
    for path in sorted(glob.glob(os.path.join(HERE, "srv_*.py"))):
        importlib.import_module(os.path.splitext(os.path.basename(path))[0])


def open_lab(args):
    lab = Lab(keep_files=args.keep, base=args.base)
    lab.open()
    srv = lab.add_host("srv", "%s/%d" % (refservers.SERVER_A, refservers.PREFIX_LEN))
    cli = lab.add_host("perf", "%s/%d" % (refservers.CLIENT, refservers.PREFIX_LEN))
    return lab, srv, cli


def with_server(cls, args, fn):
    """Start a fresh `cls` in a fresh lab, call fn(perf_host), tear all down."""
    lab, srv, cli = open_lab(args)
    server = cls()
    try:
        t0 = time.monotonic()
        server.start(lab, srv)
        startup = time.monotonic() - t0
        return fn(cli), startup
    except Exception:
        for p in server.logs():
            sys.stderr.write("--- %s\n%s\n" % (p, tail(p, 15)))
        raise
    finally:
        try:
            server.stop()
        finally:
            lab.close()


def probe(cls, args, log):
    def ramp(cli):
        best, rate = 0.0, args.probe_start
        for _ in range(args.probe_steps):
            r = perfdhcp(cli, rate=rate, clients=CLIENTS, duration=args.probe_step)
            log("    probe %6d/s -> %8.1f/s (drops %d)" % (rate, r.rate, r.drops))
            best = max(best, r.rate)
            if r.rate < SATURATED * rate:
                break
            rate *= 2
        return best

    best, startup = with_server(cls, args, ramp)
    log("    startup %.1fs, capacity estimate %.0f/s" % (startup, best))
    return best


def measure(cls, args, log):
    """Probe (unless --rate) and RUNS measured runs; returns a result dict."""
    cap = args.rate / OVERLOAD if args.rate else probe(cls, args, log)
    offered = max(50, int(round((args.rate or cap * OVERLOAD))))
    runs = []
    for i in range(args.runs):
        r, startup = with_server(cls, args, lambda cli: perfdhcp(
            cli, rate=offered, clients=CLIENTS, duration=args.duration))
        sat = r.discovers > 0 and r.acks < 0.98 * r.discovers
        log("    run %d: offered %d/s -> %.1f DORA/s, acks %d, drops %d%s (startup %.1fs)"
            % (i + 1, offered, r.rate, r.acks, r.drops, "" if sat else " (not saturated)", startup))
        runs.append({"rate": r.rate, "offered": offered, "acks": r.acks, "discovers": r.discovers,
                     "drops": r.drops, "saturated": sat, "startup": startup})
        if r.acks > 0.9 * refservers.POOL_SIZE:
            log("    warning: run used over 90 % of the pool; lower --duration")
        if not sat and not args.rate:
            # The probe underestimated (noise, warm-up): offer more next time.
            offered = int(offered * BUMP)
    med = statistics.median(x["rate"] for x in runs)
    return {"server": cls.name, "describe": cls.describe, "offered": runs[-1]["offered"],
            "capacity_probe": cap, "median": med, "runs": runs}


def table(results, ref_name="kea", pair_ref_name="kea-ha-pair"):
    """Results with ratios: single servers against Kea, failover pairs
    (name ending in -pair) against the Kea HA pair, both from this run."""
    def find(name):
        return next((r for r in results if r["server"] == name and r.get("median")), None)

    ref, pref = find(ref_name), find(pair_ref_name)
    lines = ["%-18s %13s  %-26s %18s  %s" % ("server", "DORA/s median", "runs", "ratio", "offered/s")]
    lines.append("-" * len(lines[0]))
    for r in results:
        if r.get("error"):
            lines.append("%-18s %13s  %s" % (r["server"], "-", "FAILED: " + r["error"][:60]))
            continue
        runs = " ".join("%.0f%s" % (x["rate"], "" if x["saturated"] else "*") for x in r["runs"])
        pair = r["server"].endswith("-pair")
        base = pref if pair else ref
        label = "vs Kea HA pair" if pair else "vs Kea"
        ratio = ("%.2f %s" % (r["median"] / base["median"], label)) if base else "n/a"
        lines.append("%-18s %13.0f  %-26s %18s  %d" % (r["server"], r["median"], runs, ratio, r["offered"]))
    lines.append("(* = run not saturated: the server kept up with the offered rate, a lower bound)")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--servers", help="comma-separated names (default: all registered); see --list")
    ap.add_argument("--list", action="store_true", help="list registered servers and exit")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=3, help="seconds per measured run (default 3)")
    ap.add_argument("--rate", type=int, help="fixed offered rate for every server (skips the probe)")
    ap.add_argument("--probe-start", type=int, default=500)
    ap.add_argument("--probe-step", type=int, default=1, help="seconds per probe step (default 1)")
    ap.add_argument("--probe-steps", type=int, default=6)
    ap.add_argument("--budget", type=float, default=540.0,
                    help="stop starting new servers after this many seconds (default 540)")
    ap.add_argument("--base", help="directory for lab files/lease storage (default: system temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep lab directories (logs, leases)")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--kea-log", choices=("info", "warn"), default="info",
                    help="Kea log severity: info (as shipped, a line per lease) or warn")
    args = ap.parse_args(argv)

    refservers.KEA_LOG_SEVERITY = args.kea_log.upper()
    load_plugins()
    reg = sorted(refservers.REGISTRY.values(), key=lambda c: (c.order, c.name))
    if args.list:
        for c in reg:
            print("%-18s %s" % (c.name, c.describe))
        return 0
    if not have_root():
        print("bench: " + ROOT_REASON + " (run as root)")
        return 2
    missing = missing_tools(*BASE_TOOLS)
    if missing:
        print("bench: missing tools: %s (make sysdeps installs them)" % " ".join(missing))
        return 2
    if args.servers:
        names = [n.strip() for n in args.servers.split(",") if n.strip()]
        unknown = [n for n in names if n not in refservers.REGISTRY]
        if unknown:
            print("bench: unknown server(s): %s; known: %s" % (", ".join(unknown), ", ".join(c.name for c in reg)))
            return 2
        chosen = [refservers.REGISTRY[n] for n in names]
    else:
        chosen = reg

    def log(msg):
        print(msg, flush=True)

    t_start = time.monotonic()
    load0 = os.getloadavg()
    log("bench: %d server(s), %d run(s) x %ds, pool %d addresses, load avg %.2f"
        % (len(chosen), args.runs, args.duration, refservers.POOL_SIZE, load0[0]))
    results = []
    for cls in chosen:
        if time.monotonic() - t_start > args.budget:
            log("bench: time budget spent; skipping %s" % cls.name)
            results.append({"server": cls.name, "error": "skipped: time budget"})
            continue
        need = getattr(cls, "tools", ())
        miss = missing_tools(*need)
        if miss:
            log("bench: %s needs %s; skipped" % (cls.name, " ".join(miss)))
            results.append({"server": cls.name, "error": "missing " + " ".join(miss)})
            continue
        log("== %s: %s" % (cls.name, cls.describe))
        t0 = time.monotonic()
        try:
            results.append(measure(cls, args, log))
        except (LabError, OSError) as exc:
            traceback.print_exc()
            results.append({"server": cls.name, "error": str(exc).splitlines()[0]})
        log("    (%.0fs)" % (time.monotonic() - t0))
    elapsed = time.monotonic() - t_start
    print()
    print(table(results))
    print("total %.0fs; load average %.2f at start, %.2f at end (2-core machine: other load skews results)"
          % (elapsed, load0[0], os.getloadavg()[0]))
    if not args.servers or "dhcpfo" in (args.servers or ""):
        import footprint
        print()
        footprint.main()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "elapsed": elapsed, "pool": refservers.POOL_SIZE,
                       "duration": args.duration, "overload": OVERLOAD}, f, indent=1)
    return 1 if any(r.get("error") and not r["error"].startswith("skipped") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
