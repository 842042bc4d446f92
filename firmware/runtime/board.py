# runtime/board.py - run a node on a MicroPython board (ESP32, RP2040).
#
# Glue only: bring the network interface up with the static address the
# node serves from, turn the board's own AP-mode DHCP server off, and start
# the shared asyncio driver. Everything else is the same code as on CPython.
#
# The board reads /config.json (the node config, docs/config.md) and
# /board.json (which interface and pins, boards/<name>/board.json).

import gc

from dhcpfo import config as cfgmod
from dhcpfo.compat import Clock, asyncio, json_loads
from dhcpfo.mgmt.commands import Commands
from dhcpfo.node import Node
from runtime.aio import NodeRunner, ip_text
from runtime.store import LeaseStore
from runtime.udp import UdpEndpoint


def _read_json(path):
    with open(path) as f:
        return json_loads(f.read())


def network_up(board, cfg):
    """Bring up the serving interface with a static address (a DHCP server
    does not ask DHCP for its own address). Returns the interface object."""
    import network

    kind = board.get("network", "wlan")
    addr = ip_text(cfg.server.server_id)
    mask = board.get("netmask", "255.255.255.0")
    gw = board.get("gateway", addr)
    dns = board.get("dns", gw)
    if kind == "lan":  # ESP32 + LAN8720 (WT32-ETH01, Olimex ESP32-POE)
        import machine

        nic = network.LAN(mdc=machine.Pin(board["mdc"]), mdio=machine.Pin(board["mdio"]),
                          power=machine.Pin(board["power"]) if board.get("power") is not None else None,
                          phy_type=getattr(network, board.get("phy", "PHY_LAN8720")),
                          phy_addr=board.get("phy_addr", 0))
    elif kind == "wiznet":  # W5500-EVB-Pico
        import machine

        spi = machine.SPI(0, 2000000, mosi=machine.Pin(19), miso=machine.Pin(16), sck=machine.Pin(18))
        nic = network.WIZNET5K(spi, machine.Pin(17), machine.Pin(20))
    else:  # Wi-Fi station; the AP (and its built-in DHCP server) stays off
        ap = network.WLAN(network.AP_IF)
        ap.active(False)
        nic = network.WLAN(network.STA_IF)
    nic.active(True)
    nic.ifconfig((addr, mask, gw, dns))
    if kind == "wlan":
        nic.connect(board["ssid"], board.get("password", ""))
    return nic


def run(config_path="/config.json", board_path="/board.json"):
    cfg = cfgmod.load(_read_json(config_path))
    try:
        board = _read_json(board_path)
    except OSError:
        board = {}
    network_up(board, cfg)
    clock = Clock()
    node = Node(cfg)
    store = LeaseStore(cfg.server.data_dir)
    stats = store.load(node.tables_by_scope(), node.restore_meta)
    node.after_restore()
    if stats["lost"]:
        node.storage_lost(clock.now())
    for rel in node.relationships:
        rel.clock = clock
    gc.collect()
    srv = cfg.server
    udp = UdpEndpoint(ip_text(srv.listen_address), srv.listen_port, srv.interface)
    runner = NodeRunner(node, store, clock, udp, srv.server_id, mgmt=Commands(node).handle,
                        relay_port=srv.relay_port, token=srv.mgmt_token)
    peers = [(ip_text(rc.local_address), rc.local_port) for rc in cfg.failover]
    connectors = [(rel, ip_text(rc.partner_address), rc.partner_port, None)
                  for rel, rc in zip(node.relationships, cfg.failover)]
    mgmt = (ip_text(srv.mgmt_address), srv.mgmt_port) if srv.mgmt_port else None
    asyncio.run(runner.serve(peer_listen=peers, connectors=connectors, mgmt_listen=mgmt))
