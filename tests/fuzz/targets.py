"""Fuzz targets: one function per input surface, bytes in, failure out.

Each target takes one input (bytes) and raises only on a *failure*: an
exception that is not the module's documented error class, or a broken
contract checked after the call (for instance the failover decoder holding
more than one frame's worth of bytes). The same targets run under
hypothesis (tests/fuzz/test_fuzz_quick.py, `make fuzz` without atheris)
and under atheris (tests/fuzz/run.py), so a failing input found by either
replays the same way from tests/fuzz/regressions/<target>/.

Structured targets (management requests, mutated configuration documents)
derive their structure from the input bytes through `Choices`, so a
coverage-guided engine can steer them and every input stays replayable.
"""

from dhcpfo_host import boardconf
import json
import os
import random

from dhcpfo import config
from dhcpfo import events as ev
from dhcpfo.lease import log as ll
from dhcpfo.lease import replay as LR
from dhcpfo.lease import table as lt
from dhcpfo.mgmt.commands import Commands
from dhcpfo.node import Node, Outbox
from dhcpfo.wire import dhcp as wire
from dhcpfo.wire import failover as fo

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")
REGRESSIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "regressions")

T0 = 1000  # core time the long-lived targets start at
KEY = b"fuzz-shared-secret"


class Failure(AssertionError):
    """A target's contract was broken (not a stray exception)."""


class Choices:
    """Decisions drawn from the input bytes; all zeros once they run out."""

    def __init__(self, data):
        self.data = data
        self.p = 0

    def left(self):
        return len(self.data) - self.p

    def byte(self):
        if self.p >= len(self.data):
            return 0
        b = self.data[self.p]
        self.p += 1
        return b

    def below(self, n):
        """An int in 0..n-1 (n <= 65536)."""
        if n <= 256:
            return self.byte() % n
        return ((self.byte() << 8) | self.byte()) % n

    def take(self, n):
        b = self.data[self.p:self.p + n]
        self.p += len(b)
        return b

    def rest(self):
        b = self.data[self.p:]
        self.p = len(self.data)
        return b


# ---------------------------------------------------------------------------
# Shared fixtures: a small config with two scopes (direct and relayed).


def dhcp_config(failover=False):
    doc = {
        "server": {"name": "fuzz", "server_id": "198.18.0.2", "offer_hold": 60, "decline_hold": 600,
                   "options": {"domain-name-servers": ["198.18.0.53"], "domain-name": "lab.example"}},
        "scopes": [
            {"id": "198.18.0.0", "mask": 24, "lease_time": 3600,
             "ranges": [{"start": "198.18.0.10", "end": "198.18.0.73"}],
             "reservations": [{"address": "198.18.0.20", "mac": "02:00:5e:10:00:01"}],
             "options": {"routers": ["198.18.0.1"]},
             "policies": [{"name": "phones", "order": 1, "conditions": {"vendor_class": ["Polycom*"]},
                           "ranges": [{"start": "198.18.0.60", "end": "198.18.0.73"}], "lease_time": 600}]},
            {"id": "198.18.1.0", "mask": 24, "lease_time": 7200, "bootp": True,
             "ranges": [{"start": "198.18.1.100", "end": "198.18.1.131"}],
             "options": {"routers": ["198.18.1.1"]}},
        ],
    }
    return doc


LOCAL = b"\xc6\x12\x00\x02"  # 198.18.0.2
RELAY = b"\xc6\x12\x01\x01"  # 198.18.1.1


def _client_packet(n, mtype, **kw):
    hw = bytes((2, 0, 0x5E, 0x10, (n >> 8) & 255, n & 255))
    p = wire.Packet(htype=1, hlen=6, xid=n, chaddr=hw, giaddr=kw.pop("giaddr", b"\0\0\0\0"),
                    ciaddr=kw.pop("ciaddr", b"\0\0\0\0"))
    p.options[wire.OPT_MSG_TYPE] = bytes((mtype,))
    for k, v in kw.items():
        p.options[int(k[1:])] = v
    return wire.encode(p, 1500)


def dhcp_seeds():
    """Well-formed client messages of every kind, direct and relayed."""
    s = [
        _client_packet(1, wire.DISCOVER),
        _client_packet(2, wire.DISCOVER, o55=bytes((1, 3, 6, 15, 51, 58, 59)), o61=b"\x01\x02\x00\x5e\x10\x00\x02",
                       o60=b"Polycom-VVX", o57=b"\x05\xdc", o12=b"host"),
        _client_packet(3, wire.REQUEST, o50=b"\xc6\x12\x00\x0a", o54=LOCAL),
        _client_packet(4, wire.REQUEST, o50=b"\xc6\x12\x00\x0b"),
        _client_packet(5, wire.REQUEST, ciaddr=b"\xc6\x12\x00\x0c"),
        _client_packet(6, wire.RELEASE, ciaddr=b"\xc6\x12\x00\x0d", o54=LOCAL),
        _client_packet(7, wire.DECLINE, o50=b"\xc6\x12\x00\x0e", o54=LOCAL),
        _client_packet(8, wire.INFORM, ciaddr=b"\xc6\x12\x00\x0f"),
        _client_packet(9, wire.DISCOVER, giaddr=RELAY, o82=b"\x01\x04port\x02\x03rid\x05\x04\xc6\x12\x01\x00"),
        _client_packet(10, wire.DISCOVER, o118=b"\xc6\x12\x01\x00", o67=b"f" * 200, o66=b"s" * 60),
    ]
    bootp = wire.Packet(htype=1, hlen=6, xid=11, chaddr=b"\x02\x00\x5e\x10\x00\x0b", giaddr=RELAY)
    s.append(wire.encode(bootp, 576))
    return s


# ---------------------------------------------------------------------------
# Targets


def run_dhcp_codec(data):
    """wire.dhcp: decode anything; what decodes re-encodes and decodes again."""
    try:
        pkt = wire.decode(data)
    except wire.DecodeError:
        return
    for size in (576, 1500):
        try:
            raw = wire.encode(pkt, size)
        except wire.EncodeError:
            continue
        if len(raw) > size - wire.IP_UDP_OVERHEAD and len(raw) > wire.BOOTP_MIN_LEN:
            raise Failure("encode(%d) made %d bytes" % (size, len(raw)))
        again = wire.decode(raw)  # what we encode must decode
        if again.op != pkt.op or again.xid != pkt.xid or again.chaddr != pkt.chaddr:
            raise Failure("header changed in a round trip")


class ServerHarness:
    """A long-lived standalone node's DhcpServer fed one datagram at a time."""

    def __init__(self):
        self.node = Node(boardconf.load(dhcp_config()))
        self.server = self.node.server
        self.now = T0
        self.steps = 0

    def feed(self, data, local=LOCAL):
        out = Outbox()
        self.server.handle(data, local, self.now, out)
        self.steps += 1
        if self.steps % 16 == 0:
            self.now += 7
            self.server.expire(self.now, out)
        for (raw, dst, port, delay) in out.dhcp:
            wire.decode(raw)  # every reply we send must be a valid packet
        for rec in out.records:
            if len(rec) % ll.RECORD:
                raise Failure("lease-log record of %d bytes" % len(rec))


_server = [None]


def run_dhcp_server(data):
    """DhcpServer.handle on one long-lived server: nothing but counted drops escape."""
    h = _server[0]
    if h is None:
        h = _server[0] = ServerHarness()
    local = RELAY if data[:1] == b"\x02" else LOCAL
    h.feed(data, local)


def failover_seeds():
    now = 500
    msgs = [
        fo.make_connect(1, now, b"pair", 10, 60, 3600, bytes(32)),
        fo.make_connectack(1, now, b"pair", 10, 60),
        fo.make_state(2, now, fo.S_NORMAL, 0, now),
        fo.make_bndupd(3, now, b"\xc6\x12\x00\x0a", fo.B_ACTIVE, now + 60, now + 120, now,
                       b"\x01\x02\x00\x5e\x10\x00\x01", b"\x01\x02\x00\x5e\x10\x00\x01", now, fo.IPF_BOOTP),
        fo.make_bndack(3, now, b"\xc6\x12\x00\x0a", fo.REJ_OUTDATED_INFO, "late"),
        fo.make_poolreq(4, now), fo.make_poolresp(4, now, 9), fo.make_updreqall(5, now),
        fo.make_upddone(5, now), fo.make_contact(6, now), fo.make_disconnect(7, now, fo.REJ_UNKNOWN, "bye"),
    ]
    plain = b"".join(fo.encode(m) for m in msgs)
    signed = b"".join(fo.encode(m, KEY) for m in msgs)
    # first byte: bit 0 = decode with the key; second: how the stream is cut
    return [b"\x00\x00" + plain, b"\x01\x05" + signed, b"\x01\x00" + plain, b"\x00\x11" + signed,
            b"\x00\x00" + fo.encode(msgs[3]), b"\x01\x03" + fo.encode(msgs[0], KEY)]


def run_failover_stream(data):
    """StreamDecoder over a byte stream cut at input-chosen points, with or
    without a key: only FailoverError (close=True) escapes, the decoder
    stays failed after one, and it never holds a whole frame's worth."""
    ch = Choices(data)
    key = KEY if ch.byte() & 1 else None
    cuts = random.Random(ch.byte())
    stream = ch.rest()
    d = fo.StreamDecoder(key)
    p = 0
    failed = False
    while p < len(stream):
        n = cuts.randint(1, 64) if cuts.random() < 0.8 else cuts.randint(1, 3000)
        chunk = stream[p:p + n]
        p += n
        try:
            msgs = d.feed(chunk)
        except fo.FailoverError as e:
            if not e.close or not isinstance(e.reason, str):
                raise Failure("FailoverError from feed() without close")
            failed = True
            continue
        if failed:
            raise Failure("a failed decoder accepted more bytes")
        if d.pending() >= d.max_len:
            raise Failure("decoder holds %d bytes" % d.pending())
        for m in msgs:
            try:
                fo.encode(m, key)  # what the decoder accepts re-encodes
            except fo.FailoverError as e:
                if e.reason != "too-long":  # a keyless message re-signed may not fit
                    raise


def config_seeds():
    out = []
    for name in sorted(os.listdir(EXAMPLES)):
        if name.endswith(".json"):
            with open(os.path.join(EXAMPLES, name), "rb") as f:
                text = f.read()
            out.append(b"\x00" + text)  # raw text mutation
            out.append(bytes((1 + len(out) % 5,)) + b"\x00" * 8)  # structured mutation of example n
    return out


def _examples():
    docs = []
    for name in sorted(os.listdir(EXAMPLES)):
        if name.endswith(".json"):
            with open(os.path.join(EXAMPLES, name)) as f:
                docs.append(json.load(f))
    return docs


_EXAMPLE_DOCS = []
_ODD_VALUES = (None, True, False, 0, -1, 1, 2 ** 31, 2 ** 64, 1.5, "", "x", "0.0.0.0", "255.255.255.255",
               "198.18.0.300", "198.18.0.1/33", "02:00:5e:10:00:01", "primary", "secondary", "hot-standby",
               [], [None], {}, {"start": "198.18.0.1"}, "\u00e9\u0000", "*", 65536, 33, 255)


def _paths(doc, path, out):
    out.append(path)
    if isinstance(doc, dict):
        for k in sorted(doc):
            _paths(doc[k], path + (k,), out)
    elif isinstance(doc, list):
        for i in range(len(doc)):
            _paths(doc[i], path + (i,), out)


def _odd(ch):
    """A fresh copy of an odd value (shared lists would let a document contain itself)."""
    return json.loads(json.dumps(_ODD_VALUES[ch.below(len(_ODD_VALUES))]))


def _mutate_doc(doc, ch):
    """Replace, delete, duplicate or retype values at input-chosen paths."""
    for _ in range(1 + ch.below(4)):
        paths = []
        _paths(doc, (), paths)
        path = paths[ch.below(len(paths))]
        if not path:
            continue
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        last = path[-1]
        op = ch.below(5)
        if op == 0:
            parent[last] = _odd(ch)
        elif op == 1:
            del parent[last]
        elif op == 2 and isinstance(parent, list):
            parent.append(json.loads(json.dumps(parent[last])))
        elif op == 3 and isinstance(parent, dict):
            parent[ch.take(3).decode("latin-1") or "extra"] = json.loads(json.dumps(parent[last]))
        else:
            v = parent[last]
            if isinstance(v, int) and not isinstance(v, bool):
                parent[last] = v + (ch.below(2001) - 1000) * (1 + ch.below(1000))
            elif isinstance(v, str) and v:
                i = ch.below(len(v))
                parent[last] = v[:i] + chr(ch.byte() or 1) + v[i + 1:]
            else:
                parent[last] = _odd(ch)
    return doc


def run_config(data):
    """config.load_text/load on mutated example configs: ConfigError or a
    Config a node can be built from, started, and serve a DISCOVER with."""
    if not data:
        return
    if data[0] == 0:
        try:
            cfg = boardconf.load_text(data[1:])
        except config.ConfigError as e:
            if not e.errors or not all(isinstance(x, str) for x in e.errors):
                raise Failure("ConfigError without messages")
            return
    else:
        if not _EXAMPLE_DOCS:
            _EXAMPLE_DOCS.extend(_examples())
        ch = Choices(data[1:])
        doc = json.loads(json.dumps(_EXAMPLE_DOCS[data[0] % len(_EXAMPLE_DOCS)]))
        doc = _mutate_doc(doc, ch)
        try:
            cfg = boardconf.load(doc)
        except config.ConfigError as e:
            if not e.errors:
                raise Failure("ConfigError without messages")
            return
    node = Node(cfg)
    node.start(T0)
    node.tick(T0)
    if node.scopes and len(node.scopes):
        node.handle_dhcp(_client_packet(1, wire.DISCOVER), LOCAL, T0)
    if node.events.get("drop.internal-error") or node.events.get("peer.internal-error"):
        raise Failure("a node built from a valid config failed: %r" % (node.events.recent(3),))


def lease_log_seeds():
    t = lt.LeaseTable(64)
    recs = [ll.encode_marker(ll.LOG_BEGIN, 3)]
    t.set(5, lt.ACTIVE, 0, b"\x02\x00\x5e\x10\x00\x05", None, 4000, 0, 1000, 1)
    recs.append(ll.encode_binding(0, 5, t))
    t.set(6, lt.ACTIVE, 0, b"\x02\x00\x5e\x10\x00\x06", b"\x00odd-client-id-" + bytes(range(40)), 4000, 0, 1000, 1)
    recs.append(ll.encode_binding(0, 6, t, True))
    t.set(7, lt.EXPIRED, 0, b"\x11\x22\x33\x44\x55\x66\x77\x88", None, 4100, 0, 1000, 6)
    recs.append(ll.encode_binding(1, 7, t, True))
    recs.append(ll.encode_meta(1, b"state:normal"))
    log = b"".join(recs)
    chunk = bytearray(ll.RECORD * 32)
    snap = b"".join(bytes(chunk[:n]) for n in ll.snapshot_chunks(4, {0: t}, {1: b"meta"}, chunk))
    return [b"\x00" + log, b"\x07" + snap, b"\x00" + log[:-5], b"\x13" + snap + log]


def run_lease_log(data):
    """lease.log Replay of a random or mutated log/snapshot, fed whole and in
    pieces, applied to lease tables as the store does: nothing escapes, any
    cut gives the same result, and `good` is a whole-record prefix."""
    if not data:
        return
    cuts = random.Random(data[0])
    log = data[1:]
    results = []
    for split in (False, True):
        tables = {0: lt.LeaseTable(64), 1: lt.LeaseTable(16)}
        seen = []

        def on_binding(scope, offset, rec, extra):
            t = tables.get(scope)
            if t is None or offset >= t.size:
                return
            try:
                t.load_record(offset, rec, extra)
            except ValueError:
                return
            seen.append((scope, offset, bytes(rec), extra))

        def on_meta(key, payload):
            seen.append(("meta", key, payload))

        def on_mark(kind, gen, count):
            seen.append(("mark", kind, gen, count))

        r = LR.Replay(on_binding, on_meta, on_mark)
        if split:
            p = 0
            while p < len(log):
                n = cuts.randint(0, 70)
                r.feed(log[p:p + n])
                p += n
        else:
            r.feed(log)
        if r.good % ll.RECORD or r.good > len(log) or r.seen != len(log):
            raise Failure("replay prefix %d of %d" % (r.good, len(log)))
        results.append((seen, r.records, r.good, r.snap_gen, r.snap_whole, r.log_gen))
    if results[0] != results[1]:
        raise Failure("replay depends on how the log was cut")


_mgmt = [None]


def _mgmt_node():
    with open(os.path.join(EXAMPLES, "pair-primary.json")) as f:
        node = Node(boardconf.load(json.load(f)))
    node.start(T0)
    for i in range(1, 6):
        node.handle_dhcp(_client_packet(i, wire.DISCOVER), b"\xc6\x12\x00\x02", T0)
    return node, Commands(node)


_COMMANDS = ("help", "status", "get-leases", "get-scope-statistics", "get-failover", "set-failover-state",
             "get-counters", "get-events", "nope")
_ARG_NAMES = ("scope", "state", "limit", "level", "name", "cmd", "token")
_ARG_VALUES = (None, True, 0, -1, 1, 3, 10 ** 30, 1.5, "", "198.18.0.0", "198.18.0.999", "1.2.3.4.5",
               "active", "free", "debug", "info", "error", "partner-down", "shutdown", "pause", "resume",
               "pair", [], [1], {}, {"a": 1}, "x" * 300)


def mgmt_seeds():
    reqs = [{"cmd": "status"}, {"cmd": "get-leases", "scope": "198.18.0.0", "state": "active", "limit": 3},
            {"cmd": "get-events", "limit": 5, "level": "warn"},
            {"cmd": "set-failover-state", "name": "pair", "state": "pause"}, {"cmd": "help"}]
    return [b"{" + json.dumps(r).encode() for r in reqs] + [b"\x02\x03\x01\x02\x08\x03", b"\x05\x01\x04\x01\x00"]


def run_mgmt(data):
    """Commands.handle with any request: it answers a dict with ok set, never raises."""
    if _mgmt[0] is None:
        _mgmt[0] = _mgmt_node()
    node, cmds = _mgmt[0]
    if data[:1] == b"{":
        try:
            req = json.loads(data[1:].decode("utf-8"))
        except ValueError:
            return
    else:
        ch = Choices(data)
        req = {"cmd": _COMMANDS[ch.below(len(_COMMANDS))]}
        for _ in range(ch.below(4)):
            req[_ARG_NAMES[ch.below(len(_ARG_NAMES))]] = _ARG_VALUES[ch.below(len(_ARG_VALUES))]
    res = cmds.handle(req, T0 + len(data))
    if not isinstance(res, dict) or not isinstance(res.get("ok"), bool):
        raise Failure("answer without ok: %r" % (res,))
    if res["ok"] is False and not isinstance(res.get("error"), str):
        raise Failure("refusal without an error text")
    json.dumps(res)  # what the management port sends must be JSON


# ---------------------------------------------------------------------------
# The failover engine: a pair (tests/core/pairlink.py) brought up once, then
# copied for each input; the input is a byte stream from the "partner".

_pairs = {}


def _template(mode):
    """mode 0: NORMAL with bindings; 1: secondary waiting for CONNECT;
    2: primary that sent CONNECT. Returns (pair, recorded streams)."""
    if mode in _pairs:
        return _pairs[mode]
    from core import pairlink as P
    streams = {"a": [], "b": []}
    p = P.Pair()
    if mode == 0:
        real_drain = p.drain

        def drain(side):  # record what each side sends (the other receives it)
            for conn, data in side.node.out.peer:
                streams["b" if side is p.a else "a"].append(data)
            real_drain(side)

        p.drain = drain
        p.connect()
        p.tick(3)
        for n in range(6):
            P.dora(p, bytes((2, 0, 0x5E, 0x10, 0, n)))
        p.a.node.relationships[0].admin("pause", p.now, p.a.node.out)
        p.drain(p.a)
        p.flow()
        p.a.node.relationships[0].admin("resume", p.now, p.a.node.out)
        p.drain(p.a)
        p.flow()
        p.tick(2)
        del p.drain
    elif mode == 1:
        p.b.conn = "b<-a"
        p.b.node.peer_connected(p.b.conn, P.A_ADDR, False, p.now)
        p.drain(p.b)
    else:
        p.a.conn = "a->b"
        p.a.node.peer_connected(p.a.conn, P.B_ADDR, True, p.now)
        p.drain(p.a)
    _pairs[mode] = (p, streams)
    return _pairs[mode]


def failover_engine_seeds():
    p, streams = _template(0)
    out = []
    for first, side in ((b"\x00", "b"), (b"\x01", "a")):
        frames = [fo.encode(m) for m in fo.StreamDecoder().feed(b"".join(streams[side]))]
        seen = set()
        for i, f in enumerate(frames):  # each kind of message alone, and runs of eight
            if f[2] not in seen:
                seen.add(f[2])
                out.append(first + f)
            if i % 8 == 0:
                out.append(first + b"".join(frames[i:i + 8]))
    now = 1000
    out.append(b"\x02" + fo.encode(fo.make_connect(1, now, b"pair", 10, 60, 60, bytes(32))))
    out.append(b"\x05" + fo.encode(fo.make_connectack(1, now, b"pair", 10, 60)))
    return out


def run_failover_engine(data):
    """Relationship.data with any stream from the partner (no key, so every
    frame reaches the engine), then time passes and clients ask: nothing
    but counted drops and closes; the engine never raises."""
    import copy
    if not data:
        return
    mode = (data[0] >> 1) % 3
    p, _ = _template(mode)
    p = copy.deepcopy(p)
    side = p.b if (mode == 1 or (mode == 0 and not data[0] & 1)) else p.a
    conn = side.conn
    rel = side.node.relationships[0]
    stream = data[1:]
    for k in range(0, len(stream), 512):
        rel.data(conn, stream[k:k + 512], p.now, side.node.out)
        side.node.out.clear()
    for _ in range(3):
        p.now += 20
        for s in (p.a, p.b):
            rel_s = s.node.relationships[0]
            rel_s.tick(p.now, s.node.out)
            s.node.handle_dhcp(_client_packet(p.now & 0xFF, wire.DISCOVER), s.addr, p.now)
            s.node.out.clear()
    for s in (p.a, p.b):
        for name in ("peer.internal-error", "drop.internal-error"):
            if s.node.events.get(name):
                raise Failure("%s: %r" % (name, s.node.events.recent(3)))


def _pair_ledger(p):
    """addr -> (client id, hw address, lease end) of ACTIVE bindings on either server."""
    led = {}
    for side in (p.a, p.b):
        n = side.node
        for sc in n.scopes:
            t = n.tables[sc.index]
            off = t.next_in_state(lt.ACTIVE, 0)
            first = off
            while off >= 0:
                addr = sc.addr_of(off)
                end = t.expiry(off)
                if addr not in led or led[addr][2] < end:
                    hw = t.hwaddr(off)
                    led[addr] = (t.client_id(off), hw[1] if hw else b"", end)
                off = t.next_in_state(lt.ACTIVE, (off + 1) % t.size)
                if off == first:
                    break
    return led


def _pair_packets(p):
    """Client messages that make sense to the template pair: new clients,
    renewals and releases of bound ones, requests for others' addresses."""
    from core import pairlink as P
    led = _pair_ledger(p)
    out = []
    for n in range(8):  # addresses of both pools, each asked for by two clients, of both servers
        mac = bytes((2, 0, 0x5E, 0x20, 0, n))
        want = bytes((198, 18, 0, (15, 30, 40, 55)[n >> 1]))
        out.append(wire.encode(P.client_packet(mac, wire.DISCOVER, 50 + n)))
        out.append(wire.encode(P.client_packet(mac, wire.REQUEST, 50 + n, secs=4, o50=want,
                                               o54=P.A_ADDR if n & 1 else P.B_ADDR)))
    for addr, (cid, hw, end) in sorted(led.items()):
        q = wire.Packet(xid=9, chaddr=hw, ciaddr=addr)
        q.options[wire.OPT_MSG_TYPE] = bytes((wire.REQUEST,))
        out.append(wire.encode(q))
        q.options[wire.OPT_MSG_TYPE] = bytes((wire.RELEASE,))
        out.append(wire.encode(q))
        thief = P.client_packet(b"\x02\x00\x5e\x20\x01\x01", wire.REQUEST, 77, o50=addr)
        out.append(wire.encode(thief))
    return out


def dhcp_pair_seeds():
    p, _ = _template(0)
    pk = _pair_packets(p)
    out = []
    for i in range(0, len(pk), 2):
        step = b""
        for j, raw in enumerate(pk[i:i + 4]):
            step += bytes(((j + i) % 3,)) + len(raw).to_bytes(2, "big") + raw  # a, b, a, ...: no flow
        out.append(step)
    return out


def run_dhcp_pair(data):
    """Client traffic to a failover pair in NORMAL: steps of [control byte,
    length u16, datagram]; the control byte picks the server(s) (a, b, both),
    whether failover messages flow, and how much time passes. Nothing but
    counted drops, and no two clients are ever ACKed the same address for
    overlapping times (I1, as clients see it)."""
    import copy
    p, _ = _template(0)
    p = copy.deepcopy(p)
    led = _pair_ledger(p)
    ch = Choices(data)
    while ch.left() >= 3:
        ctl = ch.byte()
        n = (ch.byte() << 8) | ch.byte()
        raw = ch.take(n)
        p.now += (ctl >> 4) * 7
        try:
            pkt = wire.decode(raw)
        except wire.DecodeError:
            pkt = None
        sides = (p.a, p.b, None)[ctl & 3] if ctl & 3 != 3 else None
        for side in ((p.a, p.b) if sides is None else (sides,)):
            side.node.out.clear()
            side.node.handle_dhcp(raw, side.addr, p.now)
            replies = [wire.decode(d[0]) for d in side.node.out.dhcp]
            p.drain(side)
            if pkt is None:
                continue
            cid = pkt.options.get(wire.OPT_CLIENT_ID)
            hw = bytes(pkt.hwaddr())
            if pkt.msg_type in (wire.RELEASE, wire.DECLINE):
                for addr, (lcid, lhw, end) in list(led.items()):
                    if (cid and cid == lcid) or (hw and hw == lhw):
                        if addr == pkt.ciaddr or addr == pkt.options.get(wire.OPT_REQUESTED_IP):
                            del led[addr]  # the client gave it up
            for r in replies:
                if r.msg_type != wire.ACK or r.yiaddr == b"\0\0\0\0":
                    continue
                lt_opt = r.options.get(wire.OPT_LEASE_TIME)
                end = p.now + (int.from_bytes(lt_opt, "big") if lt_opt else 0)
                held = led.get(r.yiaddr)
                if held is not None and held[2] > p.now and not ((cid and cid == held[0]) or (hw and hw == held[1])):
                    raise Failure("%r ACKed to %r while %r holds it until %d (now %d)"
                                  % (r.yiaddr, (cid, hw), held[:2], held[2], p.now))
                led[r.yiaddr] = (cid, hw, end)
        if ctl & 4:
            p.flow()
        if ctl & 8:
            p.tick(1)
    p.flow()
    for s in (p.a, p.b):
        for name in ("peer.internal-error", "drop.internal-error"):
            if s.node.events.get(name):
                raise Failure("%s: %r" % (name, s.node.events.recent(3)))


class Target:
    """A fuzz target: run(bytes), seeds() -> example inputs, inputs capped at
    max_len, and a header length that byte insertions and deletions mostly
    leave in place (so mutated packets get past the magic cookie)."""

    def __init__(self, name, run, seeds, max_len, header=0):
        self.name = name
        self.run = run
        self.seeds = seeds
        self.max_len = max_len
        self.header = header


TARGETS = dict((t.name, t) for t in (
    Target("dhcp_codec", run_dhcp_codec, dhcp_seeds, 1600, 240),
    Target("dhcp_server", run_dhcp_server, dhcp_seeds, 1600, 240),
    Target("failover_stream", run_failover_stream, failover_seeds, 6000),
    Target("config", run_config, config_seeds, 8000),
    Target("lease_log", run_lease_log, lease_log_seeds, 2000),
    Target("mgmt", run_mgmt, mgmt_seeds, 400),
    Target("failover_engine", run_failover_engine, failover_engine_seeds, 4000),
    Target("dhcp_pair", run_dhcp_pair, dhcp_pair_seeds, 3000),
))


def regression_inputs(name):
    """(file name, bytes) of every saved failing input of a target."""
    d = os.path.join(REGRESSIONS, name)
    if not os.path.isdir(d):
        return []
    out = []
    for fn in sorted(os.listdir(d)):
        if not fn.startswith("."):
            with open(os.path.join(d, fn), "rb") as f:
                out.append((fn, f.read()))
    return out


def save_regression(name, data):
    """Keep a failing input for good (named by content)."""
    import hashlib
    d = os.path.join(REGRESSIONS, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "crash-" + hashlib.sha1(data).hexdigest()[:16])
    with open(path, "wb") as f:
        f.write(data)
    return path


def mutate(data, rnd, max_len, header=0):
    """A byte-level mutation (flip, set, insert, delete, duplicate, splice in
    an interesting value), used by the hypothesis engine."""
    b = bytearray(data)
    for _ in range(rnd.randint(1, 8)):
        op = rnd.randint(0, 6)
        n = len(b)
        i = rnd.randint(0, n) if n else 0
        if header and op >= 2 and n > header and rnd.random() < 0.9:
            i = rnd.randint(header, n)  # keep the fixed header's layout
        if op == 0 and n:
            b[i % n] ^= 1 << rnd.randint(0, 7)
        elif op == 1 and n:
            b[i % n] = rnd.choice((0, 1, 0x7F, 0x80, 0xFF, rnd.randint(0, 255)))
        elif op == 2:
            b[i:i] = bytes(rnd.randint(0, 255) for _ in range(rnd.randint(1, 8)))
        elif op == 3 and n:
            del b[i:i + rnd.randint(1, 16)]
        elif op == 4 and n:
            j = rnd.randint(0, n)
            b[i:i] = b[min(i, j):max(i, j)][:64]
        elif op == 5 and n >= 2:
            v = rnd.choice((0, 1, 2, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 12, 576, 2048, 2049))
            b[i % (n - 1):i % (n - 1) + 2] = bytes(((v >> 8) & 255, v & 255))
        elif op == 6:
            del b[i:]
    return bytes(b[:max_len])
