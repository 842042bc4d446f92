"""A DHCP load generator that remembers every DHCPACK it got.

Run inside a lab namespace: many virtual clients (distinct MACs) share one
UDP socket bound to port 68 on one interface; each does DISCOVER -> OFFER ->
REQUEST -> ACK as fast as the server answers, with up to `window` clients
in flight. Every ACK is written at once to the output file as a JSON line
{"ev": "ack", "mac", "ip", "t", "lease" (seconds granted), "sid" (the ACK's
server identifier), "wall" (time.time())} (and NAKs/retries as their own
lines), so a test can compare what clients were promised with what a crashed and
restarted server remembers. Unanswered messages are retransmitted after
`retry` seconds; a NAK sends the client back to DISCOVER. The run ends when
every client holds an ACK or after `seconds`; the last line is
{"ev": "done", ...} with counts and timing.

Usage: loadclient.py --iface eth0 --count N --out FILE [--window W]
       [--seconds S] [--retry R] [--mac-prefix 02:dd] [--server-port 67]
"""

import argparse
import json
import os
import random
import select
import socket
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.normpath(os.path.join(HERE, "..", "..", "firmware")))

from dhcpfo.wire import dhcp as wire  # noqa: E402

INIT, SELECTING, REQUESTING, BOUND = 0, 1, 2, 3
PRL = bytes([1, 3, 6, 15, 51, 54])


def ip_text(b):
    return "%d.%d.%d.%d" % tuple(b)


def mac_text(b):
    return ":".join("%02x" % x for x in b)


class Client:
    __slots__ = ("i", "mac", "xid", "state", "sent", "tries", "offer", "server_id", "ip")

    def __init__(self, i, mac, xid):
        self.i = i
        self.mac = mac
        self.xid = xid
        self.state = INIT
        self.sent = 0.0
        self.tries = 0
        self.offer = None
        self.server_id = None
        self.ip = None


class Load:
    def __init__(self, iface, count, out, window=64, retry=1.0, mac_prefix=b"\x02\xdd",
                 server_port=67, client_port=68):
        self.iface = iface
        self.out = out
        self.window = window
        self.retry = retry
        self.server_port = server_port
        base = random.getrandbits(32) & 0xFFF00000
        salt = random.getrandbits(16)
        self.clients = []
        self.by_xid = {}
        for i in range(count):
            mac = bytes(mac_prefix) + struct.pack(">HH", salt, i)
            c = Client(i, mac, (base + i) & 0xFFFFFFFF)
            self.clients.append(c)
            self.by_xid[c.xid] = c
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode() + b"\0")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind(("0.0.0.0", client_port))
        s.setblocking(False)
        self.sock = s
        self.t0 = time.monotonic()
        self.stats = {"discover": 0, "request": 0, "offer": 0, "ack": 0, "nak": 0, "retry": 0,
                      "dup_ack": 0, "stray": 0}

    def log(self, **rec):
        rec["t"] = round(time.monotonic() - self.t0, 4)
        self.out.write(json.dumps(rec) + "\n")
        self.out.flush()

    def _packet(self, c, mtype, extra):
        opts = {wire.OPT_MSG_TYPE: bytes((mtype,))}
        opts.update(extra)
        opts[wire.OPT_PARAM_REQUEST] = PRL
        pkt = wire.Packet(xid=c.xid, flags=wire.BROADCAST_FLAG, chaddr=c.mac, options=opts,
                          secs=min(int(time.monotonic() - self.t0), 0xFFFF))
        return wire.encode(pkt, 576)

    def send(self, c, now):
        if c.state == REQUESTING:
            data = self._packet(c, wire.REQUEST, {wire.OPT_REQUESTED_IP: c.offer,
                                                  wire.OPT_SERVER_ID: c.server_id})
            self.stats["request"] += 1
        else:
            c.state = SELECTING
            data = self._packet(c, wire.DISCOVER, {})
            self.stats["discover"] += 1
        c.sent = now
        try:
            self.sock.sendto(data, ("255.255.255.255", self.server_port))
        except OSError:
            pass  # e.g. ENOBUFS under load: the retry timer resends it

    def receive(self, data, now):
        try:
            pkt = wire.decode(data)
        except wire.DecodeError:
            self.stats["stray"] += 1
            return
        c = self.by_xid.get(pkt.xid)
        if pkt.op != wire.BOOTREPLY or c is None or pkt.chaddr[:6] != c.mac:
            self.stats["stray"] += 1
            return
        mt = pkt.msg_type
        if mt == wire.OFFER:
            self.stats["offer"] += 1
            if c.state == SELECTING:
                c.offer = pkt.yiaddr
                c.server_id = pkt.options.get(wire.OPT_SERVER_ID)
                c.state = REQUESTING
                c.tries = 0
                self.send(c, now)
        elif mt == wire.ACK:
            if c.state == BOUND:
                self.stats["dup_ack"] += 1
            self.stats["ack"] += 1
            c.state = BOUND
            c.ip = pkt.yiaddr
            lease = pkt.options.get(wire.OPT_LEASE_TIME)
            sid = pkt.options.get(wire.OPT_SERVER_ID)
            self.log(ev="ack", mac=mac_text(c.mac), ip=ip_text(pkt.yiaddr), n=c.i,
                     lease=int.from_bytes(lease, "big") if lease and len(lease) == 4 else None,
                     sid=ip_text(sid) if sid and len(sid) == 4 else None,
                     wall=round(time.time(), 4))
        elif mt == wire.NAK:
            self.stats["nak"] += 1
            self.log(ev="nak", mac=mac_text(c.mac), n=c.i,
                     why=(pkt.options.get(wire.OPT_MESSAGE) or b"").decode("latin-1"))
            if c.state != BOUND:
                c.state = INIT
                c.tries = 0
                self.send(c, now)
        else:
            self.stats["stray"] += 1

    def run(self, seconds):
        deadline = self.t0 + seconds
        pending = list(reversed(self.clients))  # not started yet
        active = []
        bound = 0
        while bound < len(self.clients):
            now = time.monotonic()
            if now >= deadline:
                break
            # keep the window full
            while pending and len(active) < self.window:
                c = pending.pop()
                active.append(c)
                self.send(c, now)
            # retransmissions
            for c in active:
                if c.state != BOUND and now - c.sent >= self.retry:
                    c.tries += 1
                    self.stats["retry"] += 1
                    if c.state == REQUESTING and c.tries > 3:
                        c.state = INIT
                    self.send(c, now)
            r, _, _ = select.select([self.sock], [], [], 0.05)
            if r:
                while True:
                    try:
                        data, _ = self.sock.recvfrom(2048)
                    except BlockingIOError:
                        break
                    self.receive(data, time.monotonic())
            still = []
            for c in active:
                if c.state == BOUND:
                    bound += 1
                else:
                    still.append(c)
            active = still
        elapsed = time.monotonic() - self.t0
        self.log(ev="done", bound=bound, clients=len(self.clients), seconds=round(elapsed, 3), **self.stats)
        return bound


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--retry", type=float, default=1.0)
    ap.add_argument("--mac-prefix", default="02:dd")
    ap.add_argument("--server-port", type=int, default=67)
    a = ap.parse_args(argv)
    prefix = bytes(int(x, 16) for x in a.mac_prefix.split(":"))
    if len(prefix) != 2 or a.count > 65536:
        ap.error("--mac-prefix takes 2 bytes (a random salt and the client number follow);"
                 " --count is at most 65536")
    with open(a.out, "a") as out:
        load = Load(a.iface, a.count, out, a.window, a.retry, prefix, a.server_port)
        bound = load.run(a.seconds)
    return 0 if bound == a.count else 1


if __name__ == "__main__":
    sys.exit(main())
