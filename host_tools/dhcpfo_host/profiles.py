"""Board profiles (boards/<name>/board.json): schema, validation, the device view.

A profile says everything the host needs to build for and flash one board
and everything the board needs to bring its network up: the chip and
MicroPython port, the .mpy ABI (bytecode version, mpy-cross -march), the
flash layout and where the MicroPython image goes, the network interface
and its pins, status LED and safe-mode button, the heap budget and the
flash budget of the lease store. `load(name_or_path)` returns the
validated profile as a dict (hex strings turned into ints) or raises
ProfileError listing every problem as "path: message", the same way
dhcpfo.config reports a bad node configuration.

`device_board(profile, site)` is the /board.json written to the board:
the flat keys firmware/runtime/board.py reads, plus site settings that do
not belong to a board model (Wi-Fi credentials, netmask, gateway, DNS).
"""
import json
import os

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "boards"))

CHIPS = {  # chip -> (MicroPython port, mpy-cross -march, image format)
    "esp32": ("esp32", "xtensawin", "bin"),
    "rp2040": ("rp2", "armv6m", "uf2"),
}
NETWORKS = ("lan", "wlan", "wiznet")
LAN_PHYS = ("PHY_LAN8720", "PHY_LAN8710", "PHY_IP101", "PHY_RTL8201", "PHY_DP83848", "PHY_KSZ8041",
            "PHY_KSZ8081")
MPY_VERSIONS = ("6.3",)  # MicroPython 1.23 and later (docs/reference/mpyfiles.rst)
MIN_HEAP = 32 * 1024  # below this not even the firmware's modules fit

_TOP = ("name", "chip", "port", "micropython", "flash", "network", "pins", "heap_budget",
        "lease_log_bytes")
_MP = ("board", "version", "mpy", "march")
_FLASH = ("size", "image", "offset", "fs_size")
_NET = {
    "lan": ("kind", "phy_type", "phy_addr", "mdc", "mdio", "power", "ref_clk", "ref_clk_mode"),
    "wiznet": ("kind", "spi", "baudrate", "sck", "mosi", "miso", "cs", "reset", "int"),
    "wlan": ("kind",),
}
_PINS = ("status_led", "status_led_active", "safe_mode")
_SAFE = ("pin", "active", "pull")
_SITE = ("ssid", "password", "netmask", "gateway", "dns")


class ProfileError(ValueError):
    """An invalid board profile (or site section); .errors lists "path: message" items."""

    def __init__(self, errors):
        super().__init__("\n".join(errors))
        self.errors = errors


class _Check:
    def __init__(self):
        self.errors = []

    def err(self, path, msg):
        self.errors.append("%s: %s" % (path, msg))

    def obj(self, v, path, keys):
        if type(v) is not dict:
            self.err(path, "must be an object")
            return None
        for k in v:
            if k not in keys and not k.startswith("_"):
                self.err("%s.%s" % (path, k) if path else k, "unknown key (known: %s)" % ", ".join(keys))
        return v

    def get(self, d, key, path, kind, required=True, choices=None, lo=None, hi=None):
        """d[key] checked: kind is "int" (hex strings "0x.." allowed), "str" or "pin"."""
        p = "%s.%s" % (path, key) if path else key
        if key not in d or d[key] is None:
            if required:
                self.err(p, "required")
            return None
        v = d[key]
        if kind == "int" and isinstance(v, str) and v.lower().startswith("0x"):
            try:
                v = int(v, 16)
            except ValueError:
                self.err(p, "not a hex number: %r" % v)
                return None
        if kind == "pin" and isinstance(v, str):
            if v not in ("LED", "BOOTSEL"):
                self.err(p, "must be a GPIO number, \"LED\" or \"BOOTSEL\"")
                return None
            return v
        if kind in ("int", "pin"):
            if type(v) is not int:
                self.err(p, "must be an integer")
                return None
            if kind == "pin":
                lo, hi = 0, 48
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                self.err(p, "must be %d..%d" % (lo, hi))
                return None
        elif kind == "str":
            if not isinstance(v, str) or not v:
                self.err(p, "must be a non-empty string")
                return None
        if choices is not None and v not in choices:
            self.err(p, "must be one of %s" % ", ".join(str(c) for c in choices))
            return None
        return v


def validate(obj, where="board.json"):
    """A parsed profile -> normalised profile dict; ProfileError lists every problem."""
    c = _Check()
    doc = c.obj(obj, "", _TOP)
    if doc is None:
        raise ProfileError(["%s: must be an object" % where])
    out = {"name": c.get(doc, "name", "", "str")}
    chip = c.get(doc, "chip", "", "str", choices=tuple(CHIPS))
    out["chip"] = chip
    port, march, image = CHIPS.get(chip, (None, None, None))
    out["port"] = c.get(doc, "port", "", "str", choices=("esp32", "rp2"))
    if chip and out["port"] and out["port"] != port:
        c.err("port", "chip %s runs the MicroPython %s port, not %s" % (chip, port, out["port"]))

    mp = c.obj(doc.get("micropython"), "micropython", _MP) or {}
    out["micropython"] = {
        "board": c.get(mp, "board", "micropython", "str"),
        "version": c.get(mp, "version", "micropython", "str"),
        "mpy": c.get(mp, "mpy", "micropython", "str", choices=MPY_VERSIONS),
        "march": c.get(mp, "march", "micropython", "str"),
    }
    v = out["micropython"]["version"]
    if v and not _version_ok(v):
        c.err("micropython.version", "must be a MicroPython release like \"1.27\", 1.23 or later "
              "(the oldest that loads mpy 6.3)")
    if march and out["micropython"]["march"] and out["micropython"]["march"] != march:
        c.err("micropython.march", "chip %s needs -march=%s, not %s" % (chip, march, out["micropython"]["march"]))

    fl = c.obj(doc.get("flash"), "flash", _FLASH) or {}
    out["flash"] = {
        "size": c.get(fl, "size", "flash", "int", lo=1 << 20, hi=1 << 26),
        "image": c.get(fl, "image", "flash", "str", choices=("bin", "uf2")),
        "offset": c.get(fl, "offset", "flash", "int", required=(image == "bin"), lo=0, hi=1 << 24),
        "fs_size": c.get(fl, "fs_size", "flash", "int", lo=64 * 1024, hi=1 << 26),
    }
    if image and out["flash"]["image"] and out["flash"]["image"] != image:
        c.err("flash.image", "chip %s takes a .%s image, not .%s" % (chip, image, out["flash"]["image"]))
    if image == "uf2" and fl.get("offset") is not None:
        c.err("flash.offset", "a UF2 image carries its own addresses; leave the offset out")
    fs, size = out["flash"]["fs_size"], out["flash"]["size"]
    if fs and size and fs >= size:
        c.err("flash.fs_size", "must be smaller than flash.size")

    net = doc.get("network")
    kind = None
    if type(net) is dict:
        kind = c.get(net, "kind", "network", "str", choices=NETWORKS)
    out["network"] = _network(c, net, kind, chip)

    pins = c.obj(doc.get("pins", {}), "pins", _PINS) or {}
    safe = pins.get("safe_mode")
    out["pins"] = {
        "status_led": c.get(pins, "status_led", "pins", "pin", required=False),
        "status_led_active": c.get(pins, "status_led_active", "pins", "str", required=False,
                                   choices=("high", "low")) or "high",
        "safe_mode": None,
    }
    if safe is not None:
        s = c.obj(safe, "pins.safe_mode", _SAFE) or {}
        out["pins"]["safe_mode"] = {
            "pin": c.get(s, "pin", "pins.safe_mode", "pin"),
            "active": c.get(s, "active", "pins.safe_mode", "str", choices=("high", "low")),
            "pull": c.get(s, "pull", "pins.safe_mode", "str", required=False, choices=("up", "down")),
        }
    out["heap_budget"] = c.get(doc, "heap_budget", "", "int", lo=MIN_HEAP, hi=8 << 20)
    out["lease_log_bytes"] = c.get(doc, "lease_log_bytes", "", "int", lo=16 * 1024, hi=1 << 26)
    lb, fs = out["lease_log_bytes"], out["flash"]["fs_size"]
    if lb and fs and lb > fs // 2:
        c.err("lease_log_bytes", "must leave half of the filesystem (%d B) to the firmware" % fs)
    if out["network"] is not None:
        _pin_clashes(c, out)
    if c.errors:
        raise ProfileError(["%s: %s" % (where, e) for e in c.errors])
    return out


def _version_ok(v):
    parts = v.split(".")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        return False
    return (int(parts[0]), int(parts[1])) >= (1, 23)


def _network(c, net, kind, chip):
    if net is None:
        c.err("network", "required")
        return None
    if kind is None:
        c.obj(net, "network", ("kind",))
        return None
    n = c.obj(net, "network", _NET[kind])
    if n is None:
        return None
    out = {"kind": kind}
    if kind == "lan":
        if chip and chip != "esp32":
            c.err("network.kind", "network.LAN with an RMII PHY exists only on the ESP32 here")
        out["phy_type"] = c.get(n, "phy_type", "network", "str", choices=LAN_PHYS)
        out["phy_addr"] = c.get(n, "phy_addr", "network", "int", lo=0, hi=31)
        for k in ("mdc", "mdio"):
            out[k] = c.get(n, k, "network", "pin")
        out["power"] = c.get(n, "power", "network", "pin", required=False)
        out["ref_clk"] = c.get(n, "ref_clk", "network", "pin")
        out["ref_clk_mode"] = c.get(n, "ref_clk_mode", "network", "str", choices=("in", "out"))
        if out["ref_clk"] is not None and out["ref_clk_mode"] == "in" and out["ref_clk"] != 0:
            c.err("network.ref_clk", "the ESP32 EMAC takes an external RMII clock only on GPIO0")
        if out["ref_clk_mode"] == "out" and out["ref_clk"] not in (0, 16, 17, None):
            c.err("network.ref_clk", "the ESP32 EMAC drives the RMII clock only on GPIO0, 16 or 17")
    elif kind == "wiznet":
        if chip and chip != "rp2040":
            c.err("network.kind", "the WIZNET5K driver is the rp2 port's (ESP32 uses network.LAN)")
        out["spi"] = c.get(n, "spi", "network", "int", lo=0, hi=1)
        out["baudrate"] = c.get(n, "baudrate", "network", "int", lo=100000, hi=50000000)
        for k in ("sck", "mosi", "miso", "cs", "reset"):
            out[k] = c.get(n, k, "network", "pin")
        out["int"] = c.get(n, "int", "network", "pin", required=False)
    return out


def _pin_clashes(c, p):
    """One GPIO, one job: a safe-mode button on the RMII clock pin would stop the Ethernet."""
    used = {}
    for k, v in p["network"].items():
        if k not in ("kind", "phy_type", "phy_addr", "ref_clk_mode", "spi", "baudrate") and isinstance(v, int):
            used.setdefault(v, "network." + k)
    extra = [("pins.status_led", p["pins"]["status_led"])]
    if p["pins"]["safe_mode"]:
        extra.append(("pins.safe_mode.pin", p["pins"]["safe_mode"]["pin"]))
    for path, v in extra:
        if isinstance(v, int):
            if v in used:
                c.err(path, "GPIO%d is already %s" % (v, used[v]))
            else:
                used[v] = path


def names():
    """Every board folder under boards/ that has a board.json, sorted."""
    return sorted(d for d in os.listdir(ROOT) if os.path.isfile(os.path.join(ROOT, d, "board.json")))


def path_of(name_or_path):
    """A board name ("wt32-eth01"), a board folder or a board.json path -> the board.json path."""
    p = name_or_path
    if os.path.isdir(p):
        p = os.path.join(p, "board.json")
    elif not os.path.exists(p):
        p = os.path.join(ROOT, name_or_path, "board.json")
    return p


def load(name_or_path):
    """Read and validate a profile; unknown board -> ProfileError naming the known ones."""
    p = path_of(name_or_path)
    try:
        with open(p) as f:
            text = f.read()
    except OSError:
        raise ProfileError(["%s: no such board (known: %s)" % (name_or_path, ", ".join(names()))])
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise ProfileError(["%s: not JSON: %s" % (p, e)])
    prof = validate(obj, p)
    prof["id"] = os.path.basename(os.path.dirname(os.path.abspath(p)))
    return prof


def validate_site(site, profile):
    """The config's "board" section (site settings) -> dict; Wi-Fi boards need an ssid."""
    c = _Check()
    s = c.obj(site if site is not None else {}, "board", _SITE) or {}
    out = {}
    for k in _SITE:
        v = c.get(s, k, "board", "str", required=False)
        if v is not None:
            out[k] = v
    for k in ("netmask", "gateway", "dns"):
        if k in out and not _is_ipv4(out[k]):
            c.err("board." + k, "must be a dotted IPv4 address")
    if profile["network"]["kind"] == "wlan" and "ssid" not in out:
        c.err("board.ssid", "required: %s joins a Wi-Fi network as a station" % profile["name"])
    if profile["network"]["kind"] != "wlan":
        for k in ("ssid", "password"):
            if k in out:
                c.err("board." + k, "%s has no Wi-Fi interface in this profile" % profile["name"])
    if c.errors:
        raise ProfileError(c.errors)
    return out


def _is_ipv4(s):
    parts = s.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)


def device_board(profile, site):
    """The /board.json a board reads (runtime/board.py): flat network keys + pins + site.

    The keys are the ones board.py reads (docs/boards.md, "Board profile keys"),
    renamed from the profile's schema here, in one place."""
    net = profile["network"]
    d = {"name": profile["name"], "board": profile["id"], "port": profile["port"], "network": net["kind"]}
    if net["kind"] == "lan":
        d.update(phy=net["phy_type"], phy_addr=net["phy_addr"], mdc=net["mdc"], mdio=net["mdio"],
                 power=net["power"], ref_clk=net["ref_clk"], ref_clk_mode=net["ref_clk_mode"])
    elif net["kind"] == "wiznet":
        d.update(spi_id=net["spi"], spi_baud=net["baudrate"], sck=net["sck"], mosi=net["mosi"],
                 miso=net["miso"], cs=net["cs"], rst=net["reset"], int=net["int"])
    pins = profile["pins"]
    d["status_led"] = pins["status_led"]
    d["status_led_active"] = pins["status_led_active"]
    safe = pins["safe_mode"]
    if safe is not None:
        d["safe_pin"] = safe["pin"]
        d["safe_level"] = 1 if safe["active"] == "high" else 0
        d["safe_pull"] = safe.get("pull")  # None: the board has its own resistor (no internal pull)
    d["heap_budget"] = profile["heap_budget"]
    d["lease_log_bytes"] = profile["lease_log_bytes"]
    d.update(site)
    return d
