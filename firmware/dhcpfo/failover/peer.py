# failover/peer.py - one failover relationship (draft-12, ISC 4.4 dialect).
#
# Sans-I/O: the node hands it connection events, stream bytes and time; it
# writes messages to send and lease-log records into the node's Outbox. It
# is also the *authority* the DHCP server consults for the scopes of this
# relationship: who answers a client, which addresses may be allocated, how
# long a lease may be (the MCLT rule), when an address may be reused.
#
# The state machine itself is data in failover/states.py; this module feeds
# it events and carries out what a state asks for on entry.

import struct

from dhcpfo import events as ev
from dhcpfo.compat import to_unix
from dhcpfo.failover import bindings as bu
from dhcpfo.failover import holds, pool
from dhcpfo.failover import hashing
from dhcpfo.failover import states as S
from dhcpfo.lease import log as ll
from dhcpfo.lease import table as lt
from dhcpfo.wire import failover as fw

SKEW_WIDTH_UNKNOWN = 2  # assumed error of the clock-difference estimate before any reply bounds it
EXPIRY_SLACK = 5  # seconds a partner's EXPIRED may precede our lease end before we refuse it
CLTT_TIE = 10  # seconds within which two updates' client transaction times count as equal
MCLT_MARGIN = 2  # seconds kept back from a received potential expiration (1 s resolution, estimate error)
AMNESIA_KEY = 64  # META key offset of a relationship's second record (storage-loss horizons)
UPDATE_QUEUE_MAX = 512  # bindings queued for sending before falling back to table scans
HANDSHAKE_TIMEOUT = 15  # seconds for CONNECT/CONNECTACK on a new link (ISC's value)
STARTUP_TIME = 15  # seconds in STARTUP waiting for the partner before resuming
BALANCE_INTERVAL = 60  # seconds between pool balance runs in NORMAL (ISC min-balance)
TIME_EVENT_INTERVAL = 300  # at most one TimeOutOfSync event per this many seconds

# Meta record payload (20 bytes, lease/log META): state, previous state,
# partner state, flags, then stos, partner stos, mclt, partner-down stos
_META = "!BBBBIIII"
_MF_PD_SEEN = 0x01  # saw the partner in PARTNER-DOWN while we were shut down
_MF_NEED_FULL = 0x02  # bindings not trusted (new or lost storage): UPDREQALL before serving
# server-flags bit (option 23) of our own: "I have no record of you". The draft
# defines only STARTUP (0x01); ISC reads only that bit. A recovering dhcpfo
# node skips RECOVER-WAIT only when its partner says this (draft-12 §9.6.2:
# first run "as determined by the information received from the partner").
FLAG_NEVER_MET = 0x80


def _ip(b):
    return "%d.%d.%d.%d" % (b[0], b[1], b[2], b[3])


_REUSE = (lt.EXPIRED, lt.RELEASED, lt.ABANDONED, lt.RESET)
_HELD_STATES = (lt.EXPIRED, lt.RELEASED, lt.RESET)


def _never(*args):
    return False


class _Link:
    """Per-connection protocol state before and after the handshake."""

    def __init__(self, conn, outgoing, key, now):
        self.conn = conn
        self.outgoing = outgoing
        self.decoder = fw.StreamDecoder(key)
        self.opened = now
        self.up = False  # handshake done


class Relationship:
    failover = True

    def __init__(self, rc, scopes, tables, events, server_cfg, log_meta, meta_key=0):
        self.rc = rc
        self.name = rc.name
        self._name_b = rc.name.encode()
        self.primary = rc.role == "primary"
        self.hot_standby = rc.mode == "hot-standby"
        self.scopes = scopes
        self.tables = tables
        self.events = events
        self.log_meta = log_meta
        self.meta_key = meta_key
        self.partner_address = bytes(rc.partner_address)
        self.key = bytes(rc.shared_secret) if rc.shared_secret and rc.enable_authentication else None
        self.mclt = rc.mclt  # the secondary adopts the primary's from CONNECT
        self.max_unacked = rc.max_unacked
        self.receive_timer = rc.max_response_delay
        self.safe_period = rc.auto_state_switchover or 0
        self.skew_max = server_cfg.time_skew_max
        self.lb_max_secs = rc.load_balance_max_seconds
        self.hba = self._own_hba() if self.primary else hashing.hba_split(128)
        self.backup_share = self._backup_share()
        self._desired = dict((sc.index, sc.lease_time) for sc in scopes)
        # durable state
        self.state = S.STARTUP
        self.previous = None  # saved state resumed after STARTUP
        self.stos = 0
        self.partner_state = S.UNKNOWN
        self.partner_stos = 0
        self.pd_stos = 0  # when we entered PARTNER-DOWN (takeover after + MCLT)
        self.pd_seen = False
        self.saved = None  # state read back from the lease log
        self.saved_previous = None  # state before PAUSED/SHUTDOWN
        self.need_full = True  # no trusted bindings until a full resync (UPDREQALL) completes
        # Until when a loss of stable storage (ours, or the partner's: it sent
        # UPDREQALL) may still have leases out that nobody recorded (durable,
        # in a second META record: see _persist_amnesia)
        self.amnesia_until = 0
        self.partner_amnesia_until = 0
        self._holds = []  # (si, off) of EXPIRED bindings held after a storage loss
        self._normal_deferred = False  # PARTNER-DOWN -> NORMAL waits for our updates to be acknowledged
        self._hold_scan = False
        self.partner_never_met = False  # the partner's STATE says it has no record of us
        self.partner_is_isc = False
        self.skew = 0  # partner clock minus ours (s), estimated from message times (draft-12 §5.10)
        self._skew_fresh = True  # the next message starts a new estimate
        self._skew_hi = None  # upper bound on the clock difference, from replies (None: none yet)
        # link
        self.links = []
        self.link = None
        self.partner_startup = False
        self._state_link = None  # the link whose first STATE we have seen
        self.partner_max_unacked = 0
        self.partner_receive_timer = 0
        self._xid = 1
        self.last_rx = 0
        self.last_tx = 0
        self.comm_since = 0  # when communications were last lost (safe period)
        self._last_time_event = -TIME_EVENT_INTERVAL
        # updates
        self.inflight = {}  # xid -> (scope index, offset, pexp)
        self.dirty = set()  # (si, off) changed again while in flight
        self.rejected = set()  # (si, off) the partner refused on this link: not resent until a new link
        self.refused = set()  # (si, off) whose partner update we refused (reason 16) on this link
        self.lost = set()  # (si, off) whose update the partner refused as less critical than its own
        self._pump_cursor = [0] * len(tables)
        # Bindings waiting to be sent: a bounded FIFO fed by committed() and
        # the balancer, so the common case never scans a table. When it
        # overflows, or after a restart or a lost link (PENDING records whose
        # updates were never acknowledged), a table scan finds the rest.
        self._queue = []
        self._queued = set()
        self._rescan = True
        self.sync_xid = None  # partner's UPDREQ/UPDREQALL we are answering
        self.sync_all = False
        self._sync_pos = None  # (position in scopes, offset) of the UPDREQALL walk
        self.requested = None  # our outstanding UPDREQ/UPDREQALL type
        self.is_offered = _never  # set by the node: (scope index, offset, now) -> held by an OFFER?
        self.clock = None  # set by the driver: a compat.Clock; unsynced clocks learn the partner's time
        self._balance_at = 0
        self.started_at = 0
        self.stats = {"bndupd_sent": 0, "bndupd_received": 0, "bndack_sent": 0, "bndack_received": 0,
                      "bndupd_rejected": 0, "transitions_ci": 0, "transitions_pd": 0,
                      "transitions_recover": 0, "conflicts": 0, "pool_moved": 0}

    # ------------------------------------------------------------------
    # configuration-derived values

    def _own_hba(self):
        """Primary's hash bucket assignment (set bit = primary serves, ISC's meaning)."""
        if self.hot_standby:
            return hashing.hba_split(256 if self._active_is_primary() else 0)
        return hashing.hba_for_percent(self.rc.load_balance_percent)

    def _active_is_primary(self):
        role = self.rc.hot_standby_role  # the LOCAL server's role
        return (role == "active") == self.primary

    def _backup_share(self):
        """Percent of available addresses the secondary should own (BACKUP)."""
        if self.hot_standby:
            rp = self.rc.reserve_percent
            return rp if self._active_is_primary() else 100 - rp
        pct = self.rc.load_balance_percent  # local server's share
        return 100 - pct if self.primary else pct

    # ------------------------------------------------------------------
    # persistence

    def meta_payload(self):
        flags = (_MF_PD_SEEN if self.pd_seen else 0) | (_MF_NEED_FULL if self.need_full else 0)
        # the state held before PAUSED/SHUTDOWN is what a restart resumes (§9.13.1, §9.14.1)
        prev = self.saved_previous if self.state in (S.PAUSED, S.SHUTDOWN) and self.saved_previous else 0
        st = self.state if self.state != S.STARTUP else (self.previous or S.RECOVER)
        raw = struct.pack(_META, st, prev, self.partner_state, flags,
                          max(self.stos, 0), max(self.partner_stos, 0), self.mclt, max(self.pd_stos, 0))
        return raw

    def restore_meta(self, payload):
        st, prev, pst, flags, stos, pstos, mclt, pd_stos = struct.unpack(_META, bytes(payload[:20]))
        if not S.is_state(st):
            self.events.count("restore.bad-state")
            return
        self.saved = st
        self.saved_previous = prev if S.is_state(prev) and prev else None
        self.stos = stos
        self.partner_state = pst if S.is_state(pst) else S.UNKNOWN
        self.partner_stos = pstos
        if mclt > 0:
            self.mclt = mclt if not self.primary else self.rc.mclt
        self.pd_stos = pd_stos
        self.pd_seen = bool(flags & _MF_PD_SEEN)
        self.need_full = bool(flags & _MF_NEED_FULL)

    def _persist(self):
        self.log_meta(self.meta_key, self.meta_payload())

    def amnesia_payload(self):
        return struct.pack("!II", max(self.amnesia_until, 0), max(self.partner_amnesia_until, 0)) + bytes(12)

    def restore_amnesia(self, payload):
        a, p = struct.unpack("!II", bytes(payload[:8]))
        self.amnesia_until = a
        self.partner_amnesia_until = p

    def _set_amnesia(self, now, partner):
        """Leases granted before a storage loss end within the longest lease
        time plus MCLT past the potential expiration anyone acknowledged:
        until then, expired addresses are held (see _hold_until)."""
        horizon = 0
        for v in self._desired.values():
            if v > horizon:
                horizon = v
        until = now + horizon + 2 * self.mclt
        if partner:
            self.partner_amnesia_until = until
        else:
            self.amnesia_until = until
        self.log_meta(self.meta_key + AMNESIA_KEY, self.amnesia_payload())

    # ------------------------------------------------------------------
    # life cycle

    def start(self, now, out):
        self.started_at = now
        self._hold_scan = True  # holds recorded before a restart are released by time
        saved = self.saved
        if saved is None:
            # No saved state: a new or wiped server starts in RECOVER and
            # learns everything from its partner before serving (I12). That
            # is recorded at once, so a crash before the resync finishes
            # still asks for everything after the restart.
            self.previous = None
            self.state = S.STARTUP
            self.need_full = True
            self._persist()
        if self.need_full:
            self._set_amnesia(now, False)
        else:
            if saved in (S.PAUSED, S.SHUTDOWN):
                saved = self.saved_previous
            self.previous = S.startup_previous(saved, self.pd_seen)
            self.state = S.STARTUP
        self.events.emit(now, ev.INFO, ev.EV_STATE_CHANGE, "relationship %s: startup (previous %s)"
                         % (self.name, S.name(self.previous) if self.previous else "none"))

    def _set_state(self, new, now, out, why):
        old = self.state
        if new == old:
            return
        if old in (S.PAUSED, S.SHUTDOWN) or new in (S.PAUSED, S.SHUTDOWN):
            self.saved_previous = old if new in (S.PAUSED, S.SHUTDOWN) else None
        self.state = new
        self.stos = now
        if new == S.PARTNER_DOWN:
            self.pd_stos = now
            self.stats["transitions_pd"] += 1
        elif new == S.COMM_INTERRUPTED:
            self.stats["transitions_ci"] += 1
            self.comm_since = now
        elif new == S.RECOVER:
            self.stats["transitions_recover"] += 1
        self._persist()  # durable before the partner or a client sees the change
        level = ev.ERROR if new in (S.PARTNER_DOWN, S.COMM_INTERRUPTED, S.RESOLUTION_INTERRUPTED) else ev.INFO
        self.events.emit(now, level, ev.EV_STATE_CHANGE, "relationship %s: %s -> %s (%s)"
                         % (self.name, S.name(old), S.name(new), why))
        self.requested = None
        if new == S.NORMAL:
            self._balance_at = now  # rebalance on entering NORMAL
            self.dirty.clear()
        if self.link is not None:
            self._send_state(now, out)
            self._maybe_request(now, out)
            if new == S.NORMAL:
                self._balance_at = now + BALANCE_INTERVAL
                pool.balance(self, now, out)  # the secondary gets its addresses at once
                self._pump(now, out)

    def _event(self, event, now, out, why, partner_state=None, **kw):
        new = S.next_state(self.state, event, partner_state=partner_state, primary=self.primary,
                           previous=self.previous, partner_startup=self.partner_startup, **kw)
        if new is not None:
            if self.state == S.PARTNER_DOWN and new == S.NORMAL and self._has_unsent():
                # What we did alone (maybe in the partner's pool) must reach the
                # partner before it may allocate again: NORMAL waits until every
                # update is acknowledged (tick re-checks)
                self._normal_deferred = True
                self._pump(now, out)
                return False
            self._normal_deferred = False
            self._set_state(new, now, out, why)
            return True
        return False

    def _has_unsent(self):
        """Any binding change not yet acknowledged by the partner (refused ones aside)?"""
        if self.inflight or self._queue:
            return True
        for sc in self.scopes:
            t = self.tables[sc.index]
            o = t.next_flagged(lt.PENDING, 0)
            while o >= 0:
                if (sc.index, o) not in self.rejected:
                    return True
                nxt = t.next_flagged(lt.PENDING, o + 1) if o + 1 < t.size else -1
                if nxt <= o:  # next_flagged wraps around: the scan is complete
                    break
                o = nxt
        return False

    # ------------------------------------------------------------------
    # authority for the DHCP server

    def serving(self, now):
        return S.answers(self.state) and self._partner_allows()

    def _partner_allows(self):
        # ISC stops answering when the partner claims the pool (interop §9)
        if self.link is None:
            return True
        return self.partner_state not in (S.PARTNER_DOWN, S.POTENTIAL_CONFLICT, S.RESOLUTION_INTERRUPTED) \
            or self.state == S.PARTNER_DOWN

    def answering(self, scope, pkt, now):
        flags = S.service(self.state)
        if flags & S.RENEW_ONLY:
            return pkt.msg_type == 3 and pkt.ciaddr != b"\x00\x00\x00\x00"
        if not flags & S.BALANCED:
            return True
        if pkt.msg_type == 3 and pkt.options.get(54) is not None:
            return True  # SELECTING: the server id decides
        if pkt.msg_type == 3 and pkt.ciaddr != b"\x00\x00\x00\x00" and not pkt.broadcast:
            return True  # a unicast renewal came to us on purpose
        if self.lb_max_secs and pkt.secs >= self.lb_max_secs:
            return True  # the other server has had its chance (load balance max seconds)
        key = pkt.options.get(61)
        if key is None:
            key = pkt.hwaddr()
        return hashing.serves(self.hba, key, self.primary)

    def _own_status(self):
        return lt.FREE if self.primary else lt.BACKUP

    def _partner_status(self):
        return lt.BACKUP if self.primary else lt.FREE

    def _takeover(self, t, off, now):
        """PARTNER-DOWN: may we use an address the partner could have handed out?"""
        if self.state != S.PARTNER_DOWN:
            return False
        # MCLT past the latest of: entering PARTNER-DOWN, the acknowledged
        # potential expiration, the client's expiry and (for a binding of
        # ours the partner may never have acknowledged) the potential
        # expiration we may have sent, recomputed from the record (§9.4.2)
        base = self.pd_stos
        for v in (t.ack_pexp(off), t.expiry(off)):
            if v > base:
                base = v
        if t.flags(off) & lt.PENDING and t.state(off) in _REUSE:
            sent = t.stamp(off) + self._desired.get(self._scope_index_of(t), 0)
            if sent > base:
                base = sent
        return now > base + self.mclt  # whole seconds: strictly after, never early

    def _scope_index_of(self, t):
        for i in range(len(self.tables)):
            if self.tables[i] is t:
                return i
        return -1

    def alloc_states(self, now):
        """Binding states worth scanning for a new client's address now, in
        order of preference (the server checks each address with may_allocate)."""
        flags = S.service(self.state)
        if not flags & S.ALLOCATE:
            return ()
        own = (self._own_status(),) + _REUSE
        if flags & S.TAKEOVER and now > self.pd_stos + self.mclt:
            return own + (self._partner_status(),)
        return own

    def may_allocate(self, scope, offset, state, now):
        flags = S.service(self.state)
        if not flags & S.ALLOCATE:
            return False
        t = self.tables[scope.index]
        if state == self._own_status():
            return True
        if state == self._partner_status():
            return bool(flags & S.TAKEOVER) and self._takeover(t, offset, now)
        if state in (lt.EXPIRED, lt.RELEASED, lt.RESET, lt.ABANDONED):
            return self.may_reuse(scope, offset, now)
        return False

    def may_reuse(self, scope, offset, now):
        """An EXPIRED/RELEASED/ABANDONED address goes to another client only once the
        partner acknowledged that state (I6), or after MCLT in PARTNER-DOWN. An
        acknowledged EXPIRED/RELEASED still here is held (see _hold)."""
        t = self.tables[scope.index]
        if not t.flags(offset) & lt.PENDING:
            return t.state(offset) not in _HELD_STATES
        return self._takeover(t, offset, now)

    def may_rebind(self, scope, offset, now):
        """May a client have its own EXPIRED/RELEASED address back? Only while
        the partner still knows it as that client's: our update saying
        otherwise not yet sent (PENDING, not in flight). Once acknowledged the
        partner holds it as FREE and may already have given it away."""
        f = self.tables[scope.index].flags(offset)
        return bool(f & lt.PENDING) and not f & lt.MARK and (scope.index, offset) not in self.rejected

    def max_lease(self, scope, offset, now, fresh):
        """MCLT rule (draft-12 §5.2.1): a lease may run at most MCLT past the
        potential expiration the partner has acknowledged."""
        if not S.service(self.state) & S.MCLT_LIMIT:
            return None
        base = 0 if fresh else self.tables[scope.index].ack_pexp(offset)
        # a potential expiration the partner sent was translated with a clock
        # difference known only within skew_width(): take the early end
        left = base - MCLT_MARGIN - self.skew_width() - now
        if left < 0:
            left = 0
        return left + self.mclt

    def committed(self, scope, offset, now):
        """The server changed a binding: it must reach the partner (lazy update)."""
        t = self.tables[scope.index]
        f = t.flags(offset)
        t.set_flags(offset, f | lt.PENDING)
        key = (scope.index, offset)
        if key in self.rejected:  # a new version: worth sending even after a refusal
            self.rejected.discard(key)
            self.lost.discard(key)
        if f & lt.MARK:
            self.dirty.add((scope.index, offset))  # in flight: queued again when acked
        else:
            self._enqueue(scope.index, offset)

    def _resend(self, si, off, out):
        """Send our copy of a binding again (the partner's is less complete)."""
        t = self.tables[si]
        f = t.flags(off)
        t.set_flags(off, f | lt.PENDING)
        self.rejected.discard((si, off))
        self.lost.discard((si, off))
        if f & lt.MARK:
            self.dirty.add((si, off))
        else:
            self._enqueue(si, off)

    def _enqueue(self, si, off):
        key = (si, off)
        if key in self._queued:
            return
        if len(self._queue) >= UPDATE_QUEUE_MAX:
            self._rescan = True
            return
        self._queue.append(key)
        self._queued.add(key)

    def scope_statistics(self, sc, now):
        t = self.tables[sc.index]
        own = t.count(self._own_status())
        theirs = t.count(self._partner_status())
        return {"relationship": self.name, "state": S.name(self.state), "free_this_server": own,
                "free_partner_server": theirs}

    # ------------------------------------------------------------------
    # connections

    def link_up(self):
        return self.link is not None or any(not l.up for l in self.links)

    def connected(self, conn, outgoing, now, out):
        if self.link is not None:
            self.events.count("peer.duplicate-connection")
            out.close(conn)
            return
        lk = _Link(conn, outgoing, self.key, now)
        self.links.append(lk)
        if self.link is None:
            self._skew_fresh = True
        if self.primary:
            self._send(lk, fw.make_connect(self._next_xid(), now, self._name_b, self.max_unacked,
                                           self.receive_timer, self.mclt, self.hba), now, out)

    def closed(self, conn, now, out):
        lk = self._find(conn)
        if lk is None:
            return
        self.links.remove(lk)
        if lk is self.link:
            self._link_lost(now, out, "connection closed")

    def _find(self, conn):
        for lk in self.links:
            if lk.conn is conn:
                return lk
        return None

    def _drop(self, lk, now, out, why):
        out.close(lk.conn)
        if lk in self.links:
            self.links.remove(lk)
        if lk is self.link:
            self._link_lost(now, out, why)

    def _link_lost(self, now, out, why):
        self.link = None
        self.events.emit(now, ev.WARN, ev.EV_COMM_DOWN, "relationship %s: communication lost (%s)" % (self.name, why))
        # in-flight updates will be sent again on the next link
        for xid, (si, off, _p, _t) in self.inflight.items():
            t = self.tables[si]
            t.set_flags(off, t.flags(off) & ~lt.MARK)
        self.inflight = {}
        self.dirty.clear()
        self.rejected.clear()
        self.refused.clear()
        self.lost.clear()
        self._rescan = True
        self.sync_xid = None
        self._sync_pos = None
        self.requested = None
        self.comm_since = now
        self._event(S.EV_COMM_DOWN, now, out, why)

    def _next_xid(self):
        x = self._xid
        self._xid = (self._xid + 1) & 0xFFFFFFFF or 1
        return x

    def _send(self, lk, msg, now, out):
        try:
            data = fw.encode(msg, self.key)
        except fw.FailoverError as e:
            self.events.count("peer.encode-error." + e.reason)
            return
        out.send_peer(lk.conn, data)
        self.last_tx = now

    def _send_state(self, now, out):
        flags = fw.FLAG_STARTUP if self.state == S.STARTUP else 0
        if self.partner_state == S.UNKNOWN:
            flags |= FLAG_NEVER_MET  # no record of ever hearing from this partner
        st = self.state if self.state != S.STARTUP else (self.previous or S.RECOVER)
        self._send(self.link, fw.make_state(self._next_xid(), now, st, flags, self.stos or None), now, out)

    # ------------------------------------------------------------------
    # incoming bytes

    def data(self, conn, data, now, out):
        lk = self._find(conn)
        if lk is None:
            out.close(conn)
            return
        try:
            msgs = lk.decoder.feed(data)
        except fw.FailoverError as e:
            for m in e.messages:
                self._message(lk, m, now, out)
            self.events.count("peer.bad-stream." + e.reason)
            if e.reason in ("bad-digest", "missing-digest", "digest"):
                self.events.emit(now, ev.ERROR, ev.EV_AUTH_FAIL,
                                 "relationship %s: message authentication failed; connection closed" % self.name)
            self._drop(lk, now, out, "bad stream: " + e.reason)
            return
        for m in msgs:
            if lk not in self.links:
                break
            self._message(lk, m, now, out)
        self._pump(now, out)

    def _message(self, lk, m, now, out):
        self.last_rx = now
        if m.time:
            # Transit delay (messages held up by a partition, say) only makes
            # a sample smaller, so the largest since the link came up is the
            # best estimate: clocks never step under a running node
            # (compat.Clock), and a partner that restarts comes on a new link.
            est = m.time - to_unix(now)
            if self._skew_fresh:
                self.skew = est
                self._skew_hi = None
                self._skew_fresh = False
            elif est > self.skew:
                self.skew = est
        t = m.mtype
        if not lk.up:
            if t == fw.CONNECT and not self.primary:
                self._on_connect(lk, m, now, out)
            elif t == fw.CONNECTACK and self.primary:
                self._on_connectack(lk, m, now, out)
            elif t == fw.DISCONNECT:
                self._on_disconnect(lk, m, now, out)
            else:
                self.events.count("peer.before-handshake")
                self._drop(lk, now, out, "message before handshake")
            return
        try:
            if t == fw.STATE:
                self._on_state(m, now, out)
            elif t == fw.BNDUPD:
                self._on_bndupd(m, now, out)
            elif t == fw.BNDACK:
                self._on_bndack(m, now, out)
            elif t == fw.CONTACT:
                pass
            elif t == fw.UPDREQALL:
                self._start_sync(m.xid, True, now, out)
            elif t == fw.UPDREQ:
                self._start_sync(m.xid, False, now, out)
            elif t == fw.UPDDONE:
                self._on_upddone(now, out)
            elif t == fw.POOLREQ:
                n = pool.balance(self, now, out, force=True)
                self._send(lk, fw.make_poolresp(m.xid, now, n), now, out)
            elif t == fw.POOLRESP:
                self.events.count("peer.poolresp")
            elif t == fw.DISCONNECT:
                self._on_disconnect(lk, m, now, out)
            elif t == fw.CONNECT or t == fw.CONNECTACK:
                self.events.count("peer.duplicate-connect")
                if t == fw.CONNECT:
                    self._send(lk, fw.make_connectack(m.xid, now, self._name_b, reject=fw.REJ_DUP_CONNECTION), now, out)
            else:
                self.events.count("peer.unknown-type")
        except fw.FailoverError as e:
            self.events.count("peer.bad-message." + e.reason)
            self._drop(lk, now, out, "bad message: " + e.reason)

    def _skew_upper(self, bound):
        """A reply's time bounds the clock difference from above: it was
        stamped after our request left (its send time + 1 s resolution)."""
        if self._skew_hi is None or bound < self._skew_hi:
            self._skew_hi = bound

    def skew_width(self):
        """How far the clock-difference estimate may be off, in seconds."""
        if self._skew_hi is None:
            return SKEW_WIDTH_UNKNOWN
        w = self._skew_hi - self.skew
        return w if w > 0 else 0

    def _learn_time(self, m):
        """A board without a real-time clock adopts the partner's clock at
        connect (draft-12 §5.10: the time in each message lets a server
        without a good clock run on the partner's)."""
        c = self.clock
        if c is not None and not c.synced and m.time:
            step = c.set_unix(m.time)
            self.events.count("clock.learned-from-partner")
            self.events.emit(c.now(), ev.WARN, ev.EV_TIME_OUT_OF_SYNC,
                             "relationship %s: clock set from partner (step %d s)" % (self.name, step))
            return True
        return False

    def _skewed(self, m, now):
        skew = fw.time_skew(m, now)
        if skew > self.skew_max or -skew > self.skew_max:
            if now - self._last_time_event >= TIME_EVENT_INTERVAL:
                self._last_time_event = now
                self.events.emit(now, ev.ERROR, ev.EV_TIME_OUT_OF_SYNC,
                                 "relationship %s: partner clock differs by %d s (limit %d): TimeOutOfSync"
                                 % (self.name, skew, self.skew_max))
            self.events.count("peer.time-out-of-sync")
            return True
        return False

    def _on_connect(self, lk, m, now, out):
        name = m.get_bytes(fw.OPT_RELATIONSHIP_NAME)
        reject = None
        learned = name == self._name_b and self._learn_time(m)
        if learned:
            now = self.clock.now()
        if name != self._name_b:
            reject = fw.REJ_INVALID_PARTNER
        elif not learned and self._skewed(m, now):
            reject = fw.REJ_TIME_MISMATCH
        elif m.get_bytes(fw.OPT_HBA) is None or len(m.get_bytes(fw.OPT_HBA)) != 32:
            reject = fw.REJ_HBA_CONFLICT
        elif not m.get_u32(fw.OPT_MCLT, 0):
            reject = fw.REJ_INVALID_MCLT
        elif self.link is not None:
            reject = fw.REJ_DUP_CONNECTION
        tls = 0 if m.has(fw.OPT_TLS_REQUEST) else None
        if reject is not None:
            self.events.emit(now, ev.WARN, ev.EV_CONNECT_REJECT, "relationship %s: CONNECT refused, reason %d"
                             % (self.name, reject))
            self._send(lk, fw.make_connectack(m.xid, now, name or self._name_b, tls_reply=tls, reject=reject),
                       now, out)
            self._drop(lk, now, out, "connect refused")
            return
        mclt = m.get_u32(fw.OPT_MCLT)
        if mclt != self.mclt:
            self.mclt = mclt  # the primary's MCLT wins (I15)
            self._persist()
        self.hba = bytes(m.get_bytes(fw.OPT_HBA))
        self._learn_partner(m)
        self._send(lk, fw.make_connectack(m.xid, now, self._name_b, self.max_unacked, self.receive_timer,
                                          tls_reply=tls), now, out)
        self._link_ready(lk, now, out)

    def _on_connectack(self, lk, m, now, out):
        if m.time:
            self._skew_upper(m.time - to_unix(lk.opened) + 1)
        rej = m.get_u8(fw.OPT_REJECT_REASON)
        if rej is not None:
            self.events.emit(now, ev.WARN, ev.EV_CONNECT_REJECT, "relationship %s: partner refused CONNECT, reason %d"
                             % (self.name, rej))
            self._drop(lk, now, out, "connect refused by partner")
            return
        if m.get_bytes(fw.OPT_RELATIONSHIP_NAME) != self._name_b:
            self._send(lk, fw.make_disconnect(self._next_xid(), now, fw.REJ_INVALID_PARTNER), now, out)
            self._drop(lk, now, out, "wrong relationship name")
            return
        if self._learn_time(m):
            now = self.clock.now()
        elif self._skewed(m, now):
            self._send(lk, fw.make_disconnect(self._next_xid(), now, fw.REJ_TIME_MISMATCH), now, out)
            self._drop(lk, now, out, "time mismatch")
            return
        if self.link is not None:
            self._send(lk, fw.make_disconnect(self._next_xid(), now, fw.REJ_DUP_CONNECTION), now, out)
            self._drop(lk, now, out, "duplicate connection")
            return
        self._learn_partner(m)
        self._link_ready(lk, now, out)

    def _learn_partner(self, m):
        vendor = m.get_bytes(fw.OPT_VENDOR_CLASS) or b""
        self.partner_is_isc = vendor[:4] == b"isc-"
        self.partner_max_unacked = m.get_u32(fw.OPT_MAX_UNACKED, 1) or 1
        self.partner_receive_timer = m.get_u32(fw.OPT_RECEIVE_TIMER, 0)

    def _link_ready(self, lk, now, out):
        lk.up = True
        # the handshake message (processed just before this) started the estimate
        self.link = lk
        self.partner_startup = False
        for other in list(self.links):  # one connection per relationship
            if other is not lk:
                out.close(other.conn)
                self.links.remove(other)
        self.events.emit(now, ev.INFO, ev.EV_COMM_UP, "relationship %s: connected to partner %s"
                         % (self.name, _ip(self.partner_address)))
        self._send_state(now, out)

    def _on_disconnect(self, lk, m, now, out):
        self.events.emit(now, ev.WARN, ev.EV_COMM_DOWN, "relationship %s: partner disconnected, reason %s"
                         % (self.name, m.get_u8(fw.OPT_REJECT_REASON)))
        self._drop(lk, now, out, "partner sent DISCONNECT")

    # ------------------------------------------------------------------
    # state exchange

    def _on_state(self, m, now, out):
        ps = m.get_u8(fw.OPT_SERVER_STATE, S.UNKNOWN)
        flags = m.get_u8(fw.OPT_SERVER_FLAGS, 0)
        first = self._state_link is not self.link
        self._state_link = self.link
        if first:
            self.partner_never_met = bool(flags & FLAG_NEVER_MET)
        changed = ps != self.partner_state
        self.partner_startup = bool(flags & fw.FLAG_STARTUP)
        if changed:
            self.partner_state = ps
            self.partner_stos = now
            self._persist()
            self.events.emit(now, ev.INFO, ev.EV_STATE_CHANGE, "relationship %s: partner state %s"
                             % (self.name, S.name(ps)))
        if self.state == S.SHUTDOWN and ps == S.PARTNER_DOWN:
            if not self.pd_seen:
                self.pd_seen = True
                self._persist()
        if first or changed:
            evt = S.EV_COMM_UP if first else S.EV_PARTNER_STATE
            # the partner's PARTNER-DOWN is newer than anything we did if we
            # were shut down (or saw it happen), or if it started after our state
            down_newer = ps == S.PARTNER_DOWN and (self.stos == 0 or self.partner_stos > self.stos
                                                   or self.pd_seen or self.saved in (S.SHUTDOWN, S.PAUSED))
            if not self._event(evt, now, out, "partner is %s" % S.name(ps), partner_state=ps,
                               partner_down_newer=down_newer):
                self._maybe_request(now, out)

    def _maybe_request(self, now, out):
        if self.link is None or self.requested is not None:
            return
        full = self.need_full
        req = S.request_on(self.state, self.partner_state, self.primary, full=full)
        if req is None:
            return
        self.requested = req
        msg = fw.make_updreqall(self._next_xid(), now) if req == fw.UPDREQALL else fw.make_updreq(self._next_xid(), now)
        self._send(self.link, msg, now, out)

    def _on_upddone(self, now, out):
        if self.requested is None:
            self.events.count("peer.unexpected-upddone")
            return
        if self.requested == fw.UPDREQALL and self.need_full:
            self.need_full = False
            self._persist()
        self.requested = None
        # RECOVER-WAIT may be skipped only on a first run as the partner sees
        # it (§9.6.2); an ISC partner cannot say so, and ISC itself skips when
        # the partner is recovering too (interop §10).
        if self.partner_is_isc:
            first = self.partner_state in (S.RECOVER, S.RECOVER_DONE)
        else:
            first = self.partner_never_met
        skip = first or now > self.stos + self.mclt
        self._event(S.EV_UPDDONE, now, out, "partner sent all updates", skip_wait=skip)

    # ------------------------------------------------------------------
    # binding updates: receiving

    def _locate(self, addr):
        for sc in self.scopes:
            off = sc.offset_of(addr)
            if off >= 0:
                return sc, off
        return None, -1

    def _on_bndupd(self, m, now, out):
        self.stats["bndupd_received"] += 1
        addr = m.get_bytes(fw.OPT_ASSIGNED_IP, b"\x00\x00\x00\x00")
        reason = bu.check_bndupd(m)
        sc = None
        off = -1
        if reason is None:
            sc, off = self._locate(addr)
            if sc is None:
                reason = fw.REJ_ILLEGAL_ADDRESS
        if reason is None and self._skewed(m, now):
            reason = fw.REJ_TIME_MISMATCH  # the seed: reject, log TimeOutOfSync, state unchanged
        if reason is None:
            t = self.tables[sc.index]
            st = m.get_u8(fw.OPT_BINDING_STATUS)
            pending = t.flags(off) & lt.PENDING
            their_cltt = m.get_time(fw.OPT_CLTT) or m.get_time(fw.OPT_STOS)
            if their_cltt:
                their_cltt -= self.skew
            key = (sc.index, off)
            if key in self.lost:
                pending = 0  # the partner judged its copy better than ours (reason 16): take it
            if pending and bu.ours_wins(t, off, self.primary, st, their_cltt,
                                        self.skew_width() + CLTT_TIE):
                reason = fw.REJ_LESS_CRITICAL
                self.stats["conflicts"] += 1
                self.refused.add(key)
            elif (t.state(off) == lt.ACTIVE and t.expiry(off) > now and st in (lt.FREE, lt.BACKUP)
                  and not (self.state == S.RECOVER or self.state == S.STARTUP)):
                reason = fw.REJ_FATAL_CONFLICT
            elif (t.state(off) == lt.ACTIVE and st == lt.EXPIRED
                  and t.expiry(off) > now + EXPIRY_SLACK + self.skew_width()
                  and not (self.state == S.RECOVER or self.state == S.STARTUP)):
                # the partner thinks the lease ran out, but one of us granted
                # it longer (as ISC refuses EXPIRED while its lease runs): tell
                # it what we know
                reason = fw.REJ_OUTDATED_INFO
                self._resend(sc.index, off, out)
            else:
                if pending:
                    self.stats["conflicts"] += 1
                    self.dirty.discard((sc.index, off))
                before = (t.ack_pexp(off), t.expiry(off))
                was_active = t.state(off) == lt.ACTIVE
                who = (t.client_id(off), t.hwaddr(off))
                stored = bu.apply_bndupd(t, off, m, now, -self.skew)
                t.set_flags(off, t.flags(off) & ~(lt.PENDING | lt.MARK))
                self.rejected.discard(key)
                self.refused.discard(key)
                self.lost.discard(key)
                if (was_active and stored == lt.ACTIVE and before[1] > t.expiry(off)
                        and who == (t.client_id(off), t.hwaddr(off))):
                    # two grants to the same client crossed: it holds the longer one
                    t.set_expiry(off, before[1])
                    self._resend(sc.index, off, out)
                if stored == lt.FREE and st in _HELD_STATES:
                    until = holds.hold_until(self, t, off, before, now)
                    if until:
                        holds.hold(self, sc.index, off, until, now)
                out.records.append(ll.encode_binding(sc.index, off, t))  # durable before the BNDACK
        if reason is not None:
            self.stats["bndupd_rejected"] += 1
            self.events.count("peer.bndupd-reject.%d" % reason)
        self._send(self.link, fw.make_bndack(m.xid, now, addr if len(addr) == 4 else b"\x00\x00\x00\x00",
                                             reject=reason), now, out)
        self.stats["bndack_sent"] += 1

    def _on_bndack(self, m, now, out):
        self.stats["bndack_received"] += 1
        ent = self.inflight.pop(m.xid, None)
        if ent is None:
            self.events.count("peer.bndack-unknown-xid")
            return
        si, off, pexp, sent_at = ent
        if m.time:
            self._skew_upper(m.time - to_unix(sent_at) + 1)
        t = self.tables[si]
        f = t.flags(off) & ~lt.MARK
        rej = m.get_u8(fw.OPT_REJECT_REASON)
        again = (si, off) in self.dirty
        self.dirty.discard((si, off))
        if rej is not None:
            self.events.count("peer.bndack-reject.%d" % rej)
            self.events.emit(now, ev.WARN, ev.EV_BNDUPD_REJECT, "relationship %s: partner rejected update for %s, reason %d"
                             % (self.name, _ip(self.scopes_by_index(si).addr_of(off)), rej))
            # Refused is not acknowledged: the binding stays PENDING (so an
            # expired or released address is not reused) but is not sent
            # again on this link; the partner's own update, or a new link,
            # settles it. Two updates that crossed and were each refused by
            # the other side would wait forever: then the primary's copy
            # wins (draft-12 §7.1.3's last rule) and it sends it again.
            t.set_flags(off, f)
            if rej == fw.REJ_LESS_CRITICAL:
                if (si, off) in self.refused and self.primary:
                    self.refused.discard((si, off))
                    self._enqueue(si, off)
                    return
                self.lost.add((si, off))
            self.rejected.add((si, off))
            return
        if again:
            t.set_flags(off, f)  # changed while in flight: send again
            self._enqueue(si, off)
            return
        t.set_flags(off, f & ~lt.PENDING)
        prev_ack = t.ack_pexp(off)
        if pexp:
            t.set_ack_pexp(off, pexp)
        st = t.state(off)
        if st in _HELD_STATES:
            until = holds.hold_until(self, t, off, (prev_ack,), now)
            if until:
                holds.hold(self, si, off, until, now)
            else:
                # the partner stored it as FREE: so do we (the primary's pool again)
                t.set_state(off, lt.FREE, now)
        # Nothing leaves that depends on this record: losing it in a crash only
        # leaves the binding PENDING, and it is sent (and acknowledged) again.
        out.lazy.append(ll.encode_binding(si, off, t))

    def scopes_by_index(self, si):
        for sc in self.scopes:
            if sc.index == si:
                return sc
        return self.scopes[0]

    # ------------------------------------------------------------------
    # binding updates: sending

    def _may_push(self):
        if self.link is None or self.partner_max_unacked <= 0:
            return False
        if self.partner_state in (S.UNKNOWN, S.STARTUP):
            return False
        return bool(S.service(self.state) & S.PUSH) or self.sync_xid is not None

    def pump(self, now, out):
        """Send what is queued now rather than at the next tick (after a DHCP turn)."""
        if self._queue or self._rescan:
            self._pump(now, out)

    def _pump(self, now, out):
        """Send queued binding updates up to the partner's max-unacked window."""
        if not self._may_push():
            return
        window = self.partner_max_unacked
        while len(self.inflight) < window:
            nxt = self._next_update()
            if nxt is None:
                break
            si, off = nxt
            self._send_update(si, off, now, out)
        if self.sync_xid is not None and self._sync_pos is None and not self.inflight:
            # every binding the partner asked for is acknowledged
            self._send(self.link, fw.make_upddone(self.sync_xid, now), now, out)
            self.sync_xid = None

    def _next_update(self):
        if self._sync_pos is not None:
            pos, off = self._sync_pos
            while pos < len(self.scopes):
                sc = self.scopes[pos]
                t = self.tables[sc.index]
                while off < t.size:
                    o = off
                    off += 1
                    if not t.flags(o) & lt.MARK and not sc.is_excluded(o):
                        self._sync_pos = (pos, off)
                        return sc.index, o
                pos += 1
                off = 0
            self._sync_pos = None
        while self._queue:
            key = self._queue.pop(0)
            self._queued.discard(key)
            si, o = key
            f = self.tables[si].flags(o)
            if f & lt.PENDING and not f & lt.MARK and key not in self.rejected:
                return key
        if not self._rescan:
            return None
        for sc in self.scopes:
            si = sc.index
            t = self.tables[si]
            start = self._pump_cursor[si]
            o = t.next_flagged(lt.PENDING, start)
            first = o
            while o >= 0:
                if not t.flags(o) & lt.MARK and (si, o) not in self.rejected:
                    self._pump_cursor[si] = (o + 1) % t.size
                    return si, o
                o = t.next_flagged(lt.PENDING, (o + 1) % t.size)
                if o == first:
                    break
        self._rescan = False
        return None

    def _send_update(self, si, off, now, out):
        t = self.tables[si]
        sc = self.scopes_by_index(si)
        pexp = bu.potential_expiration(t, off, self._desired.get(si, 0), now)
        xid = self._next_xid()
        self._send(self.link, bu.build_bndupd(xid, now, sc.addr_of(off), t, off, pexp), now, out)
        t.set_flags(off, t.flags(off) | lt.MARK)
        self.inflight[xid] = (si, off, pexp or 0, now)
        self.stats["bndupd_sent"] += 1

    def _start_sync(self, xid, full, now, out):
        if full:
            self._set_amnesia(now, True)  # it asks for everything: it may have lost what it granted
        self.sync_xid = xid
        self.sync_all = full
        self._sync_pos = (0, 0) if full else None
        self._pump(now, out)

    # ------------------------------------------------------------------
    # time

    def tick(self, now, out):
        # STARTUP: wait a short while for the partner, then resume (§9.3.2)
        if self.state == S.STARTUP and self.link is None and now >= self.started_at + STARTUP_TIME:
            self._event(S.EV_STARTUP_TIMER, now, out, "no partner during startup")
        for lk in list(self.links):
            if not lk.up and now >= lk.opened + HANDSHAKE_TIMEOUT:
                self._drop(lk, now, out, "handshake timeout")
        if self.link is not None:
            if now - self.last_rx > self.receive_timer:
                self._drop(self.link, now, out, "partner silent for %d s" % (now - self.last_rx))
            elif self.partner_receive_timer and now - self.last_tx >= max(1, self.partner_receive_timer // 3):
                self._send(self.link, fw.make_contact(self._next_xid(), now), now, out)
        if self.state == S.COMM_INTERRUPTED and self.safe_period and now >= self.stos + self.safe_period:
            self._event(S.EV_SAFE_PERIOD, now, out, "auto state switchover interval passed")
        if self._holds or self._hold_scan:
            holds.release(self, now, out)
        if self._normal_deferred:
            if self.state != S.PARTNER_DOWN or self.link is None:
                self._normal_deferred = False
            else:
                self._event(S.EV_PARTNER_STATE, now, out, "partner is %s, updates delivered"
                            % S.name(self.partner_state), partner_state=self.partner_state)
        if self.state == S.RECOVER_WAIT and now > self.stos + self.mclt:
            self._event(S.EV_MCLT_EXPIRED, now, out, "MCLT passed")
        if self.state == S.NORMAL and self.link is not None and now >= self._balance_at:
            self._balance_at = now + BALANCE_INTERVAL
            pool.balance(self, now, out)
        self._pump(now, out)
        return now + 1

    # ------------------------------------------------------------------
    # administration

    def admin(self, what, now, out):
        if what == "partner-down":
            if self.state not in (S.COMM_INTERRUPTED, S.RESOLUTION_INTERRUPTED, S.NORMAL):
                raise ValueError("partner-down is only possible from communication-interrupted "
                                 "or resolution-interrupted (now %s)" % S.name(self.state))
            if self.link is not None:
                raise ValueError("the partner is connected; partner-down would risk duplicate addresses")
            self._event(S.EV_ADMIN_PARTNER_DOWN, now, out, "administrator")
        elif what == "shutdown":
            self._event(S.EV_SHUTDOWN, now, out, "administrator: planned shutdown, partner takes over")
        elif what == "pause":
            self._event(S.EV_PAUSE, now, out, "administrator")
        elif what == "resume":
            if self.state not in (S.PAUSED, S.SHUTDOWN):
                raise ValueError("resume applies to paused or shutdown (now %s)" % S.name(self.state))
            prev = self.saved_previous
            self.previous = S.startup_previous(prev, self.pd_seen)
            self.pd_seen = False
            self._set_state(S.STARTUP, now, out, "administrator: resume")
            self.started_at = now
            if self.link is not None and self.partner_state != S.UNKNOWN:
                self._event(S.EV_COMM_UP, now, out, "resume with partner %s" % S.name(self.partner_state),
                            partner_state=self.partner_state,
                            partner_down_newer=self.partner_state == S.PARTNER_DOWN)
        else:
            raise ValueError("unknown state request %r: use partner-down, shutdown, pause or resume" % (what,))

    def status(self, now):
        return {
            "name": self.name,
            "role": "primary" if self.primary else "secondary",
            "mode": self.rc.mode,
            "state": S.name(self.state),
            "state_since": self.stos,
            "partner_state": S.name(self.partner_state),
            "partner": _ip(self.partner_address),
            "connected": self.link is not None,
            "mclt": self.mclt,
            "load_balance_percent": hashing.primary_share(self.hba) * 100 // 256 if self.primary
            else 100 - hashing.primary_share(self.hba) * 100 // 256,
            "reserve_percent": self.rc.reserve_percent,
            "auto_state_switchover": self.safe_period or None,
            "authentication": self.key is not None,
            "pending_updates": len(self.inflight),
            "scopes": [_ip(sc.network) for sc in self.scopes],
            "counters": dict(self.stats),
        }
