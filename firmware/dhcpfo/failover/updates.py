# failover/updates.py - outgoing binding updates (draft-12 §7.1, §7.3).
#
# Every binding change is marked PENDING in its record and must reach the
# partner as a BNDUPD. A bounded FIFO (fed by the DHCP side and the pool
# balancer) keeps the common case free of table scans; when it overflows,
# or after a restart or a lost link (PENDING records whose updates were
# never acknowledged), a table scan finds the rest. At most the partner's
# max-unacked updates are in flight. A BNDACK clears PENDING (or, when it
# refuses the update, keeps it and stops resending it on this link).
# The partner's UPDREQ/UPDREQALL is answered from the same pump.

from dhcpfo import events as ev
from dhcpfo.failover import bindings as bu
from dhcpfo.lease import log as ll
from dhcpfo.lease import table as lt
from dhcpfo.wire import failover as fw
from dhcpfo.compat import ip_str

QUEUE_MAX = 512  # bindings queued for sending before falling back to table scans
QUEUE_90 = QUEUE_MAX * 9 // 10
HELD_STATES = (lt.EXPIRED, lt.RELEASED, lt.RESET)


class Updates:
    def __init__(self, name, scopes, tables, desired, channel, clockdiff, holds, events, stats):
        self.name = name
        self.scopes = scopes
        self.tables = tables
        self.desired = desired  # scope index -> desired lease time (potential expiration)
        self.channel = channel
        self.clockdiff = clockdiff
        self.holds = holds
        self.events = events
        self.stats = stats
        self.inflight = {}  # xid -> (scope index, offset, pexp, sent at)
        self.dirty = set()  # (si, off) changed again while in flight
        self.rejected = set()  # (si, off) the partner refused on this link: not resent until a new link
        self.refused = set()  # (si, off) whose partner update we refused (reason 16) on this link
        self.lost = set()  # (si, off) whose update the partner refused as less critical than its own
        self._cursor = [0] * len(tables)
        self._queue = []
        self._queued = set()
        self._rescan = True
        self.sync_xid = None  # partner's UPDREQ/UPDREQALL we are answering
        self.sync_all = False
        self._sync_pos = None  # (position in scopes, offset) of the UPDREQALL walk

    # ------------------------------------------------------------------
    # marking

    def enqueue(self, si, off):
        key = (si, off)
        if key in self._queued:
            return
        n = len(self._queue)
        if n >= QUEUE_MAX:
            self._rescan = True
            self.stats["queue_dropped"] += 1  # still sent: the rescan finds it PENDING
            return
        if n == QUEUE_90:
            self.stats["queue_90"] += 1  # the queue reached 90 % of its maximum
        self._queue.append(key)
        self._queued.add(key)

    def room(self):
        """Bindings the queue still takes before it overflows into table scans."""
        return QUEUE_MAX - len(self._queue)

    def pending(self):
        """Outbound updates waiting or unacknowledged (queued + in flight;
        after a queue overflow the rescan may still find more)."""
        return len(self._queue) + len(self.inflight)

    def committed(self, si, off):
        """The DHCP side changed a binding: it must reach the partner (lazy update)."""
        t = self.tables[si]
        f = t.flags(off)
        key = (si, off)
        if not f & lt.MARK and self._in_flight(key):
            # the DHCP side rewrote the record, flags too, while our update of
            # it was out: that BNDACK must not settle this newer version
            # (sim seed 10986, I1)
            f |= lt.MARK
        t.set_flags(off, f | lt.PENDING)
        if key in self.rejected:  # a new version: worth sending even after a refusal
            self.rejected.discard(key)
            self.lost.discard(key)
        if f & lt.MARK:
            self.dirty.add(key)  # in flight: queued again when acked
        else:
            self.enqueue(si, off)

    def _in_flight(self, key):
        for si, off, _p, _t in self.inflight.values():
            if (si, off) == key:
                return True
        return False

    def resend(self, si, off):
        """Send our copy of a binding again (the partner's is less complete)."""
        t = self.tables[si]
        f = t.flags(off)
        t.set_flags(off, f | lt.PENDING)
        self.rejected.discard((si, off))
        self.lost.discard((si, off))
        if f & lt.MARK:
            self.dirty.add((si, off))
        else:
            self.enqueue(si, off)

    def settled(self, key):
        """The partner's update for `key` was stored: nothing of ours is outstanding."""
        self.rejected.discard(key)
        self.refused.discard(key)
        self.lost.discard(key)

    def may_rebind(self, si, off):
        """Our update changing this binding has not left yet (PENDING, not in
        flight, not refused)."""
        f = self.tables[si].flags(off)
        return bool(f & lt.PENDING) and not f & lt.MARK and (si, off) not in self.rejected

    def rescan(self):
        """Look for PENDING bindings by table scan (many were marked at once)."""
        self._rescan = True

    def waiting(self):
        return bool(self._queue) or self._rescan

    def has_unsent(self):
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

    def latest_unacked(self):
        """The latest change time (stamp) of a binding the partner has not
        acknowledged, or 0: from the records, so it survives a restart."""
        latest = 0
        for sc in self.scopes:
            t = self.tables[sc.index]
            o = t.next_flagged(lt.PENDING, 0)
            while o >= 0:
                v = t.stamp(o)
                if v > latest:
                    latest = v
                nxt = t.next_flagged(lt.PENDING, o + 1) if o + 1 < t.size else -1
                if nxt <= o:
                    break
                o = nxt
        return latest

    def link_lost(self):
        """In-flight updates are sent again on the next link."""
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

    # ------------------------------------------------------------------
    # sending

    def start_sync(self, xid, full):
        """Answer the partner's UPDREQ (pending bindings) or UPDREQALL (all of them)."""
        self.sync_xid = xid
        self.sync_all = full
        self._sync_pos = (0, 0) if full else None

    def pump(self, now, out, push):
        """Send queued updates up to the partner's max-unacked window. `push`:
        the state sends its changes unprompted (an answer to UPDREQ goes anyway)."""
        ch = self.channel
        if ch.link is None or ch.partner_max_unacked <= 0:
            return
        if not push and self.sync_xid is None:
            return
        window = ch.partner_max_unacked
        while len(self.inflight) < window:
            nxt = self._next()
            if nxt is None:
                break
            self._send(nxt[0], nxt[1], now, out)
        if self.sync_xid is not None and self._sync_pos is None and not self.inflight:
            # every binding the partner asked for is acknowledged
            ch.send_up(fw.make_upddone(self.sync_xid, now), now, out)
            self.sync_xid = None

    def _next(self):
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
            o = t.next_flagged(lt.PENDING, self._cursor[si])
            first = o
            while o >= 0:
                if not t.flags(o) & lt.MARK and (si, o) not in self.rejected:
                    self._cursor[si] = (o + 1) % t.size
                    return si, o
                o = t.next_flagged(lt.PENDING, (o + 1) % t.size)
                if o == first:
                    break
        self._rescan = False
        return None

    def _scope(self, si):
        for sc in self.scopes:
            if sc.index == si:
                return sc
        return self.scopes[0]

    def _send(self, si, off, now, out):
        t = self.tables[si]
        pexp = bu.potential_expiration(t, off, self.desired.get(si, 0), now)
        xid = self.channel.next_xid()
        self.channel.send_up(bu.build_bndupd(xid, now, self._scope(si).addr_of(off), t, off, pexp), now, out)
        t.set_flags(off, t.flags(off) | lt.MARK)
        self.inflight[xid] = (si, off, pexp or 0, now)
        self.stats["bndupd_sent"] += 1

    # ------------------------------------------------------------------
    # acknowledgements

    def on_bndack(self, m, now, out, primary, mclt, partner_down=False):
        self.stats["bndack_received"] += 1
        ent = self.inflight.get(m.xid)
        if ent is None:
            self.events.count("peer.bndack-unknown-xid")
            return
        si, off, pexp, sent_at = ent
        addr = m.get_bytes(fw.OPT_ASSIGNED_IP)
        if addr is not None and bytes(addr) != self._scope(si).addr_of(off):
            # an acknowledgement for another address under this xid: ISC
            # sends the BNDACKs it still owed on a lost connection first thing
            # on the next one (docs/interop.md), with the old xids. It is not
            # ours; the real answer to this xid is still to come.
            self.events.count("peer.bndack-stale")
            return
        del self.inflight[m.xid]
        if m.time:
            self.clockdiff.reply(m.time, sent_at)
        t = self.tables[si]
        f = t.flags(off) & ~lt.MARK
        rej = m.get_u8(fw.OPT_REJECT_REASON)
        key = (si, off)
        again = key in self.dirty
        self.dirty.discard(key)
        if rej is not None:
            self.events.count("peer.bndack-reject.%d" % rej)
            self.events.emit(now, ev.WARN, ev.EV_BNDUPD_REJECT, "relationship %s: partner rejected update for %s, reason %d"
                             % (self.name, ip_str(self._scope(si).addr_of(off)), rej))
            # Refused is not acknowledged: the binding stays PENDING (so an
            # expired or released address is not reused) but is not sent
            # again on this link; the partner's own update, or a new link,
            # settles it. Two updates that crossed and were each refused by
            # the other side would wait forever: then the primary's copy
            # wins (draft-12 §7.1.3's last rule) and it sends it again.
            t.set_flags(off, f)
            if rej == fw.REJ_FATAL_CONFLICT:
                self.lost.add(key)  # the primary's client holds it: take its copy
            if rej == fw.REJ_LESS_CRITICAL:
                if key in self.refused and primary:
                    self.refused.discard(key)
                    self.enqueue(si, off)
                    return
                self.lost.add(key)
            self.rejected.add(key)
            return
        if again:
            t.set_flags(off, f)  # changed while in flight: send again
            self.enqueue(si, off)
            return
        t.set_flags(off, f & ~lt.PENDING)
        prev_ack = t.ack_pexp(off)
        if pexp:
            t.set_ack_pexp(off, pexp)
        if t.state(off) in HELD_STATES:
            until = self.holds.until(t, off, (prev_ack,), now, mclt, partner_down)
            if until:
                self.holds.hold(si, off, until, now)
            else:
                # the partner stored it as FREE: so do we (the primary's pool again)
                t.set_state(off, lt.FREE, now)
        # Nothing leaves that depends on this record: losing it in a crash only
        # leaves the binding PENDING, and it is sent (and acknowledged) again.
        out.lazy.append(ll.encode_binding(si, off, t))
