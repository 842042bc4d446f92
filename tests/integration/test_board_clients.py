"""firmware/main.py on an emulated board (MicroPython's unix port), serving
real DHCP clients in a network namespace.

The board's flash starts empty and is filled as a deploy does (the firmware
packages, main.py, config.json, board.json); the first boot creates the data
directory. Shown against ISC dhclient and busybox udhcpc: obtain / renew /
release, leases kept across a power cycle, and a lease store that cannot
be written ends in the documented fail-stop: the
DHCPACK that depended on the write is never sent, the board records why,
resets, and the next boot reports it.
"""

import json
import os
import re
import resource

import pytest

from integration.conftest import require
from integration.emuboards import BoardNode, require_micropython
from integration.netns import Dhclient, Lab, LabError, Udhcpc, wait_until
from integration.nodes import PYTHON, node_config, scope

LOADCLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "loadclient.py")

pytestmark = pytest.mark.netns

SERVER = "198.18.0.1"
LAN = "198.18.0.0"
POOL = ("198.18.0.100", "198.18.0.250")
LEASE = 600  # minutes: nothing expires mid-test; dhclient renews early through a client-side T1
DHCLIENT_T1 = "supersede dhcp-renewal-time 2;"


def board_config():
    cfg = node_config("board1", SERVER, [scope(LAN, POOL[0], POOL[1], lease_time=LEASE,
                                               options={"routers": [SERVER]})],
                      "data")
    del cfg["server"]["listen"]["interface"]  # the unix port has no SO_BINDTODEVICE; a board has one netif
    return cfg


@pytest.fixture(scope="module")
def setup():
    require("ip", "dhclient", "busybox")
    require_micropython()
    with Lab() as lab:
        srv = lab.add_host("srv", SERVER + "/24")
        # a board sends limited broadcasts out of its only interface (lwIP's
        # default netif); in the namespace that is the default route
        srv.ip("route", "add", "default", "dev", "eth0")
        board = BoardNode(srv, board_config())
        board.start()
        yield lab, board
        board.kill()


def test_first_boot_creates_the_data_directory(setup):
    lab, board = setup
    assert os.path.isdir(board.data_dir)
    assert os.path.exists(os.path.join(board.data_dir, "laststop.txt"))
    assert "Traceback" not in board.console_text()


def test_watchdog_runs_and_is_fed_while_serving(setup):
    lab, board = setup
    wdt = board.flash + ".emuctl/wdt"

    def feeds():
        parts = open(wdt).read().split()
        return (int(parts[0]), int(parts[1])) if parts else None

    timeout, first = wait_until(feeds, 30, 0.2, "a started machine.WDT")
    assert timeout == board.board["wdt_ms"]
    wait_until(lambda: feeds()[1] >= first + 2, 60, 0.2, "two more feeds")


def test_dhclient_obtain_renew_release(setup):
    lab, board = setup
    host = lab.add_host("dhc")
    c = Dhclient(host, conf_extra=DHCLIENT_T1)
    lease = c.acquire(timeout=60)
    assert lease.event == "BOUND" and lease.server_id == SERVER
    assert lease.lease_time == LEASE and lease.routers == [SERVER]
    row = board.leases(LAN)[lease.ip]
    assert row["state"] == "active" and row["mac"] == host.mac()
    renews = board.counters().get("lease.renew", 0)
    renewed = c.renew(timeout=60)
    assert renewed.ip == lease.ip
    assert board.counters().get("lease.renew", 0) > renews
    rel = c.release(timeout=60)
    assert rel.event == "RELEASE"
    board.wait_lease(LAN, lease.ip, "released", timeout=30)


def test_udhcpc_obtain_renew_release(setup):
    lab, board = setup
    host = lab.add_host("udh")
    c = Udhcpc(host)
    lease = c.acquire(timeout=60)
    assert lease.event == "bound" and lease.server_id == SERVER
    assert board.leases(LAN)[lease.ip]["mac"] == host.mac()
    before = board.counters().get("lease.renew", 0)
    renewed = c.renew(timeout=60)
    assert renewed.event == "renew" and renewed.ip == lease.ip
    assert board.counters().get("lease.renew", 0) >= before + 1  # shared board: other clients may renew too
    rel = c.release(timeout=60)
    assert rel.event == "deconfig"
    board.wait_lease(LAN, lease.ip, "released", timeout=30)
    c.stop()


def test_burst_of_clients_every_datagram_handled(setup):
    """200 clients at once (64 in flight): every one bound, nothing dropped as
    undecodable (datagrams read one by one, never glued together)."""
    lab, board = setup
    host = lab.add_host("burst")
    out = lab.path("burst.jsonl")
    host.exec([PYTHON, LOADCLIENT, "--iface", "eth0", "--count", 120, "--out", out, "--window", 64,
               "--retry", 2.0, "--seconds", 90], timeout=150)
    done = [json.loads(line) for line in open(out) if '"done"' in line][-1]
    assert done["bound"] == 120, done
    # glued datagrams lose all but the first of each read: retransmissions pile up
    assert done["retry"] <= 120, done
    drops = dict((k, v) for k, v in board.counters().items() if k.startswith("drop.") and k != "drop.overload")
    assert drops == {}, drops


def test_power_cycle_keeps_leases(setup):
    lab, board = setup
    h1, h2 = lab.add_host("pc1"), lab.add_host("pc2")
    l1 = Udhcpc(h1).acquire(timeout=60)
    u2 = Udhcpc(h2)
    l2 = u2.acquire(timeout=60)
    before = board.leases(LAN)
    board.kill()  # power off: no shutdown code runs
    board.start()
    after = board.leases(LAN)
    for ip in (l1.ip, l2.ip):
        assert after[ip]["state"] == "active" and after[ip]["mac"] == before[ip]["mac"], ip
    assert board.counters().get("restore.records", 0) >= 2
    renewed = u2.renew(timeout=60)  # the rebooted board ACKs the unicast renewal
    assert renewed.ip == l2.ip
    u2.stop()


def test_failed_lease_write_is_a_fail_stop_not_a_zombie(setup):
    """The lease store's writes start failing (the interpreter's file size
    limit is set below the log's next record: write() fails with EFBIG, as a
    full flash would): no DHCPACK that depended on the write leaves, the
    board records why in data/laststop.txt, resets, and the next boot
    reports the reason and serves again."""
    lab, board = setup
    offset = board.log_size()
    log_file = os.path.join(board.data_dir, "log")
    pid = int(open(board.flash + ".emuctl/pid").read())
    limit = max(os.path.getsize(log_file), 300)  # laststop.txt (240 bytes) still fits
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, limit))
    hosts, leased, failed = [], [], None
    for i in range(40):  # each new client appends records; the log reaches the limit
        host = lab.add_host("fs%d" % i)
        hosts.append(host)
        try:
            leased.append((host, Udhcpc(host, tries=2).acquire(timeout=20)))
        except LabError:
            pass
        m = re.search(r"FAIL-STOP: ([^\r\n]+)", board.console_text(offset))
        if m:
            failed = m.group(1)
            break
    assert failed is not None, board.console_text(offset)[-2000:]
    assert "lease store commit failed" in failed and "27" in failed, failed  # EFBIG
    board.wait_console(r"emuboard: machine\.reset\(\)", 60, offset)
    # every client told "yes" before the failure has its binding on flash:
    # the reboot reports the stop and restores them
    board.wait_console(r"last run fail-stopped: lease store commit failed", 90, offset)

    def serves():
        try:
            return board.call("status", timeout=2)
        except LabError:
            return None

    wait_until(serves, 90, 0.5, "board serves again")
    rows = board.leases(LAN)
    for host, lease in leased:
        assert rows[lease.ip]["mac"] == host.mac() and rows[lease.ip]["state"] == "active", lease
    events = board.call("get-events")  # the report is also an event for management
    assert "fail-stopped" in str(events)
    # and it serves new clients again
    lease = Udhcpc(lab.add_host("after")).acquire(timeout=60)
    assert board.leases(LAN)[lease.ip]["state"] == "active"
