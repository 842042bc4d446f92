"""runtime/aio.py's NodeRunner: nothing leaves before what it depends on is durable.

Two real NodeRunners (a failover pair) run in one event loop on loopback:
real UDP sockets, real TCP failover streams, real LeaseStores (over
tests/sim/flash.py's MemFs, so "durable" means synced). The test records,
on one timeline, every store commit and every datagram and stream write the
runners make, and asserts draft-12's ordering rule where the driver
implements it (§3.1.3, §5.2.1: stable storage before the DHCPACK/BNDACK):

* whatever a turn sends, every record the core produced in that turn
  (`node.out.records`, not the `lazy` ones) was committed before;
* a DHCPACK leaves only when the sender's committed records say ACTIVE for
  that client at that address;
* a BNDACK leaves only when the receiver's committed records hold the
  binding status the acknowledged BNDUPD carried.

Then a client DISCOVERs and REQUESTs through a relay; the primary's
BNDUPD and the secondary's BNDACK for it must both have passed the checks.
"""

from dhcpfo_host import boardconf
import asyncio
import os
import socket
import time

from dhcpfo import config as cfgmod
from dhcpfo.compat import Clock, wall_now
from dhcpfo.failover import states as S
from dhcpfo.lease import log as L
from dhcpfo.lease import replay as LR
from dhcpfo.lease.table import LeaseTable
from dhcpfo.node import Node
from dhcpfo.wire import dhcp as wire
from dhcpfo.wire import failover as fw
from runtime import aio
from runtime.store import LeaseStore
from runtime.udp import UdpEndpoint

from sim.flash import MemFs

BASE = 30000 + (os.getpid() % 4000) * 4
RELAY = "127.79.1.1"
SERVERS = ("127.79.0.2", "127.79.0.3")
SCOPE_START = 10
POOL = 40
DEADLINE = 20.0  # seconds of generous polling on a loaded machine; normally ~1 s


def _doc(i):
    me, other = SERVERS[i], SERVERS[1 - i]
    return {
        "server": {"name": "n%d" % i, "server_id": me,
                   "listen": {"address": me, "port": BASE, "relay_port": BASE + 1}},
        "scopes": [{"id": "127.79.1.0", "mask": 24, "lease_time": 600, "offer_delay_ms": 0,
                    "ranges": [{"start": "127.79.1.%d" % SCOPE_START,
                                "end": "127.79.1.%d" % (SCOPE_START + POOL - 1)}]}],
        "failover": [{"name": "pair", "role": "primary" if i == 0 else "secondary", "mode": "hot-standby",
                      "reserve_percent": 10, "mclt": 60,
                      "local": {"address": me, "port": BASE + 2},
                      "partner": {"address": other, "port": BASE + 2},
                      "scopes": ["127.79.1.0"]}],
    }


class Timeline:
    def __init__(self):
        self.events = []
        self.violations = []
        self.bndupd = {}  # (sender, xid) -> (status, chaddr) of a BNDUPD written
        self.acks = []  # (node, address) of DHCPACKs sent
        self.bndacks = []  # (node, address) of BNDACKs sent

    def bad(self, text):
        self.violations.append(text)


class RecordingStore(LeaseStore):
    """The real store; every commit noted, with the record objects it made durable."""

    def __init__(self, name, tl):
        LeaseStore.__init__(self, "/flash", fs=MemFs())
        self.name = name
        self.tl = tl
        self.queued = []  # record objects appended, not yet committed
        self.durable_ids = set()
        self.keep = []  # committed record objects (keeps their ids unique)
        self.committed = bytearray()  # every committed record, in order

    def append(self, records):
        if isinstance(records, (list, tuple)):
            for r in records:
                self.append(r)
            return
        LeaseStore.append(self, records)
        if records:
            self.queued.append(records)

    def commit(self):
        n = LeaseStore.commit(self)
        for r in self.queued:
            self.durable_ids.add(id(r))
            self.keep.append(r)
            self.committed += r
        self.queued = []
        if n:
            self.tl.events.append(("commit", self.name, n))
        return n

    def durable_binding(self, offset):
        """(state, hwaddr) of `offset` as the committed records say."""
        t = LeaseTable(POOL)

        def on_binding(scope, off, rec, extra):
            if off < POOL:
                t.load_record(off, rec, extra)

        LR.Replay(on_binding, lambda k, p: None).feed(bytes(self.committed))
        hw = t.hwaddr(offset)
        return t.state(offset), (bytes(hw[1]) if hw is not None else None)


def _check_turn(tl, runner, what):
    """Every record of the current turn must be durable before anything leaves."""
    store = runner.store
    for r in runner.node.out.records:
        if id(r) not in store.durable_ids:
            tl.bad("%s: %s sent before its turn's records were committed" % (store.name, what))
            return


class RecordingUdp(UdpEndpoint):
    def __init__(self, tl, address, port):
        UdpEndpoint.__init__(self, address, port)
        self.tl = tl
        self.runner = None

    def sendto(self, payload, ip, port):
        tl = self.tl
        runner = self.runner
        _check_turn(tl, runner, "DHCP reply")
        try:
            pkt = wire.decode(payload)
        except wire.DecodeError:
            pkt = None
        if pkt is not None and pkt.msg_type == wire.ACK:
            off = pkt.yiaddr[3] - SCOPE_START
            st, hw = runner.store.durable_binding(off)
            tl.acks.append((runner.store.name, bytes(pkt.yiaddr)))
            if st != 2 or hw != bytes(pkt.chaddr[:6]):
                tl.bad("%s: DHCPACK of %r left with committed state %d for %r" % (
                    runner.store.name, bytes(pkt.yiaddr), st, hw))
        tl.events.append(("udp", runner.store.name, pkt.msg_type if pkt is not None else 0))
        return UdpEndpoint.sendto(self, payload, ip, port)


class RecordingWriter:
    """Wraps a failover connection's StreamWriter: decodes and checks every write."""

    def __init__(self, writer, tl, runner):
        self._w = writer
        self.tl = tl
        self.runner = runner
        self.dec = fw.StreamDecoder(None, fw.MAX_LEN)

    def write(self, data):
        tl = self.tl
        runner = self.runner
        name = runner.store.name
        _check_turn(tl, runner, "failover bytes")
        for m in self.dec.feed(data):
            if m.mtype == fw.BNDUPD:
                ch = m.get_bytes(fw.OPT_CHADDR)
                tl.bndupd[(name, m.xid)] = (m.get_u8(fw.OPT_BINDING_STATUS, 0), bytes(ch[1:7]) if ch else None)
            elif m.mtype == fw.BNDACK and not m.has(fw.OPT_REJECT_REASON):
                addr = m.get_bytes(fw.OPT_ASSIGNED_IP)
                sent = tl.bndupd.get((_other(name), m.xid))
                st, hw = runner.store.durable_binding(addr[3] - SCOPE_START)
                tl.bndacks.append((name, bytes(addr)))
                if sent is None or st != sent[0] or (st == 2 and hw != sent[1]):
                    tl.bad("%s: BNDACK for %r left with committed state %d, BNDUPD said %r" % (
                        name, bytes(addr), st, sent))
            tl.events.append(("peer", name, m.mtype))
        self._w.write(data)

    def __getattr__(self, k):
        return getattr(self._w, k)


def _other(name):
    return "n1" if name == "n0" else "n0"


def _make(i, tl):
    cfg = boardconf.load(_doc(i))
    node = Node(cfg)
    store = RecordingStore("n%d" % i, tl)
    store.load(node.tables_by_scope(), node.restore_meta)
    node.after_restore()
    clock = Clock(node.resume_time(wall_now()))
    udp = RecordingUdp(tl, SERVERS[i], BASE)
    runner = aio.NodeRunner(node, store, clock, udp, bytes(int(x) for x in SERVERS[i].split(".")),
                            relay_port=BASE + 1)
    udp.runner = runner
    return runner


def _dhcp(mtype, mac, xid, opts=None):
    p = wire.Packet()
    p.op = 1
    p.htype = 1
    p.hlen = 6
    p.xid = xid
    p.giaddr = bytes(int(x) for x in RELAY.split("."))
    p.chaddr = mac + bytes(10)
    p.options[wire.OPT_MSG_TYPE] = bytes((mtype,))
    for k, v in (opts or {}).items():
        p.options[k] = v
    return wire.encode(p, 576)


async def _scenario(tl, runners):
    # the recording writers go in where NodeRunner builds its connections
    real_conn = aio.PeerConn
    by_ip = dict((SERVERS[i], runners[i]) for i in range(2))

    class RecordingConn(real_conn):
        def __init__(self, reader, writer, peer_ip, outgoing, port=None):
            me = by_ip[SERVERS[1]] if aio.ip_text(peer_ip) == SERVERS[0] else by_ip[SERVERS[0]]
            real_conn.__init__(self, reader, RecordingWriter(writer, tl, me), peer_ip, outgoing, port)

    aio.PeerConn = RecordingConn
    relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    relay.bind((RELAY, BASE + 1))
    relay.setblocking(False)
    tasks = []
    try:
        for i, r in enumerate(runners):
            rel = r.node.relationships[0]
            tasks.append(asyncio.ensure_future(r.serve(
                peer_listen=[(SERVERS[i], BASE + 2)],
                connectors=[(rel, SERVERS[1 - i], BASE + 2, SERVERS[i])])))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        while loop.time() - t0 < DEADLINE:
            if all(r.node.relationships[0].state == S.NORMAL for r in runners):
                break
            await asyncio.sleep(0.05)
        assert all(r.node.relationships[0].state == S.NORMAL for r in runners), [
            S.name(r.node.relationships[0].state) for r in runners]
        mac = b"\x02\x00\x5e\x77\x00\x01"

        async def exchange(mtype, want, opts=None):
            data = _dhcp(mtype, mac, 0x1234 + mtype, opts)
            for s in SERVERS:
                relay.sendto(data, (s, BASE))
            t1 = loop.time()
            while loop.time() - t1 < DEADLINE:
                try:
                    pkt = wire.decode(relay.recv(2048))
                except BlockingIOError:
                    await asyncio.sleep(0.02)
                    continue
                if pkt.msg_type == want and bytes(pkt.chaddr[:6]) == mac:
                    return pkt
            raise AssertionError("no reply of type %d" % want)

        offer = await exchange(wire.DISCOVER, wire.OFFER)
        ack = await exchange(wire.REQUEST, wire.ACK, {wire.OPT_REQUESTED_IP: offer.yiaddr,
                                                     wire.OPT_SERVER_ID: offer.options[wire.OPT_SERVER_ID]})
        t1 = loop.time()
        while loop.time() - t1 < DEADLINE and not any(a == bytes(ack.yiaddr) for _n, a in tl.bndacks):
            await asyncio.sleep(0.02)
        return ack
    finally:
        aio.PeerConn = real_conn
        for r in runners:
            r.stop()
        for t in tasks:
            try:
                await asyncio.wait_for(t, 5)
            except Exception:
                pass
        relay.close()
        for r in runners:
            r.udp.sock.close()


def test_nothing_leaves_before_its_records_are_committed():
    tl = Timeline()
    runners = [_make(0, tl), _make(1, tl)]
    t0 = time.time()
    ack = asyncio.run(_scenario(tl, runners))
    assert not tl.violations, tl.violations
    addr = bytes(ack.yiaddr)
    # the exchange really happened: the DHCPACK, the partner's BNDUPD and its BNDACK
    assert any(a == addr for _n, a in tl.acks), tl.acks
    assert any(a == addr for _n, a in tl.bndacks), tl.bndacks
    kinds = [e[0] for e in tl.events]
    assert "commit" in kinds and "peer" in kinds and "udp" in kinds
    # the checks ran on every write: at least the CONNECT/STATE/UPDREQALL traffic and both replies
    assert sum(1 for e in tl.events if e[0] == "peer") >= 8
    assert time.time() - t0 < DEADLINE
