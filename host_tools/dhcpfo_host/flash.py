"""`dhcpfo flash`: put a bundle (or MicroPython itself) on a board.

Deploying a bundle (from `dhcpfo build`) goes through mpremote's
SerialTransport, so any pyserial URL works (/dev/ttyUSB0, a pty,
socket://host:port, rfc2217://...):

1. stage every file under <root>.new/, skipping files already staged with
   the right SHA-256 (this is how an interrupted transfer resumes);
2. hash every staged file on the device (hashlib.sha256) and compare with
   the bundle's manifest.json;
3. switch: the running main.py moves out first and the new one moves in
   last, so a board reset half-way boots to the REPL instead of running a
   mix of old and new modules; then soft-reset into the new firmware.

Until step 3 nothing the running firmware uses is touched: an interrupted
transfer leaves the previous firmware bootable. The lease store (the
config's data_dir) is never touched.

`--firmware FILE` installs MicroPython itself: esptool (Python API) writes
a .bin at the profile's offset on ESP32; on RP2040 the board is put into
its UF2 bootloader (machine.bootloader()) and the .uf2 copied onto the
drive that shows INFO_UF2.TXT.
"""
import ast
import glob
import json
import os
import shutil
import sys
import time

import serial

from dhcpfo_host import profiles

# Device-side helpers, defined once per session in the raw REPL's globals.
# MicroPython subset: no hexdigest, so hexlify the digest; read in 512-byte
# chunks into one buffer so hashing a file allocates almost nothing.
_HELPERS = """
import os, sys, hashlib, binascii
def _dfo_hash(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    h = hashlib.sha256()
    b = bytearray(512)
    m = memoryview(b)
    while True:
        n = f.readinto(b)
        if not n:
            break
        h.update(m[:n])
    f.close()
    return binascii.hexlify(h.digest()).decode()
def _dfo_isdir(p):
    try:
        return os.stat(p)[0] & 0x4000 != 0
    except OSError:
        return None
def _dfo_rm(p):
    d = _dfo_isdir(p)
    if d is None:
        return
    if d:
        for e in list(os.ilistdir(p)):
            _dfo_rm(p + '/' + e[0])
        os.rmdir(p)
    else:
        os.remove(p)
def _dfo_mkdirs(p):
    parts = p.split('/')
    for i in range(1, len(parts) + 1):
        q = '/'.join(parts[:i])
        if q and _dfo_isdir(q) is None:
            os.mkdir(q)
def _dfo_free(p):
    try:
        s = os.statvfs(p)
        return s[0] * s[4]
    except (AttributeError, OSError):
        return -1
"""

# Switch from <root>.new to <root>: main.py out first, in last.
_SWITCH = """
_dfo_rm(%(root)r + '.old')
os.mkdir(%(root)r + '.old')
for n in %(out_order)r:
    if _dfo_isdir(%(root)r + n) is not None:
        os.rename(%(root)r + n, %(root)r + '.old/' + n)
for n in %(in_order)r:
    os.rename(%(root)r + '.new/' + n, %(root)r + n)
_dfo_rm(%(root)r + '.new')
_dfo_rm(%(root)r + '.old')
"""


class FlashError(Exception):
    """A flash that cannot go on; .code is the exit status."""

    def __init__(self, msg, code=1):
        super().__init__(msg)
        self.code = code


class Progress:
    """A one-line progress bar on a stream: bytes of the whole bundle, file being sent."""

    def __init__(self, total, stream=None, width=30):
        self.total = max(total, 1)
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self._shown = None

    def file(self, name, sent, size):
        n = self.done + sent
        if sent == size:
            self.done += size
        fill = self.width * n // self.total
        if (fill, name) == self._shown and n != self.total:
            return
        self._shown = (fill, name)
        self.stream.write("\r[%s%s] %3d%% %7d/%d B %-32s" % (
            "#" * fill, "." * (self.width - fill), 100 * n // self.total, n, self.total, name[-32:]))
        self.stream.flush()

    def end(self):
        self.stream.write("\n")
        self.stream.flush()


def read_bundle(bundle):
    try:
        with open(os.path.join(bundle, "manifest.json")) as f:
            m = json.load(f)
    except OSError:
        raise FlashError("%s is not a bundle (no manifest.json): run `dhcpfo build` first" % bundle, 2)
    except ValueError as e:
        raise FlashError("%s/manifest.json is not JSON: %s" % (bundle, e), 2)
    for f in m.get("files", []):
        if not os.path.isfile(os.path.join(bundle, f["path"])):
            raise FlashError("bundle %s lacks %s: rebuild it" % (bundle, f["path"]), 2)
    return m


READ_TIMEOUT = 10  # s without a byte from the board before a read gives up (a dead board never hangs us)


def connect(port, baudrate=115200):
    from mpremote.transport import TransportError
    from mpremote.transport_serial import SerialTransport

    try:
        t = SerialTransport(port, baudrate=baudrate, timeout=READ_TIMEOUT)
    except TransportError as e:
        raise FlashError("cannot open %s: %s" % (port, e))
    try:
        t.enter_raw_repl(soft_reset=False)
    except TransportError as e:
        _close(t)
        raise FlashError("no MicroPython REPL on %s: %s" % (port, e))
    return t


def check_device(t, manifest, any_platform=False):
    """The device runs the port and .mpy version the bundle was built for."""
    t.exec(_HELPERS)
    plat, mpy = t.eval("(sys.platform, sys.implementation._mpy)")
    have = "%d.%d" % (mpy & 0xFF, (mpy >> 8) & 3)
    want = manifest["micropython"]["mpy"]
    if have != want:
        raise FlashError("the board loads mpy v%s but the bundle is mpy v%s: flash a MicroPython that "
                         "matches (%s or later) with --firmware" % (have, want, manifest["micropython"]["version"]), 2)
    if plat != manifest["port"] and not any_platform:
        raise FlashError("the board runs the %s port but the bundle is for %s (%s)"
                         % (plat, manifest["port"], manifest["board"]), 2)
    return plat, have


def _hashes(t, paths):
    got = t.eval("[_dfo_hash(p) for p in %r]" % (paths,))
    return dict(zip(paths, got))


def deploy(bundle, port, root="/", baudrate=115200, any_platform=False, stream=None, reset=True,
           on_file=None):
    """Stage, verify, switch, soft-reset. Returns {"sent": files sent, "kept": files already staged}."""
    from mpremote.transport import TransportError

    m = read_bundle(bundle)
    root = root if root.endswith("/") else root + "/"
    files = m["files"] + [{"path": "manifest.json", "size": os.path.getsize(os.path.join(bundle, "manifest.json")),
                           "sha256": None}]
    t = connect(port, baudrate)
    switching = False
    try:
        check_device(t, m, any_platform)
        staged = _hashes(t, [root + ".new/" + f["path"] for f in files])
        todo = [f for f in files if f["sha256"] is None or staged[root + ".new/" + f["path"]] != f["sha256"]]
        need = sum(f["size"] for f in todo)
        free = t.eval("_dfo_free(%r)" % root)
        if 0 <= free < need:
            raise FlashError("the board has %d B free and the bundle needs %d B more" % (free, need), 2)
        bar = Progress(need, stream)
        for d in sorted({os.path.dirname(f["path"]) for f in todo}):
            t.exec("_dfo_mkdirs(%r)" % (root + ".new/" + d if d else root + ".new"))
        for f in todo:
            with open(os.path.join(bundle, f["path"]), "rb") as fh:
                data = fh.read()
            t.fs_writefile(root + ".new/" + f["path"], data, chunk_size=512,
                           progress_callback=lambda n, size, p=f["path"]: bar.file(p, n, size))
            if not data:
                bar.file(f["path"], 0, 0)
            if on_file is not None:
                on_file(f["path"])
        bar.end()
        got = _hashes(t, [root + ".new/" + f["path"] for f in m["files"]])
        bad = [f["path"] for f in m["files"] if got[root + ".new/" + f["path"]] != f["sha256"]]
        if bad:
            raise FlashError("SHA-256 differs on the board for %s; the running firmware is untouched, "
                             "run the same command again" % ", ".join(bad))
        top = sorted({f["path"].split("/")[0] for f in files} - {"main.py"})
        switching = True
        t.exec(_SWITCH % {"root": root, "out_order": ["main.py"] + top, "in_order": top + ["main.py"]})
        if reset:
            t.exit_raw_repl()
            # the friendly prompt first: a soft reset decided while the board
            # still counts as in the raw REPL would skip main.py
            t.read_until(1, b">>> ", timeout=5)
            t.serial.write(b"\x04")  # soft reset from the friendly REPL: main.py runs
        return {"sent": len(todo), "kept": len(files) - len(todo), "bytes": need}
    except (TransportError, serial.SerialException) as e:  # the board stopped answering, or the port went away
        why = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        if switching:
            raise FlashError("the switch to the new firmware on %s broke off (%s); the board may boot to the REPL "
                             "without main.py: run the same command again to finish it" % (port, why))
        raise FlashError("transfer to %s broke off (%s); the board still has its previous firmware and boots it "
                         "after a reset; files already staged in %s.new are kept: run the same command again to "
                         "resume" % (port, why, root))
    finally:
        _close(t)


def _close(t):
    """Close the port; one that vanished mid-transfer (unplugged board, closed pty) fails its
    last ioctl, which must not hide the message that says what to do."""
    try:
        t.close()
    except (OSError, serial.SerialException):
        pass


# --- MicroPython itself -----------------------------------------------------------

UF2_MAGIC = (b"UF2\n", b"\x57\x51\x5d\x9e")  # first and second magic of every 512-byte block
ESP_IMAGE_MAGIC = 0xE9


def check_firmware(path, profile):
    """The file is the image kind the board's bootloader takes."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        raise FlashError("cannot read %s: %s" % (path, e.strerror), 2)
    kind = profile["flash"]["image"]
    if kind == "bin" and (not head or head[0] != ESP_IMAGE_MAGIC):
        raise FlashError("%s is not an ESP32 application image (first byte 0x%02x, want 0xe9)"
                         % (path, head[0] if head else 0), 2)
    if kind == "uf2" and (head[0:4] != UF2_MAGIC[0] or head[4:8] != UF2_MAGIC[1]):
        raise FlashError("%s is not a UF2 file" % path, 2)
    return kind


def esptool_args(profile, port, firmware, erase=False, baud=460800):
    args = ["--chip", profile["chip"], "--port", port, "--baud", str(baud), "write-flash"]
    if erase:
        args.append("--erase-all")
    return args + ["0x%x" % profile["flash"]["offset"], firmware]


def find_uf2_drive(roots=("/media", "/run/media", "/mnt")):
    """A mounted RP2 bootloader drive: the folder that holds INFO_UF2.TXT."""
    for r in roots:
        for pattern in ("*", "*/*"):
            for d in sorted(glob.glob(os.path.join(r, pattern))):
                if os.path.isfile(os.path.join(d, "INFO_UF2.TXT")):
                    return d
    return None


def install_uf2(firmware, port=None, drive=None, timeout=60):
    """Reboot the board into its UF2 bootloader (when a port is given), then copy."""
    if port is not None and drive is None:
        t = connect(port)
        try:
            t.exec_raw_no_follow("import machine\nmachine.bootloader()")
        finally:
            t.close()
    deadline = time.monotonic() + timeout
    while True:
        d = drive if drive is not None else find_uf2_drive()
        if d is not None and os.path.isfile(os.path.join(d, "INFO_UF2.TXT")):
            break
        if time.monotonic() > deadline:
            raise FlashError("no UF2 drive (a folder with INFO_UF2.TXT) appeared in %d s: hold BOOTSEL while "
                             "plugging the board in, mount the drive and pass --drive" % timeout)
        time.sleep(0.5)
    dst = os.path.join(d, os.path.basename(firmware))
    shutil.copyfile(firmware, dst)
    if hasattr(os, "sync"):
        os.sync()
    return dst


def install_firmware(profile, firmware, port, drive=None, erase=False):
    kind = check_firmware(firmware, profile)
    if kind == "bin":
        import esptool

        try:
            esptool.main(esptool_args(profile, port, firmware, erase))
        except (esptool.FatalError, OSError) as e:
            raise FlashError("esptool: %s" % e)
        return "wrote %s at 0x%x" % (firmware, profile["flash"]["offset"])
    return "copied %s to %s" % (firmware, install_uf2(firmware, port, drive))


def main(board, port, bundle=None, firmware=None, drive=None, erase=False, root="/", any_platform=False):
    try:
        prof = profiles.load(board)
    except profiles.ProfileError as e:
        print("dhcpfo flash: %s" % "\n  ".join(e.errors), file=sys.stderr)
        return 2
    try:
        if firmware:
            print(install_firmware(prof, firmware, port, drive, erase))
            return 0
        bundle = bundle or os.path.join("build", prof["id"])
        m = read_bundle(bundle)
        if m["board"] != prof["id"]:
            raise FlashError("bundle %s was built for %s, not %s" % (bundle, m["board"], prof["id"]), 2)
        r = deploy(bundle, port, root, any_platform=any_platform)
    except FlashError as e:
        print("dhcpfo flash: %s" % e, file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print("\ndhcpfo flash: interrupted; the board still runs its previous firmware. Run the same "
              "command again to resume: files already staged in %s.new are kept" % root, file=sys.stderr)
        return 130
    print("flashed %s to %s: %d files sent (%d B), %d already staged; soft reset"
          % (bundle, port, r["sent"], r["bytes"], r["kept"]))
    return 0
