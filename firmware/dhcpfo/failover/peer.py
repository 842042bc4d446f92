# failover/peer.py - one failover relationship (draft-12, ISC 4.4 dialect).
#
# Sans-I/O: the node hands it connection events, stream bytes and time; it
# writes messages to send and lease-log records into the node's Outbox.
# It is the hub its parts are wired to, each readable alone:
#   states.py     which state follows which event (the only place that decides)
#   link.py       connections, handshake, sending          (self.channel)
#   clockdiff.py  the partner's clock minus ours           (self.clockdiff)
#   updates.py    outgoing BNDUPDs, BNDACKs, UPDREQ answers (self.updates)
#   inbox.py      the partner's messages: handshake, STATE, UPDDONE, dispatch
#   receive.py    the partner's BNDUPDs, conflicts
#   holds.py      addresses held after a storage loss      (self.holds)
#   pool.py       FREE/BACKUP balance
#   authority.py  what the DHCP server may do               (self.authority)
#   meta.py       the durable state records
#   notice.py     state and contact events
#   admin.py      operator state requests (loaded on use)
#   report.py     status for management (loaded on use)
# This module feeds events to states.py, carries out what a state asks for
# on entry, and dispatches the partner's messages.

from dhcpfo.compat import ip_str
from dhcpfo.failover import amnesia
from dhcpfo.failover import hashing
from dhcpfo.failover import inbox
from dhcpfo.failover import meta
from dhcpfo.failover import notice
from dhcpfo.failover import pool
from dhcpfo.failover import states as S
from dhcpfo.failover.authority import Authority
from dhcpfo.failover.clockdiff import ClockDiff
from dhcpfo.failover.holds import Holds
from dhcpfo.failover.link import Channel
from dhcpfo.failover.perf import PerMinute
from dhcpfo.failover.updates import QUEUE_MAX, Updates
from dhcpfo.timebase import TimeBase
from dhcpfo.wire import failover as fw

HANDSHAKE_TIMEOUT = 15  # seconds for CONNECT/CONNECTACK on a new link (ISC's value)
STARTUP_TIME = 15  # seconds in STARTUP waiting for the partner before resuming
BALANCE_INTERVAL = 60  # seconds between pool balance runs in NORMAL (ISC min-balance)
BALANCE_RESUME = QUEUE_MAX // 2  # queue room at which a stopped balance goes on
POOLREQ_BACKOFF = 600  # seconds before asking again after a POOLRESP that moved nothing
FLAG_NEVER_MET = inbox.FLAG_NEVER_MET


def _never(*args):
    return False


class Relationship:
    def __init__(self, rc, scopes, tables, events, server_cfg, log_meta, meta_key=0, is_offered=None):
        self.rc = rc
        self.name = rc.name
        self.primary = rc.role == "primary"
        self.scopes = scopes
        self.tables = tables
        self.events = events
        self.log_meta = log_meta
        self.meta_key = meta_key
        self.is_offered = is_offered or _never  # (scope index, offset, now) -> held by an OFFER?
        self.partner_address = bytes(rc.partner_address)
        self.mclt = rc.mclt  # the secondary adopts the primary's from CONNECT
        self.safe_period = rc.auto_state_switchover or 0
        self.lb_max_secs = rc.load_balance_max_seconds
        self.desired = dict((sc.index, sc.longest_lease) for sc in scopes)
        self.configure_split()
        key = bytes(rc.shared_secret) if rc.shared_secret and rc.enable_authentication else None
        self.stats = {"bndupd_sent": 0, "bndupd_received": 0, "bndack_sent": 0, "bndack_received": 0,
                      "bndupd_rejected": 0, "transitions_ci": 0, "transitions_pd": 0,
                      "transitions_recover": 0, "conflicts": 0, "pool_moved": 0,
                      "queue_90": 0, "queue_dropped": 0}
        self.perf = PerMinute(self.stats)
        self.channel = Channel(rc.name, self.primary, key, rc.max_unacked, rc.max_response_delay, events)
        self.clockdiff = ClockDiff(rc.name, server_cfg.time_skew_max, events,
                                   getattr(rc, "partner_host", None) or ip_str(rc.partner_address))
        self.holds = Holds(scopes, tables, events)
        self.updates = Updates(rc.name, scopes, tables, self.desired, self.channel, self.clockdiff,
                               self.holds, events, self.stats)
        self.authority = Authority(self)
        # local <-> wall time: the node's, shared by all its relationships
        self.time = self.channel.time = TimeBase()
        # durable state
        self.state = S.STARTUP
        self.previous = None  # saved state resumed after STARTUP
        self.stos = 0
        self.partner_state = S.UNKNOWN
        self.partner_stos = 0
        self.pd_stos = 0  # when we entered PARTNER-DOWN (takeover after + MCLT)
        self.pd_seen = False
        # the partner was in PARTNER-DOWN (or resolving after it) since we
        # last had all its bindings: it may have used our pool (§9.11.2)
        self.pool_unsure = False
        self.saved = None  # state read back from the lease log
        self.saved_previous = None  # state before PAUSED/SHUTDOWN
        self.need_full = True  # no trusted bindings until a full resync (UPDREQALL) completes
        # run-time state
        self.partner_startup = False
        self.partner_never_met = False  # the partner's STATE says it has no record of us
        self.knew_partner = False  # we had a record of the partner when this link came up
        self.requested = None  # our outstanding UPDREQ/UPDREQALL type
        self.state_link = None  # the link whose first STATE we have seen
        self._normal_deferred = False  # PARTNER-DOWN -> NORMAL waits for our updates to be acknowledged
        self._balance_at = 0
        self._balance_more = None  # balance stopped at a full update queue: its `force`, else None
        self._poolreq_after = 0  # the secondary asks for addresses (POOLREQ) not before this
        self.started_at = 0
        self.op_at_start = None  # last_operation() as restored (see start)
        self.comm_since = 0  # when communications were last lost
        # configuration digest (failover/cfgdigest.py): [the node's document
        # source, our digest (cached), the partner's], when the node has a document
        self.cfgd = None

    # ------------------------------------------------------------------
    # configuration-derived values

    def configure_split(self):
        rc = self.rc
        self.hot_standby = rc.mode == "hot-standby"
        active_is_primary = (rc.hot_standby_role == "active") == self.primary  # role is the LOCAL server's
        # primary's hash bucket assignment (set bit = primary serves, ISC's meaning)
        if not self.primary:
            self.hba = hashing.hba_split(128)  # until the primary's CONNECT says
        elif self.hot_standby:
            self.hba = hashing.hba_split(256 if active_is_primary else 0)
        else:
            self.hba = hashing.hba_for_percent(rc.load_balance_percent)
        # percent of available addresses the secondary should own (BACKUP)
        if self.hot_standby:
            rp = rc.reserve_percent
            self.backup_share = rp if active_is_primary else 100 - rp
        else:
            pct = rc.load_balance_percent  # local server's share
            self.backup_share = 100 - pct if self.primary else pct

    @property
    def link(self):
        return self.channel.link

    def link_up(self):
        return self.channel.connecting()

    # ------------------------------------------------------------------
    # persistence

    def meta_payload(self):
        return meta.state_payload(self)

    def restore_meta(self, payload):
        meta.restore_state(self, payload)

    def last_operation(self):
        """The last recorded time of operation of this server (§9.3.2): when
        it entered its recorded state, or later when it changed a binding
        the partner has not acknowledged (a renewal granted while cut off)."""
        if self.state == S.STARTUP and self.op_at_start is not None:
            # what this run changed in STARTUP (leases expired at the first
            # tick) is no operation as a server (sim seed 1894, I1)
            return self.op_at_start
        t = self.updates.latest_unacked()
        return t if t > self.stos else self.stos

    def persist(self):
        self.log_meta(self.meta_key, self.meta_payload())

    # ------------------------------------------------------------------
    # life cycle and state changes

    def start(self, now, out):
        self.started_at = now
        self.op_at_start = None
        self.op_at_start = self.last_operation()  # before anything this run does
        self.holds.rescan()  # holds recorded before a restart are released by time
        saved = self.saved
        if saved is None:
            # No saved state: a new or wiped server starts in RECOVER and
            # learns everything from its partner before serving (I12). That
            # is recorded at once, so a crash before the resync finishes
            # still asks for everything after the restart.
            self.previous = None
            self.state = S.STARTUP
            self.need_full = True
            self.persist()
        if self.need_full:
            amnesia.lost(self, now, False)
        else:
            if saved in (S.PAUSED, S.SHUTDOWN):
                saved = self.saved_previous
            self.previous = S.startup_previous(saved, self.pd_seen)
            # seeing the partner in PARTNER-DOWN while shut down sends this
            # restart to RECOVER (§9.14.2), not every later one (seed 5807)
            self.pd_seen = False
            self.state = S.STARTUP
        notice.state_event(self, now, self.rc.local_address, None, S.STARTUP,
                           "previous %s" % (S.name(self.previous) if self.previous else "none"))

    def set_state(self, new, now, out, why):
        old = self.state
        if new == old:
            return
        if old in (S.PAUSED, S.SHUTDOWN) or new in (S.PAUSED, S.SHUTDOWN):
            self.saved_previous = old if new in (S.PAUSED, S.SHUTDOWN) else None
        self.state = new
        self.stos = now
        if new in (S.NORMAL, S.CONFLICT_DONE):
            self.pool_unsure = False  # all the partner's bindings are here
        if new == S.PARTNER_DOWN:
            self.pd_stos = now
            self.stats["transitions_pd"] += 1
        elif new == S.COMM_INTERRUPTED:
            self.stats["transitions_ci"] += 1
            self.comm_since = now
        elif new == S.RECOVER:
            self.stats["transitions_recover"] += 1
        self.persist()  # durable before the partner or a client sees the change
        notice.state_event(self, now, self.rc.local_address, old, new, why)
        self.requested = None
        if new == S.NORMAL:
            self._balance_at = now  # rebalance on entering NORMAL
            self.updates.dirty.clear()
        if self.channel.link is not None:
            self.send_state(now, out)
            self.maybe_request(now, out)
            if new == S.NORMAL:
                self._balance_at = now + BALANCE_INTERVAL
                self.balance(now, out)  # the secondary gets its addresses at once
                self.push(now, out)

    def event(self, event, now, out, why, partner_state=None, **kw):
        new = S.next_state(self.state, event, partner_state=partner_state, primary=self.primary,
                           previous=self.previous, partner_startup=self.partner_startup, **kw)
        if new is None:
            return False
        resumed_pd = self.state == S.STARTUP and self.previous == S.PARTNER_DOWN
        if new == S.NORMAL and (self.state == S.PARTNER_DOWN or resumed_pd) and self.updates.has_unsent():
            # What we did alone (maybe in the partner's pool) must reach the
            # partner before it may allocate again: NORMAL waits until every
            # update is acknowledged (tick re-checks). After a restart the
            # same: PARTNER-DOWN is resumed first (sim seed 248, I1: straight
            # from STARTUP to NORMAL, our grants from the partner's pool were
            # still queued when the partner served that pool again)
            if resumed_pd:
                self.set_state(S.PARTNER_DOWN, now, out, why + "; our updates first")
            self._normal_deferred = True
            self.push(now, out)
            return resumed_pd
        self._normal_deferred = False
        self.set_state(new, now, out, why)
        return True

    # ------------------------------------------------------------------
    # the DHCP side's entry points

    def pump(self, now, out):
        """Send what is queued now rather than at the next tick (after a DHCP turn)."""
        if self.updates.waiting():
            self.push(now, out)

    def push(self, now, out):
        if self._balance_more is not None and self.updates.room() >= BALANCE_RESUME:
            self.balance(now, out, self._balance_more)  # the queue drained: move the next batch
        push = bool(S.service(self.state) & S.PUSH) and self.partner_state not in (S.UNKNOWN, S.STARTUP)
        self.updates.pump(now, out, push)

    def answer_request(self, xid, full, now, out):
        """The partner's UPDREQ (full=False) or UPDREQALL (True)."""
        if full and self.knew_partner:
            # it asks for everything and we knew it: it lost what it granted
            # (a partner we never met asks because it is new: nothing to hold)
            amnesia.lost(self, now, True)
        self.updates.start_sync(xid, full)
        self.push(now, out)

    def balance(self, now, out, force=False):
        """Move addresses towards the split, no more than the update queue
        takes (backpressure: a fresh 65k pool would otherwise overflow it
        with 32k updates in one turn); push() moves the next batch once the
        partner's acknowledgements drained the queue."""
        self._balance_more = None
        if self.state != S.NORMAL or self.channel.link is None:
            return 0
        room = self.updates.room()
        moved = 0
        if room > 0:
            moved = pool.balance(self.scopes, self.tables, self.primary, self.backup_share, self.is_offered,
                                 self.updates.enqueue, now, out, force, room)
            self.stats["pool_moved"] += moved
        if moved >= room:
            self._balance_more = force  # maybe more to move
        return moved

    def _ask_pool(self, now, out):
        """Secondary: ask the primary for addresses (POOLREQ, draft-12 §7.4)
        only when it is really short: never on entering NORMAL (the primary's
        BACKUP updates are still on their way; ISC answers such a POOLREQ
        negatively), never while a resync runs either way, only with fewer
        than half its share left, and after an answer that moved nothing
        only once POOLREQ_BACKOFF has passed."""
        if (self.primary or self.state != S.NORMAL or self.channel.link is None or now < self._poolreq_after
                or self.requested is not None or self.updates.sync_xid is not None
                or not pool.shortfall(self.scopes, self.tables, self.primary, self.backup_share)):
            return
        self._poolreq_after = now + BALANCE_INTERVAL
        self.channel.send_up(fw.make_poolreq(self.channel.next_xid(), now), now, out)
        self.events.count("peer.poolreq-sent")

    def pool_answered(self, moved, now):
        """The primary's POOLRESP: `moved` addresses are coming as BNDUPDs."""
        self.events.count("peer.poolresp")
        if not moved:
            self._poolreq_after = now + POOLREQ_BACKOFF

    # ------------------------------------------------------------------
    # connections

    def connected(self, conn, outgoing, now, out, nonce=None):
        if self.channel.link is not None:
            self.events.count("peer.duplicate-connection")
            out.close(conn)
            return
        self.clockdiff.new_link()
        self.channel.open(conn, outgoing, now, out, self.mclt, self.hba, nonce)

    def closed(self, conn, now, out):
        lk = self.channel.find(conn)
        if lk is not None and self.channel.remove(lk):
            self._link_lost(now, out, "connection closed")

    def drop(self, lk, now, out, why):
        if self.channel.remove(lk, out):
            self._link_lost(now, out, why)

    def _link_lost(self, now, out, why):
        notice.comm_event(self, now, False, why)
        self.updates.link_lost()
        self.requested = None
        self.comm_since = now
        self.event(S.EV_COMM_DOWN, now, out, why)

    def link_ready(self, lk, now, out):
        self.channel.ready(lk, out)
        self.partner_startup = False
        notice.comm_event(self, now, True)
        self.send_state(now, out)

    def send_state(self, now, out):
        flags = fw.FLAG_STARTUP if self.state == S.STARTUP else 0
        if self.partner_state == S.UNKNOWN:
            flags |= FLAG_NEVER_MET  # no record of ever hearing from this partner
        st = self.state if self.state != S.STARTUP else (self.previous or S.RECOVER)
        ch = self.channel
        m = fw.make_state(ch.next_xid(), now, st, flags, self.stos or None)
        if ch.partner_is_dhcpfo and self.cfgd is not None:
            from dhcpfo.failover import cfgdigest
            cfgdigest.stamp(self, m)
        ch.send_up(m, now, out)

    # ------------------------------------------------------------------
    # incoming bytes (failover/inbox.py reads and dispatches them)

    def data(self, conn, data, now, out):
        inbox.feed(self, conn, data, now, out)

    def maybe_request(self, now, out):
        ch = self.channel
        if ch.link is None or self.requested is not None:
            return
        req = S.request_on(self.state, self.partner_state, self.primary, full=self.need_full)
        if req is None:
            return
        self.requested = req
        msg = fw.make_updreqall(ch.next_xid(), now) if req == fw.UPDREQALL else fw.make_updreq(ch.next_xid(), now)
        ch.send_up(msg, now, out)

    # ------------------------------------------------------------------
    # time

    def tick(self, now, out):
        ch = self.channel
        self.perf.sample(now)
        # STARTUP: wait a short while for the partner, then resume (§9.3.2)
        if self.state == S.STARTUP and ch.link is None and now >= self.started_at + STARTUP_TIME:
            self.event(S.EV_STARTUP_TIMER, now, out, "no partner during startup")
        for lk in ch.timed_out(now, HANDSHAKE_TIMEOUT):
            self.drop(lk, now, out, "handshake timeout")
        if ch.link is not None:
            if now - ch.last_rx > ch.receive_timer:
                self.drop(ch.link, now, out, "partner silent for %d s" % (now - ch.last_rx))
            elif ch.partner_receive_timer and now - ch.last_tx >= max(1, ch.partner_receive_timer // 3):
                ch.send_up(fw.make_contact(ch.next_xid(), now), now, out)
        if self.state == S.COMM_INTERRUPTED and self.safe_period and now >= self.stos + self.safe_period:
            self.event(S.EV_SAFE_PERIOD, now, out, "auto state switchover interval passed")
        if self.holds.active():
            self.holds.release(now, out)
        if self._normal_deferred:
            if self.state != S.PARTNER_DOWN or ch.link is None:
                self._normal_deferred = False
            else:
                self.event(S.EV_PARTNER_STATE, now, out, "partner is %s, updates delivered"
                            % S.name(self.partner_state), partner_state=self.partner_state)
        if self.state == S.RECOVER_WAIT and now > self.stos + self.mclt:
            self.event(S.EV_MCLT_EXPIRED, now, out, "MCLT passed")
        if self.state == S.NORMAL and ch.link is not None and now >= self._balance_at:
            self._balance_at = now + BALANCE_INTERVAL
            self.balance(now, out)
            self._ask_pool(now, out)
        self.push(now, out)
        return now + 1

    # ------------------------------------------------------------------
    # administration (failover/admin.py) and status (failover/report.py)

    def admin(self, what, now, out):
        from dhcpfo.failover import admin

        admin.request(self, what, now, out)

    def status(self, now):
        from dhcpfo.failover import report

        return report.status(self, now)
