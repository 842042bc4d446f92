"""The board heap workload on the emulated board's MicroPython (64-bit unix port).

tests/core/test_board_heap.py defines the workload (a /24 node with one
relationship serving 254 clients with 19-byte client ids, the events ring
filled, the leases paged, a resync of 254 bindings) and tests/mp/mprun.mjs
measures it on the 32-bit wasm MicroPython, where the heap grows on demand.
Here the same steps run in the unix port the emulated board uses, from the
same .mpy files a deploy puts on its flash (`emuboard.prepare_flash`), where
`-X heapsize` is a hard cap:

* uncapped, sampling gc.mem_alloc() after a collection at every step (as the
  wasm runner does), which gives the 64-bit peak and so the 64/32-bit ratio;
* capped at the heap an ESP32 has for that limit (100 KB for the 85 KB
  budget: the budget is the ESP32's heap less a fragmentation margin, and a
  hard cap needs that margin too) times the ratio, plus the bare VM; any
  MemoryError fails the run.

The partner node runs in this (CPython) process; its failover stream reaches
the board in chunks of at most 1 KB and the board's leaves one message at a
time, as a board's socket driver moves them, so the transport never holds a
backlog on the capped heap.

    PYTHONPATH=firmware:host_tools:tests:tests/core python -m integration.heap64 [limit_kb [cap_kb...]]

limit_kb defaults to test_board_heap.LIMIT; each cap_kb is an extra run at
that many KB over the bare VM (to find the smallest heap that serves).
"""

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CHUNK = 1024  # bytes of partner stream per board read
DEADLINE_S = 900  # a board VM still running after this is killed (the run then fails)
CORE = os.path.join(REPO, "tests", "core")
if CORE not in sys.path:  # the workload is a core test module (importable without pytest)
    sys.path.append(CORE)

# Runs on the board: one line of Python per command ("=expr" evaluates), one
# reply line per command with the live heap after a collection.
_DRIVER = r"""
import sys, gc
_g = {}
while True:
    _line = sys.stdin.readline()
    if not _line:
        break
    _line = _line.rstrip("\n")
    try:
        if _line[:1] == "=":
            _v = eval(_line[1:], _g)
        else:
            exec(_line, _g)
            _v = None
        _line = None
        gc.collect()
        sys.stdout.write("OK %d %r\n" % (gc.mem_alloc(), _v))
    except BaseException as _e:
        _line = _v = None
        gc.collect()
        sys.stdout.write("ERR %s %s\n" % (type(_e).__name__, _e))
"""


class BoardVm:
    """The unix port as a board: flash directory as cwd, heap capped."""

    def __init__(self, flash, heap_bytes):
        from dhcpfo_host.emuboard import micropython_path

        with open(os.path.join(flash, "_heapdrv.py"), "w") as f:
            f.write(_DRIVER)
        self.proc = subprocess.Popen([micropython_path(), "-X", "heapsize=%d" % heap_bytes, "_heapdrv.py"],
                                     cwd=flash, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.error = None
        self._deadline = threading.Timer(DEADLINE_S, self.proc.kill)
        self._deadline.daemon = True
        self._deadline.start()

    def call(self, line):
        """(heap in use after the command, its value); records the first error."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        if not reply:
            raise RuntimeError("board VM died at %r (exit %s)" % (line[:80], self.proc.wait(10)))
        if reply.startswith("ERR "):
            self.error = self.error or (line[:80], reply[4:].strip())
            raise RuntimeError("board VM: %s at %r" % (reply[4:].strip(), line[:80]))
        _, used, value = reply.rstrip("\n").split(" ", 2)
        return int(used), ast.literal_eval(value)

    def stop(self):
        self._deadline.cancel()
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _flash(tmp):
    """A flash directory as a deploy fills it (.mpy firmware), plus the workload."""
    import test_board_heap as H
    from dhcpfo_host.emuboard import prepare_flash

    texts = H.compiled_texts()
    flash = os.path.join(tmp, "flash")
    prepare_flash(flash, json.loads(texts[0]), None, mpy=True)
    shutil.copy(os.path.join(REPO, "tests", "core", "test_board_heap.py"), flash)
    cfg_dir = os.path.join(tmp, "cfg")
    return flash, cfg_dir, texts


def run(heap_bytes, flash, cfg_dir):
    """The workload on a board VM with `heap_bytes` of heap. Returns a dict:
    base (bytes in use before the workload), peak (over base), the per-step
    figures, per-address bytes, and `error` (None or (step, message))."""
    import test_board_heap as P  # the partner, in this process

    old_dir = P.CFG_DIR
    P.CFG_DIR = cfg_dir
    P.reset()
    vm = BoardVm(flash, heap_bytes)
    r = {"heap": heap_bytes, "error": None, "phase": {}}
    now = [1000]
    state = {"base": 0, "peak": 0}

    def sample(label, used):
        v = used - state["base"]
        if v > state["peak"]:
            state["peak"] = v
            r["peak_at"] = label
        r["phase"][label] = max(r["phase"].get(label, 0), v)
        return v

    def step(label, code):
        used, _ = vm.call(code)
        return sample(label, used)

    def ev(label, expr):
        used, value = vm.call("=" + expr)
        sample(label, used)
        return value

    def pump(label):
        for _ in range(100000):
            moved = False
            while True:
                ha = ev(label, "H.take('a', True)")
                if not ha:
                    break
                P.give("b", ha, now[0])
                moved = True
            hb = P.take("b")
            if hb:
                data = bytes.fromhex(hb)
                for k in range(0, len(data), CHUNK):
                    step(label, "H.give('a', %r, %d)" % (data[k:k + CHUNK].hex(), now[0]))
                moved = True
            if not moved:
                return

    def ticks(n, label):
        for _ in range(n):
            now[0] += 1
            step(label, "H.tick('a', %d)" % now[0])
            P.tick("b", now[0])
            pump(label)

    try:
        used, _ = vm.call("import test_board_heap as H; H.CFG_DIR = %r" % cfg_dir)
        state["base"] = used
        r["base"] = used
        r["after_import"] = step("import", "H.import_modules()")
        P.import_modules()
        P.build("b", now[0])
        r["after_config"] = step("config", "H.load_config('a')")
        r["after_build"] = step("build", "H.build('a', %d)" % now[0])
        table = step("build", "H.table_cost()") - r["after_build"]
        step("build", "H.S.pop('table')")
        step("connect", "H.connect('a', %d)" % now[0])
        P.connect("b", now[0])
        pump("connect")
        ticks(5, "connect")
        step("events", "H.fill_events(%d)" % now[0])
        before = step("events", "pass")
        for i in range(P.CLIENTS):
            step("serving", "H.discover(%d, %d)" % (i, now[0]))
            pump("serving")
            step("serving", "H.request(%d, %d)" % (i, now[0]))
            pump("serving")
        r["served"] = step("served", "pass")
        r["acked"] = ev("served", "H.value('a', 'acked')")
        r["per_address"] = (table + r["served"] - before) / P.CLIENTS
        step("events", "H.fill_events(%d)" % now[0])
        # one on-demand stretch per request: its code and answer, dropped after
        off = 0
        while off is not None:
            step("mgmt", "H.mgmt_hold(True); _o = H.leases_page(%d, %d)" % (off, now[0]))
            off = ev("mgmt", "_o")
            step("mgmt", "H.mgmt_hold(False)")
        reads_ok = True
        for cmd in P.MGMT_READS:
            step("mgmt", "H.mgmt_hold(True); _o = H.mgmt_read(%r, %d)" % (cmd, now[0]))
            reads_ok = reads_ok and ev("mgmt", "_o")
            step("mgmt", "H.mgmt_hold(False)")
        step("mgmt", "H.S['a'].pop('answer', None)")
        r["listed"] = ev("mgmt", "H.value('a', 'listed')") if reads_ok else -1
        step("resync", "H.disconnect('a', %d)" % now[0])
        P.drop("b")
        P.build("b", now[0])
        step("resync", "H.connect('a', %d)" % now[0])
        P.connect("b", now[0])
        pump("resync")
        for _ in range(120):
            if P.bound("b") == P.CLIENTS:
                break
            ticks(1, "resync")
        r["partner_bound"] = P.bound("b")
    except RuntimeError as e:
        r["error"] = vm.error or ("", str(e))
    finally:
        vm.stop()
        P.reset()
        P.CFG_DIR = old_dir
    r["peak"] = state["peak"]
    r["complete"] = (r["error"] is None and r.get("acked") == P.CLIENTS and r.get("listed") == P.CLIENTS
                     and r.get("partner_bound") == P.CLIENTS)
    return r


def measure_32bit():
    """The 32-bit (.mpy) figures from the wasm runner (node tests/mp/mprun.mjs)."""
    out = tempfile.mktemp(prefix="dhcpfo-heap32-", suffix=".json")
    env = dict(os.environ, HEAP_ONLY="1", HEAP_VARIANTS="mpy", HEAP_JSON=out)
    try:
        p = subprocess.run(["node", os.path.join(REPO, "tests", "mp", "mprun.mjs"),
                            os.path.join(REPO, "firmware"), os.path.join(REPO, "tests", "core")],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        if not os.path.exists(out):
            raise RuntimeError("wasm heap run wrote no figures:\n" + p.stdout[-2000:] + p.stderr[-2000:])
        with open(out) as f:
            return json.load(f)[0]
    finally:
        if os.path.exists(out):
            os.remove(out)


def board_heap(limit_bytes):
    """The heap of a board whose live-heap limit is limit_bytes (ESP32: ~100 KB for 85 KB)."""
    import test_board_heap as H

    return limit_bytes * H.ESP32_HEAP // H.BUDGET


def scaled(limit_bytes, peak32=None, caps=()):
    """Measure the ratio and run the workload capped at board_heap(limit_bytes)
    scaled by it (and at each extra cap in `caps`, bytes over the bare VM).
    Returns (ratio, uncapped result, [capped results], peak32)."""
    if peak32 is None:
        peak32 = measure_32bit()["peak"]
    tmp = tempfile.mkdtemp(prefix="dhcpfo-heap64-")
    try:
        flash, cfg_dir, texts = _flash(tmp)
        os.makedirs(cfg_dir, exist_ok=True)
        for name, text in zip(("a.json", "b.json"), texts):
            with open(os.path.join(cfg_dir, name), "w") as f:
                f.write(text)
        free = run(8 * 1024 * 1024, flash, cfg_dir)
        ratio = free["peak"] / peak32
        capped = [run(free["base"] + int(board_heap(limit_bytes) * ratio), flash, cfg_dir)]
        for c in caps:
            capped.append(run(free["base"] + c, flash, cfg_dir))
        return ratio, free, capped, peak32
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv):
    import test_board_heap as H

    limit = int(float(argv[1]) * 1024) if len(argv) > 1 else H.LIMIT
    caps = [int(float(a) * 1024) for a in argv[2:]]
    ratio, free, runs, peak32 = scaled(limit, caps=caps)
    capped = runs[0]
    kb = lambda n: "%.1f KB" % (n / 1024.0)  # noqa: E731
    print("32-bit (wasm, .mpy): peak %s" % kb(peak32))
    print("64-bit (unix port, .mpy, uncapped): after import %s, config %s, built %s, served %s, peak %s (%s); "
          "%.1f B/address; bare VM + driver %s" % (kb(free["after_import"]), kb(free["after_config"]),
                                                  kb(free["after_build"]), kb(free["served"]), kb(free["peak"]),
                                                  free.get("peak_at"), free["per_address"], kb(free["base"])))
    print("64/32-bit ratio %.3f; limit %s -> board heap %s; capped at %s + %s x %.3f = %s: %s" % (
        ratio, kb(limit), kb(board_heap(limit)), kb(free["base"]), kb(board_heap(limit)), ratio,
        kb(capped["heap"]), "complete, no MemoryError" if capped["complete"] else "FAILED %r" % (capped["error"],)))
    for c, r in zip(caps, runs[1:]):
        print("capped at %s + %s: %s (32-bit equivalent %s)" % (
            kb(free["base"]), kb(c), "complete" if r["complete"] else "FAILED %r" % (r["error"],), kb(c / ratio)))
    return 0 if capped["complete"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
