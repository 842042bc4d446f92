"""Failover takeover timings of a dhcpfo pair with real clients (root only).

Uses the lab pair of tests/integration/pair.py (primary a, secondary b,
load balance 50 %, failover link on its own segment) and measures, over
ROUNDS rounds of a fresh pair:

  * acquire_normal:  DISCOVER-to-lease of a client served by its hash owner;
  * hung_partner:    the same for a client of a SIGSTOPped secondary (served
                     by the primary once the client's `secs` reaches
                     load_balance_max_seconds);
  * ci_after_kill:   SIGKILL of the secondary until the primary reports
                     COMMUNICATIONS-INTERRUPTED;
  * takeover:        DISCOVER-to-lease of new clients of the dead secondary;
  * normal_after_restart: restart of the secondary until both are NORMAL;
  * partition_detect / normal_after_heal: failover link cut until both are
                     COMMUNICATIONS-INTERRUPTED, and from the heal to NORMAL.

Times from client start to the hook script's record of the lease, so they
include process start-up of the client (a few ms for udhcpc, ~20 ms for
dhclient). Prints one JSON object: per measure the median, min, max and n.

    sudo .venv/bin/python bench/takeover.py [--rounds 3] [--clients 5]
"""

import argparse
import json
import os
import signal
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
for p in (os.path.join(REPO, "tests"), os.path.join(REPO, "firmware")):
    if p not in sys.path:
        sys.path.insert(0, p)

from integration.netns import ROOT_REASON, Lab, have_root, missing_tools  # noqa: E402
from integration.pair import SIDS, Pair  # noqa: E402

KINDS = ("dhclient", "udhcpc")


def one_round(samples, clients, mclt, receive_timer):
    def add(name, value):
        samples.setdefault(name, []).append(value)

    with Lab() as lab:
        p = Pair(lab, mclt=mclt, max_response_delay=receive_timer)
        add("first_normal_s", p.start())
        time.sleep(1.5)  # first pool balance
        for kind in KINDS:
            for side in ("a", "b"):
                lease, dt = p.timed_acquire(p.client(kind, side))
                if lease.server_id != SIDS[side]:
                    raise RuntimeError("hash owner did not answer: %r" % lease)
                add("acquire_normal_%s_s" % kind, dt)
        for kind in KINDS:
            os.kill(p.b.pid, signal.SIGSTOP)
            try:
                lease, dt = p.timed_acquire(p.client(kind, "b"), 15)
            finally:
                os.kill(p.b.pid, signal.SIGCONT)
            add("hung_partner_%s_s" % kind, dt)
            p.wait_states({"a": "normal", "b": "normal"}, 20)
        time.sleep(1.5)  # lazy updates out
        t0 = time.monotonic()
        p.b.kill()
        p.wait_states({"a": "communications-interrupted"}, 5, interval=0.02)
        add("ci_after_kill_s", time.monotonic() - t0)
        for i in range(clients):
            for kind in KINDS:
                lease, dt = p.timed_acquire(p.client(kind, "b"))
                if lease.server_id != SIDS["a"]:
                    raise RuntimeError("takeover by the wrong server: %r" % lease)
                add("takeover_%s_s" % kind, dt)
        t0 = time.monotonic()
        p.b.start()
        p.wait_states({"a": "normal", "b": "normal"}, 30)
        add("normal_after_restart_s", time.monotonic() - t0)
        p.wait_synced(15)
        t0 = time.monotonic()
        lab.link_down(p.hosts["a"], "eth1")
        p.wait_states({"a": "communications-interrupted", "b": "communications-interrupted"},
                      receive_timer + 10, interval=0.2)
        add("partition_detect_s", time.monotonic() - t0)
        t0 = time.monotonic()
        lab.link_up(p.hosts["a"], "eth1")
        p.wait_states({"a": "normal", "b": "normal"}, 90, interval=0.2)
        add("normal_after_heal_s", time.monotonic() - t0)
        dup = p.duplicates()
        if dup:
            raise RuntimeError("address held twice: %s" % dup)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=5, help="takeover clients per kind and round")
    ap.add_argument("--mclt", type=int, default=20)
    ap.add_argument("--receive-timer", type=int, default=8)
    args = ap.parse_args(argv)
    if not have_root():
        print("bench/takeover.py: " + ROOT_REASON, file=sys.stderr)
        return 2
    miss = missing_tools("ip", "dhclient", "busybox")
    if miss:
        print("bench/takeover.py: missing tools: " + " ".join(miss), file=sys.stderr)
        return 2
    samples = {}
    for _ in range(args.rounds):
        one_round(samples, args.clients, args.mclt, args.receive_timer)
    out = {}
    for name, xs in sorted(samples.items()):
        out[name] = {"median": round(statistics.median(xs), 3), "min": round(min(xs), 3),
                     "max": round(max(xs), 3), "n": len(xs)}
    print(json.dumps(out, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
