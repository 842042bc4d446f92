# failover/authority.py - what the DHCP server may do in a failover scope.
#
# The DHCP server asks one *authority* per scope: answer this client?
# allocate this address? reuse it? how long may the lease be (the MCLT
# rule)? This one answers from its relationship's state (the SERVICE
# flags of failover/states.py), the hash bucket assignment and the
# bindings' acknowledgement marks. It reads the relationship, never
# changes it, except to hand a committed binding to the update queue.

from dhcpfo.failover import hashing
from dhcpfo.failover import pool
from dhcpfo.failover import states as S
from dhcpfo.lease import table as lt

MCLT_MARGIN = 2  # seconds kept back from a received potential expiration (1 s resolution, estimate error)
REUSE = (lt.EXPIRED, lt.RELEASED, lt.ABANDONED, lt.RESET)
HELD_STATES = (lt.EXPIRED, lt.RELEASED, lt.RESET)
_ZERO4 = b"\x00\x00\x00\x00"


class Authority:
    failover = True

    def __init__(self, rel):
        self.rel = rel

    def serving(self, now):
        rel = self.rel
        if not S.answers(rel.state):
            return False
        # ISC stops answering when the partner claims the pool (interop §9)
        if rel.channel.link is None:
            return True
        return rel.partner_state not in (S.PARTNER_DOWN, S.POTENTIAL_CONFLICT, S.RESOLUTION_INTERRUPTED) \
            or rel.state == S.PARTNER_DOWN

    def answering(self, scope, pkt, now):
        rel = self.rel
        flags = S.service(rel.state)
        if flags & S.RENEW_ONLY:
            return pkt.msg_type == 3 and pkt.ciaddr != _ZERO4
        if not flags & S.BALANCED:
            return True
        if pkt.msg_type == 3 and pkt.options.get(54) is not None:
            return True  # SELECTING: the server id decides
        if rel.hot_standby:
            # Hot standby: the active server holds every hash bucket and
            # serves all; the standby serves nothing in NORMAL, not even a
            # REQUEST with ciaddr (a broadcast REBINDING looks the same as
            # a unicast RENEWING in the packet; answering it bound clients
            # to the standby and made the updates duel), nor late DISCOVERs.
            # This departs from §9.8.2 for the standby only (docs/failover.md).
            return hashing.serves(rel.hba, self._hash_key(pkt), rel.primary)
        if pkt.msg_type == 3 and pkt.ciaddr != _ZERO4:
            return True  # RENEWING or REBINDING: any server, any client (§5.5, §9.8.2)
        if rel.lb_max_secs and pkt.secs >= rel.lb_max_secs:
            return True  # the other server has had its chance (load balance max seconds)
        return hashing.serves(rel.hba, self._hash_key(pkt), rel.primary)

    def _hash_key(self, pkt):
        key = pkt.options.get(61)  # RFC 3074: the client identifier, else chaddr
        return pkt.hwaddr() if key is None else key

    def _takeover(self, si, t, off, now):
        """PARTNER-DOWN: may we use an address the partner could have handed out?"""
        rel = self.rel
        if rel.state != S.PARTNER_DOWN:
            return False
        # MCLT past the latest of: entering PARTNER-DOWN, the acknowledged
        # potential expiration, the client's expiry and (for a binding of
        # ours the partner may never have acknowledged) the potential
        # expiration we may have sent, recomputed from the record (§9.4.2)
        base = rel.pd_stos
        for v in (t.ack_pexp(off), t.expiry(off)):
            if v > base:
                base = v
        if t.flags(off) & lt.PENDING and t.state(off) in REUSE:
            sent = t.stamp(off) + rel.desired.get(si, 0)
            if sent > base:
                base = sent
        return now > base + rel.mclt  # whole seconds: strictly after, never early

    def _pool_known(self):
        """RESOLUTION-INTERRUPTED allocates from our own pool "if that can be
        determined" (§9.11.2): not when the partner was in PARTNER-DOWN (or
        resolving) since we last had all its bindings, for it may have handed
        our addresses out (seed 7491). Renewals are still answered."""
        rel = self.rel
        return rel.state != S.RESOLUTION_INTERRUPTED or not rel.pool_unsure

    def alloc_states(self, now):
        """Binding states worth scanning for a new client's address now, in
        order of preference (the server checks each address with may_allocate)."""
        rel = self.rel
        flags = S.service(rel.state)
        if not flags & S.ALLOCATE or not self._pool_known():
            return ()
        own = (pool.own_status(rel.primary),) + REUSE
        if flags & S.TAKEOVER and now > rel.pd_stos + rel.mclt:
            return own + (pool.partner_status(rel.primary),)
        return own

    def may_allocate(self, scope, offset, state, now):
        rel = self.rel
        flags = S.service(rel.state)
        if not flags & S.ALLOCATE or not self._pool_known():
            return False
        if state == pool.own_status(rel.primary):
            return True
        if state == pool.partner_status(rel.primary):
            return bool(flags & S.TAKEOVER) and self._takeover(scope.index, rel.tables[scope.index], offset, now)
        if state in REUSE:
            return self.may_reuse(scope, offset, now)
        return False

    def may_reuse(self, scope, offset, now):
        """An EXPIRED/RELEASED/ABANDONED address goes to another client only once the
        partner acknowledged that state (I6), or after MCLT in PARTNER-DOWN. An
        acknowledged EXPIRED/RELEASED still here is held (failover/holds.py)."""
        t = self.rel.tables[scope.index]
        if not t.flags(offset) & lt.PENDING:
            return t.state(offset) not in HELD_STATES
        return self._takeover(scope.index, t, offset, now)

    def may_rebind(self, scope, offset, now):
        """May a client have its own EXPIRED/RELEASED address back? Only while
        the partner still knows it as that client's: our update saying
        otherwise not yet sent. Once acknowledged the partner holds it as
        FREE and may already have given it away."""
        return self.rel.updates.may_rebind(scope.index, offset)

    def max_lease(self, scope, offset, now, fresh):
        """MCLT rule (draft-12 §5.2.1): a lease may run at most MCLT past the
        potential expiration the partner has acknowledged."""
        rel = self.rel
        if not S.service(rel.state) & S.MCLT_LIMIT:
            return None
        base = 0 if fresh else rel.tables[scope.index].ack_pexp(offset)
        if now < rel.time.unsure_until:
            # after a restart an acknowledgement from before it may read later
            # than it is (a forgotten downtime, a clock set back while off):
            # none counts until the latest of them has passed (docs/time.md)
            base = 0
        # a potential expiration the partner sent was translated with a clock
        # difference known only within its width when it arrived: take the early end
        left = base - MCLT_MARGIN - rel.clockdiff.margin(now) - now
        if left < 0:
            if rel.state == S.RECOVER_DONE:
                # the partner may be in PARTNER-DOWN and reuse the address
                # MCLT past what it acknowledged (§9.4.2), unaware of a
                # renewal we grant now: no further (sim seed 1966, I1); an
                # acknowledgement passed, or none sure yet, answers with a NAK
                return left + rel.mclt
            left = 0
        return left + rel.mclt

    def committed(self, scope, offset, now):
        """The server changed a binding: it must reach the partner (lazy update)."""
        stale = self.rel.time.stale
        if stale and (scope.index, offset) in stale:
            stale.discard((scope.index, offset))  # a change of this run: its times are right
        self.rel.updates.committed(scope.index, offset)

    def scope_statistics(self, sc, now):
        """Free addresses by pool ownership (FREE is the primary's, BACKUP the
        secondary's) and leases by the server that granted them."""
        rel = self.rel
        t = rel.tables[sc.index]
        theirs = t.active_by_partner()
        return {"relationship": rel.name, "state": S.name(rel.state),
                "free_this_server": t.count(pool.own_status(rel.primary)),
                "free_partner_server": t.count(pool.partner_status(rel.primary)),
                "in_use_this_server": t.count(lt.ACTIVE) - theirs, "in_use_partner_server": theirs}
