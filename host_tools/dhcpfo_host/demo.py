"""`make run`: a failover pair of emulated boards serving demo clients.

Two `dhcpfo node` processes (the same firmware a board runs, on CPython)
form a load-balance relationship over loopback; a loopback relay agent
forwards a population of virtual clients' DHCP traffic to both, as an
"ip helper-address" with two servers would. Every address involved is in
127.0.0.0/8, so nothing leaves the machine and no root is needed.
"""

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from dhcpfo_host import mgmtclient
from dhcpfo_host.vclients import Relay

NODES = (("board-a", "127.77.1.1", "primary"), ("board-b", "127.77.1.2", "secondary"))
DHCP_PORT = 16767  # unprivileged stand-in for 67
RELAY_PORT = 16768  # the relay's own port (relayed replies come back here)
FO_PORT = 16647  # unprivileged stand-in for 647
MGMT_PORTS = (16471, 16472)
GIADDR = "127.77.0.1"


def node_config(i, data_dir, mclt=300, clients_subnet="127.77.0.0"):
    name, addr, role = NODES[i]
    partner = NODES[1 - i][1]
    return {
        "server": {
            "name": name,
            "server_id": addr,
            "listen": {"address": addr, "port": DHCP_PORT, "relay_port": RELAY_PORT},
            "data_dir": data_dir,
            "mgmt": {"address": "127.0.0.1", "port": MGMT_PORTS[i]},
            "options": {"domain-name-servers": ["127.77.0.53"], "domain-name": "demo.example"},
        },
        "scopes": [{
            "id": clients_subnet, "mask": 24, "name": "demo", "lease_time": 120,
            "ranges": [{"start": "127.77.0.100", "end": "127.77.0.199"}],
            "options": {"routers": [GIADDR]},
        }],
        "failover": [{
            "name": "demo-pair", "role": role, "mode": "load-balance",
            "local": {"address": addr, "port": FO_PORT},
            "partner": {"address": partner, "port": FO_PORT},
            "scopes": [clients_subnet],
            "mclt": mclt, "load_balance_percent": 50,
            "shared_secret": "demo-secret",
        }],
    }


def start_node(cfg_path, log_path):
    log = open(log_path, "ab")
    return subprocess.Popen([sys.executable, "-m", "dhcpfo_host.cli", "node", "--config", cfg_path],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_node(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def show(relay, elapsed):
    lines = ["", "== dhcpfo demo, t=%3ds ==" % elapsed]
    for i, (name, addr, role) in enumerate(NODES):
        try:
            st = mgmtclient.call("127.0.0.1", MGMT_PORTS[i], {"cmd": "get-failover"}, timeout=1.0)
            rel = st["relationships"][0]
            stats = mgmtclient.call("127.0.0.1", MGMT_PORTS[i], {"cmd": "get-scope-statistics"}, timeout=1.0)
            sc = stats["scopes"][0]
            lines.append("%-8s %-12s %-9s state %-26s partner %-26s in use %3d, own free %3d" % (
                name, addr, role, rel["state"], rel["partner_state"], sc["in_use"],
                sc.get("free_this_server", sc["free"])))
        except (OSError, ValueError, KeyError) as e:
            lines.append("%-8s %-12s %-9s (not answering: %s)" % (name, addr, role, e))
    lines.append("clients served: " + ", ".join("%s: %d ACKs" % kv for kv in sorted(relay.served_by.items())))
    for mac, state, ip, server, lease in relay.table():
        lines.append("  %s  %-10s %-15s from %-12s lease %ds" % (mac, state, ip, server, lease))
    print("\n".join(lines), flush=True)


def _stop_on_signal(signum, frame):
    raise KeyboardInterrupt


def main(seconds=None, clients=8, keep=False):
    # Ctrl-C (and SIGTERM from a supervisor) end the demo cleanly, even when
    # started without job control, where SIGINT arrives ignored
    signal.signal(signal.SIGINT, _stop_on_signal)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    work = tempfile.mkdtemp(prefix="dhcpfo-demo-")
    procs = []
    try:
        for i in range(2):
            d = os.path.join(work, NODES[i][0])
            os.makedirs(d)
            cfg = os.path.join(work, NODES[i][0] + ".json")
            with open(cfg, "w") as f:
                json.dump(node_config(i, d), f, indent=1)
            procs.append(start_node(cfg, os.path.join(work, NODES[i][0] + ".log")))
        print("dhcpfo demo: two emulated boards (%s) in a load-balance pair; logs and leases in %s"
              % (", ".join(n[0] for n in NODES), work), flush=True)
        print("Ctrl-C stops the demo.", flush=True)
        time.sleep(1.0)
        for p in procs:
            if p.poll() is not None:
                print("a node failed to start; its log:", flush=True)
                for i in range(2):
                    print(open(os.path.join(work, NODES[i][0] + ".log")).read())
                return 1
        relay = Relay(GIADDR, RELAY_PORT, [(n[1], DHCP_PORT) for n in NODES], count=clients)
        relay.open()
        last = [-10.0]

        def tick(elapsed):
            if elapsed - last[0] >= 5:
                last[0] = elapsed
                show(relay, int(elapsed))

        try:
            asyncio.run(relay.run(seconds if seconds else 10 ** 9, 0.5, tick))
        except KeyboardInterrupt:
            pass
        finally:
            relay.close()
        show(relay, int(last[0]))
        return 0
    finally:
        for p in procs:
            stop_node(p)
        print("dhcpfo demo stopped.", flush=True)
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
