"""dhcpfo's footprint figures, printed by `make bench` after the rates:
heap bytes per pool address under real MicroPython (a fully leased /22),
and flash bytes written per binding change, compaction included."""

import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(REPO, "firmware"), os.path.join(REPO, "tests")]


def heap_per_address():
    r = subprocess.run(["node", "tests/mp/mprun.mjs", "firmware", "tests/core", "test_lease_heap"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    m = re.search(r"lease table heap: (\d+) B for (\d+) addresses = ([\d.]+) B/address", r.stdout)
    return (int(m.group(1)), int(m.group(2)), float(m.group(3))) if m else None


def flash_per_change(size=1024, turns=12000):
    from host.test_store_file import Rand, lifecycle  # the store test's workload
    from dhcpfo.lease import table as T
    from runtime.store import LeaseStore
    with tempfile.TemporaryDirectory() as d:
        tables = {1: T.LeaseTable(size)}
        s = LeaseStore(d)
        s.load(tables)
        changes = lifecycle(s, tables, 1, Rand(8), turns)
        s.close()
        return s.bytes_written, changes, s.compactions


def main():
    h = heap_per_address()
    if h:
        print("heap (MicroPython %s): %d B for a fully leased /22 of %d addresses = %.2f B/address (target <= 24)"
              % ("1.27 wasm", h[0], h[1], h[2]))
    else:
        print("heap: MicroPython runner unavailable (make npm)")
    written, changes, comp = flash_per_change()
    print("flash: %d B for %d binding changes on a /22 = %.2f B/change, %d compactions included (target <= 32)"
          % (written, changes, written / changes, comp))


if __name__ == "__main__":
    main()
