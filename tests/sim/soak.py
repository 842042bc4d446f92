"""Run many simulation seeds and report violations.

    python -m sim.soak 2000              seeds 0..1999 (PYTHONPATH=firmware:tests)
    python -m sim.soak --seed 17 -v      replay one seed with its event trace
    make soak N=2000 | make soak SEED=17

Options: --start S (first seed), --preset ci|soak (soak: bigger pools, more
clients, hours of faults), --same-clock (zero skew between servers, no
clock jumps, every node with a trusted clock: separates time findings from
the rest), --recrash-wiped
(the takeover script also crashes a server recovering from wiped storage:
shows a known engine bug, see tests/sim/test_sim_seeds.py), --trace-lines
N (how much trace to print for a failing seed), --stop-after K (stop after K
failing seeds). Exit status 1 if any seed violated an invariant, or if a
run of COVERAGE_MIN_SEEDS or more seeds never exercised one of them.

At the end it prints, per invariant, how often it was evaluated with its
situation present (Checker.checks: e.g. I12 only when a server that lost
its storage answers, asks or recovers) and in how many seeds.
"""

import os
import sys
import time


def _paths():
    here = os.path.dirname(os.path.abspath(__file__))
    tests = os.path.dirname(here)
    root = os.path.dirname(tests)
    for p in (os.path.join(root, "firmware"), tests):
        if p not in sys.path:
            sys.path.insert(0, p)


_paths()

from sim.faults import Scenario, run_seed  # noqa: E402
from sim.invariants import INVARIANTS  # noqa: E402


def replay_command(seed, preset="ci", same_clock=False):
    extra = ""
    if preset != "ci":
        extra += " --preset %s" % preset
    if same_clock:
        extra += " --same-clock"
    return "make soak SEED=%d   (or: PYTHONPATH=firmware:tests python -m sim.soak --seed %d%s -v)" % (
        seed, seed, extra)


RUN_OVERRIDES = {}  # scenario attributes set from the command line
COVERAGE_MIN_SEEDS = 50  # a run this long must exercise every invariant
SEED_WALL_LIMIT = 60  # seconds: a seed normally takes 0.1 s (ci) to a few seconds (soak)


def run_one(seed, preset="ci", same_clock=False, trace=False):
    """(world, error text or None) for one seed; never raises for a firmware or sim error."""
    kw = dict(RUN_OVERRIDES)
    if same_clock:
        kw.update({"same_clock": True, "allow_jumps": False})
    import signal
    import traceback

    def too_long(signum, frame):
        raise TimeoutError("seed %d ran longer than %d s of wall time (a loop that does not end?)"
                           % (seed, SEED_WALL_LIMIT))

    old = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(SEED_WALL_LIMIT)
    try:
        return run_seed(seed, preset=preset, trace=trace, **kw), None
    except Exception:
        return None, traceback.format_exc()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def describe_failure(seed, w, err, preset="ci", same_clock=False, trace_lines=0):
    lines = ["FAIL seed %d: %s" % (seed, Scenario.from_seed(seed, preset).describe())]
    if err is not None:
        lines.append("  simulation error:")
        lines.extend("    " + x for x in err.rstrip().splitlines())
    else:
        ck = w.checker
        lines.append("  invariants violated: %s" % ", ".join(
            "%s (%s)" % (k, INVARIANTS[k]) for k in ck.kinds()))
        per = {}
        n = 0
        for v in ck.violations:
            if per.get(v.inv, 0) >= 2 or n >= 8:
                continue
            per[v.inv] = per.get(v.inv, 0) + 1
            n += 1
            lines.append("    " + repr(v))
        more = len(ck.violations) - n
        if more > 0:
            lines.append("    ... and %d more" % more)
        if trace_lines and w.trace:
            lines.append("  last %d trace lines before the first violation:" % trace_lines)
            first = ck.violations[0].t / 1000.0 - 1000000
            before = [x for x in w.trace if float(x.split()[0]) <= first + 0.001]
            lines.extend("    " + x for x in before[-trace_lines:])
    lines.append("  replay: " + replay_command(seed, preset, same_clock))
    return "\n".join(lines)


def coverage_report(checks, seeds_with, count):
    """Lines of per-invariant evaluation counts, and the invariants never exercised."""
    keys = sorted(INVARIANTS, key=lambda k: int(k[1:]))
    lines = ["invariant checks (evaluations where the rule's situation arose; seeds exercising it):"]
    for k in keys:
        lines.append("  %-4s %9d  %5d/%d seeds  %s" % (k, checks.get(k, 0), seeds_with.get(k, 0), count,
                                                     INVARIANTS[k]))
    never = [k for k in keys if not checks.get(k)]
    return lines, never


def main(argv):
    args = list(argv)
    preset = "ci"
    same = False
    verbose = False
    seed = None
    start = 0
    count = None
    trace_lines = 30
    stop_after = None
    env_seed = os.environ.get("SEED")
    while args:
        a = args.pop(0)
        if a == "--seed":
            seed = int(args.pop(0))
        elif a == "--start":
            start = int(args.pop(0))
        elif a == "--preset":
            preset = args.pop(0)
        elif a == "--same-clock":
            same = True
        elif a == "--recrash-wiped":
            RUN_OVERRIDES["recrash_wiped"] = True
        elif a in ("-v", "--verbose"):
            verbose = True
        elif a == "--trace-lines":
            trace_lines = int(args.pop(0))
        elif a == "--stop-after":
            stop_after = int(args.pop(0))
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        elif a.isdigit():
            count = int(a)
        else:
            print("unknown argument %r (try --help)" % a, file=sys.stderr)
            return 2
    if seed is None and env_seed:
        seed = int(env_seed)
        verbose = True
    if seed is not None:
        w, err = run_one(seed, preset, same, trace=True)
        print(Scenario.from_seed(seed, preset).describe())
        if verbose and w is not None:
            for line in w.trace:
                print(line)
        if err is not None or not w.checker.ok():
            print(describe_failure(seed, w, err, preset, same, 0))
            return 1
        print("seed %d: ok (%d steps, %s)" % (seed, w.steps, w.stats))
        return 0
    if count is None:
        count = 2000
    t0 = time.time()
    failed = []
    counts = {}
    checks = {}
    seeds_with = {}
    stats = {}
    steps = 0
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, stop)  # `timeout` ends a long soak: counts still print
    s = start
    try:
        for s in range(start, start + count):
            w, err = run_one(s, preset, same)
            if w is not None:
                steps += w.steps
                for k, v in w.stats.items():
                    stats[k] = stats.get(k, 0) + v
                for k, v in w.checker.checks.items():
                    checks[k] = checks.get(k, 0) + v
                    seeds_with[k] = seeds_with.get(k, 0) + 1
            if err is not None or not w.checker.ok():
                failed.append(s)
                kinds = ["error"] if err is not None else w.checker.kinds()
                for k in kinds:
                    counts[k] = counts.get(k, 0) + 1
                if err is not None or len(failed) <= 20:
                    wt = None
                    if err is None:
                        wt, _e = run_one(s, preset, same, trace=True)
                    print(describe_failure(s, wt if wt is not None else w, err, preset, same, trace_lines),
                          flush=True)
                else:
                    print("FAIL seed %d: %s" % (s, ", ".join(kinds)), flush=True)
                if stop_after is not None and len(failed) >= stop_after:
                    count = s - start + 1
                    break
            done = s - start + 1
            if done % 100 == 0:
                el = time.time() - t0
                print("... %d seeds, %d failing, %.1f seeds/s" % (done, len(failed), done / el), flush=True)
    except KeyboardInterrupt:
        count = s - start
        print("interrupted: %d seeds done" % count, flush=True)
    finally:
        signal.signal(signal.SIGTERM, old_term)
    el = time.time() - t0
    print("%d seeds (%d..%d, preset %s%s) in %.1f s: %.1f seeds/s, %.0f steps/s; %d failing" % (
        count, start, start + count - 1, preset, ", same clock" if same else "", el, count / el if el else 0,
        steps / el if el else 0, len(failed)))
    if counts:
        print("failing seeds per invariant: " + ", ".join(
            "%s %d" % (k, counts[k]) for k in sorted(counts, key=lambda x: (len(x), x))))
    print("what the seeds did: " + ", ".join("%s %d" % (k, stats[k]) for k in sorted(stats)))
    lines, never = coverage_report(checks, seeds_with, count)
    print("\n".join(lines))
    if never:
        print("never exercised: %s%s" % (", ".join(never), "" if count >= COVERAGE_MIN_SEEDS else
                                          " (not an error below %d seeds)" % COVERAGE_MIN_SEEDS))
        if count >= COVERAGE_MIN_SEEDS:
            return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
