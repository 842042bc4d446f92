"""The simulated world: virtual time, a virtual network, real nodes, clients.

Time is an integer number of milliseconds of *real* time (`World.t`). A node
sees its own *local* clock, as compat.Clock gives a driver: whole seconds
counted from boot, starting where `Node.resume_time` places them (from the
lease log's clock note and the wall time the node boots with, if any). Its
*wall* clock is real time plus a skew, and what the node makes of it depends
on its kind (Scenario.clock_kinds): "rtc" boots with trusted wall time (a
host, a board with a battery-backed clock); "board" boots without (its raw
counter restarts at 0 on every boot) and learns wall time only from its
partner; "ntp" is a board whose NTP answers some seconds after boot. Clock
jumps step a node's wall clock while it runs; a node with wall time hears of
it as an NTP correction (Node.set_wall). Times a node sends are its local
times plus its learned offset; the world converts both back to real time
with the mapping that held when they were produced.

Each node is a real `dhcpfo.node.Node` built from a real configuration
(`dhcpfo.config.load`) with the real `runtime.store.LeaseStore` over an
in-memory filesystem that can lose power (`flash.MemFs`), restored exactly
as runtime/host.py does (load tables and metas, after_restore, storage_lost).
After every input the world does what runtime/aio.py `NodeRunner.flush`
does, in its order: append `out.records`, commit, and only then send the
DHCP datagrams and stream bytes, close connections and open new ones. A
crash may be scheduled to cut power inside a commit (before its sync
returns: a torn prefix of the batch may stay on flash and nothing of that
turn is sent) or inside a compaction.

Network: DHCP datagrams ride one broadcast segment (both servers hear every
broadcast; a unicast goes to the addressed server) with loss, duplication
and random delay (so reordering). The failover link is a TCP byte stream
per connection: ordered and reliable while it lives, delayed (held) while
partitioned, and broken only by a close, a reset or a crash.

Observation goes to `invariants.Checker` after every step; nothing in the
firmware is changed for it (see docs/simulation.md for what is read).
"""

import heapq
import random
import re

from dhcpfo_host import boardconf
from dhcpfo import events as ev
from dhcpfo.failover import states as S
from dhcpfo.lease import log as ll
from dhcpfo.mgmt.commands import Commands
from dhcpfo.node import Node
from dhcpfo.wire import dhcp as wire
from dhcpfo.wire import failover as fw
from runtime.store import LeaseStore

from sim import invariants as inv
from sim.clients import Client, default_profile
from sim.flash import DurableView, MemFs, PowerCut

SUBNET = b"\x0a\x00\x00\x00"  # 10.0.0.0/24
POOL_START = 100
T0_S = 10 ** 6  # core time at the start of every run (real seconds)
STORE_DIR = "/flash"

L_RECORD = ll.RECORD
# event 20252 of a node's own transition (failover/notice.py state_event); the
# partner's own changes, reported with PARTNER_TOLD, are not this node's
_STATE_RE = re.compile(r"changed from (\S+) to (\S+) \((.*)\)\.$")
PARTNER_TOLD = "told by the partner"


def ip4(last):
    return bytes((10, 0, 0, last))


def ip_text(b):
    return "%d.%d.%d.%d" % (b[0], b[1], b[2], b[3])


def build_docs(sc):
    """Configuration documents (dicts for config.load) for the scenario's nodes."""
    scope = {
        "id": "10.0.0.0",
        "mask": 24,
        "lease_time": sc.lease_time,
        "offer_delay_ms": 0,
        "ranges": [{"start": "10.0.0.%d" % POOL_START, "end": "10.0.0.%d" % (POOL_START + sc.pool - 1)}],
        "options": {"routers": ["10.0.0.1"]},
    }
    docs = []
    for i in range(sc.nodes):
        srv = {"name": "n%d" % i, "server_id": "10.0.0.%d" % (2 + i), "decline_hold": sc.decline_hold,
               "offer_hold": 30, "time_skew_max": sc.time_skew_max}
        doc = {"server": srv, "scopes": [dict(scope)]}
        if sc.nodes == 2 and not getattr(sc, "no_failover", False):
            fo = {"name": "pair", "role": "primary" if i == 0 else "secondary", "mode": sc.mode,
                  "partner": {"address": "10.0.0.%d" % (3 - i)}, "scopes": ["10.0.0.0"],
                  "mclt": sc.mclt if i == 0 else sc.secondary_mclt,
                  "max_unacked": sc.max_unacked, "max_response_delay": sc.max_response_delay,
                  "load_balance_max_seconds": sc.lb_max_seconds}
            if sc.mode == "hot-standby":
                fo["reserve_percent"] = sc.reserve_percent
            else:
                fo["load_balance_percent"] = sc.lb_percent
            if sc.safe_period:
                fo["auto_state_switchover"] = sc.safe_period
            if sc.secret:
                fo["shared_secret"] = sc.secret
            doc["failover"] = [fo]
        docs.append(doc)
    return docs


class End:
    """One side of a failover TCP connection: the `conn` object its node sees."""

    __slots__ = ("c", "side", "sn", "inc", "closed", "dec", "__weakref__")

    def __init__(self, c, side, sn):
        self.c = c
        self.side = side
        self.sn = sn
        self.inc = sn.inc
        self.closed = False
        self.dec = fw.StreamDecoder(sn.key, fw.MAX_LEN)

    def __repr__(self):
        return "<conn %d %s>" % (self.c.id, self.sn.name)


class Conn:
    """A TCP connection: two ends, one ordered byte queue per direction."""

    def __init__(self, cid, a, b):
        self.id = cid
        self.ends = (End(self, 0, a), End(self, 1, b))
        self.last = [0, 0]  # delivery time of the last chunk per direction (FIFO)
        self.held = ([], [])  # chunks waiting out a partition, per direction
        self.dead = False


class SimNode:
    """A node's hardware: address, configuration, flash, clock; `node` while running."""

    def __init__(self, world, idx, doc, skew_s, kind="rtc"):
        self.world = world
        self.idx = idx
        self.name = "n%d" % idx
        self.addr = ip4(2 + idx)
        self.doc = doc
        self.cfg = boardconf.load(doc)
        fo = self.cfg.failover[0] if self.cfg.failover else None
        self.role = fo.role if fo is not None else "standalone"
        self.key = fo.shared_secret if fo is not None and fo.enable_authentication else None
        self.safe_period = fo.auto_state_switchover if fo is not None else None
        self.skew = skew_s  # wall clock minus real time (s); clock jumps move it
        self.kind = kind  # "rtc", "board" or "ntp" (see the module docstring)
        self.boot_ms = 0  # real ms at the last boot
        self.l0 = 0  # local time at the last boot (Node.resume_time)
        model = getattr(world.sc, "fs_model", (True, True))
        self.fs = MemFs(meta_durable=model[0], rename_atomic=model[1])
        self.store = None  # a LeaseStore per boot, as runtime/host.py makes one per process
        self.make_store = self._store
        self.view = None
        self.node = None
        self.rel = None
        self.commands = None
        self.up = False
        self.inc = 0
        self.ends = []  # open Ends of this incarnation
        self.next_connect = 0
        self.connect_delay = 1
        self.crash_at_flush = None  # None or (torn, wipe, down_ms): crash during the next commit
        self.crash_in_compaction = None  # None or op index: power cut inside the next (forced) compaction
        self.dhcp_up = True
        self.evbuf = []
        self.admin_now = None  # admin command issued in the current turn
        self.state = None  # failover state name as last observed
        self.ci_since = None  # node time of entering COMMUNICATIONS-INTERRUPTED
        self.partner_state = None  # last state the partner told us (STATE without STARTUP)
        self.down_since = None
        self.stopping = False

    def _store(self):
        return LeaseStore(STORE_DIR, fs=self.fs)

    def wall(self, t_ms):
        """This node's wall clock (core seconds) at real time t_ms."""
        return t_ms // 1000 + self.skew

    def now(self, t_ms):
        """Local time: whole seconds since boot, from where the node resumed."""
        return self.l0 + (t_ms - self.boot_ms) // 1000

    def to_real(self, node_s):
        """A time on this node's local clock (core seconds) as real ms."""
        return self.boot_ms + (node_s - self.l0) * 1000

    def wire_base(self):
        """(real ms, wire time) of one instant: maps the times this node sends now."""
        off = self.node.time.offset if self.node is not None else None
        return self.boot_ms, self.l0 + (off or 0)


class World:
    def __init__(self, scenario, trace=False):
        self.sc = scenario
        self.rng = random.Random(scenario.seed * 7919 + 1)
        self.net_rng = random.Random(scenario.seed * 104729 + 3)
        self.t = T0_S * 1000
        self.q = []
        self.seq = 0
        self.steps = 0
        self.conn_ids = 0
        self.trace_on = trace
        self.trace = []
        docs = build_docs(scenario)
        kinds = getattr(scenario, "clock_kinds", None) or ["rtc"] * scenario.nodes
        self.nodes = [SimNode(self, i, docs[i], scenario.skews[i], kinds[i]) for i in range(scenario.nodes)]
        roles = dict((sn.name, sn.role) for sn in self.nodes)
        mclt = scenario.mclt if scenario.nodes == 2 else 0
        self.clients = []
        self.by_mac = {}
        names = {}
        crng = random.Random(scenario.seed * 31 + 17)
        for i in range(scenario.population):
            mac = bytes((0x02, 0x5E, (scenario.seed >> 8) & 255, scenario.seed & 255, i >> 8, i & 255))
            kind = crng.choice((0, 1, 1, 2))
            c = Client(self, i, mac, kind, random.Random(crng.getrandbits(32)), default_profile(crng))
            self.clients.append(c)
            self.by_mac[mac] = c
            names[c.key] = c.name
        # clients that stay off until a fault script powers them on (new machines)
        self.spares = []
        for i in range(scenario.population, scenario.population + getattr(scenario, "spares", 0)):
            mac = bytes((0x02, 0x5E, (scenario.seed >> 8) & 255, scenario.seed & 255, i >> 8, i & 255))
            c = Client(self, i, mac, crng.choice((0, 1, 1, 2)), random.Random(crng.getrandbits(32)),
                       default_profile(crng))
            self.clients.append(c)
            self.spares.append(c)
            self.by_mac[mac] = c
            names[c.key] = c.name
        self.checker = inv.Checker(roles, mclt, dict((sn.name, sn.safe_period) for sn in self.nodes), names)
        self.partitions = set()  # (from idx, to idx) failover-link directions cut
        self.dhcp_loss = 0.0
        self.dhcp_dup = 0.0
        self.dhcp_delay = (0, 5)  # ms, uniform
        self.dhcp_late = 0.0  # probability of a late (reordered) datagram
        self.pool_addrs = [ip4(POOL_START + i) for i in range(scenario.pool)]
        self.stats = {"dhcp_in": 0, "dhcp_out": 0, "peer_msgs": 0, "crashes": 0, "restarts": 0,
                      "wipes": 0, "partitions": 0, "admin": 0, "acks": 0, "torn": 0, "compaction_cuts": 0,
                      "clockless_boots": 0, "ntp": 0, "jumps": 0, "learned": 0, "unsure_boots": 0}
        self.heal_t = None
        self._last_pool_scan = 0

    # ------------------------------------------------------------------ events

    def at(self, t, fn, *args):
        self.seq += 1
        heapq.heappush(self.q, (t, self.seq, fn, args))

    def log(self, text):
        if self.trace_on:
            self.trace.append("%9.3f %s" % ((self.t - T0_S * 1000) / 1000.0, text))
            if len(self.trace) > 400000:
                del self.trace[:200000]

    def run_until(self, t_end):
        q = self.q
        while q and q[0][0] <= t_end:
            t, _s, fn, args = heapq.heappop(q)
            self.t = t
            fn(*args)
            self.steps += 1
        self.t = t_end

    # ------------------------------------------------------------------ nodes

    def boot(self, sn, wipe=False):
        """Power a node on: build it from config, restore from flash, start it."""
        if sn.up:
            return
        if wipe:
            sn.fs.wipe()
            self.checker.wiped_storage(self.t, sn.name)
            self.stats["wipes"] += 1
        sn.inc += 1
        sn.up = True
        sn.stopping = False
        sn.ends = []
        sn.down_since = None
        node = Node(sn.cfg)
        sn.node = node
        sn.rel = node.relationships[0] if node.relationships else None
        sn.commands = Commands(node)
        sn.store = sn.make_store()
        stats = sn.store.load(node.tables_by_scope(), node.restore_meta)
        node.after_restore()
        # the driver's clock: a board's raw counter restarts at 0, the core says
        # where local time resumes (runtime/host.py and board.py do the same)
        sn.boot_ms = self.t
        sn.l0 = node.resume_time(sn.wall(self.t) if sn.kind == "rtc" else None)
        if sn.kind != "rtc":
            self.stats["clockless_boots"] += 1
        if node.time.unsure_until > sn.l0:
            self.stats["unsure_boots"] += 1
        now = sn.now(self.t)
        if stats["lost"]:
            node.storage_lost(now)
        if sn.view is not None:
            sn.view.detach()
        sn.view = DurableView(sn.fs, STORE_DIR, [t.size for t in node.tables])
        sn.evbuf = []
        node.events.sink = sn.evbuf.append
        if sn.rel is not None:
            saved = sn.rel.saved
            restored = S.name(saved) if saved is not None else None
            if stats["lost"]:
                restored = None
            self.checker.restarted(self.t, sn.name, restored, sn.rel.stos if saved is not None else 0)
            sn.state = inv.STARTUP
            self.checker.state[sn.name] = inv.STARTUP
            sn.ci_since = None
        self.log("%s boots%s (restored %s)" % (sn.name, " with wiped storage" if wipe else "",
                                               S.name(sn.rel.saved) if sn.rel and sn.rel.saved else "-"))
        self._turn(sn, node.start, (now,), None)
        if sn.up:
            inc = sn.inc
            self.at(self.t + self.rng.randrange(0, 1000), self._tick, sn, inc)
            if sn.kind == "ntp":
                self.at(self.t + self.rng.randrange(2000, 60000), self.ntp, sn, inc)

    def ntp(self, sn, inc):
        """The node's NTP answers: its wall clock, as a correction of the offset."""
        if not sn.up or sn.inc != inc:
            return
        self.log("%s: NTP says %d" % (sn.name, sn.wall(self.t)))
        self.stats["ntp"] += 1
        self._turn(sn, sn.node.set_wall, (sn.wall(self.t), sn.now(self.t)), None)

    def has_wall(self, sn):
        return sn.up and sn.node.time.source in ("clock", "ntp", "doubted")

    def crash(self, sn, power=True):
        """The node stops now, between two turns (nothing uncommitted is lost).
        power: a power cut (the partner may see no FIN); else a process stop.
        A crash in the middle of a commit is scheduled with sn.crash_at_flush."""
        if not sn.up:
            return
        self.log("%s crashes" % sn.name)
        self._down(sn, power)
        sn.fs.crash(self.rng)  # every write was synced: nothing is lost
        self.checker.crashed(self.t, sn.name, None)

    def _down(self, sn, power):
        sn.up = False
        sn.down_since = self.t
        self.stats["crashes"] += 1
        for e in list(sn.ends):
            self._end_gone(e, notify_peer=not power or self.rng.random() < 0.5)
        sn.ends = []
        sn.node = None
        sn.rel = None
        sn.commands = None
        sn.state = None
        self.checker.link(self.t, sn.name, False)

    def _end_gone(self, e, notify_peer):
        """Our end vanished without the node knowing (crash): the other side
        may get a FIN/RST (process crash) or nothing (power loss)."""
        e.closed = True
        other = e.c.ends[1 - e.side]
        if other.closed:
            return
        if notify_peer:
            d = 1 - e.side
            self._queue(e.c, d, self.t + self.net_rng.randrange(1, 50), ("close",), other)

    def _tick(self, sn, inc):
        if not sn.up or sn.inc != inc:
            return
        node = sn.node
        now = sn.now(self.t)
        self._turn(sn, node.tick, (now,), None)
        if sn.up and sn.store.pending():
            sn.store.commit()  # as tick_task: lazy records are committed every second
        if not sn.up or sn.inc != inc:
            return
        if sn.crash_in_compaction is not None:
            self._compaction_crash(sn)
            return
        if sn.store.should_compact():
            sn.store.compact()
        # the connector task of runtime/aio.py: keep one attempt going while unlinked
        if sn.rel is not None and self.t >= sn.next_connect and not sn.rel.link_up():
            ok = self._connect(sn)
            sn.next_connect = self.t + (1000 if ok else sn.connect_delay * 1000)
            sn.connect_delay = 1 if ok else (sn.connect_delay * 2 if sn.connect_delay < 8 else 10)
        self.at(self.t + self.sc.tick_ms, self._tick, sn, inc)
        if self.t - self._last_pool_scan >= 5000:
            self._last_pool_scan = self.t
            self._pool_check(None)

    # ------------------------------------------------------------------ the flush

    def _turn(self, sn, fn, args, ctx):
        """Run one input through the node, then do what NodeRunner.flush does."""
        rel = sn.rel
        before = S.name(rel.state) if rel is not None else None
        now = sn.now(self.t)
        node = sn.node
        learned = node.events.get("clock.learned-from-partner") if node is not None else 0
        fn(*args)
        if node is not None:
            self.stats["learned"] += node.events.get("clock.learned-from-partner") - learned
        self._flush(sn, before, now, ctx)

    def _flush(self, sn, before, now, ctx):
        node = sn.node
        out = node.out
        ck = self.checker
        t = self.t
        rel = sn.rel
        # what the turn produced, observed before the commit (priors come from flash)
        replies = []
        for item in out.dhcp:
            try:
                pkt = wire.decode(item[0])
            except wire.DecodeError:
                continue
            prior = None
            if pkt.msg_type == wire.ACK and pkt.yiaddr != b"\x00\x00\x00\x00":
                prior = self._binding(sn, pkt.yiaddr)
            replies.append((item, pkt, prior))
        transitions = self._transitions(sn, before)
        if out.lazy:
            sn.store.append(out.lazy)  # as NodeRunner.flush: rides with the next commit
        records = out.records
        changed = []
        if records:
            for r in records:
                for p in range(0, len(r), ll.RECORD):
                    if r[p] == ll.BINDING:
                        changed.append(((r[p + 2] << 8) | r[p + 3], r[p + 4]))
            sn.store.append(records)
            if sn.crash_at_flush is not None:
                sn.fs.arm(kind="sync")  # power goes while the batch is written, before it is synced
                try:
                    sn.store.commit()
                except PowerCut:
                    self._torn_crash(sn, transitions)
                    return
            sn.store.commit()
        # failover state changes, and what is now recorded
        if ctx is not None and ctx.get("delivered"):
            self._observe_delivered(sn, ctx, transitions, before)
        if transitions:
            self._state_changes(sn, transitions, now)
            if records and rel is not None and rel.state != S.STARTUP:
                ck.recorded_state(t, sn.name, S.name(rel.state), rel.stos)
        # DHCP replies (checked against the state at input time and the flash now)
        for item, pkt, prior in replies:
            self._reply(sn, item, pkt, prior, before, now, ctx)
        for off, status in changed:
            if off < len(self.pool_addrs):
                ck.binding_changed(t, sn.name, self.pool_addrs[off], status)
        # failover messages
        for conn, payload in out.peer:
            self._peer_send(sn, conn, payload, now)
        for conn in out.closes:
            self._close(sn, conn)
        for _name, host, _port in out.connects:
            if sn.rel is not None and not sn.rel.link_up():
                self._connect(sn)
        out.clear()
        if changed:
            self._pool_check([off for off, _s in changed])

    def _binding(self, sn, addr):
        """(status, client, expiry real ms) of addr on sn's flash, or None."""
        off = addr[3] - POOL_START
        if addr[:3] != SUBNET[:3] or off < 0 or off >= len(self.pool_addrs):
            return None
        b = sn.view.binding(0, off)
        if b is None:
            return None
        st, cid, hw, expiry, pexp = b
        client = cid if cid is not None else (bytes((hw[0],)) + hw[1] if hw is not None else None)
        return (st, client, sn.to_real(expiry) if expiry else 0, sn.to_real(pexp) if pexp else None)

    def _torn_crash(self, sn, transitions):
        torn, wipe, down_ms = sn.crash_at_flush
        sn.crash_at_flush = None
        self.stats["torn"] += 1
        self.log("%s crashes during a commit" % sn.name)
        cand = None
        if transitions and sn.rel is not None and sn.rel.state != S.STARTUP:
            cand = (S.name(sn.rel.state), sn.rel.stos)
        sn.node.out.clear()
        self._down(sn, True)
        sn.fs.crash(self.rng, keep="random" if torn else "none")
        self.checker.crashed(self.t, sn.name, cand)
        if down_ms is not None:
            self.at(self.t + down_ms, self._restart_event, sn, wipe)

    def _compaction_crash(self, sn):
        """Power cut at the k-th filesystem operation of a compaction (snapshot
        written, synced, renamed, log restarted): nothing committed may be lost."""
        k = sn.crash_in_compaction
        sn.crash_in_compaction = None
        fs = sn.fs
        fs.arm(op=fs.ops + k, partial=self.rng.randrange(L_RECORD * 4))
        try:
            sn.store.compact()
        except PowerCut:
            self.stats["compaction_cuts"] += 1
            self.log("%s crashes during a compaction (filesystem operation %d)" % (sn.name, k))
            sn.node.out.clear()
            self._down(sn, True)
            fs.crash(self.rng)
            self.checker.crashed(self.t, sn.name, None)
            return
        fs.disarm()  # the compaction finished first: crash between turns
        self.crash(sn)

    def _restart_event(self, sn, wipe):
        self.faults.restart(sn, wipe)

    def _transitions(self, sn, before):
        """State transitions of this turn: parsed from the node's event sink."""
        buf = sn.evbuf
        if not buf and (sn.rel is None or S.name(sn.rel.state) == before):
            return None
        trans = []
        for e in buf:
            if e[2] == ev.EV_STATE_CHANGE:
                m = _STATE_RE.search(e[3])
                if m is not None and m.group(3) != PARTNER_TOLD:
                    trans.append((m.group(1), m.group(2), m.group(3)))
            elif e[2] == ev.EV_COMM_UP:
                self.checker.link(self.t, sn.name, True)
            elif e[2] == ev.EV_COMM_DOWN:
                self.checker.link(self.t, sn.name, False)
        del buf[:]
        rel = sn.rel
        if rel is not None:
            cur = S.name(rel.state)
            last = trans[-1][1] if trans else before
            if cur != last:
                trans.append((last, cur, "unreported"))
        return trans or None

    def _state_changes(self, sn, trans, now):
        ck = self.checker
        for old, new, why in trans:
            if old == new:
                continue
            cause = None
            partner_serving = False
            if new == inv.PD:
                cause = self._pd_cause(sn, old, now, why)
                partner_serving = self._partner_serving(sn)
            if new == inv.CI:
                sn.ci_since = now
            self.log("%s %s -> %s (%s)" % (sn.name, old, new, why))
            ck.state_changed(self.t, sn.name, old, new, cause, partner_serving)
            sn.state = new
        if sn.rel is not None and sn.role == "secondary" and sn.rel.link is not None and sn.rel.link.up:
            ck.mclt_in_use(self.t, sn.name, sn.rel.mclt)

    def _pd_cause(self, sn, old, now, why):
        if sn.admin_now == "partner-down":
            return "admin"
        if old == inv.CI and sn.safe_period and sn.ci_since is not None and now >= sn.ci_since + sn.safe_period:
            return "safe-period"
        if sn.partner_state == inv.SHUTDOWN:
            return "partner-shutdown"
        if old == inv.STARTUP:
            d = self.checker.durable_state.get(sn.name)
            st = d[0] if d is not None else None
            if st in (inv.SHUTDOWN, inv.PAUSED):
                st = self.checker.before_stop.get(sn.name)  # §9.14.1: the state before SHUTDOWN
            if st == inv.PD:
                return "resume"
        return None

    def _partner_serving(self, sn):
        """Is the partner running in a state that hands out new addresses (or in
        STARTUP behind a partition, from where it would resume doing so)? A
        partner in RECOVER-DONE only renews, under the MCLT cap, what it
        learned from us; that is no second allocator."""
        for o in self.nodes:
            if o is not sn:
                if not o.up or o.stopping:
                    return False
                st = S.name(o.rel.state) if o.rel is not None else None
                if st == inv.STARTUP:
                    return self.partitioned(sn, o) or self.partitioned(o, sn)
                return st in inv.ALLOCATING
        return False

    # ------------------------------------------------------------------ DHCP

    def client_send(self, client, data, unicast_to, now_ms):
        """A client datagram: broadcast to every server, or unicast to one."""
        r = self.net_rng
        for sn in self.nodes:
            if unicast_to is not None and sn.addr != unicast_to:
                continue
            if not sn.dhcp_up or r.random() < self.dhcp_loss:
                continue
            copies = 2 if r.random() < self.dhcp_dup else 1
            for _ in range(copies):
                self.at(now_ms + self._dhcp_delay(), self._dhcp_in, sn, sn.inc, data)

    def _dhcp_delay(self):
        r = self.net_rng
        d = r.randrange(self.dhcp_delay[0], self.dhcp_delay[1] + 1)
        if self.dhcp_late and r.random() < self.dhcp_late:
            d += r.randrange(100, 3000)
        return d

    def _dhcp_in(self, sn, inc, data):
        if not sn.up or sn.inc != inc:
            return
        self.stats["dhcp_in"] += 1
        try:
            req = wire.decode(data)
        except wire.DecodeError:
            req = None
        ctx = {"req": req}
        self._turn(sn, sn.node.handle_dhcp, (data, sn.addr, sn.now(self.t)), ctx)

    def _reply(self, sn, item, pkt, prior, before, now, ctx):
        payload, dst, port, delay = item
        ck = self.checker
        req = ctx.get("req") if ctx else None
        mt = pkt.msg_type
        client = pkt.options.get(wire.OPT_CLIENT_ID)
        if client is None:
            client = bytes((pkt.htype,)) + pkt.chaddr[:pkt.hlen]
        lease_end = None
        t_floor = sn.to_real(now)
        addr = pkt.yiaddr if pkt.yiaddr != b"\x00\x00\x00\x00" else None
        if mt == wire.ACK and addr is not None:
            lt_opt = pkt.options.get(wire.OPT_LEASE_TIME)
            if lt_opt is not None and len(lt_opt) == 4:
                secs = (lt_opt[0] << 24) | (lt_opt[1] << 16) | (lt_opt[2] << 8) | lt_opt[3]
                lease_end = t_floor + secs * 1000
        durable = self._binding(sn, addr) if addr is not None and mt == wire.ACK else None
        r = inv.Reply(sn.name, before if sn.rel is not None else None,
                      req.msg_type if req is not None else 0, mt, addr, client, lease_end, t_floor,
                      prior[:3] if prior is not None else None, durable[:3] if durable is not None else None,
                      req_ciaddr=req is not None and req.ciaddr != b"\x00\x00\x00\x00")
        ck.reply(self.t, r)
        if mt == wire.ACK:
            self.stats["acks"] += 1
        self.stats["dhcp_out"] += 1
        c = self.by_mac.get(bytes(pkt.chaddr[:6]))
        if c is None or not sn.dhcp_up:
            return
        nr = self.net_rng
        if nr.random() < self.dhcp_loss:
            return
        copies = 2 if nr.random() < self.dhcp_dup else 1
        for _ in range(copies):
            self.at(self.t + delay + self._dhcp_delay(), self._to_client, c, pkt)

    def _to_client(self, c, pkt):
        c.receive(pkt, self.t)

    def client_timer(self, client, at_ms, gen):
        self.at(at_ms, self._client_wake, client, gen)

    def client_power_on(self, client):
        client.power_on(self.t)

    def _client_wake(self, client, gen):
        client.wake(self.t, gen)

    def client_acked(self, client, addr, start, end, server, now):
        self.log("%s bound %s until %.1f (from %s)" % (client.name, ip_text(addr), (end - T0_S * 1000) / 1000.0,
                                                       ip_text(server)))
        self.checker.client_acked(now, client.key, addr, start, end, server)

    def client_dropped(self, client, addr, now, why):
        self.checker.client_dropped(now, client.key, addr)

    # ------------------------------------------------------------------ failover link

    def partitioned(self, a, b):
        return (a.idx, b.idx) in self.partitions

    def _connect(self, sn):
        """A connection attempt from sn to its partner (runtime/aio.py _connect)."""
        other = None
        for o in self.nodes:
            if o is not sn:
                other = o
        if other is None:
            return False
        if not other.up or other.stopping or self.partitioned(sn, other) or self.partitioned(other, sn):
            return False
        self.conn_ids += 1
        c = Conn(self.conn_ids, sn, other)
        a, b = c.ends
        sn.ends.append(a)
        other.ends.append(b)
        d = self.net_rng.randrange(1, 20)
        c.last = [self.t + d + 1, self.t + d + 1]
        self.at(self.t + d, self._accepted, b)
        self.at(self.t + d, self._accepted, a)
        self.log("%s connects to %s (conn %d)" % (sn.name, other.name, c.id))
        return True

    def _accepted(self, e):
        sn = e.sn
        if e.closed or not sn.up or sn.inc != e.inc:
            return
        other = e.c.ends[1 - e.side].sn
        self._turn(sn, sn.node.peer_connected, (e, other.addr, e.side == 0, sn.now(self.t)), None)

    def _peer_send(self, sn, conn, payload, now):
        e = conn
        if not isinstance(e, End) or e.closed or e.sn is not sn:
            return
        # a signed connection's key is its own (bound to both nonces, see
        # wire/failover.py "Replay"): the observer reads with the sender's
        for rel in sn.node.relationships:
            lk = rel.channel.find(e)
            if lk is not None:
                e.dec.key = lk.key()
        try:
            msgs = e.dec.feed(payload)
        except fw.FailoverError as err:
            msgs = err.messages
        for m in msgs:
            self._observe_sent(sn, e, m, now)
        self.stats["peer_msgs"] += len(msgs)
        c = e.c
        d = 1 - e.side
        other = c.ends[d]
        delay = self.net_rng.randrange(1, 30)
        if self.net_rng.random() < 0.02:
            delay += self.net_rng.randrange(100, 2000)
        self._queue(c, d, self.t + delay, ("data", payload, msgs, sn.wire_base()), other)

    def _queue(self, c, d, t, item, dest):
        """Queue a chunk on direction d of connection c (FIFO, held while partitioned)."""
        src = c.ends[1 - d].sn
        dst = dest.sn
        if self.partitioned(src, dst):
            c.held[d].append(item)
            return
        if t < c.last[d]:
            t = c.last[d]
        c.last[d] = t
        self.at(t, self._deliver, dest, item)

    def release_held(self):
        """A partition healed: what TCP kept retransmitting now arrives, in order."""
        for sn in self.nodes:
            for e in sn.ends:
                c = e.c
                for d in (0, 1):
                    if c.held[d] and not self.partitioned(c.ends[1 - d].sn, c.ends[d].sn):
                        items = list(c.held[d])
                        del c.held[d][:]
                        for it in items:
                            self._queue(c, d, self.t + self.net_rng.randrange(1, 200), it, c.ends[d])

    def _deliver(self, e, item):
        sn = e.sn
        if e.closed or not sn.up or sn.inc != e.inc:
            return  # the receiving side is gone: the bytes die with it
        if item[0] == "close":
            e.closed = True
            if e in sn.ends:
                sn.ends.remove(e)
            self.log("%s: conn %d closed by peer" % (sn.name, e.c.id))
            self._turn(sn, sn.node.peer_closed, (e, sn.now(self.t)), None)
            return
        _k, payload, msgs, base = item
        ctx = {"delivered": msgs, "end": e, "base": base}
        self._turn(sn, sn.node.peer_data, (e, payload, sn.now(self.t)), ctx)

    def _close(self, sn, conn):
        """The node closed its end (runtime/aio.py _close + _lost)."""
        e = conn
        if not isinstance(e, End) or e.closed:
            return
        e.closed = True
        if e in sn.ends:
            sn.ends.remove(e)
        other = e.c.ends[1 - e.side]
        if not other.closed:
            self._queue(e.c, 1 - e.side, self.t + self.net_rng.randrange(1, 30), ("close",), other)
        inc = sn.inc
        self.at(self.t, self._lost, sn, inc, e)

    def _lost(self, sn, inc, e):
        if sn.up and sn.inc == inc:
            self._turn(sn, sn.node.peer_closed, (e, sn.now(self.t)), None)

    def reset_links(self):
        """Every failover connection is reset (both ends notice, in their own time)."""
        for sn in self.nodes:
            for e in list(sn.ends):
                if not e.closed:
                    e.c.held[0][:] = []
                    e.c.held[1][:] = []
                    e.closed = True
                    sn.ends.remove(e)
                    self.at(self.t + self.net_rng.randrange(1, 3000), self._lost, sn, sn.inc, e)

    # ------------------------------------------------------------------ observation of failover traffic

    def _bnd(self, base, m):
        """A BNDUPD as an invariants.Binding with real-time times: `base` maps
        the sender's wire time as it was when sent (SimNode.wire_base)."""
        addr = m.get_bytes(fw.OPT_ASSIGNED_IP)
        st = m.get_u8(fw.OPT_BINDING_STATUS, 0)
        cid = m.get_bytes(fw.OPT_CLIENT_ID)
        ch = m.get_bytes(fw.OPT_CHADDR)
        client = cid if cid else (ch if ch else None)
        le = m.get_time(fw.OPT_LEASE_EXPIRATION)
        pe = m.get_time(fw.OPT_POTENTIAL_EXPIRATION)
        ms, w = base
        return inv.Binding(addr, st, client, ms + (le - w) * 1000 if le else None,
                           ms + (pe - w) * 1000 if pe else None)

    def _observe_sent(self, sn, e, m, now):
        ck = self.checker
        t = self.t
        mt = m.mtype
        if mt == fw.BNDUPD:
            ck.peer_sent(t, sn.name, e.c.id, mt, m.xid, b=self._bnd(sn.wire_base(), m))
        elif mt == fw.BNDACK:
            rej = m.get_u8(fw.OPT_REJECT_REASON)
            addr = m.get_bytes(fw.OPT_ASSIGNED_IP)
            d = self._binding(sn, addr) if addr is not None else None
            pend = ck.delivered.get((e.c.id, sn.name, m.xid))
            ck.peer_sent(t, sn.name, e.c.id, mt, m.xid, durable=d[:3] if d else None, reject=rej)
            if pend is not None and rej is None and d is not None:
                b = pend[1]
                if b.status == inv.ACTIVE and d[0] == inv.ACTIVE and d[1] == b.client:
                    ck.translated(t, sn.name, b, d[2], d[3])
        elif mt == fw.CONNECT:
            ck.peer_sent(t, sn.name, e.c.id, mt, m.xid, mclt_s=m.get_u32(fw.OPT_MCLT, 0))
        else:
            ck.peer_sent(t, sn.name, e.c.id, mt, m.xid)
        self.log("%s -> %s" % (sn.name, _msg_text(m)))

    def _observe_delivered(self, sn, ctx, transitions, before):
        ck = self.checker
        e = ctx["end"]
        sender = e.c.ends[1 - e.side].sn
        after = S.name(sn.rel.state) if sn.rel is not None else None
        msgs = ctx["delivered"]
        for m in msgs:
            mt = m.mtype
            if mt == fw.BNDUPD:
                ck.peer_delivered(self.t, sn.name, e.c.id, mt, m.xid, b=self._bnd(ctx["base"], m), sender=sender.name)
            elif mt == fw.BNDACK:
                ck.peer_delivered(self.t, sn.name, e.c.id, mt, m.xid, reject=m.get_u8(fw.OPT_REJECT_REASON),
                                  sender=sender.name)
            elif mt == fw.STATE:
                ps = S.name(m.get_u8(fw.OPT_SERVER_STATE, 0))
                flag = bool(m.get_u8(fw.OPT_SERVER_FLAGS, 0) & fw.FLAG_STARTUP)
                if not flag:
                    sn.partner_state = ps
                ck.peer_delivered(self.t, sn.name, e.c.id, mt, m.xid, sender=sender.name, partner_state=ps,
                                  startup_flag=flag, state_before=before if len(msgs) == 1 else None,
                                  state_after=after)
            else:
                ck.peer_delivered(self.t, sn.name, e.c.id, mt, m.xid, sender=sender.name)

    # ------------------------------------------------------------------ pool ownership (I5)

    def _pool_check(self, offsets):
        if len(self.nodes) != 2:
            return
        ck = self.checker
        t = self.t
        rng = range(len(self.pool_addrs)) if offsets is None else offsets
        views = []
        for sn in self.nodes:
            if not sn.up or sn.rel is None:
                continue
            st = S.name(sn.rel.state)
            if st not in inv.ALLOCATING:
                continue
            own = lt_free = 1 if sn.role == "primary" else 7
            other = 7 if own == 1 else 1
            entry = ck.pd_entry.get(sn.name)
            takeover = st == inv.PD and entry is not None and t >= entry + ck.mclt
            views.append((sn, own, other if takeover else -1))
        if len(views) < 2:
            return
        conflicts = []
        for off in rng:
            if off >= len(self.pool_addrs):
                continue
            owners = []
            for sn, own, other in views:
                s = sn.node.tables[0].state(off)
                if s == own or s == other:
                    owners.append(sn.name)
            if len(owners) > 1:
                conflicts.append((self.pool_addrs[off], owners))
        ck.pool(t, conflicts)

    # ------------------------------------------------------------------ admin

    def admin(self, sn, what):
        """An operator command through the management command table."""
        if not sn.up or sn.rel is None:
            return None
        self.stats["admin"] += 1
        sn.admin_now = what
        res = {}

        def call(now):
            res.update(sn.commands.handle({"cmd": "set-failover-state", "name": sn.rel.name, "state": what}, now))

        self._turn(sn, call, (sn.now(self.t),), None)
        sn.admin_now = None
        self.log("%s admin %s -> %s" % (sn.name, what, "ok" if res.get("ok") else res.get("error")))
        return res

    # ------------------------------------------------------------------ summary

    def node_states(self):
        return dict((sn.name, S.name(sn.rel.state) if sn.up and sn.rel is not None else "down") for sn in self.nodes)


def _msg_text(m):
    n = fw.MSG_NAMES.get(m.mtype, str(m.mtype))
    if m.mtype == fw.BNDUPD:
        a = m.get_bytes(fw.OPT_ASSIGNED_IP)
        return "BNDUPD %s st=%d xid=%d" % (ip_text(a) if a else "?", m.get_u8(fw.OPT_BINDING_STATUS, 0), m.xid)
    if m.mtype == fw.BNDACK:
        a = m.get_bytes(fw.OPT_ASSIGNED_IP)
        return "BNDACK %s xid=%d%s" % (ip_text(a) if a else "?", m.xid,
                                       " reject=%d" % m.get_u8(fw.OPT_REJECT_REASON) if m.has(fw.OPT_REJECT_REASON) else "")
    if m.mtype == fw.STATE:
        return "STATE %s%s" % (S.name(m.get_u8(fw.OPT_SERVER_STATE, 0)),
                               " (startup)" if m.get_u8(fw.OPT_SERVER_FLAGS, 0) & 1 else "")
    return n
