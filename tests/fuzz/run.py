"""Run the fuzz targets for a bounded time each (`make fuzz`).

    python -m fuzz.run [--seconds N] [--engine auto|atheris|random] [target ...]

Engines: atheris (coverage-guided libFuzzer, one child process per target,
firmware modules instrumented) when it imports, else a seeded random
mutation loop over the same seeds. Either way a failing input is written to
tests/fuzz/regressions/<target>/ and replayed by pytest from then on
(tests/fuzz/test_fuzz_quick.py). Per input: at most HANG_SECONDS (a hang is
a failure); the atheris child also runs under an RSS limit.

Prints one line per target: inputs run, failures, and where they went.
Exit status 1 if any target failed.
"""

import os
import random
import re
import signal
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(ROOT, "build", "fuzz-corpus")
MAX_SECONDS = 3600  # per target: `make fuzz` stays bounded whatever FUZZ_SECONDS says
HANG_SECONDS = 10
RSS_LIMIT_MB = 1024


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang("input ran over %d s" % HANG_SECONDS)


def run_random(name, seconds, seed=0):
    """Seeded mutation loop: 1 in 5 inputs random bytes, the rest mutated seeds."""
    from fuzz import targets as T
    t = T.TARGETS[name]
    rnd = random.Random(seed)
    seeds = t.seeds()
    pool = list(seeds) + [d for _, d in T.regression_inputs(name)]
    failures = {}
    n = 0
    end = time.monotonic() + seconds
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        while time.monotonic() < end:
            if rnd.random() < 0.2:
                data = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 300)))
            else:
                data = T.mutate(rnd.choice(pool), rnd, t.max_len, t.header)
            n += 1
            signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
            try:
                t.run(data)
            except Exception as e:
                tb = traceback.extract_tb(e.__traceback__)[-1]
                where = (type(e).__name__, os.path.basename(tb.filename), tb.lineno)
                if where not in failures:
                    failures[where] = T.save_regression(name, data)
                    print("  %s: %s at %s:%d: %s" % (name, where[0], where[1], where[2], str(e)[:120]))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, old)
    return n, len(failures)


def child_atheris(name, args):
    """Inside the child: instrument the firmware, then hand over to libFuzzer."""
    import atheris
    from fuzz import targets as T
    for mod in list(sys.modules.values()):  # the firmware only: coverage of the code under test
        if getattr(mod, "__name__", "").startswith("dhcpfo"):
            for v in list(vars(mod).values()):
                _instrument(atheris, v, mod.__name__)
    t = T.TARGETS[name]

    def one(data):
        t.run(bytes(data))

    atheris.Setup([sys.argv[0]] + args, one)
    atheris.Fuzz()


def _instrument(atheris, v, modname):
    """Instrument a firmware function, or every method of a firmware class."""
    if isinstance(v, type) and v.__module__ == modname:
        for k, m in list(vars(v).items()):
            if callable(m) and hasattr(m, "__code__"):
                setattr(v, k, atheris.instrument_func(m))
    elif callable(v) and hasattr(v, "__code__") and v.__module__ == modname:
        atheris.instrument_func(v)


def run_atheris(name, seconds):
    from fuzz import targets as T
    t = T.TARGETS[name]
    corpus = os.path.join(CORPUS, name)
    os.makedirs(corpus, exist_ok=True)
    for i, s in enumerate(t.seeds()):
        with open(os.path.join(corpus, "seed-%d" % i), "wb") as f:
            f.write(s)
    for fn, data in T.regression_inputs(name):
        with open(os.path.join(corpus, "regression-" + fn), "wb") as f:
            f.write(data)
    out = os.path.join(T.REGRESSIONS, name)
    os.makedirs(out, exist_ok=True)
    args = ["-max_total_time=%d" % seconds, "-timeout=%d" % HANG_SECONDS, "-rss_limit_mb=%d" % RSS_LIMIT_MB,
            "-max_len=%d" % t.max_len, "-artifact_prefix=%s/" % out, "-print_final_stats=1", corpus]
    env = dict(os.environ)
    p = subprocess.run([sys.executable, "-m", "fuzz.run", "--child", name] + args, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=seconds + 120)
    text = p.stdout.decode("utf-8", "replace")
    m = re.search(r"Done (\d+) runs", text) or re.search(r"stat::number_of_executed_units:\s*(\d+)", text)
    runs = int(m.group(1)) if m else 0
    if p.returncode != 0:
        tail = "\n".join(text.splitlines()[-40:])
        print("  %s: libFuzzer exit %d\n%s" % (name, p.returncode, tail))
        return runs, 1
    return runs, 0


def main(argv):
    from fuzz import targets as T
    seconds = int(os.environ.get("FUZZ_SECONDS", "60"))
    engine = os.environ.get("FUZZ_ENGINE", "auto")
    names = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--child":
            child_atheris(argv[i + 1], argv[i + 2:])
            return 0
        if a == "--seconds":
            seconds = int(argv[i + 1])
            i += 1
        elif a == "--engine":
            engine = argv[i + 1]
            i += 1
        else:
            names.append(a)
        i += 1
    seconds = max(1, min(seconds, MAX_SECONDS))
    for n in names:
        if n not in T.TARGETS:
            print("unknown target %r; targets: %s" % (n, ", ".join(T.TARGETS)))
            return 2
    if engine == "auto":
        try:
            import atheris  # noqa: F401
            engine = "atheris"
        except ImportError:
            engine = "random"
    total_fail = 0
    for n in names or list(T.TARGETS):
        t0 = time.monotonic()
        runs, fails = (run_atheris if engine == "atheris" else run_random)(n, seconds)
        total_fail += fails
        print("%-16s %-8s %9d inputs in %5.1f s, %d failing" % (n, engine, runs, time.monotonic() - t0, fails))
        sys.stdout.flush()
    return 1 if total_fail else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
