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
from runtime import eventlog, syslog
from runtime.udp import UdpEndpoint


# a management request on a Linux node may carry a whole configuration
# document (import-config: tens of KB) once the session is authenticated;
# before that, and always on a board, aio.MGMT_LINE_MAX (4 KB)
HOST_REQUEST_MAX = 1 << 20


def load_config(path):
    """Validate and compile on the host side (a human JSON config, or an already
    compiled one), then load it with the board's loader; on error print every
    problem and exit 2 (nothing applied)."""
    return load_document(path)[1]


def load_document(path):
    """(compiled document, Config) of a config file, as load_config checks it.
    The node keeps the document: live changes edit it and write it back."""
    from dhcpfo_host.boardconf import load_document_file  # host-only: the validator stays off boards

    try:
        return load_document_file(path)
    except OSError as e:
        print("dhcpfo: cannot read config %s: %s" % (path, e), file=sys.stderr)
        sys.exit(2)
    except cfgmod.ConfigError as e:
        print("dhcpfo: config %s refused:" % path, file=sys.stderr)
        for err in e.errors:
            print("  " + err, file=sys.stderr)
        sys.exit(2)


def build(cfg, data_dir=None, unix_now=None, doc=None):
    """Node + store + clock, with the lease log replayed into the node. The
    host's clock is trusted wall time; the node's local clock starts where
    the lease log says (Node.resume_time) and never steps afterwards. With
    `doc` (the compiled configuration document) the node accepts live changes."""
    node = Node(cfg, doc=doc)
    d = data_dir or cfg.server.data_dir
    os.makedirs(d, exist_ok=True)
    store = LeaseStore(d)
    stats = store.load(node.tables_by_scope(), node.restore_meta, node.layout_bytes())
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
    doc, cfg = load_document(config_path)
    node, store, clock = build(cfg, data_dir, doc=doc)
    wall = syslog.wall_clock(node.time, clock)
    eventlog.install(node, data_dir or cfg.server.data_dir, wall, clock.now)
    node.events.sink = syslog.chain(_event_printer(verbose), node.events.sink)
    srv = cfg.server
    syslog.install(node, srv, wall)
    listen_text = ip_text(srv.listen_address)
    udp = UdpEndpoint(listen_text, srv.listen_port, srv.interface)
    local = srv.listen_address if listen_text != "0.0.0.0" else srv.server_id
    commands = Commands(node, max_page=1 << 20)  # no heap limit here: whole lists in one reply
    runner = NodeRunner(node, store, clock, udp, local, mgmt=commands.handle,
                        relay_port=srv.relay_port, token=srv.mgmt_token,
                        user_token=srv.mgmt_user_token, mgmt_max=srv.mgmt_max_connections,
                        config_path=config_path)  # live changes rewrite the file (compiled form)
    runner.mgmt_line_max = HOST_REQUEST_MAX
    mgmt_listen = (ip_text(srv.mgmt_address), srv.mgmt_port) if srv.mgmt_port else None

    async def main():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, runner.stop)
        loop.add_signal_handler(signal.SIGHUP, reload_config, runner, config_path)
        if ready_file:
            loop.call_later(0.2, _write_ready, ready_file, udp.port)
        print("dhcpfo node %s: DHCP on %s:%d, %d scope(s), %d relationship(s), management on %s"
              % (cfg.server.name, listen_text, udp.port, len(node.tables), len(node.relationships),
                 "%s:%d" % mgmt_listen if mgmt_listen else "off"), flush=True)
        await runner.serve(mgmt_listen=mgmt_listen)

    runner.on_fail_stop = _fail_stop_printer(cfg.server.name)
    try:
        asyncio.run(main())
    except MemoryError:
        # Out of memory in the event loop itself (an asyncio callback, or
        # the loop's own shutdown after a fail-stop): the same fail-stop,
        # with the documented exit status, not a traceback and status 1.
        if runner.failed is None:
            try:
                runner.fail_stop("event loop out of memory")
            except Exception:  # the loop is closed: its sockets close at exit
                pass
    udp.close()
    if runner.failed is not None:
        return 3
    print("dhcpfo node %s stopped" % cfg.server.name, flush=True)
    return 0


def reload_config(runner, config_path):
    """SIGHUP (`systemctl reload`, `kill -HUP`): the configuration file read
    again and applied live with import-config's rules - scopes and server
    options/policies change, anything else that differs (relationships,
    server settings) is refused by name and nothing is applied; a scope with
    active leases is never removed this way (`dhcpfo config import --force`
    does that on purpose). Returns the answer; the outcome is also printed."""
    from dhcpfo_host.boardconf import load_document_file

    try:
        doc = load_document_file(config_path)[0]
    except OSError as e:
        resp = {"ok": False, "error": "cannot read %s: %s" % (config_path, e)}
    except cfgmod.ConfigError as e:
        resp = {"ok": False, "error": "%s refused: %s" % (config_path, "; ".join(e.errors))}
    else:
        resp = runner.mgmt({"cmd": "import-config", "config": doc}, runner.clock.now(), "administrator")
        runner.flush()  # the change is durable (file rewritten, leases logged) like any command's
    if resp.get("ok"):
        print("dhcpfo: configuration reloaded from %s" % config_path, flush=True)
    else:
        print("dhcpfo: configuration reload refused, nothing changed: %s" % resp.get("error"),
              file=sys.stderr, flush=True)
    return resp


def _fail_stop_printer(name):
    """on_fail_stop for CPython: the reason on stderr. Out of memory, even
    formatting it can fail; then a line built at start-up is written."""
    fallback = ("dhcpfo node %s FAIL-STOP: out of memory (reason not printable)\n" % name).encode()

    def report(reason):
        try:
            print("dhcpfo node %s FAIL-STOP: %s" % (name, reason), file=sys.stderr, flush=True)
        except MemoryError:
            try:
                os.write(2, fallback)
            except OSError:
                pass

    return report


def _write_ready(path, port):
    with open(path, "w") as f:
        f.write("%d\n" % port)


__all__ = ["run", "build", "load_config", "reload_config", "ip_text"]
