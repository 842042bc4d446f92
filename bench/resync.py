"""Resync rate: how fast a wiped partner relearns 10,000 bindings by UPDREQALL.

Two real Nodes (the firmware engine) joined by an in-memory link, so the
figure is the engine's own cost (encode, decode, apply, log records, ack)
without TCP. The primary holds N ACTIVE bindings; the secondary starts with
empty storage (RECOVER), sends UPDREQALL, and we time until UPDDONE.

usage: python bench/resync.py [N]
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "firmware"), os.path.join(HERE, "..", "tests", "core")]

from dhcpfo.failover import states as S  # noqa: E402
from dhcpfo.lease import table as lt  # noqa: E402
from pairlink import Pair  # noqa: E402


def main(n=10000):
    last = 10 + n - 1
    hi, lo = last >> 8, last & 255
    p = Pair(first="198.18.0.10", last="198.18.%d.%d" % (hi, lo), now=5000,
             extra={"max_unacked": 100}, mask=16)
    # the scope in pairlink is a /24: widen it for large N
    t = p.a.node.tables[0]
    size = t.size
    for off in range(size):
        mac = bytes([2, 0, (off >> 16) & 255, (off >> 8) & 255, off & 255, 1])
        t.set(off, lt.ACTIVE, 0, mac, None, p.now + 3600, p.now + 3600, p.now)
    t0 = time.perf_counter()
    p.connect()  # handshake, STATE, UPDREQALL, BNDUPD/BNDACK windows, UPDDONE
    rounds = 0
    while p.state(p.b) not in (S.RECOVER_DONE, S.RECOVER_WAIT, S.NORMAL) and rounds < 10 * size:
        p.tick(1)
        rounds += 1
    dt = time.perf_counter() - t0
    tb = p.b.node.tables[0]
    got = tb.count(lt.ACTIVE)
    print("resync: %d bindings in %.2f s = %.0f bindings/s (secondary holds %d ACTIVE, state %s)"
          % (size, dt, size / dt, got, S.name(p.state(p.b))))
    return 0 if got == size else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10000))
