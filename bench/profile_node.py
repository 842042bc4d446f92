"""Profile one dhcpfo node under perfdhcp (cProfile), new then returning clients.

    sudo .venv/bin/python bench/profile_node.py --rate 3000 --duration 5 --top 30

Same lab and configuration as the bench's `dhcpfo` row (bench/srv_dhcpfo.py);
the node runs as `python -m cProfile -o FILE -m dhcpfo_host.cli node ...`,
stops on SIGTERM (a clean exit writes the profile) and the hottest functions
are printed by cumulative and by own time. cProfile slows the node by about
half: read the shares, not the rates.
"""

import argparse
import os
import pstats
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import refservers as R  # noqa: E402
import srv_dhcpfo  # noqa: E402
from integration import nodes  # noqa: E402
from integration.nodes import PYTHON, Node, node_config  # noqa: E402
from run import CLIENTS, open_lab  # noqa: E402
from integration.netns import perfdhcp  # noqa: E402


def cpu(pid):
    """(user, system) CPU seconds of a process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def load():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def report(what, rate, r, user, system, acks):
    """One phase: perfdhcp's view, and the node's CPU per DHCPACK it sent
    (the server's cost per DORA, which the machine's other load moves less
    than the rate; ACKs perfdhcp gave up on count too)."""
    print("%-10s offered %d/s -> %.1f DORA/s (acks %d, drops %d); node sent %d ACKs, CPU per ACK: "
          "user %.0f us, system %.0f us; load %s"
          % (what + ":", rate, r.rate, r.acks, r.drops, acks, 1e6 * user / max(1, acks),
             1e6 * system / max(1, acks), load()))


class ProfiledNode(Node):
    prof_path = None

    def argv(self):
        return [PYTHON, "-m", "cProfile", "-o", self.prof_path, "-m", "dhcpfo_host.cli",
                "node", "--config", self.config_path]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=3000, help="offered exchanges/s")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--out", default="/tmp/dhcpfo-node.prof")
    ap.add_argument("--no-profile", action="store_true", help="run the node plainly (rates only)")
    ap.add_argument("--relay-limit", action="store_true", help="keep the default per-relay rate limit")
    ap.add_argument("--firmware", default=None, help="run another firmware tree (e.g. `git archive` of a base commit)")
    ap.add_argument("--base", default=None)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if args.firmware:
        nodes.FIRMWARE = os.path.abspath(args.firmware)  # Node.start puts it first on the node's path
    lab, srv, cli = open_lab(args)
    try:
        cfg = node_config("bench", R.SERVER_A, [srv_dhcpfo._scope()], lab.path("dhcpfo-a"),
                          **(srv_dhcpfo.SERVER_EXTRA if not args.relay_limit else {}))
        cls = Node if args.no_profile else ProfiledNode
        ProfiledNode.prof_path = args.out
        n = cls(srv, cfg, name="dhcpfo")
        n.start(timeout=60)
        try:
            acks0 = n.counters().get("tx.ack", 0)
            c0 = cpu(n.pid)
            r = perfdhcp(cli, rate=args.rate, clients=CLIENTS, duration=args.duration, extra=["-s", "7"])
            c1 = cpu(n.pid)
            acks1 = n.counters().get("tx.ack", 0)
            report("new", args.rate, r, c1[0] - c0[0], c1[1] - c0[1], acks1 - acks0)
            c1 = cpu(n.pid)
            r2 = perfdhcp(cli, rate=args.rate, clients=CLIENTS, duration=args.duration + 2,
                          num_requests=r.discovers, extra=["-s", "7"])
            c2 = cpu(n.pid)
            report("returning", args.rate, r2, c2[0] - c1[0], c2[1] - c1[1], n.counters().get("tx.ack", 0) - acks1)
            print("counters:", {k: v for k, v in n.counters().items() if v and not k.startswith("restore")})
        finally:
            n.stop(grace=30)
    finally:
        lab.close()
    if not args.no_profile:
        st = pstats.Stats(args.out)
        st.sort_stats("cumulative").print_stats(args.top)
        st.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
