"""Two Nodes joined by an in-memory failover link, on a shared clock.

The smallest harness that exercises the real failover engine on both
runtimes: records are "committed" by keeping them in a list per node,
stream bytes are delivered in order, DHCP replies are collected.
"""

from dhcpfo import config
from dhcpfo_host import boardconf
from dhcpfo.lease import log as ll
from dhcpfo.lease import replay as LR
from dhcpfo.node import Node
from dhcpfo.wire import dhcp as wire

A_ADDR = b"\xc6\x12\x00\x02"
B_ADDR = b"\xc6\x12\x00\x03"


def pair_config(role, mode="load-balance", **kw):
    return config.load(pair_doc(role, mode, **kw))


def pair_node(role, mode="load-balance", **kw):
    """A Node that keeps its configuration document (live reconfiguration needs it)."""
    doc = pair_doc(role, mode, **kw)
    return Node(config.load(doc), doc=doc)


def pair_doc(role, mode="load-balance", mclt=60, lease=600, first="198.18.0.10", last="198.18.0.59",
             secret=None, safe=None, extra=None, mask=24, scopes=1, scope_extra=None):
    """The JSON configuration document of one side of the test pair; scopes=2
    adds a second scope (198.18.1.0/24) that is in no relationship."""
    me, partner = ("198.18.0.2", "198.18.0.3") if role == "primary" else ("198.18.0.3", "198.18.0.2")
    rel = {
        "name": "pair", "role": role, "mode": mode,
        "local": {"address": me, "port": 647},
        "partner": {"address": partner, "port": 647},
        "scopes": ["198.18.0.0"], "mclt": mclt, "load_balance_max_seconds": 3,
    }
    if secret:
        rel["shared_secret"] = secret
    if safe:
        rel["auto_state_switchover"] = safe
    if extra:
        rel.update(extra)
    sc = [{"id": "198.18.0.0", "mask": mask, "lease_time": lease, "ranges": [{"start": first, "end": last}]}]
    if scope_extra:
        sc[0].update(scope_extra)
    if scopes > 1:
        sc.append({"id": "198.18.1.0", "mask": 24, "lease_time": lease,
                   "ranges": [{"start": "198.18.1.10", "end": "198.18.1.59"}]})
    # the document a node holds is the compiled one (what a board loads)
    return boardconf.compile_config({"server": {"name": "node-" + role, "server_id": me}, "scopes": sc,
                                     "failover": [rel]})


class Side:
    def __init__(self, node, addr):
        self.node = node
        self.addr = addr
        self.records = []
        self.replies = []
        self.conn = None
        self.shift = 0  # this side's local clock minus the pair's (a board's own time base)
        self.doc = node.doc  # the configuration document as the driver last wrote it


class Pair:
    def __init__(self, mode="load-balance", now=1000, **kw):
        self.now = now
        self.a = Side(pair_node("primary", mode, **kw), A_ADDR)
        self.b = Side(pair_node("secondary", mode, **kw), B_ADDR)
        self.wire = []  # (to side, conn, bytes) in flight
        self.up = False
        for s in (self.a, self.b):
            s.node.start(self.now + s.shift)
            self.drain(s)

    def restart(self, s, role=None, mode="load-balance", clock=None, **kw):
        """Crash and restart one side: a new Node built from the records it
        committed and its configuration document as last written (its
        connection, if any, is cut first). clock: None keeps the pair's time
        base; "board" restarts it as a board without a real-time clock (its
        local time starts where Node.resume_time says); a number is the
        trusted wall time the driver passes."""
        self.cut()
        if role is None:
            doc = s.doc
        else:
            doc = pair_doc(role, mode, **kw)
        node = Node(config.load(doc), doc=doc)
        tables = node.tables_by_scope()

        def on_binding(scope, offset, rec, extra):
            tables[scope].load_record(offset, rec, extra)

        r = LR.Replay(on_binding, node.restore_meta)
        for rec in s.records:
            r.feed(rec)
        node.after_restore()
        if clock is not None:
            s.shift = node.resume_time(None if clock == "board" else clock) - self.now
        s.node = node
        s.doc = doc
        node.start(self.now + s.shift)
        self.drain(s)
        return node

    def other(self, s):
        return self.b if s is self.a else self.a

    def drain(self, s):
        out = s.node.out
        s.records.extend(out.records)  # committed before anything is sent
        s.records.extend(out.lazy)
        if out.config is not None:
            s.doc = out.config  # written atomically after the records
        for payload, dst, port, delay in out.dhcp:
            s.replies.append(wire.decode(payload))
        for conn, data in out.peer:
            if self.up and conn == s.conn:
                self.wire.append((self.other(s), self.other(s).conn, data))
        for conn in out.closes:
            if conn == s.conn and self.up:
                self.cut()
        out.clear()

    def connect(self):
        """Primary connects to the secondary (one TCP connection)."""
        self.up = True
        self.a.conn = "a->b"
        self.b.conn = "b<-a"
        self.a.node.peer_connected(self.a.conn, B_ADDR, True, self.now + self.a.shift)
        self.drain(self.a)
        self.b.node.peer_connected(self.b.conn, A_ADDR, False, self.now + self.b.shift)
        self.drain(self.b)
        self.flow()

    def cut(self):
        if not self.up:
            return
        self.up = False
        self.wire = []
        for s in (self.a, self.b):
            c = s.conn
            s.conn = None
            s.node.peer_closed(c, self.now + s.shift)
            self.drain(s)

    def flow(self, limit=100000):
        n = 0
        while self.wire and n < limit:
            to, conn, data = self.wire.pop(0)
            if self.up and conn == to.conn:
                to.node.peer_data(conn, data, self.now + to.shift)
                self.drain(to)
            n += 1

    def tick(self, seconds=1):
        for _ in range(seconds):
            self.now += 1
            for s in (self.a, self.b):
                s.node.tick(self.now + s.shift)
                self.drain(s)
            self.flow()

    def state(self, s):
        return s.node.relationships[0].state

    def dhcp(self, s, pkt, flow=True):
        """Deliver a client packet to one server; returns its replies.
        flow=False leaves the failover messages it caused on the wire."""
        s.replies = []
        s.node.handle_dhcp(wire.encode(pkt), s.addr, self.now + s.shift)
        self.drain(s)
        if flow:
            self.flow()
        return s.replies

    def deliver_to(self, side, limit=1000):
        """Deliver only the in-flight messages addressed to `side` (a slow link the other way)."""
        n = 0
        while n < limit:
            item = None
            for i in range(len(self.wire)):
                if self.wire[i][0] is side:
                    item = self.wire.pop(i)
                    break
            if item is None:
                return n
            to, conn, data = item
            if self.up and conn == to.conn:
                to.node.peer_data(conn, data, self.now + to.shift)
                self.drain(to)
            n += 1
        return n

    def broadcast(self, pkt):
        """Both servers hear the client; returns (replies of a, replies of b)."""
        return self.dhcp(self.a, pkt), self.dhcp(self.b, pkt)


def client_packet(mac, mtype, xid=1, secs=0, **opts):
    p = wire.Packet(xid=xid, chaddr=mac, secs=secs)
    p.options[wire.OPT_MSG_TYPE] = bytes([mtype])
    for k, v in opts.items():
        p.options[int(k[1:])] = v
    return p


def dora(pair, mac, xid=7):
    """Full DISCOVER/OFFER/REQUEST/ACK with both servers listening.
    Returns (server side that ACKed, ack packet) or (None, None)."""
    ra, rb = pair.broadcast(client_packet(mac, wire.DISCOVER, xid))
    offers = [(pair.a, r) for r in ra if r.msg_type == wire.OFFER] + [(pair.b, r) for r in rb if r.msg_type == wire.OFFER]
    if not offers:
        return None, None
    side, off = offers[0]
    sid = off.options[wire.OPT_SERVER_ID]
    req = client_packet(mac, wire.REQUEST, xid, o50=off.yiaddr, o54=sid)
    ra, rb = pair.broadcast(req)
    acks = [r for r in (ra if side is pair.a else rb) if r.msg_type == wire.ACK]
    return (side, acks[0]) if acks else (None, None)
