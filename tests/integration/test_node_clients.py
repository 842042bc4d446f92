"""One dhcpfo node (the real `dhcpfo node` process) serving real DHCP clients.

The module runs one lab: the node's host `srv` (198.18.0.1/20) on segment
0, a relay host (ISC dhcrelay) leading to a second segment 198.18.16.0/24,
and one fresh client host per test. The node serves two scopes: the
directly attached /20 (with a MAC reservation) and the relayed /24.

What is shown, against ISC dhclient, busybox udhcpc and ISC dhcrelay:
obtain / renew / release for both clients, a reservation honoured, a
relayed client served from the relay's scope, bindings that survive a
SIGTERM restart (same client, same address), and after a SIGKILL in the
middle of a load run every DHCPACK any client received is still an active
binding for that client (the lease log is written before the ACK is sent).
"""

import json
import os
import subprocess
import time

import pytest

from integration.conftest import require
from integration.netns import Dhclient, Lab, LabError, Udhcpc, wait_until
from integration.nodes import PYTHON, Node, node_config, scope

pytestmark = pytest.mark.netns

HERE = os.path.dirname(os.path.abspath(__file__))
LOADCLIENT = os.path.join(HERE, "loadclient.py")

SERVER = "198.18.0.1"
LAN = "198.18.0.0"
LAN_MASK = 20
LAN_POOL = ("198.18.0.100", "198.18.15.250")
LEASE = 120
RELAY_UP = "198.18.0.254"
RELAY_DOWN = "198.18.16.1"
FAR = "198.18.16.0"
FAR_POOL = ("198.18.16.100", "198.18.16.199")
RES_MAC = "02:00:5e:10:00:aa"
RES_ADDR = "198.18.0.120"
FIXED_CID = "dfo-fixed-1"  # dhclient sends it as its client identifier
FIXED_ADDR = "198.18.0.50"  # reserved outside every range: a fixed address
MIN_LEASE, MAX_LEASE = 60, 600  # what a client's dhcp-lease-time (51) is held within
DNS = "198.18.0.53"
# dhclient renews at the T1 it was given; overriding T1 on the client side
# makes it renew within the test while the server's lease stays LEASE long.
DHCLIENT_T1 = "supersede dhcp-renewal-time 2;"


def lab_config(data_dir):
    return node_config(
        "nodeA", SERVER,
        [scope(LAN, LAN_POOL[0], LAN_POOL[1], mask=LAN_MASK, lease_time=LEASE, name="lan",
               options={"routers": [SERVER]}, min_lease_time=MIN_LEASE, max_lease_time=MAX_LEASE,
               reservations=[{"address": RES_ADDR, "mac": RES_MAC, "name": "printer",
                              "options": {"host-name": "printer"}},
                             {"address": FIXED_ADDR, "client_id": FIXED_CID.encode().hex(),
                              "name": "fixed"}]),
         scope(FAR, FAR_POOL[0], FAR_POOL[1], lease_time=LEASE, name="far",
               options={"routers": [RELAY_DOWN]})],
        data_dir,
        options={"domain-name-servers": [DNS], "domain-name": "lab.example"},
    )


class Setup:
    def __init__(self, lab, srv, node, relay):
        self.lab = lab
        self.srv = srv
        self.node = node
        self.relay = relay

    def running_node(self):
        """The node, started again if an earlier test left it down."""
        if not self.node.running():
            self.node.start()
        return self.node


@pytest.fixture(scope="module")
def setup():
    require("ip", "dhclient", "busybox", "dhcrelay")
    with Lab() as lab:
        srv = lab.add_host("srv", "%s/%d" % (SERVER, LAN_MASK))
        node = Node(srv, lab_config(lab.path("nodeA.data")))
        node.start()
        relay = lab.add_relay("relay", "%s/%d" % (RELAY_UP, LAN_MASK), RELAY_DOWN + "/24", [srv])
        yield Setup(lab, srv, node, relay)


def in_range(ip, pool):
    def n(a):
        p = [int(x) for x in a.split(".")]
        return (p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]

    return n(pool[0]) <= n(ip) <= n(pool[1])


def check_lease(lease, pool, mask, router):
    assert lease.ip and in_range(lease.ip, pool), lease
    assert lease.server_id == SERVER
    assert lease.mask == mask
    assert lease.lease_time == LEASE
    assert lease.routers == [router]
    assert lease.dns == [DNS]
    assert lease.domain == "lab.example"


def test_dhclient_obtain_renew_release(setup):
    node = setup.running_node()
    host = setup.lab.add_host("dhc")
    mac = host.mac()
    c = Dhclient(host, conf_extra=DHCLIENT_T1)
    lease = c.acquire()
    assert lease.event == "BOUND"
    check_lease(lease, LAN_POOL, "255.255.240.0", SERVER)
    row = node.leases(LAN)[lease.ip]
    assert row["state"] == "active" and row["mac"] == mac
    assert LEASE - 5 <= row["expires_in"] <= LEASE + 1  # the server keeps a binding 1 s past now + lease

    renews = node.counters().get("lease.renew", 0)
    renewed = c.renew(timeout=10)          # unicast REQUEST from the leased address at T1
    assert renewed.ip == lease.ip and renewed.server_id == SERVER
    assert renewed.lease_time == LEASE
    assert node.counters().get("lease.renew", 0) > renews

    rel = c.release()
    assert rel.event == "RELEASE" and rel.env.get("old_ip_address") == lease.ip
    row = node.wait_lease(LAN, lease.ip, "released")
    assert row["mac"] == mac


def test_udhcpc_obtain_renew_release(setup):
    node = setup.running_node()
    host = setup.lab.add_host("udh")
    mac = host.mac()
    c = Udhcpc(host)
    lease = c.acquire()
    assert lease.event == "bound"
    check_lease(lease, LAN_POOL, "255.255.240.0", SERVER)
    assert node.leases(LAN)[lease.ip]["mac"] == mac

    before = node.counters().get("lease.renew", 0)
    renewed = c.renew()                     # SIGUSR1: unicast renewal
    assert renewed.event == "renew" and renewed.ip == lease.ip
    assert renewed.lease_time == LEASE
    # the node counted a renewal (the node is shared by the module's tests,
    # whose other clients may renew meanwhile, so at least this one)
    assert node.counters().get("lease.renew", 0) >= before + 1
    assert node.leases(LAN)[lease.ip]["mac"] == mac

    rel = c.release()                       # SIGUSR2: DHCPRELEASE
    assert rel.event == "deconfig"
    row = node.wait_lease(LAN, lease.ip, "released")
    assert row["mac"] == mac
    c.stop()


def test_reservation_by_mac(setup):
    node = setup.running_node()
    host = setup.lab.add_host("resv")
    host.ip("link", "set", "eth0", "address", RES_MAC)
    assert host.mac() == RES_MAC
    lease = Udhcpc(host).acquire()
    assert lease.ip == RES_ADDR
    assert lease.env.get("hostname") == "printer"   # the reservation's own option
    check_lease(lease, LAN_POOL, "255.255.240.0", SERVER)
    row = node.leases(LAN)[RES_ADDR]
    assert row["state"] == "active" and row["mac"] == RES_MAC

    # any other client gets a dynamic address, never the reserved one
    other = setup.lab.add_host("resv2")
    other.ip("link", "set", "eth0", "address", "02:00:5e:10:00:ab")
    lease2 = Udhcpc(other).acquire()
    assert lease2.ip != RES_ADDR and in_range(lease2.ip, LAN_POOL)


def test_relayed_client_gets_relay_scope(setup):
    node = setup.running_node()
    host = setup.lab.add_host("far", segment=setup.relay.segment)
    mac = host.mac()
    before = node.counters()
    lease = Udhcpc(host).acquire()
    check_lease(lease, FAR_POOL, "255.255.255.0", RELAY_DOWN)
    row = node.leases(FAR)[lease.ip]
    assert row["state"] == "active" and row["mac"] == mac
    assert node.lease_of(LAN, mac) is None   # nothing taken from the directly attached scope
    after = node.counters()
    assert after.get("tx.offer", 0) > before.get("tx.offer", 0)
    # dhcrelay got the node's replies (sent to giaddr:67) and passed them on
    log = open(setup.relay.proc.log_path, errors="replace").read()
    assert "Forwarded BOOTREPLY for %s to %s" % (mac, lease.ip) in log, log[-2000:]

    # a second client kind through the same relay
    host2 = setup.lab.add_host("far2", segment=setup.relay.segment)
    lease2 = Dhclient(host2).acquire()
    check_lease(lease2, FAR_POOL, "255.255.255.0", RELAY_DOWN)
    assert lease2.ip != lease.ip


def test_restart_keeps_leases(setup):
    node = setup.running_node()
    lab = setup.lab
    h1 = lab.add_host("rst1")
    h2 = lab.add_host("rst2")
    dh = Dhclient(h1)
    ud = Udhcpc(h2)
    l1 = dh.acquire()
    l2 = ud.acquire()
    m1, m2 = h1.mac(), h2.mac()
    before = node.leases(LAN)
    assert before[l1.ip]["mac"] == m1 and before[l2.ip]["mac"] == m2

    t0 = time.monotonic()
    assert node.stop() == 0                # SIGTERM: orderly shutdown
    t_stop = time.monotonic() - t0
    assert "stopped" in node.log()
    node.start()
    pid, t_start = node.starts[-1]

    after = node.leases(LAN)
    for ip, row in before.items():
        assert after[ip]["state"] == row["state"] and after[ip]["mac"] == row["mac"], ip
    assert after[l1.ip]["state"] == "active" and after[l2.ip]["state"] == "active"
    assert after[l1.ip]["expires_in"] > LEASE - 15
    assert node.counters().get("restore.records", 0) > 0

    # udhcpc renews (unicast REQUEST, ciaddr) and is ACKed by the new process
    renewed = ud.renew()
    assert renewed.event == "renew" and renewed.ip == l2.ip
    # dhclient restarted: INIT-REBOOT for the address in its lease file
    rebooted = dh.reboot()
    assert rebooted.event == "REBOOT" and rebooted.ip == l1.ip
    # a brand-new udhcpc process (DISCOVER, no requested address) finds its binding
    ud.stop()
    again = Udhcpc(h2).acquire()
    assert again.ip == l2.ip
    dh.exit()
    print("restart: SIGTERM stop %.2fs, start to ready %.2fs (pid %d)" % (t_stop, t_start, pid))


def _acks(path):
    acks = []
    done = None
    with open(path) as f:
        for line in f:
            if not line.endswith("\n"):
                break
            rec = json.loads(line)
            if rec["ev"] == "ack":
                acks.append(rec)
            elif rec["ev"] == "done":
                done = rec
    return acks, done


def test_sigkill_under_load_loses_no_ack(setup):
    node = setup.running_node()
    lab = setup.lab
    host = lab.add_host("load")
    out = lab.path("load.acks.jsonl")
    count = 3000
    proc = host.run_logged([PYTHON, LOADCLIENT, "--iface", "eth0", "--count", count, "--out", out,
                            "--window", 64, "--retry", 0.5, "--seconds", 40], "loadclient")

    def acked(n):
        def pred():
            if proc.poll() is not None:
                raise LabError("load client exited early (%s): %s"
                               % (proc.returncode, open(proc.log_path).read()[-800:]))
            try:
                with open(out, "rb") as f:
                    return f.read().count(b'"ev": "ack"') >= n
            except FileNotFoundError:
                return False

        return pred

    wait_until(acked(count // 3), 20, 0.005, "a third of the load ACKed")
    t_kill = time.monotonic()
    node.kill()
    at_kill = len(_acks(out)[0])
    node.start()
    _, t_start = node.starts[-1]
    down = time.monotonic() - t_kill
    try:
        proc.wait(45)
    except subprocess.TimeoutExpired:
        host.stop(proc)
        raise
    acks, done = _acks(out)
    assert done is not None, open(proc.log_path).read()[-800:]
    assert done["bound"] == count, done
    assert at_kill < count, "the node was killed after the run (too fast to test)"
    assert done["retry"] > 0            # exchanges were in flight when the node died

    # every (mac, address) any client was promised is in the restarted node
    table = node.leases(LAN, state="active")
    lost = [a for a in acks if table.get(a["ip"], {}).get("mac") != a["mac"]]
    assert not lost, "ACKed but not in the restarted node: %s" % lost[:5]
    # and no address was promised to two clients
    owner = {}
    for a in acks:
        assert owner.setdefault(a["ip"], a["mac"]) == a["mac"], "address %s to two clients" % a["ip"]
        assert a["ip"] != RES_ADDR
        assert in_range(a["ip"], LAN_POOL)
    assert len(owner) == count

    span = acks[at_kill - 1]["t"] - acks[0]["t"]
    rate = (at_kill - 1) / span if span > 0 else float("inf")
    counters = node.counters()
    assert counters.get("restore.records", 0) >= at_kill  # replayed from the log
    # "renew" in the new process: a REQUEST whose binding the killed process had
    # already made durable but whose ACK it never sent (or a client's own T1 renewal)
    print("load: %d clients, %d ACKs before SIGKILL, %.0f ACKs/s before it; node down %.2fs, "
          "restart to ready %.2fs; client run %.2fs, %d retries, %d NAKs, %d duplicate ACKs; "
          "re-ACKed durable bindings after restart: %d"
          % (count, at_kill, rate, down, t_start, done["seconds"], done["retry"], done["nak"],
             done["dup_ack"], counters.get("lease.renew", 0)))


def test_dhclient_asked_lease_time_and_a_fixed_address_outside_the_ranges(setup):
    """dhclient's `send dhcp-lease-time` (option 51) is granted within
    min/max_lease_time; a client reserved outside every range gets its
    fixed address, with no binding kept for it."""
    node = setup.running_node()
    host = setup.lab.add_host("dhl")
    c = Dhclient(host, conf_extra="send dhcp-lease-time 300;")
    lease = c.acquire()
    assert in_range(lease.ip, LAN_POOL) and lease.lease_time == 300, lease
    row = node.leases(LAN)[lease.ip]
    assert 300 - 5 <= row["expires_in"] <= 300 + 1
    c.exit()
    c = Dhclient(host, conf_extra="send dhcp-lease-time 86400;")
    lease = c.acquire()
    assert lease.lease_time == MAX_LEASE, lease
    c.release()

    host = setup.lab.add_host("dhf")
    c = Dhclient(host, conf_extra='send dhcp-client-identifier "%s";\nsend dhcp-lease-time 30;' % FIXED_CID)
    fixed = node.counters().get("lease.fixed", 0)
    lease = c.acquire()
    assert lease.ip == FIXED_ADDR and lease.lease_time == MIN_LEASE, lease
    assert node.counters().get("lease.fixed", 0) > fixed
    assert FIXED_ADDR not in node.leases(LAN)  # not in the pool: no binding
    c.exit()
