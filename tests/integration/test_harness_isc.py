"""The namespace harness against a real server: ISC dhcpd 4.4.

Proves the harness itself (hosts, bridge, partitions, relay, the two DHCP
clients with our hook script, perfdhcp, clean-up) before any dhcpfo test
relies on it. One lab and one dhcpd serve the whole module; every test adds
its own client host. dhcpd hands out leases far longer than any test step
(a loaded machine must never see one expire mid-test) with a 2 s renewal time
(option 58), so that dhclient still renews at T1 within the test.
"""

import os
import subprocess
import time

import pytest

from integration.conftest import require
from integration.netns import (Dhclient, Dhcpd, Lab, LabError, NS_PREFIX, Udhcpc, dhcpd_subnet,
                               perfdhcp, reap_stale, sh)

pytestmark = pytest.mark.netns

LEASE = 600
RENEW = 2
SERVER = "198.18.0.1"
RELAY_UP = "198.18.0.254"
RELAY_DOWN = "198.18.1.1"
CONF = ("ddns-update-style none;\nauthoritative;\nping-check false;\n"
        "default-lease-time %d;\nmax-lease-time %d;\nmin-lease-time %d;\n" % (LEASE, LEASE, LEASE)
        + "option dhcp-renewal-time %d;\n" % RENEW
        + dhcpd_subnet("198.18.0.0/24", ("198.18.0.100", "198.18.0.199"),
                       routers=SERVER, dns=SERVER)
        + dhcpd_subnet("198.18.1.0/24", ("198.18.1.100", "198.18.1.199"),
                       routers=RELAY_DOWN, dns=SERVER))


@pytest.fixture(scope="module")
def isc():
    require("ip", "dhcpd", "dhclient", "busybox", "dhcrelay", "perfdhcp")
    with Lab() as lab:
        srv = lab.add_host("srv", SERVER + "/24")
        dhcpd = Dhcpd(srv, CONF).start()
        relay = lab.add_relay("relay", RELAY_UP + "/24", RELAY_DOWN + "/24", [srv])
        yield lab, srv, dhcpd, relay


def in_pool(ip, net="198.18.0."):
    return ip.startswith(net) and 100 <= int(ip.rsplit(".", 1)[1]) <= 199


def addrs(host):
    return host.ip("-4", "-o", "addr", "show", "dev", "eth0").stdout


def test_dhclient_acquire_renew_reboot_release(isc):
    lab, srv, dhcpd, _ = isc
    host = lab.add_host("dhc")
    c = Dhclient(host)
    lease = c.acquire()
    assert lease.event == "BOUND"
    assert in_pool(lease.ip)
    assert lease.server_id == SERVER
    assert lease.lease_time == LEASE
    assert lease.routers == [SERVER] and lease.dns == [SERVER]
    assert lease.mask == "255.255.255.0"
    # The hook script put the address on the namespace's interface.
    assert lease.ip + "/24" in addrs(host)
    mac = host.mac()

    # dhclient renews by itself at T1 = RENEW (unicast, from the address).
    renewed = c.renew(timeout=RENEW + 30)
    assert renewed.ip == lease.ip and renewed.server_id == SERVER
    # INIT-REBOOT: a fresh dhclient asks for the address in its lease file.
    rebooted = c.reboot()
    assert rebooted.event == "REBOOT" and rebooted.ip == lease.ip

    rel = c.release()
    assert rel.event == "RELEASE" and rel.env.get("old_ip_address") == lease.ip
    dhcpd.wait_log(r"DHCPRELEASE of %s from %s" % (lease.ip.replace(".", r"\."), mac), 5)
    assert lease.ip not in addrs(host)
    assert dhcpd.leases()[lease.ip]["state"] in ("free", "released")


def test_udhcpc_acquire_renew_release(isc):
    lab, srv, dhcpd, _ = isc
    host = lab.add_host("udh")
    c = Udhcpc(host)
    lease = c.acquire()
    assert lease.event == "bound"
    assert in_pool(lease.ip)
    assert lease.server_id == SERVER and lease.lease_time == LEASE
    assert lease.routers == [SERVER] and lease.dns == [SERVER]
    assert lease.ip + "/24" in addrs(host)
    mac = host.mac()
    ip_rx = lease.ip.replace(".", r"\.")

    before = dhcpd.log().count("DHCPREQUEST for %s from %s" % (lease.ip, mac))
    renewed = c.renew()
    assert renewed.event == "renew" and renewed.ip == lease.ip
    # A renewal is a REQUEST without a server-id ("for IP from MAC").
    assert dhcpd.log().count("DHCPREQUEST for %s from %s" % (lease.ip, mac)) > before

    rel = c.release()
    assert rel.event == "deconfig"
    dhcpd.wait_log(r"DHCPRELEASE of %s from %s" % (ip_rx, mac), 5)
    assert lease.ip not in addrs(host)
    c.stop()


def test_relayed_clients(isc):
    lab, srv, dhcpd, relay = isc
    host = lab.add_host("far", segment=relay.segment)
    lease = Udhcpc(host).acquire()
    assert in_pool(lease.ip, "198.18.1.")
    assert lease.server_id == SERVER
    assert lease.routers == [RELAY_DOWN]
    mac = host.mac()
    dhcpd.wait_log(r"DHCPACK on %s to %s via %s" % (lease.ip.replace(".", r"\."), mac,
                                                     RELAY_DOWN.replace(".", r"\.")), 5)
    # dhclient through the same relay, on another host of that segment.
    host2 = lab.add_host("far2", segment=relay.segment)
    lease2 = Dhclient(host2).acquire()
    assert in_pool(lease2.ip, "198.18.1.") and lease2.ip != lease.ip
    assert lease2.routers == [RELAY_DOWN]


def test_partition_blocks_then_heals(isc):
    lab, srv, dhcpd, _ = isc
    host = lab.add_host("cut")
    lab.link_down(host)
    c = Udhcpc(host, tries=2)
    with pytest.raises(LabError):
        c.acquire(timeout=8)
    assert c.proc.wait(5) != 0          # -n: udhcpc gave up
    lab.link_up(host)
    lease = Udhcpc(host).acquire()
    assert in_pool(lease.ip)


def test_perfdhcp_runner(isc):
    lab, srv, dhcpd, _ = isc
    host = lab.add_host("perf", "198.18.0.2/24")
    res = perfdhcp(host, rate=50, clients=40, duration=2)
    assert res.discovers >= 50
    assert res.acks > 0 and res.offers >= res.acks
    assert res.rate > 5
    assert "DISCOVER-OFFER" in res.stats and "REQUEST-ACK" in res.stats


def test_lab_teardown_leaves_nothing():
    require("ip")
    lab = Lab()
    with lab:
        h = lab.add_host("a", "198.18.0.10/24")
        lab.add_host("b", "198.18.0.11/24")
        ping = h.exec(["busybox", "ping", "-c", "1", "-W", "2", "198.18.0.11"])
        assert ping.returncode == 0
        lab.link_down(h)
        assert h.exec(["busybox", "ping", "-c", "1", "-W", "1", "198.18.0.11"]).returncode != 0
        lab.link_up(h)
        # The bridge forwards again at once (no STP delay).
        deadline = time.monotonic() + 5
        while h.exec(["busybox", "ping", "-c", "1", "-W", "1", "198.18.0.11"]).returncode != 0:
            assert time.monotonic() < deadline
        sleeper = h.run(["sleep", "60"])
        names = [lab.switch, h.ns]
    assert sleeper.poll() is not None
    listed = sh(["ip", "netns", "list"]).stdout
    assert not any(n in listed.split() for n in names)
    assert not os.path.exists(lab.workdir)


def test_reap_stale_removes_dead_runs_namespaces():
    require("ip")
    dead = subprocess.Popen(["true"])
    dead.wait()
    ns = "%s%dx1zz" % (NS_PREFIX, dead.pid)
    sh(["ip", "netns", "add", ns])
    stray = subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "60"])
    try:
        time.sleep(0.2)
        assert ns in reap_stale()
        assert stray.wait(5) is not None
        assert ns not in sh(["ip", "netns", "list"]).stdout.split()
    finally:
        if stray.poll() is None:
            stray.kill()
        sh(["ip", "netns", "del", ns], check=False)


def test_addresses_outside_the_test_range_are_refused(lab):
    with pytest.raises(LabError):
        lab.add_host("bad", "10.0.0.1/24")
    h = lab.add_host("ok")
    with pytest.raises(LabError):
        h.add_route("192.168.0.0/24", "198.18.0.1")
