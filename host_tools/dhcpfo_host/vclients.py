"""Virtual DHCP clients behind a loopback relay, for the demo and smoke tests.

A relay agent (RFC 1542) forwards each client's broadcast to every
configured server with giaddr set, and gets the replies back on its own
port. Running the relay on a loopback address lets an unprivileged user
drive real dhcpfo nodes with real DHCP packets: nothing leaves the machine.
"""

import asyncio
import random
import socket

from dhcpfo.compat import ip_str
from dhcpfo.wire import dhcp as wire

ZERO4 = b"\x00\x00\x00\x00"


ip_text = ip_str


def ip_bytes(s):
    return bytes(int(p) for p in s.split("."))


class VClient:
    def __init__(self, mac):
        self.mac = mac
        self.state = "init"
        self.xid = random.getrandbits(32)
        self.offer = None  # (yiaddr, server id)
        self.addr = None
        self.server = None
        self.lease = 0
        self.bound_at = 0.0
        self.log = []

    def packet(self, mtype, **opts):
        p = wire.Packet()
        p.op = 1
        p.htype = 1
        p.hlen = 6
        p.xid = self.xid
        p.chaddr = self.mac + bytes(10)
        p.options = wire.new_options()
        p.options[wire.OPT_MSG_TYPE] = bytes([mtype])
        p.options[wire.OPT_CLIENT_ID] = b"\x01" + self.mac
        p.options[wire.OPT_PARAM_REQUEST] = bytes([1, 3, 6, 15, 51, 54])
        for code, val in opts.items():
            p.options[int(code[1:])] = val
        return p


class Relay:
    """A loopback relay agent plus a population of virtual clients."""

    def __init__(self, giaddr, port, servers, count=8, seed=None):
        self.giaddr = ip_bytes(giaddr)
        self.port = port
        self.servers = servers  # [(ip text, port)]
        rnd = random.Random(seed)
        self.clients = {}
        for i in range(count):
            mac = bytes([0x02, 0xDF, 0x0A, rnd.randrange(256), rnd.randrange(256), i & 0xFF])
            self.clients[mac] = VClient(mac)
        self.sock = None
        self.served_by = {}  # server id text -> count of ACKs

    def open(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip_text(self.giaddr), self.port))
        s.setblocking(False)
        self.sock = s

    def close(self):
        if self.sock:
            self.sock.close()

    def _send(self, c, pkt, to=None):
        pkt.giaddr = self.giaddr
        pkt.hops = 1
        data = wire.encode(pkt)
        for srv in self.servers if to is None else [to]:
            self.sock.sendto(data, srv)

    def _granted_by(self, c):
        """The server a renewing client talks to: the one whose ACK it holds."""
        for srv in self.servers:
            if srv[0] == c.server:
                return srv
        return None

    def kick(self, now):
        """Advance every client's state machine: start, retransmit, renew.
        A renewal (from T1, half the lease) goes to the server that granted
        the lease only, as a client's unicast would; from T2 (7/8 of it) the
        client rebinds and asks every server; at the lease's end it starts over."""
        for c in self.clients.values():
            if c.state == "bound":
                if now - c.bound_at >= c.lease / 2:
                    c.state = "renewing"
                    c.xid = random.getrandbits(32)
                else:
                    continue
            if c.state == "renewing" and now - c.bound_at >= c.lease:
                c.state = "init"  # the lease ran out: start over
                c.addr = None
            if c.state == "renewing":
                pkt = c.packet(wire.REQUEST)
                pkt.ciaddr = c.addr
                rebinding = now - c.bound_at >= c.lease * 7 / 8
                self._send(c, pkt, None if rebinding else self._granted_by(c))
                continue
            if c.state in ("init", "selecting"):
                c.state = "selecting"
                c.xid = random.getrandbits(32)
                self._send(c, c.packet(wire.DISCOVER))
            elif c.state == "requesting":
                self._send(c, c.packet(wire.REQUEST, o50=c.offer[0], o54=c.offer[1]))

    def receive(self, now):
        """Take every reply waiting on the relay socket."""
        while True:
            try:
                data, _src = self.sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            try:
                p = wire.decode(data)
            except wire.DecodeError:
                continue
            c = self.clients.get(p.hwaddr())
            if c is None or p.xid != c.xid:
                continue
            sid = p.options.get(wire.OPT_SERVER_ID)
            mt = p.msg_type
            if mt == wire.OFFER and c.state == "selecting":
                c.offer = (p.yiaddr, sid)
                c.state = "requesting"
                self._send(c, c.packet(wire.REQUEST, o50=p.yiaddr, o54=sid))
            elif mt == wire.ACK and c.state in ("requesting", "renewing"):
                lt = p.options.get(wire.OPT_LEASE_TIME)
                c.lease = int.from_bytes(lt, "big") if lt else 3600
                c.addr = p.yiaddr if p.yiaddr != ZERO4 else c.addr
                c.server = ip_text(sid) if sid else "?"
                c.bound_at = now
                c.log.append((now, "ack", ip_text(c.addr), c.server, c.lease))
                self.served_by[c.server] = self.served_by.get(c.server, 0) + 1
                c.state = "bound"
            elif mt == wire.NAK:
                c.state = "init"
                c.addr = None

    def table(self):
        rows = []
        for c in self.clients.values():
            rows.append((":".join("%02x" % b for b in c.mac), c.state,
                         ip_text(c.addr) if c.addr else "-", c.server or "-", c.lease))
        return rows

    async def run(self, seconds, interval=1.0, on_tick=None):
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        while loop.time() - t0 < seconds:
            now = loop.time()
            self.receive(now)
            self.kick(now)
            if on_tick:
                on_tick(now - t0)
            await asyncio.sleep(interval)
            self.receive(loop.time())
