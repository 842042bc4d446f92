"""dhcpfo in the benchmark: a single node and a load-balance failover pair.

Same topology, pool and lease time as the reference servers
(bench/refservers.py). Leases are durable: each loop turn's records are
flushed and fsynced before that turn's replies leave (group commit).
"""

import os

from refservers import (LEASE_TIME, POOL_HI, POOL_LO, PREFIX_LEN, SERVER_A, SERVER_B, Server,
                        register)
from integration.netns import wait_until
from integration.nodes import Node, node_config, relationship, scope

SCOPE = "198.18.0.0"


def _scope():
    return scope(SCOPE, POOL_LO, POOL_HI, mask=PREFIX_LEN, lease_time=LEASE_TIME)


@register
class Dhcpfo(Server):
    name = "dhcpfo"
    describe = "dhcpfo node on CPython, durable lease log (fsync per loop turn)"
    order = 1
    tools = ()

    def __init__(self):
        self.n = None

    def start(self, lab, host):
        cfg = node_config("bench", SERVER_A, [_scope()], lab.path("dhcpfo-a"))
        self.n = Node(host, cfg, name="dhcpfo")
        self.n.start(timeout=60)

    def stop(self):
        if self.n:
            self.n.stop()

    def logs(self):
        return [self.n.log_path] if self.n else []


@register
class DhcpfoPair(Server):
    name = "dhcpfo-pair"
    describe = "dhcpfo load-balance pair (50/50), durable, lazy binding updates"
    order = 2
    tools = ()
    ready_timeout = 120

    def __init__(self):
        self.a = self.b = None

    def start(self, lab, host):
        hostb = lab.add_host("srvb", "%s/%d" % (SERVER_B, PREFIX_LEN))
        rel = dict(mclt=LEASE_TIME, load_balance_percent=50, max_unacked=100)
        ca = node_config("bench-a", SERVER_A, [_scope()], lab.path("dhcpfo-a"),
                         failover=[relationship("bench", "primary", SERVER_A, SERVER_B, [SCOPE], **rel)])
        cb = node_config("bench-b", SERVER_B, [_scope()], lab.path("dhcpfo-b"),
                         failover=[relationship("bench", "secondary", SERVER_B, SERVER_A, [SCOPE], **rel)])
        self.a = Node(host, ca, name="dhcpfo-primary")
        self.b = Node(hostb, cb, name="dhcpfo-secondary")
        self.a.start(timeout=60)
        self.b.start(timeout=60)

        def balanced():
            for n in (self.a, self.b):
                rel = n.call("get-failover")["relationships"][0]
                if rel["state"] != "normal":
                    return False
            st = self.b.call("get-scope-statistics")["scopes"][0]
            return st.get("free_this_server", 0) >= POOL_SIZE_HALF_MIN

        wait_until(balanced, self.ready_timeout, 0.5, "dhcpfo pair normal and balanced")

    def stop(self):
        for n in (self.a, self.b):
            if n:
                n.stop()

    def logs(self):
        return [n.log_path for n in (self.a, self.b) if n]


POOL_SIZE_HALF_MIN = 30000  # the secondary holds (about) half of 65,279 addresses
os.environ.setdefault("DHCPFO_BENCH", "1")
