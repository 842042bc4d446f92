"""dhcpfo in the benchmark: a single node and a load-balance failover pair.

Same topology, pool and lease time as the reference servers
(bench/refservers.py), read from there at each start (the takeover bench
shrinks the pool). Leases are durable: each loop turn's records are
flushed and fsynced before that turn's replies leave (group commit).
"""

import os
import shutil
import time

import refservers as R
from integration.netns import wait_until
from integration.nodes import Node, node_config, relationship, scope

SCOPE = "198.18.0.0"


# Kea and ISC dhcpd have no per-relay rate limit; dhcpfo's default (2000
# messages/s from one giaddr, docs/config.md "Abuse") would cap perfdhcp,
# one relay for every client, at about 1,000 DORA/s. Off here, stated in
# bench/README.md.
SERVER_EXTRA = {"abuse": {"relay_rate": 0}}


def _scope():
    return scope(SCOPE, R.POOL_LO, R.POOL_HI, mask=R.PREFIX_LEN, lease_time=R.LEASE_TIME)


@R.register
class Dhcpfo(R.Server):
    name = "dhcpfo"
    describe = "dhcpfo node on CPython, durable lease log (fsync per loop turn)"
    order = 1
    tools = ()

    def __init__(self):
        self.n = None

    def start(self, lab, host):
        cfg = node_config("bench", R.SERVER_A, [_scope()], lab.path("dhcpfo-a"), **SERVER_EXTRA)
        self.n = Node(host, cfg, name="dhcpfo")
        self.n.start(timeout=60)

    def stop(self):
        if self.n:
            self.n.stop()

    def logs(self):
        return [self.n.log_path] if self.n else []


@R.register
class DhcpfoPair(R.Pair):
    name = "dhcpfo-pair"
    describe = "dhcpfo load-balance pair (50/50), durable, lazy binding updates"
    order = 2
    tools = ()
    ready_timeout = 300

    def __init__(self):
        self.a = self.b = None

    def start(self, lab, host):
        self.lab = lab
        self.hostb = lab.add_host("srvb", "%s/%d" % (R.SERVER_B, R.PREFIX_LEN))
        rel = dict(mclt=R.LEASE_TIME, load_balance_percent=50, max_unacked=R.WINDOW,
                   max_response_delay=R.MAX_RESPONSE_DELAY, load_balance_max_seconds=R.LB_MAX_SECONDS)
        ca = node_config("bench-a", R.SERVER_A, [_scope()], lab.path("dhcpfo-a"), **SERVER_EXTRA,
                         failover=[relationship("bench", "primary", R.SERVER_A, R.SERVER_B, [SCOPE], **rel)])
        cb = node_config("bench-b", R.SERVER_B, [_scope()], lab.path("dhcpfo-b"), **SERVER_EXTRA,
                         failover=[relationship("bench", "secondary", R.SERVER_B, R.SERVER_A, [SCOPE], **rel)])
        snap = R.snapshot_dir(self.name)
        saved = snap and os.path.isdir(snap)
        if saved:   # the balanced state of the first start (refservers.SNAPSHOT_DIR)
            for side, cfg in (("a", ca), ("b", cb)):
                shutil.rmtree(cfg["server"]["data_dir"], ignore_errors=True)
                shutil.copytree(os.path.join(snap, side), cfg["server"]["data_dir"])
        self.a = Node(host, ca, name="dhcpfo-primary")
        self.b = Node(self.hostb, cb, name="dhcpfo-secondary")
        self._start_balanced()
        if snap and not saved:
            for n in (self.a, self.b):
                n.stop()
            os.makedirs(snap)
            for side, n in (("a", self.a), ("b", self.b)):
                shutil.copytree(n.data_dir, os.path.join(snap, side))
            self._start_balanced()

    def _start_balanced(self):
        self.a.start(timeout=60)
        self.b.start(timeout=60)
        half = R.POOL_SIZE * 45 // 100   # the secondary holds (about) half the pool

        def balanced():
            if self.state(self.a) != "normal" or self.state(self.b) != "normal":
                return False
            st = self.b.call("get-scope-statistics")["scopes"][0]
            return st.get("free_this_server", 0) >= half

        wait_until(balanced, self.ready_timeout, 0.5, "dhcpfo pair normal and balanced")

    @staticmethod
    def state(node):
        return node.call("get-failover")["relationships"][0]["state"]

    def partner_pid(self):
        return self.b.pid

    def survivor_knows(self, ip):
        return ip in self.a.leases(SCOPE, state="active")

    def resync(self, timeout=180):
        """The secondary restarts with empty storage: RECOVER, UPDREQALL, the
        primary's bindings, UPDDONE."""
        self.b.stop()
        shutil.rmtree(self.b.data_dir, ignore_errors=True)
        self.b.write_config()
        t0 = time.monotonic()
        self.b.start(timeout=60)
        wait_until(lambda: self.state(self.b) not in ("recover", "startup", "unknown"),
                   timeout, 0.05, "dhcpfo secondary out of RECOVER")
        synced = time.monotonic() - t0
        if self.state(self.b) == "recover-wait":
            # A partner that lost its storage waits out the MCLT before it
            # serves again (draft 9.5.2, ISC's recover-wait): no "normal" here.
            return synced, None
        wait_until(lambda: self.state(self.a) == "normal" and self.state(self.b) == "normal",
                   timeout, 0.1, "dhcpfo pair normal after resync")
        return synced, time.monotonic() - t0

    def stop(self):
        for n in (self.a, self.b):
            if n:
                n.stop()

    def logs(self):
        return [n.log_path for n in (self.a, self.b) if n]


os.environ.setdefault("DHCPFO_BENCH", "1")
