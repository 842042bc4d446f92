"""A dhcpfo failover pair in a namespace lab, with real DHCP clients.

Topology (two segments, so the failover link can be cut without cutting
the clients off):

    segment 0 (clients)     a:eth0 198.18.0.2   b:eth0 198.18.0.3   c1, c2, ... (DHCP clients)
    segment 1 (failover)    a:eth1 198.18.2.2   b:eth1 198.18.2.3

`a` is the primary, `b` the secondary, in a load-balance relationship
(50 %) over one scope, 198.18.0.0/24 with the pool .100-.199. Each node
serves DHCP on 0.0.0.0:67 bound to eth0 and speaks failover on its eth1
address, port 647. The node processes are `integration.nodes.Node`.

Clients get chosen MACs so a test knows which server's hash bucket a client
falls in (`Pair.mac_for`): RFC 3074 over the client identifier when the
client sends one (udhcpc sends 01 + MAC), else over the MAC (dhclient).
`Pair.duplicates` is the safety check: no address held by two clients,
looking at both servers' tables and at what every client was told.
"""

import os
import time

from dhcpfo.failover import hashing
from integration.netns import Dhclient, LabError, Udhcpc, wait_until
from integration.nodes import Node, node_config, relationship, scope

SCOPE = "198.18.0.0"
POOL = ("198.18.0.100", "198.18.0.199")
POOL_SIZE = 100
REL = "lab-pair"
SIDS = {"a": "198.18.0.2", "b": "198.18.0.3"}
FO_ADDRS = {"a": "198.18.2.2", "b": "198.18.2.3"}
ROLES = {"a": "primary", "b": "secondary"}

# dhclient hook events that mean "the client now holds new_ip_address", and
# udhcpc's; and those that mean it holds nothing any more.
_HOLD = {"BOUND", "RENEW", "REBIND", "REBOOT", "bound", "renew"}
_DROP = {"EXPIRE", "FAIL", "RELEASE", "STOP", "PREINIT", "deconfig", "leasefail", "nak"}


def client_key(kind, mac):
    """The bytes a server hashes for this client (draft §9.8.2, RFC 3074)."""
    raw = bytes(int(x, 16) for x in mac.split(":"))
    return b"\x01" + raw if kind == "udhcpc" else raw


def primary_serves(kind, mac, percent=50):
    """Does the primary answer this client in NORMAL (load balance)?"""
    return hashing.serves(hashing.hba_for_percent(percent), client_key(kind, mac), True)


class Pair:
    """Two dhcpfo nodes in a load-balance relationship plus a client factory."""

    def __init__(self, lab, mclt=20, lease_time=60, max_response_delay=8, lb_max_seconds=3,
                 secret="lab-pair-secret", verbose=True, pool=POOL, node_class=None):
        self.lab = lab
        self.mclt = mclt
        self.lease_time = lease_time
        self.fo_segment = lab.add_segment()
        self.hosts = {}
        self.nodes = {}
        for side in ("a", "b"):
            host = lab.add_host(side, SIDS[side] + "/24", segment=0)
            lab.attach(host, self.fo_segment, "eth1", FO_ADDRS[side] + "/24")
            other = "b" if side == "a" else "a"
            rel = relationship(REL, ROLES[side], FO_ADDRS[side], FO_ADDRS[other], [SCOPE],
                               mode="load-balance", mclt=mclt, load_balance_percent=50,
                               load_balance_max_seconds=lb_max_seconds,
                               max_response_delay=max_response_delay)
            if secret:
                rel["shared_secret"] = secret
            cfg = node_config("node-" + side, SIDS[side],
                              [scope(SCOPE, pool[0], pool[1], lease_time=lease_time,
                                     options={"routers": ["198.18.0.1"]})],
                              lab.path("data-" + side), failover=[rel])
            self.hosts[side] = host
            self.nodes[side] = (node_class or Node)(host, cfg, verbose=verbose)
        self.clients = []
        self._mac_seq = 0
        self._client_seq = 0

    @property
    def a(self):
        return self.nodes["a"]

    @property
    def b(self):
        return self.nodes["b"]

    def side_of_sid(self, sid):
        for side, s in SIDS.items():
            if s == sid:
                return side
        return None

    # -- nodes ---------------------------------------------------------------------

    def start(self, timeout=30):
        """Start both nodes; return seconds until both report NORMAL."""
        t0 = time.monotonic()
        for node in self.nodes.values():
            node.start()
        self.wait_states({"a": "normal", "b": "normal"}, timeout)
        return time.monotonic() - t0

    def failover(self, side, timeout=5):
        return self.nodes[side].call("get-failover", timeout=timeout)["relationships"][0]

    def state(self, side):
        return self.failover(side)["state"]

    def wait_states(self, want, timeout, interval=0.1):
        """Wait until every side in `want` ({side: state or (states)}) is there.
        Returns the seconds waited."""
        t0 = time.monotonic()
        seen = {}

        def ok():
            for side, st in want.items():
                seen[side] = self.state(side)
                if seen[side] not in ((st,) if isinstance(st, str) else st):
                    return False
            return True

        try:
            wait_until(ok, timeout, interval, "states %s" % (want,))
        except LabError as e:
            raise LabError("%s (last seen %s)\n--- a log ---\n%s\n--- b log ---\n%s"
                           % (e, seen, self._tail("a"), self._tail("b"))) from None
        return time.monotonic() - t0

    def _tail(self, side, n=30):
        try:
            return "".join(self.nodes[side].log().splitlines(True)[-n:])
        except OSError:
            return "(no log)"

    def scope_stats(self, side):
        rows = self.nodes[side].call("get-scope-statistics")["scopes"]
        for r in rows:
            if r["scope"] == SCOPE:
                return r
        raise LabError("no scope %s on %s" % (SCOPE, side))

    def active(self, side):
        """{address: mac} of unexpired ACTIVE bindings in a node's table."""
        rows = self.nodes[side].leases(SCOPE, state="active")
        return dict((a, r["mac"]) for a, r in rows.items() if r["expires_in"] > 0)

    # -- clients -------------------------------------------------------------------

    def mac_for(self, kind, side):
        """A fresh locally administered MAC whose client key hashes to `side`."""
        while True:
            self._mac_seq += 1
            n = self._mac_seq
            mac = "02:5e:%02x:%02x:%02x:%02x" % (os.getpid() & 0xFF, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF)
            if primary_serves(kind, mac) == (side == "a"):
                return mac

    def client(self, kind, side=None, mac=None, **kw):
        """A new client namespace on the client segment with a chosen MAC, and
        a Dhclient or Udhcpc in it (not started). `side`: whose hash bucket."""
        if mac is None:
            mac = self.mac_for(kind, side)
        self._client_seq += 1
        host = self.lab.add_host("c%d" % self._client_seq, segment=0)
        host.ip("link", "set", "eth0", "down")
        host.ip("link", "set", "eth0", "address", mac)
        host.ip("link", "set", "eth0", "up")
        if kind == "dhclient":
            c = Dhclient(host, **kw)
        elif kind == "udhcpc":
            c = Udhcpc(host, **kw)
        else:
            raise LabError("unknown client kind " + kind)
        c.mac = mac
        c.side = side if side is not None else ("a" if primary_serves(kind, mac) else "b")
        self.clients.append(c)
        return c

    def timed_acquire(self, c, timeout=None):
        """Start a client and wait for its lease. Returns (lease, seconds from
        start to the hook script's stamp of the lease)."""
        t0 = time.time()
        lease = c.acquire(timeout)
        return lease, int(lease.stamp) / 1e9 - t0

    # -- safety ----------------------------------------------------------------------

    @staticmethod
    def held(c, now=None):
        """(ip, server id, expires at) of what a client holds now, by its hook events, or None."""
        now = time.time() if now is None else now
        cur = None
        for e in c.events():
            if e.event in _HOLD and e.ip:
                t = int(e.stamp) / 1e9
                cur = (e.ip, e.server_id, t + (e.lease_time or 0))
            elif e.event in _DROP:
                cur = None
        if cur is not None and cur[2] <= now:
            return None
        return cur

    def duplicates(self, sides=("a", "b")):
        """Every way an address is held by two clients, as text lines (empty = safe):
        two clients told the same unexpired address; the two servers' tables
        binding one address to different MACs; a client holding an address a
        server binds to another MAC."""
        problems = []
        now = time.time()
        by_ip = {}
        for c in self.clients:
            h = self.held(c, now)
            if h is not None:
                by_ip.setdefault(h[0], []).append((c.mac, h[1]))
        for ip, holders in sorted(by_ip.items()):
            if len(set(m for m, _ in holders)) > 1:
                problems.append("%s held by clients %s" % (ip, holders))
        tables = {}
        for side in sides:
            if self.nodes[side].running():
                tables[side] = self.active(side)
        if len(tables) == 2:
            for ip, mac in tables["a"].items():
                other = tables["b"].get(ip)
                if other is not None and other != mac:
                    problems.append("%s active for %s on a and for %s on b" % (ip, mac, other))
        for ip, holders in by_ip.items():
            for side, tab in tables.items():
                m = tab.get(ip)
                for mac, sid in holders:
                    # a lease cut short by a NAK or expiry on the server is not a
                    # duplicate; a different live MAC on the server is
                    if m is not None and m != mac.lower():
                        problems.append("client %s holds %s (from %s) but %s binds it to %s"
                                        % (mac, ip, sid, side, m))
        return problems

    def disagreements(self, margin=3):
        """Addresses the two tables bind differently: ACTIVE (more than `margin`
        seconds left) on one side but not bound to the same MAC on the other."""
        ta = self.nodes["a"].leases(SCOPE, state="active")
        tb = self.nodes["b"].leases(SCOPE, state="active")
        out = []
        for mine, theirs, name in ((ta, tb, "a"), (tb, ta, "b")):
            for ip, row in mine.items():
                if row["expires_in"] <= margin:
                    continue
                other = theirs.get(ip)
                if other is None or other["mac"] != row["mac"]:
                    out.append("%s: %s active for %s, partner has %s"
                               % (name, ip, row["mac"], other and (other["state"], other["mac"])))
        return out

    def pool(self, side):
        """Addresses a node may hand to new clients from its own pool now
        (FREE on the primary, BACKUP on the secondary)."""
        st = "free" if ROLES[side] == "primary" else "backup"
        return set(self.nodes[side].leases(SCOPE, state=st))

    def wait_synced(self, timeout=10):
        """Wait until neither node has binding updates in flight and the
        tables agree. Returns the seconds waited."""
        t0 = time.monotonic()
        last = []

        def done():
            if any(self.failover(s)["pending_updates"] for s in ("a", "b")):
                return False
            last[:] = self.disagreements()
            return not last

        try:
            wait_until(done, timeout, 0.2, "tables in sync")
        except LabError as e:
            raise LabError("%s: %s" % (e, last)) from None
        return time.monotonic() - t0


def discovers(c):
    """How many DHCPDISCOVERs the client logged in its latest run."""
    try:
        with open(c.proc.log_path, errors="replace") as f:
            text = f.read()
    except (OSError, AttributeError):
        return 0
    return text.count("DHCPDISCOVER") + text.count("broadcasting discover")


def wait_new_event(c, names, after, timeout, fail=()):
    """The first hook event of `c` named in `names` stamped after `after`
    (time.time() seconds); an event named in `fail` raises."""
    names = set(names)
    fail = set(fail)

    def seen():
        for e in c.events():
            if int(e.stamp) / 1e9 <= after:
                continue
            if e.event in fail:
                raise LabError("%s on %s reported %s" % (c.kind, c.host.name, e.event))
            if e.event in names:
                return e
        return None

    return wait_until(seen, timeout, 0.05, "%s event %s" % (c.kind, sorted(names)))
