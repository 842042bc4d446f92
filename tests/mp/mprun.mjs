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
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";

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
for (const mod of modules) {
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
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed || passed === 0 ? 1 : 0);
