# runtime/board.py - run a node on a MicroPython board (ESP32, RP2040).
#
# Glue: safe mode, the network interface with the static address the node
# serves from (the board's own AP-mode DHCP server off), wall time, the
# data directory, the watchdog, and fail-stop. Everything else is the same
# driver as on CPython (runtime/aio.py).
#
# Files on the board's filesystem (paths from its root):
#   /config.json       the node config (docs/config.md)
#   /board.json        the board profile: a plain dict, keys in BOARD_KEYS
#   /safemode          if present, main.py does not start the node
#   <data_dir>/laststop.txt   why the last run fail-stopped (blank: it did
#                      not); read and reported by the next boot
#
# Board profile keys read here (all optional except as noted):
#   network      "lan" | "wlan" | "wiznet" (default "wlan")
#   netmask, gateway, dns          static addressing (address = server_id)
#   lan:  mdc, mdio (required), power, phy ("PHY_LAN8720"), phy_addr,
#         ref_clk (GPIO number), ref_clk_mode ("in" | "out": machine.Pin.IN/OUT;
#         Olimex ESP32-POE needs ref_clk=17 and "out")
#   wiznet: spi_id, spi_baud, mosi, miso, sck, cs, rst (all required: the profile's wiring)
#   wlan: ssid (required), password
#   link_timeout_s  seconds to wait for link/association per attempt (20)
#   link_attempts   attempts before a fail-stop reset (5)
#   safe_pin, safe_level, safe_pull   a pin that, read at boot as safe_level (0),
#                 means safe mode; pull "up" (default), "down" or null (none);
#                 "BOOTSEL" is the RP2040's BOOTSEL button (1 = held)
#   wdt_ms        watchdog timeout in ms (30000; 0 = no watchdog)
#   ntp           NTP server name for wall time (else: learned from the partner)

import gc
import os
import time

from dhcpfo import config as cfgmod
from dhcpfo.compat import Clock, asyncio, from_unix, json_loads
from dhcpfo.events import ERROR
from dhcpfo.mgmt import handler as mgmt_handler
from dhcpfo.node import Node
from runtime.aio import NodeRunner, ip_text
from runtime.store import LeaseStore
from runtime.udp import UdpEndpoint

CONFIG = "/config.json"
BOARD = "/board.json"
SAFEMODE = "/safemode"
LASTSTOP = "laststop.txt"
EV_FAIL_STOP = 1001  # events code of the "last run fail-stopped" report

BOARD_KEYS = ("network", "netmask", "gateway", "dns", "mdc", "mdio", "power", "phy", "phy_addr",
              "ref_clk", "ref_clk_mode", "spi_id", "spi_baud", "mosi", "miso", "sck", "cs", "rst",
              "ssid", "password", "link_timeout_s", "link_attempts", "safe_pin", "safe_level",
              "safe_pull", "wdt_ms", "ntp", "console_mgmt")


def log(msg):
    print("dhcpfo: " + msg)


def _read_json(path):
    with open(path) as f:
        return json_loads(f.read())


def _relative(path):
    """`path` relative to the working directory "/" (run() changes to it):
    MicroPython's VfsPosix cannot rename between two absolute paths (runtime/cfgfile.py)."""
    return path.lstrip("/") or path


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def makedirs(path):
    """Create path and its parents (first boot: the store expects its directory)."""
    cur = "/" if path.startswith("/") else ""
    for part in path.split("/"):
        if not part:
            continue
        cur = cur + part if cur.endswith("/") or not cur else cur + "/" + part
        if not _exists(cur):
            os.mkdir(cur)


# ----------------------------------------------------------------------
# safe mode and the last stop


def safe_mode(board):
    """Why the node must not start (a flag file or a held pin), or None."""
    if _exists(SAFEMODE):
        return "flag file %s" % SAFEMODE
    pin = board.get("safe_pin")
    if pin is not None and _read_safe_pin(pin, board.get("safe_pull", "up")) == board.get("safe_level", 0):
        return "pin %s held" % pin
    return None


def _read_safe_pin(pin, pull):
    """The safe-mode input's level now: a GPIO (with its pull) or the RP2040 BOOTSEL button."""
    if pin == "BOOTSEL":
        import rp2

        return 1 if rp2.bootsel_button() else 0
    import machine

    if pull == "up":
        return machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP).value()
    if pull == "down":
        return machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_DOWN).value()
    return machine.Pin(pin, machine.Pin.IN).value()


STOP_NOTE_SIZE = 240  # bytes of laststop.txt, allocated at boot so a full disk can still take the note


def take_last_stop(data_dir):
    """The recorded reason of the last fail-stop (reported once), or None.
    Leaves laststop.txt allocated and blank for the next record_stop."""
    path = data_dir + "/" + LASTSTOP
    text = None
    try:
        with open(path, "rb") as f:
            text = f.read().decode().strip() or None
    except (OSError, UnicodeError):
        pass
    try:
        with open(path, "wb") as f:
            f.write(b" " * STOP_NOTE_SIZE)
    except OSError as e:
        log("cannot allocate %s: %s" % (path, e))
    return text


def record_stop(data_dir, reason):
    """Overwrite the preallocated note in place: no new blocks, so this works
    when the fail-stop came from a full filesystem. Best effort."""
    try:
        note = reason.encode()[:STOP_NOTE_SIZE - 1] + b"\n"
        with open(data_dir + "/" + LASTSTOP, "r+b") as f:
            f.write(note + b" " * (STOP_NOTE_SIZE - len(note)))
    except Exception:
        pass


def reset():
    try:
        import machine

        machine.reset()
    except ImportError:
        raise SystemExit(3)


# ----------------------------------------------------------------------
# network


def _pin(n):
    import machine

    return machine.Pin(n)


def make_nic(board):
    """The serving interface object for this board profile (not yet active)."""
    import network

    kind = board.get("network", "wlan")
    if kind == "lan":  # ESP32 + LAN8720 (WT32-ETH01, Olimex ESP32-POE)
        kw = {"mdc": _pin(board["mdc"]), "mdio": _pin(board["mdio"]),
              "phy_type": getattr(network, board.get("phy", "PHY_LAN8720")),
              "phy_addr": board.get("phy_addr", 0)}
        if board.get("power") is not None:
            kw["power"] = _pin(board["power"])
        if board.get("ref_clk") is not None:
            kw["ref_clk"] = _pin(board["ref_clk"])
        mode = board.get("ref_clk_mode")
        if mode is not None:  # MicroPython takes the RMII clock direction as a Pin mode
            import machine

            kw["ref_clk_mode"] = machine.Pin.OUT if mode == "out" else machine.Pin.IN
        return network.LAN(**kw)
    if kind == "wiznet":  # W5500-EVB-Pico: the profile's SPI wiring
        import machine

        spi = machine.SPI(board["spi_id"], board["spi_baud"], mosi=_pin(board["mosi"]),
                          miso=_pin(board["miso"]), sck=_pin(board["sck"]))
        return network.WIZNET5K(spi, _pin(board["cs"]), _pin(board["rst"]))
    ap = network.WLAN(network.AP_IF)  # the AP and its built-in DHCP server stay off
    ap.active(False)
    return network.WLAN(network.STA_IF)


class Link:
    """The serving interface: bring-up with bounded waits, reconnect after a drop."""

    def __init__(self, board, addr):
        self.board = board
        self.kind = board.get("network", "wlan")
        self.addr = addr
        mask = board.get("netmask", "255.255.255.0")
        gw = board.get("gateway", addr)
        self.ifcfg = (addr, mask, gw, board.get("dns", gw))
        self.timeout = board.get("link_timeout_s", 20)
        self.attempts = board.get("link_attempts", 5)
        self.nic = None
        self.drops = 0

    def _join(self):
        if self.kind == "wlan":
            if "ssid" not in self.board:
                raise ValueError("board profile: wlan needs ssid")
            self.nic.connect(self.board["ssid"], self.board.get("password", ""))

    def up(self):
        """Bring the interface up; False after link_attempts waits of link_timeout_s."""
        self.nic = make_nic(self.board)
        self.nic.active(True)
        self.nic.ifconfig(self.ifcfg)
        for attempt in range(self.attempts):
            self._join()
            deadline = time.ticks_add(time.ticks_ms(), self.timeout * 1000)
            while time.ticks_diff(deadline, time.ticks_ms()) > 0:
                if self.nic.isconnected():
                    have = self.nic.ifconfig()[0]
                    if have != self.addr:
                        log("interface has %s, config server_id is %s" % (have, self.addr))
                    return True
                time.sleep_ms(200)
            log("no link after %d s (attempt %d of %d)" % (self.timeout, attempt + 1, self.attempts))
        return False

    async def watch(self):
        """Reconnect after a drop (Wi-Fi re-association; Ethernet just waits)."""
        down_since = None
        while True:
            await asyncio.sleep(2)
            if self.nic.isconnected():
                if down_since is not None:
                    log("link back")
                down_since = None
                continue
            if down_since is None:
                down_since = time.ticks_ms()
                self.drops += 1
                log("link down")
            if self.kind == "wlan":
                try:
                    self.nic.disconnect()
                    self._join()
                except OSError:
                    pass
                await asyncio.sleep(self.timeout)


def ntp_time(host, tries=3):
    """Unix time from NTP, or None."""
    try:
        import ntptime
    except ImportError:
        return None
    ntptime.host = host
    for _ in range(tries):
        try:
            ntptime.settime()
            return time.time() + (946684800 if time.gmtime(0)[0] == 2000 else 0)
        except Exception:
            time.sleep(1)
    return None


# ----------------------------------------------------------------------
# watchdog


async def watchdog(runner, wdt, period_s):
    """Feed the WDT only while the tick task keeps turning and no task died
    (a dead task is a fail-stop anyway; a stuck loop starves the dog)."""
    last = -1
    while runner.running:
        if runner.beat != last:
            last = runner.beat
            wdt.feed()
        await asyncio.sleep(period_s)


# ----------------------------------------------------------------------


def run(config_path=CONFIG, board_path=BOARD):
    os.chdir("/")
    try:
        board = _read_json(board_path)
    except OSError:
        board = {}
    why = safe_mode(board)
    if why:
        log("safe mode (%s): node not started" % why)
        return None
    cfg = cfgmod.load(_read_json(config_path))
    data_dir = cfg.server.data_dir
    makedirs(data_dir)
    last = take_last_stop(data_dir)
    if last:
        log("last run fail-stopped: " + last)

    addr = ip_text(cfg.server.server_id)
    link = Link(board, addr)
    if not link.up():
        record_stop(data_dir, "network: no link after %d attempts" % link.attempts)
        reset()
        return None

    unix_now = None
    ntp_host = board.get("ntp")  # optional site key
    if ntp_host:
        unix_now = ntp_time(ntp_host)
        log("NTP %s: %s" % (ntp_host, "ok" if unix_now else "no answer, time from the partner"))
    # live changes edit the document and write it back (runtime/cfgfile.py);
    # it is read again when one is made rather than kept on the heap
    node = Node(cfg, doc_source=lambda: _read_json(config_path))
    store = LeaseStore(data_dir)
    stats = store.load(node.tables_by_scope(), node.restore_meta, node.layout_bytes())
    node.after_restore()
    # no battery-backed clock: wall time only from NTP, else from the partner
    # later (an offset the core learns; local time never steps, docs/time.md)
    clock = Clock(node.resume_time(from_unix(unix_now) if unix_now else None))
    node.events.count("restore.records", stats["snap_records"] + stats["log_records"])
    node.events.count("restore.ignored-bytes", stats["ignored"])
    if stats["lost"]:
        node.storage_lost(clock.now())
    from runtime import eventlog
    from runtime.syslog import wall_clock

    wall = wall_clock(node.time, clock)  # Unix seconds once NTP or the partner told the time
    eventlog.install(node, data_dir, wall, clock.now)  # the last run's tail first, then this run's
    if last:
        node.events.emit(clock.now(), ERROR, EV_FAIL_STOP, "last run fail-stopped: " + last)
    srv = cfg.server
    if srv.syslog_address is not None:
        from runtime import syslog

        syslog.install(node, srv, wall)
    gc.collect()
    udp = UdpEndpoint(ip_text(srv.listen_address), srv.listen_port, srv.interface)
    runner = NodeRunner(node, store, clock, udp, srv.server_id, mgmt=mgmt_handler(node),
                        relay_port=srv.relay_port, token=srv.mgmt_token,
                        user_token=srv.mgmt_user_token, config_path=_relative(config_path),
                        mgmt_max=srv.mgmt_max_connections)

    def fail_stop(reason):
        log("FAIL-STOP: " + reason)
        record_stop(data_dir, reason)
        reset()

    runner.on_fail_stop = fail_stop
    runner.extra_tasks.append(("link", link.watch()))
    if board.get("console_mgmt", True):  # the management protocol on the serial console
        from runtime.console import Console, console_gate
        from runtime.aio import fresh_nonce

        console = Console(runner, console_gate(srv.console_password, node.events), fresh_nonce)
        runner.extra_tasks.append(("console", console.run()))
    wdt_ms = board.get("wdt_ms", 30000)
    if wdt_ms:
        import machine

        runner.extra_tasks.append(("watchdog", watchdog(runner, machine.WDT(timeout=wdt_ms), 1)))
    mgmt = (ip_text(srv.mgmt_address), srv.mgmt_port) if srv.mgmt_port else None
    log("node %s: DHCP on %s:%d, %d scope(s), %d relationship(s), free heap %d"
        % (srv.name, ip_text(srv.listen_address), srv.listen_port, len(node.tables),
           len(node.relationships), gc.mem_free()))
    try:
        asyncio.run(runner.serve(mgmt_listen=mgmt))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # startup or the loop itself failed: same rule
        runner.fail_stop("serve: %s: %s" % (type(e).__name__, e))
    return runner
