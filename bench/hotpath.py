"""The per-packet cost of one node, in-process: perfdhcp-like DORA exchanges
fed straight into the firmware, no sockets, no namespaces.

    .venv/bin/python bench/hotpath.py [--clients 20000] [--batch 64] [--profile]

A real Node with a real LeaseStore (fsync per batch, as runtime/aio.py's
group commit does) and the real NodeRunner.flush; only the UDP socket is a
counter. Clients look like perfdhcp's (relayed, no client identifier,
parameter request list). Prints microseconds per message for new clients'
DISCOVER and REQUEST and for the same clients returning. The figure is the
CPU cost the event loop pays per packet on top of the kernel's recv/sendto.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# --firmware DIR measures another tree (e.g. `git archive` of a base commit) with this harness
_fw = sys.argv[sys.argv.index("--firmware") + 1] if "--firmware" in sys.argv else os.path.join(ROOT, "firmware")
sys.path[:0] = [_fw, os.path.join(ROOT, "host_tools")]

from dhcpfo.wire import dhcp as wire  # noqa: E402
from runtime import host  # noqa: E402
from runtime.aio import NodeRunner  # noqa: E402

GIADDR = bytes([198, 18, 0, 2])
SERVER_ID = bytes([198, 18, 0, 1])
PRL = bytes([1, 28, 2, 3, 15, 6, 12])


class CountingUdp:
    """Stands in for runtime.udp.UdpEndpoint: keeps the last reply per chaddr."""

    def __init__(self):
        self.sent = 0
        self.last = None

    def sendto(self, payload, ip, port):
        self.sent += 1
        self.last.append(payload)
        return True

    def close(self):
        pass


def config(data_dir):
    return {"server": {"name": "hot", "server_id": "198.18.0.1", "data_dir": data_dir,
                       "listen": {"address": "0.0.0.0", "port": 67}, "abuse": {"relay_rate": 0}},
            "scopes": [{"id": "198.18.0.0", "mask": 16, "lease_time": 3600,
                        "ranges": [{"start": "198.18.1.0", "end": "198.18.255.254"}]}]}


def mac(i):
    return bytes([0x02, 0x10, (i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255])


def discover(i):
    o = wire.new_options()
    o[wire.OPT_MSG_TYPE] = bytes([wire.DISCOVER])
    o[wire.OPT_PARAM_REQUEST] = PRL
    return wire.encode(wire.Packet(xid=i, giaddr=GIADDR, chaddr=mac(i), options=o))


def request(i, yiaddr):
    o = wire.new_options()
    o[wire.OPT_MSG_TYPE] = bytes([wire.REQUEST])
    o[wire.OPT_SERVER_ID] = SERVER_ID
    o[wire.OPT_REQUESTED_IP] = yiaddr
    o[wire.OPT_PARAM_REQUEST] = PRL
    return wire.encode(wire.Packet(xid=i, giaddr=GIADDR, chaddr=mac(i), options=o))


def turn(runner, udp, datagrams):
    """One loop turn: the batch into the core, then flush (commit, then send)."""
    udp.last = []
    runner.node.handle_dhcp_batch(datagrams, SERVER_ID, runner.clock.now())
    runner.flush()
    return udp.last


def dora(runner, udp, n, batch):
    """n clients, `batch` at a time: a turn of their DISCOVERs, then a turn
    of their REQUESTs (as perfdhcp's steady state interleaves them).
    Returns seconds spent in DISCOVER turns and in REQUEST turns."""
    td = tr = 0.0
    clock = time.process_time  # CPU seconds: the machine is shared
    for k in range(0, n, batch):
        ids = range(k, min(n, k + batch))
        disc = [discover(i) for i in ids]
        t0 = clock()
        offers = turn(runner, udp, disc)
        td += clock() - t0
        if len(offers) != len(disc):
            raise SystemExit("expected %d OFFERs, got %d" % (len(disc), len(offers)))
        reqs = [request(i, wire.decode(o).yiaddr) for i, o in zip(ids, offers)]
        t0 = clock()
        acks = turn(runner, udp, reqs)
        tr += clock() - t0
        if len(acks) != len(reqs) or wire.decode(acks[0]).msg_type != wire.ACK:
            raise SystemExit("expected %d ACKs" % len(reqs))
    return td, tr


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=64, help="datagrams per loop turn (one commit each)")
    ap.add_argument("--profile", action="store_true", help="cProfile the phases, print the top 25")
    ap.add_argument("--firmware", default=None, help="firmware tree to measure (default: this checkout's)")
    ap.add_argument("--base", default=None, help="directory for the lease store (default: system temp)")
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="dhcpfo-hot.", dir=args.base)
    try:
        path = os.path.join(d, "cfg.json")
        with open(path, "w") as f:
            json.dump(config(os.path.join(d, "data")), f)
        doc, cfg = host.load_document(path)
        node, store, clock = host.build(cfg, doc=doc)
        udp = CountingUdp()
        runner = NodeRunner(node, store, clock, udp, SERVER_ID)
        node.start(clock.now())
        runner.flush()
        prof = None
        if args.profile:
            import cProfile
            prof = cProfile.Profile()
            prof.enable()
        n = args.clients
        td, tr = dora(runner, udp, n, args.batch)
        rd, rr = dora(runner, udp, n, args.batch)  # the same MACs: each finds its lease
        if prof is not None:
            prof.disable()
        us = 1e6 / n
        print("new:       DISCOVER %5.1f us  REQUEST %5.1f us  DORA %6.0f/s" % (td * us, tr * us, n / (td + tr)))
        print("returning: DISCOVER %5.1f us  REQUEST %5.1f us  DORA %6.0f/s" % (rd * us, rr * us, n / (rd + rr)))
        print("commits %d, replies %d" % (runner.stats_turns, udp.sent), flush=True)
        if prof is not None:
            import pstats
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        store.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
