"""runtime/aio.py: a DHCP reply the socket refuses is not counted as sent.

The node runs in a network namespace of its own with no interface up (a
fresh `unshare --net`), so the kernel has no route for the broadcast an
OFFER goes to: sendto raises ENETUNREACH, the real "no route" case. The
runner must take the reply off tx.offer, count tx.send-error, and log the
cause once however many replies fail the same way; after a send gets
through (here: once loopback is up and a reply goes to 127.0.0.1) the next
failure is logged again. Nothing leaves the namespace. Root only.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.netns

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

SCRIPT = r'''
import json, subprocess
from dhcpfo_host import boardconf
from dhcpfo import events as ev
from dhcpfo.compat import Clock
from dhcpfo.node import Node
from dhcpfo.wire import dhcp as wire
from runtime import aio
from runtime.store import LeaseStore
from runtime.udp import UdpEndpoint
from sim.flash import MemFs

cfg = boardconf.load({"server": {"name": "t", "server_id": "127.80.0.2",
                                 "listen": {"address": "0.0.0.0", "port": 6767}},
                      "scopes": [{"id": "127.80.0.0", "mask": 24,
                                  "ranges": [{"start": "127.80.0.10", "end": "127.80.0.20"}]}]})
node = Node(cfg)
store = LeaseStore("/flash", fs=MemFs())
store.load(node.tables_by_scope(), node.restore_meta)
node.after_restore()
clock = Clock()
udp = UdpEndpoint("0.0.0.0", 6767)
runner = aio.NodeRunner(node, store, clock, udp, bytes((127, 80, 0, 2)), relay_port=6768)
node.start(clock.now())
runner.flush()

def discover(n, giaddr=b"\0\0\0\0"):
    p = wire.Packet(xid=n, chaddr=bytes((2, 0, 0, 0, 0, n)), giaddr=giaddr)
    p.options[wire.OPT_MSG_TYPE] = bytes((wire.DISCOVER,))
    node.handle_dhcp(wire.encode(p), bytes((127, 80, 0, 2)), clock.now())
    runner.flush()

def sent():
    c = node.events.counters
    return {"offer": c.get("tx.offer", 0), "error": c.get("tx.send-error", 0),
            "logged": [e[3] for e in node.events.recent(50, code=ev.EV_SEND_FAIL)]}

out = {}
for n in (1, 2, 3):
    discover(n)  # broadcast OFFERs: no interface, no route
out["down"] = sent()
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
discover(4, giaddr=bytes((127, 80, 0, 1)))  # relayed: the OFFER goes to 127.80.0.1, and gets through
out["relayed"] = sent()
discover(5)  # broadcast again: still no route for it
out["again"] = sent()
udp.close()
print(json.dumps(out))
'''


def test_refused_reply_is_not_counted_as_sent_and_logged_once_per_cause():
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs root, unshare and ip")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(os.path.join(ROOT, d) for d in ("firmware", "host_tools", "tests"))
    r = subprocess.run(["unshare", "--net", sys.executable, "-c", SCRIPT], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    down = out["down"]
    assert down["offer"] == 0 and down["error"] == 3, down
    assert len(down["logged"]) == 1, down  # one cause, logged once
    text = down["logged"][0]
    assert "offer to 255.255.255.255:68 not sent" in text and "unreachable" in text, text
    rel = out["relayed"]
    assert rel["offer"] == 1 and rel["error"] == 3 and len(rel["logged"]) == 1, rel
    again = out["again"]
    assert again["offer"] == 1 and again["error"] == 4 and len(again["logged"]) == 2, again
