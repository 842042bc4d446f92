// Measures the fixed heap cost of the firmware under real MicroPython
// (the official WebAssembly build, 32-bit like the boards).
//
// usage: node boards/measure_heap.mjs [firmware_dir] [compiled config.json]
// Prints JSON: bytes retained after importing the board's module set
// (`imports`), after building the Node, its management entry point and the
// lease store object from the config with every pool cut to one address
// (`resident`), and the same while a management request is being answered,
// with the command table and what `status` loads on the heap (`fixed`, the
// number build.py's FIRMWARE_FIXED_BYTES holds: a board must survive a
// request; that code is dropped again after it, dhcpfo/ondemand.py). Point it at
// a bundle from `dhcpfo build` to measure the .mpy files a board loads.
// The config must be the compiled form a board loads (the bundle's own
// /config.json is the default; compile another one on the host with
// dhcpfo_host.boardconf.write_compiled): dhcpfo.config.load takes no other.
// `socket` is stubbed (the wasm port has none); runtime/board.py itself is
// not imported, since it needs `network` and `machine`.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";

const [fwDir = "firmware", cfgPath = path.join(fwDir, "config.json")] = process.argv.slice(2);
const mp = await loadMicroPython({ heapsize: 8 * 1024 * 1024, stdout: (l) => console.log(l) });

function copyTree(hostDir, mpDir) {
  mp.FS.mkdirTree(mpDir);
  for (const e of fs.readdirSync(hostDir, { withFileTypes: true })) {
    if (e.name === "__pycache__") continue;
    const h = path.join(hostDir, e.name);
    if (e.isDirectory()) copyTree(h, mpDir + "/" + e.name);
    else if ((e.name.endsWith(".py") || e.name.endsWith(".mpy"))) mp.FS.writeFile(mpDir + "/" + e.name, fs.readFileSync(h));
  }
}
copyTree(fwDir, "/fw");
mp.FS.writeFile("/cfg.json", fs.readFileSync(cfgPath));

mp.runPython(`
import sys, gc
sys.path[:0] = ['/fw']
class _Socket:  # stub module: runtime/udp.py imports socket at the top
    pass
sys.modules['socket'] = _Socket
_r = {}
gc.collect()
_a0 = gc.mem_alloc()
`);
mp.runPython(`
import dhcpfo.config, dhcpfo.node, dhcpfo.mgmt, dhcpfo.ondemand, runtime.store, runtime.aio, runtime.udp
`);
mp.runPython("gc.collect()");
mp.runPython(`
_r['imports'] = gc.mem_alloc() - _a0
from dhcpfo.compat import json_loads
_doc = json_loads(open('/cfg.json').read())
if _doc.get('format') != dhcpfo.config.FORMAT:
    raise SystemExit('measure_heap: /cfg.json is not a compiled config (boardconf.write_compiled)')
for _s in _doc['scopes']:  # one address per pool: what is left is the fixed cost
    _s['ranges'] = [[_s['ranges'][0][0], _s['ranges'][0][0]]]
    _s['exclusions'] = []
    _s['reservations'] = []
_cfg = dhcpfo.config.load(_doc)
_node = dhcpfo.node.Node(_cfg)
_mgmt = dhcpfo.mgmt.handler(_node)
_store = runtime.store.LeaseStore('/')
_doc = None
`);
mp.runPython("gc.collect()");
mp.runPython(`
_r['resident'] = gc.mem_alloc() - _a0
dhcpfo.ondemand.enter()  # keep what the request loads until it is measured
_ans = [_mgmt({'cmd': 'status'}, 0)]
`);
mp.runPython("gc.collect()");
mp.runPython(`
_r['fixed'] = gc.mem_alloc() - _a0
_ans = None
dhcpfo.ondemand.leave()
`);
mp.runPython("import json; print(json.dumps(_r))");
