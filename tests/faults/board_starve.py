"""A failover pair of emulated boards on a starved heap: each board's
failover state and memory counters every 10 s (docs/faults.md "What
starves a node"). Root (namespaces); a measurement, not a test.

    PYTHONPATH=firmware:host_tools:tests python -m faults.board_starve 352k 240

Bounded: `seconds` (at most 600) of polling, then both boards killed by PID.
"""

import sys
import time

from integration.board_measure import _boots, board_pair
from integration.netns import Lab


def _row(pair, side):
    try:
        counters = pair.nodes[side].counters()
        return "%s=%s peer.nomem=%s" % (side, pair.state(side), counters.get("peer.nomem", 0))
    except Exception as e:  # a board resetting does not answer: say so, keep polling
        return "%s=? (%s)" % (side, str(e).splitlines()[0][:60])


def main(heap, seconds):
    with Lab() as lab:
        pair = board_pair(lab, heap, mpy=True)
        try:
            for node in pair.nodes.values():
                print("boots:", _boots(node), flush=True)
            t0 = time.monotonic()
            for _ in range(min(seconds, 600) // 10):
                print("%5.0f  %s  %s" % (time.monotonic() - t0, _row(pair, "a"), _row(pair, "b")), flush=True)
                time.sleep(10)  # a sampling period, not a synchronisation
            for side, node in pair.nodes.items():
                stops = [line for line in node.console_text().splitlines() if "FAIL-STOP" in line]
                print("%s: alive %s, %d fail-stops: %s" % (side, node.running(), len(stops), sorted(set(stops))))
        finally:
            for node in pair.nodes.values():
                node.kill()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
