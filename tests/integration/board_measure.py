"""Measurements of the firmware on the emulated board (root, namespaces).

    python -m integration.board_measure heap     # smallest -X heapsize: /24 node serves, pair reaches NORMAL
    python -m integration.board_measure heap mpy # the same with the firmware compiled to .mpy
    python -m integration.board_measure dora     # DORA/s: emulated board vs the CPython node

Run from the repository with PYTHONPATH=firmware:host_tools:tests. Sources
are deployed as .py (compiled on the board's heap at boot) unless `mpy`.
"""

MPY = False

import json
import os
import re
import sys
import time

from integration.emuboards import BoardNode
from integration.netns import Lab, LabError
from integration.nodes import PYTHON, Node, node_config, relationship, scope

HERE = os.path.dirname(os.path.abspath(__file__))
LOADCLIENT = os.path.join(HERE, "loadclient.py")
SERVER = "198.18.0.1"


def _single_config(data_dir, pool=("198.18.0.10", "198.18.0.250"), mask=24, network="198.18.0.0"):
    cfg = node_config("m1", SERVER, [scope(network, pool[0], pool[1], mask=mask, lease_time=3600)], data_dir)
    del cfg["server"]["listen"]["interface"]
    return cfg


def _boots(board, timeout=120):
    """True once the node is up, False if the console shows a MemoryError first."""
    try:
        board.proc = None
        offset = board.log_size()
        board.start(timeout)
        return "MemoryError" not in board.console_text(offset)
    except (LabError, AssertionError) as e:
        print("   not up: %s" % str(e).splitlines()[0][:200])
        return False


def _load(lab, host, count, seconds, window=16):
    out = lab.path("load.%d.jsonl" % time.monotonic_ns())
    host.exec([PYTHON, LOADCLIENT, "--iface", "eth0", "--count", count, "--out", out, "--window", window,
               "--retry", 1.0, "--seconds", seconds], timeout=seconds + 30)
    done = None
    with open(out) as f:
        for line in f:
            rec = json.loads(line)
            if rec["ev"] == "done":
                done = rec
    return done


def single_serves(heap, count=200):
    with Lab() as lab:
        srv = lab.add_host("srv", SERVER + "/24")
        srv.ip("route", "add", "default", "dev", "eth0")
        board = BoardNode(srv, _single_config("data"), heap=heap, mpy=MPY)
        try:
            if not _boots(board):
                return False, "no boot"
            done = _load(lab, lab.add_host("cl"), count, 120)
            alive = board.running() and "MemoryError" not in board.console_text()
            return done["bound"] == count and alive, done
        finally:
            board.kill()


def board_pair(lab, heap, mpy=MPY):
    """The lab pair (integration/pair.py) with both nodes emulated boards at `heap`:
    their flash holds the lease store, broadcasts leave by the default route."""
    from integration.pair import Pair
    p = Pair(lab, mclt=60, lease_time=600, max_response_delay=15)
    for side in ("a", "b"):
        cfg = p.nodes[side].config
        cfg["server"]["data_dir"] = "data"
        del cfg["server"]["listen"]["interface"]
        p.hosts[side].ip("route", "add", "default", "dev", "eth0")
        p.nodes[side] = BoardNode(p.hosts[side], cfg, heap=heap, name="board-" + side, mpy=mpy)
    return p


def pair_normal(heap):
    with Lab() as lab:
        p = board_pair(lab, heap)
        try:
            for n in p.nodes.values():
                if not _boots(n):
                    return False, "no boot"
            try:
                p.wait_states({"a": "normal", "b": "normal"}, 120)
            except LabError as e:
                return False, str(e).splitlines()[0]
            c = p.client("udhcpc", "b")
            lease = c.acquire(60)
            ok = all("MemoryError" not in n.console_text() for n in p.nodes.values())
            return ok, lease.server_id
        finally:
            for n in p.nodes.values():
                n.kill()


def smallest(test, lo, hi, step=8):
    """Smallest heap in KB (multiple of `step`) with test(heap) ok, by bisection in [lo, hi]."""
    ok_hi, info = test("%dk" % hi)
    print("  %dk -> %s %s" % (hi, ok_hi, info), flush=True)
    if not ok_hi:
        return None
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        ok, info = test("%dk" % mid)
        print("  %dk -> %s %s" % (mid, ok, info), flush=True)
        if ok:
            hi = mid
        else:
            lo = mid
    return hi


def dora(count=2000):
    pool = ("198.18.0.100", "198.18.15.250")
    results = {}
    for kind in ("board", "cpython"):
        with Lab() as lab:
            srv = lab.add_host("srv", SERVER + "/20")
            srv.ip("route", "add", "default", "dev", "eth0")
            if kind == "board":
                node = BoardNode(srv, _single_config("data", pool, 20), heap="2M")
            else:
                node = Node(srv, node_config("m1", SERVER, [scope("198.18.0.0", pool[0], pool[1], mask=20,
                                                                  lease_time=3600)], lab.path("data")))
            node.start(120)
            try:
                done = _load(lab, lab.add_host("cl"), count, 120, window=64)
            finally:
                node.kill()
            results[kind] = {"bound": done["bound"], "seconds": done["seconds"],
                             "dora_per_s": round(done["bound"] / done["seconds"], 1)}
            print(kind, results[kind], flush=True)
    return results


def main(argv):
    global MPY
    what = argv[1] if len(argv) > 1 else "heap"
    MPY = argv[2:3] == ["mpy"]
    if what == "heap":
        s = smallest(single_serves, 32, 1024)
        print("single /24 node serving 200 clients: smallest heap %sk" % s, flush=True)
        p = smallest(pair_normal, 32, 1024)
        print("pair to NORMAL + one client: smallest heap %sk" % p, flush=True)
    elif what == "dora":
        print(json.dumps(dora(), indent=1))
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
