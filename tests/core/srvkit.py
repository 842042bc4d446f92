"""A standalone Node driven one datagram at a time, for server decision tests.

Kit(cfg) builds a Node from a config dict (config.load). send(pkt) encodes a
client Packet (or takes raw bytes), hands it to Node.handle_dhcp with the
kit's clock, and returns the replies of that turn decoded; the lease-log
records of the same turn are in kit.records. The outbox is cleared after
every step, so each step sees only what it produced. Every step also checks
that the node caught no internal error (a bug would otherwise cost only one
silently dropped packet).

Runs on CPython and MicroPython (only firmware modules and struct-free code).
"""

from dhcpfo import config
from dhcpfo_host import boardconf

# The server keeps a binding one second past now + lease: its clock counts
# whole seconds, and the client's lease may run up to a second longer.
GRACE = 1
from dhcpfo.lease import log as ll
from dhcpfo.lease import table as lt
from dhcpfo.node import Node
from dhcpfo.wire import dhcp as wire

ZERO4 = b"\x00\x00\x00\x00"
BCAST = b"\xff\xff\xff\xff"


def ip(s):
    b = config.parse_ip(s)
    if b is None:
        raise ValueError(s)
    return b


def mac(n):
    """A locally administered Ethernet address numbered n (0..65535)."""
    return bytes((0x02, 0x00, 0x5E, 0x10, (n >> 8) & 255, n & 255))


SERVER_ID = ip("198.18.0.2")
LOCAL = SERVER_ID  # address of the interface on the first scope's link
OTHER_SERVER = ip("198.18.0.3")
RELAY = ip("198.18.1.1")  # relay agent on the second scope's link


def config_dict(lease=3600, first="198.18.0.10", last="198.18.0.29"):
    """A fresh config document: one direct scope 198.18.0.0/24 and one
    relayed scope 198.18.1.0/24. Tests edit the dict before Kit(cfg)."""
    return {
        "server": {
            "name": "t",
            "server_id": "198.18.0.2",
            "offer_hold": 60,
            "decline_hold": 600,
            "options": {"domain-name-servers": ["198.18.0.53"], "domain-name": "lab.example"},
        },
        "scopes": [
            {"id": "198.18.0.0", "mask": 24, "lease_time": lease,
             "ranges": [{"start": first, "end": last}],
             "options": {"routers": ["198.18.0.1"], "ntp-servers": ["198.18.0.1"]}},
            {"id": "198.18.1.0", "mask": 24, "lease_time": 7200,
             "ranges": [{"start": "198.18.1.100", "end": "198.18.1.119"}],
             "options": {"routers": ["198.18.1.1"]}},
        ],
    }


def client(hw, mtype, xid=1, ciaddr=ZERO4, giaddr=ZERO4, flags=0, cid=None, req=None, sid=None,
           prl=None, htype=1, hlen=None, secs=0, options=None):
    """A client message (BOOTREQUEST) with option 53 = mtype (0: none, BOOTP)."""
    p = wire.Packet(htype=htype, hlen=len(hw) if hlen is None else hlen, xid=xid, secs=secs,
                    flags=flags, ciaddr=ciaddr, giaddr=giaddr, chaddr=hw)
    o = p.options
    if mtype:
        o[wire.OPT_MSG_TYPE] = bytes((mtype,))
    if cid is not None:
        o[wire.OPT_CLIENT_ID] = cid
    if req is not None:
        o[wire.OPT_REQUESTED_IP] = req
    if sid is not None:
        o[wire.OPT_SERVER_ID] = sid
    if prl is not None:
        o[wire.OPT_PARAM_REQUEST] = bytes(prl)
    if options:
        for k in options:
            o[k] = options[k]
    return p


def wire_order(raw):
    """Option codes in the order they appear in the 'options' field."""
    out = []
    i = 240
    n = len(raw)
    while i < n:
        c = raw[i]
        if c == 0:
            i += 1
            continue
        if c == 255:
            break
        out.append(c)
        i += 2 + raw[i + 1]
    return out


def u32(b):
    return (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]


class Reply:
    """One datagram the node sent: decoded packet, destination, raw bytes."""

    def __init__(self, raw, dst, port, delay):
        self.raw = raw
        self.pkt = wire.decode(raw)
        self.dst = dst
        self.port = port
        self.delay = delay
        self.order = wire_order(raw)

    @property
    def type(self):
        return self.pkt.msg_type

    @property
    def yiaddr(self):
        return self.pkt.yiaddr

    def opt(self, code):
        return self.pkt.options.get(code)

    def lease(self):
        v = self.opt(wire.OPT_LEASE_TIME)
        return None if v is None else u32(v)

    def __repr__(self):
        return "<Reply %r to %r:%d>" % (self.pkt, self.dst, self.port)


def bindings(records):
    """[(scope, offset, state)] of the BINDING records in a list of log records."""
    out = []
    for r in records:
        for p in range(0, len(r), ll.RECORD):
            if r[p] == ll.BINDING:
                out.append((r[p + 1], (r[p + 2] << 8) | r[p + 3], r[p + 4]))
    return out


class Kit:
    def __init__(self, cfg=None, now=1000, local=LOCAL):
        if cfg is None:
            cfg = config_dict()
        self.node = Node(boardconf.load(cfg))
        self.now = now
        self.local = local
        self.replies = []
        self.records = []
        self.node.start(now)
        self._collect()

    # -- steps --

    def _collect(self):
        out = self.node.out
        self.replies = [Reply(p, d, port, dl) for (p, d, port, dl) in out.dhcp]
        self.records = list(out.records)
        out.clear()
        err = self.node.events.get("drop.internal-error")
        if err:
            raise AssertionError("internal error: %r" % (self.node.events.recent(1),))

    def send(self, pkt, local=None):
        """Deliver one datagram (Packet or bytes); returns this turn's replies."""
        self.node.out.clear()
        data = pkt if isinstance(pkt, (bytes, bytearray)) else wire.encode(pkt)
        self.node.handle_dhcp(data, self.local if local is None else local, self.now)
        self._collect()
        return self.replies

    def one(self, pkt, mtype=None, local=None):
        """send() expecting exactly one reply (of type mtype when given)."""
        r = self.send(pkt, local)
        assert len(r) == 1, r
        if mtype is not None:
            assert r[0].type == mtype, (r[0].type, mtype, self.node.events.recent(2))
        return r[0]

    def silent(self, pkt, local=None):
        r = self.send(pkt, local)
        assert r == [], r
        return self

    def tick(self, seconds=0):
        """Advance the clock and let the node run its timers."""
        self.now += seconds
        self.node.out.clear()
        self.node.tick(self.now)
        self._collect()

    # -- state --

    def count(self, name):
        return self.node.events.get(name)

    def scope(self, si=0):
        return self.node.scopes[si]

    def table(self, si=0):
        return self.node.tables[si]

    def offset(self, addr, si=0):
        return self.scope(si).offset_of(addr)

    def state(self, addr, si=0):
        return self.table(si).state(self.offset(addr, si))

    def expiry(self, addr, si=0):
        return self.table(si).expiry(self.offset(addr, si))

    # -- whole conversations --

    def offer(self, hw, xid=1, **kw):
        """DISCOVER -> the OFFER Reply (asserts one)."""
        return self.one(client(hw, wire.DISCOVER, xid, **kw), wire.OFFER)

    def dora(self, hw, xid=1, **kw):
        """DISCOVER/OFFER/REQUEST/ACK -> the ACK Reply."""
        o = self.offer(hw, xid, **kw)
        req = dict(kw)
        req.pop("req", None)
        return self.one(client(hw, wire.REQUEST, xid + 1, req=o.yiaddr, sid=SERVER_ID, **req), wire.ACK)


ACTIVE = lt.ACTIVE
FREE = lt.FREE
EXPIRED = lt.EXPIRED
RELEASED = lt.RELEASED
ABANDONED = lt.ABANDONED
