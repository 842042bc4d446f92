"""A failover pair of emulated boards (firmware/main.py on MicroPython's
unix port), serving real DHCP clients (topology: integration/pair.py; the
failover link on its own segment).

In file order on one pair:
1. both boards reach NORMAL and serve the clients of their hash buckets;
2. one board is powered off (its processes SIGKILLed): the other notices,
   serves the dead board's new clients, and its partner address now refuses
   connections (RST), which is an ordinary lost link: the survivor's
   connector retries and it keeps serving, no fail-stop;
3. the powered-off board boots again from its flash: NORMAL again;
4. a lease write that fails on one board is a fail-stop: its failover link
   closes (the partner logs communications down), it resets, reports the
   reason at the next boot and the pair returns to NORMAL.
"""

import os
import re
import resource

import pytest

from integration.conftest import require
from integration.emuboards import BoardNode, require_micropython
from integration.netns import Lab, LabError, wait_until
from integration.pair import SIDS, Pair

pytestmark = pytest.mark.netns

MCLT = 60
LEASE_TIME = 600
EV_COMM_DOWN = 20255


def _board_pair(lab):
    p = Pair(lab, mclt=MCLT, lease_time=LEASE_TIME, max_response_delay=15, lb_max_seconds=3)
    for side in ("a", "b"):
        cfg = p.nodes[side].config
        cfg["server"]["data_dir"] = "data"
        del cfg["server"]["listen"]["interface"]  # one serving netif on a board (no SO_BINDTODEVICE)
        host = p.hosts[side]
        host.ip("route", "add", "default", "dev", "eth0")  # limited broadcasts leave on eth0
        p.nodes[side] = BoardNode(host, cfg, name="board-" + side)
    return p


@pytest.fixture(scope="module")
def pair():
    require("ip", "dhclient", "busybox")
    require_micropython()
    with Lab() as lab:
        p = _board_pair(lab)
        for node in p.nodes.values():
            node.start()
        yield p
        for node in p.nodes.values():
            node.kill()


def _serves(node):
    try:
        return node.call("status", timeout=3)
    except LabError:
        return None


def _tcp_rsts(host):
    """RST segments the host's kernel sent (refused connects among them)."""
    res = host.exec(["cat", "/proc/net/snmp"], timeout=10)
    lines = [ln.split() for ln in res.stdout.splitlines() if ln.startswith("Tcp:")]
    return int(lines[1][lines[0].index("OutRsts")])


def _comm_downs(node):
    evs = node.call("get-events", limit=256)["events"]
    return sum(1 for e in evs if e["code"] == EV_COMM_DOWN)


def test_boards_reach_normal_and_serve_their_buckets(pair):
    p = pair
    p.wait_states({"a": "normal", "b": "normal"}, 120)
    for side in ("a", "b"):
        rel = p.failover(side)
        assert rel["connected"] and rel["partner_state"] == "normal"

    def balanced():
        fa = p.scope_stats("a")["free_this_server"]
        fb = p.scope_stats("b")["free_this_server"]
        return fa > 0 and fb > 0 and (fa, fb)

    wait_until(balanced, 60, 0.5, "pool balance")
    for kind, side in (("udhcpc", "a"), ("udhcpc", "b"), ("dhclient", "a"), ("dhclient", "b")):
        c = p.client(kind, side)
        lease = c.acquire(60)
        assert lease.server_id == SIDS[side], (kind, side, lease)
    assert p.duplicates() == []


def test_power_off_partner_survivor_serves_and_refused_link_is_ordinary(pair):
    p = pair
    p.wait_states({"a": "normal", "b": "normal"}, 120)
    offset = p.a.log_size()
    p.b.kill()
    p.wait_states({"a": "communications-interrupted"}, 60)
    # b's host is up with nothing on port 647: a's connects are refused
    rst0 = _tcp_rsts(p.hosts["b"])
    wait_until(lambda: _tcp_rsts(p.hosts["b"]) >= rst0 + 3, 90, 0.5, "three refused connects from a")
    assert _serves(p.a)
    # the survivor serves a client of the dead board's bucket
    c = p.client("udhcpc", "b")
    lease = c.acquire(90)
    assert lease.server_id == SIDS["a"], lease
    c2 = p.client("dhclient", "b")
    assert c2.acquire(90).server_id == SIDS["a"]
    assert "FAIL-STOP" not in p.a.console_text(offset)
    assert "Traceback" not in p.a.console_text(offset)
    assert p.duplicates(sides=("a",)) == []


def test_powered_off_board_boots_back_to_normal(pair):
    p = pair
    p.b.start()
    p.wait_states({"a": "normal", "b": "normal"}, 180)
    assert p.duplicates() == []


def test_failed_write_on_one_board_closes_its_link_and_partner_takes_over(pair):
    p = pair
    p.wait_states({"a": "normal", "b": "normal"}, 180)
    offset = p.b.log_size()
    downs = _comm_downs(p.a)
    pid = int(open(p.b.flash + ".emuctl/pid").read())
    log_file = os.path.join(p.b.data_dir, "log")
    limit = max(os.path.getsize(log_file), 300)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, limit))
    failed = None
    for _ in range(30):  # b's clients append records until one write fails
        c = p.client("udhcpc", "b", tries=2)
        try:
            c.acquire(20)
        except LabError:
            pass
        m = re.search(r"FAIL-STOP: ([^\r\n]+)", p.b.console_text(offset))
        if m:
            failed = m.group(1)
            break
    assert failed is not None and "lease store commit failed" in failed, p.b.console_text(offset)[-2000:]
    # a saw its link drop (b closed it before resetting), b rebooted and reported why
    wait_until(lambda: _comm_downs(p.a) > downs, 60, 0.5, "communications down on a")
    p.b.wait_console(r"last run fail-stopped: lease store commit failed", 120, offset)
    p.wait_states({"a": "normal", "b": "normal"}, 180)
    assert p.duplicates() == []
