"""make faults: run the real fault suite, print its table, write it as JSON.

    python -m faults.run [--short] [--json FILE] [FAULT ...]

Root only (network namespaces); without root, or without a tool a fault
needs, it says why and exits 0 having run nothing (a skip). Exit 1 when a
fault found a duplicate, a lost lease or a pair that did not recover.
"""

import argparse
import json
import os
import sys
import time

from faults.scenarios import FAULTS, SHORT, faketime_lib, needs, run_fault
from integration.netns import ROOT_REASON, Lab, have_root, missing_tools

COLUMNS = (("fault", "%-10s"), ("leases_served", "%6s"), ("duplicates", "%5s"),
           ("lost_leases", "%5s"), ("time_to_normal_s", "%8s"), ("checked_leases", "%7s"),
           ("perfdhcp_acks", "%6s"), ("ok", "%4s"))
HEAD = ("fault", "served", "dups", "lost", "NORMAL s", "checked", "perf", "ok")


def table(rows):
    """The result table as text lines."""
    lines = [" ".join(fmt % h for (_, fmt), h in zip(COLUMNS, HEAD))]
    for r in rows:
        lines.append(" ".join(fmt % (r.get(k, "-"),) for k, fmt in COLUMNS))
    return lines


def skip_reason(names):
    if not have_root():
        return ROOT_REASON
    miss = sorted(set(t for n in names for t in missing_tools(*needs(n))))
    if miss:
        return "missing tools: " + " ".join(miss) + " (make sysdeps)"
    if any(n.startswith("skew") for n in names) and faketime_lib() is None:
        return "libfaketime missing (Debian package faketime; make sysdeps)"
    return None


def run(names, progress=None):
    rows = []
    for name in names:
        with Lab() as lab:
            row = run_fault(lab, name)
        rows.append(row)
        if progress:
            progress(row)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("faults", nargs="*", help="faults to run (default: all): " + " ".join(FAULTS))
    ap.add_argument("--short", action="store_true", help="the CI subset: " + " ".join(SHORT))
    ap.add_argument("--json", help="write the rows here")
    a = ap.parse_args(argv)
    names = a.faults or list(SHORT if a.short else FAULTS)
    for n in names:
        if n not in FAULTS:
            ap.error("unknown fault %s (known: %s)" % (n, " ".join(FAULTS)))
    why = skip_reason(names)
    if why:
        print("faults: skipped: " + why)
        return 0
    t0 = time.monotonic()

    def progress(row):
        print("faults: %s %s in %.0fs%s" % (row["fault"], "ok" if row.get("ok") else "FAILED",
                                           row["seconds"], "".join("\n    " + d for d in row.get("details", []))),
              flush=True)

    rows = run(names, progress)
    print("\n".join(table(rows)))
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       "seconds": round(time.monotonic() - t0, 1), "rows": rows}, f, indent=1)
        print("faults: wrote " + a.json)
    return 0 if all(r.get("ok") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
