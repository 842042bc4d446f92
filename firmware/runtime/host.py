# runtime/host.py - run a node on CPython (a Linux box, the demo, the tests).
#
# Builds the pieces from a config file, restores the lease log, and runs the
# shared asyncio driver until SIGINT/SIGTERM. Everything here is glue.

import asyncio
import os
import signal
import sys

from dhcpfo import config as cfgmod
from dhcpfo.compat import Clock, from_unix, wall_now
from dhcpfo.events import LEVEL_NAMES
from dhcpfo.mgmt.commands import Commands
from dhcpfo.node import Node
from runtime.aio import NodeRunner, ip_bytes, ip_text
from runtime.store import LeaseStore
from runtime.udp import UdpEndpoint


def load_config(path):
    """Validate and compile on the host side (a human JSON config, or an already
    compiled one), then load it with the board's loader; on error print every
    problem and exit 2 (nothing applied)."""
    from dhcpfo_host.boardconf import load_file  # host-only: the validator stays off boards

    try:
        return load_file(path)
    except OSError as e:
        print("dhcpfo: cannot read config %s: %s" % (path, e), file=sys.stderr)
        sys.exit(2)
    except cfgmod.ConfigError as e:
        print("dhcpfo: config %s refused:" % path, file=sys.stderr)
        for err in e.errors:
            print("  " + err, file=sys.stderr)
        sys.exit(2)


def build(cfg, data_dir=None, unix_now=None):
    """Node + store + clock, with the lease log replayed into the node. The
    host's clock is trusted wall time; the node's local clock starts where
    the lease log says (Node.resume_time) and never steps afterwards."""
    node = Node(cfg)
    d = data_dir or cfg.server.data_dir
    os.makedirs(d, exist_ok=True)
    store = LeaseStore(d)
    stats = store.load(node.tables_by_scope(), node.restore_meta)
    node.after_restore()
    clock = Clock(node.resume_time(from_unix(unix_now) if unix_now is not None else wall_now()))
    node.events.count("restore.records", stats["snap_records"] + stats["log_records"])
    node.events.count("restore.ignored-bytes", stats["ignored"])
    if stats["lost"]:
        node.storage_lost(clock.now())
    return node, store, clock


def _event_printer(verbose):
    def sink(evt):
        now, level, code, text = evt
        if verbose or level > 0:
            print("[%s %d] %s" % (LEVEL_NAMES[level], code, text), flush=True)

    return sink


def run(config_path, data_dir=None, verbose=False, ready_file=None):
    cfg = load_config(config_path)
    node, store, clock = build(cfg, data_dir)
    node.events.sink = _event_printer(verbose)
    srv = cfg.server
    listen_text = ip_text(srv.listen_address)
    udp = UdpEndpoint(listen_text, srv.listen_port, srv.interface)
    local = srv.listen_address if listen_text != "0.0.0.0" else srv.server_id
    commands = Commands(node, max_page=1 << 20)  # no heap limit here: whole lists in one reply
    runner = NodeRunner(node, store, clock, udp, local, mgmt=commands.handle,
                        relay_port=srv.relay_port, token=srv.mgmt_token,
                        user_token=srv.mgmt_user_token)
    peer_listen = []
    connectors = []
    for rel, rc in zip(node.relationships, cfg.failover):
        peer_listen.append((ip_text(rc.local_address), rc.local_port))
        connectors.append((rel, ip_text(rc.partner_address), rc.partner_port, ip_text(rc.local_address)))
    mgmt_listen = (ip_text(srv.mgmt_address), srv.mgmt_port) if srv.mgmt_port else None

    async def main():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, runner.stop)
        if ready_file:
            loop.call_later(0.2, _write_ready, ready_file, udp.port)
        print("dhcpfo node %s: DHCP on %s:%d, %d scope(s), %d relationship(s), management on %s"
              % (cfg.server.name, listen_text, udp.port, len(node.tables), len(node.relationships),
                 "%s:%d" % mgmt_listen if mgmt_listen else "off"), flush=True)
        await runner.serve(peer_listen=peer_listen, connectors=connectors, mgmt_listen=mgmt_listen)

    runner.on_fail_stop = lambda reason: print("dhcpfo node %s FAIL-STOP: %s" % (cfg.server.name, reason),
                                               file=sys.stderr, flush=True)
    asyncio.run(main())
    udp.close()
    if runner.failed is not None:
        return 3
    print("dhcpfo node %s stopped" % cfg.server.name, flush=True)
    return 0


def _write_ready(path, port):
    with open(path, "w") as f:
        f.write("%d\n" % port)


__all__ = ["run", "build", "load_config", "ip_text"]
