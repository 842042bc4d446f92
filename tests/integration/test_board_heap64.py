"""The board heap workload on the emulated board (64-bit unix port, hard cap).

The 32-bit peak comes from the wasm runner (tests/mp/mprun.mjs, the same
workload from .mpy); the unix port runs the workload uncapped to measure the
64/32-bit ratio, then again with `-X heapsize` at the 32-bit limit's board
heap scaled by that ratio: it must complete with no MemoryError. A run at a
heap far below the need must hit a MemoryError, so the cap is known to bite.
"""

import shutil

import pytest

from integration import heap64
from integration.emuboards import require_micropython


def test_workload_fits_the_scaled_board_heap():
    require_micropython()
    if shutil.which("node") is None:
        pytest.skip("node (for the wasm MicroPython runner) is not installed")
    import test_board_heap as H

    ratio, free, runs, peak32 = heap64.scaled(H.LIMIT, caps=(100 * 1024,))
    capped, starved = runs
    print("32-bit peak %.1f KB, 64-bit peak %.1f KB, ratio %.3f, capped heap %.1f KB"
          % (peak32 / 1024, free["peak"] / 1024, ratio, capped["heap"] / 1024))
    assert free["complete"], free["error"]
    assert peak32 <= H.LIMIT, (peak32, H.LIMIT)
    assert 1.1 < ratio < 2.0, ratio  # pointers double, bytes do not: anything else is a broken measurement
    assert capped["complete"], capped["error"]
    assert not starved["complete"] and "MemoryError" in starved["error"][1], starved["error"]
