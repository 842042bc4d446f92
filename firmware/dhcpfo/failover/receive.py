# failover/receive.py - the partner's binding updates (draft-12 §7.1.2, §7.1.3).
#
# Each BNDUPD is checked, compared with our own copy when ours is still
# unacknowledged (dueling updates: the more critical one wins), stored, and
# acknowledged - the record durable before the BNDACK leaves. Refusals say
# why with the draft's reject reasons.

from dhcpfo.failover import bindings as bu
from dhcpfo.failover import states as S
from dhcpfo.lease import log as ll
from dhcpfo.lease import table as lt
from dhcpfo.wire import failover as fw

EXPIRY_SLACK = 5  # seconds a partner's EXPIRED may precede our lease end before we refuse it
CLTT_TIE = 10  # seconds within which two updates' client transaction times count as equal
HELD_STATES = (lt.EXPIRED, lt.RELEASED, lt.RESET)
_ZERO4 = b"\x00\x00\x00\x00"


def locate(scopes, addr):
    for sc in scopes:
        off = sc.offset_of(addr)
        if off >= 0:
            return sc, off
    return None, -1


def on_bndupd(rel, m, now, out):
    """Store or refuse one BNDUPD of `rel`'s partner and acknowledge it."""
    ups = rel.updates
    cd = rel.clockdiff
    rel.stats["bndupd_received"] += 1
    addr = m.get_bytes(fw.OPT_ASSIGNED_IP, _ZERO4)
    reason = bu.check_bndupd(m)
    sc = None
    off = -1
    if reason is None:
        sc, off = locate(rel.scopes, addr)
        if sc is None:
            reason = fw.REJ_ILLEGAL_ADDRESS
    if reason is None and cd.out_of_sync(m, now, rel.time):
        reason = fw.REJ_TIME_MISMATCH  # the seed: reject, log TimeOutOfSync, state unchanged
    if reason is None:
        reason = _store(rel, ups, cd, sc, off, m, now, out)
    if reason is not None:
        rel.stats["bndupd_rejected"] += 1
        rel.events.count("peer.bndupd-reject.%d" % reason)
    rel.channel.send_up(fw.make_bndack(m.xid, now, addr if len(addr) == 4 else _ZERO4, reject=reason), now, out)
    rel.stats["bndack_sent"] += 1


def _store(rel, ups, cd, sc, off, m, now, out):
    t = rel.tables[sc.index]
    st = m.get_u8(fw.OPT_BINDING_STATUS)
    pending = t.flags(off) & lt.PENDING
    their_cltt = m.get_time(fw.OPT_CLTT) or m.get_time(fw.OPT_STOS)
    if their_cltt:
        their_cltt = cd.to_ours(their_cltt)
    key = (sc.index, off)
    resolving = rel.state == S.RECOVER or rel.state == S.STARTUP
    if (st == lt.ACTIVE and t.state(off) == lt.ACTIVE and not resolving
            and key not in rel.time.stale and not bu.same_client(t, off, m)):
        # two clients, one address (Figure 7.1.3-1 note 5): the secondary
        # takes the primary's binding; the primary refuses the secondary's
        # while its own lease runs, whatever the transaction times say (they
        # come from two clocks: sim seed 42101, I1), and sends its own
        if rel.primary:
            if t.expiry(off) > now:
                rel.stats["conflicts"] += 1
                ups.resend(sc.index, off)
                ups.refused.add(key)
                return fw.REJ_FATAL_CONFLICT
        else:
            pending = 0
    if key in ups.lost:
        pending = 0  # the partner judged its copy better than ours (reason 16): take it
    if key in rel.time.stale:
        if t.state(off) == lt.ACTIVE and st == lt.EXPIRED and t.expiry(off) > now:
            # our grant from before that restart, never acknowledged: the
            # partner's EXPIRED ends only the shorter lease it knew, and the
            # client may hold ours (sim seed 3507, I1). Keep it and send it:
            # our times read late, so it is held longer, never shorter
            ups.resend(sc.index, off)
            return fw.REJ_OUTDATED_INFO
        if t.state(off) == lt.ACTIVE or st == lt.ACTIVE or not t.flags(off) & lt.MARK:
            pending = 0  # ours is from before a restart that forgot its downtime: its times read late
        # else: a pool move of ours already sent, which the partner judges by
        # those same late times: judge alike, or both copies lose (sim seeds
        # 11074, 11092, I5: our BACKUP stored there, their EXPIRED FREE here)
    if pending and bu.ours_wins(t, off, rel.primary, st, their_cltt, cd.width() + CLTT_TIE):
        rel.stats["conflicts"] += 1
        ups.refused.add(key)
        return fw.REJ_LESS_CRITICAL
    if t.state(off) == lt.ACTIVE and t.expiry(off) > now and st in (lt.FREE, lt.BACKUP) and not resolving:
        return fw.REJ_FATAL_CONFLICT
    if (t.state(off) == lt.ACTIVE and st == lt.EXPIRED
            and t.expiry(off) > now + EXPIRY_SLACK + cd.width() and not resolving):
        # the partner thinks the lease ran out, but one of us granted it
        # longer (as ISC refuses EXPIRED while its lease runs): tell it what we know
        ups.resend(sc.index, off)
        return fw.REJ_OUTDATED_INFO
    if pending:
        rel.stats["conflicts"] += 1
        ups.dirty.discard(key)
    before = (t.ack_pexp(off), t.expiry(off))
    was_active = t.state(off) == lt.ACTIVE
    who = (t.client_id(off), t.hwaddr(off))
    was_theirs = t.by_partner(off)
    our_cltt = t.stamp(off)
    stored = bu.apply_bndupd(t, off, m, now, -cd.skew)
    cd.stored(t.ack_pexp(off), now)  # the MCLT rule keeps this translation's error bound (sim seed 803)
    if key in rel.time.stale:
        rel.time.stale.discard(key)
    if stored == lt.ACTIVE:
        # who granted it (scope statistics): the partner, unless this update
        # only echoes our own grant back (same client, same transaction time,
        # as after UPDREQALL), which stays with whoever had it
        echo = (was_active and their_cltt and who == (t.client_id(off), t.hwaddr(off))
                and abs(their_cltt - our_cltt) <= CLTT_TIE + cd.width())
        t.mark_by_partner(off, was_theirs if echo else True)
    t.set_flags(off, t.flags(off) & ~(lt.PENDING | lt.MARK))
    ups.settled(key)
    if (was_active and stored == lt.ACTIVE and before[1] > t.expiry(off)
            and who == (t.client_id(off), t.hwaddr(off))):
        # two grants to the same client crossed: it holds the longer one
        t.set_expiry(off, before[1])
        ups.resend(sc.index, off)
    if stored == lt.FREE and st in HELD_STATES:
        until = rel.holds.until(t, off, before, now, rel.mclt)
        if until:
            rel.holds.hold(sc.index, off, until, now)
    out.records.append(ll.encode_binding(sc.index, off, t))  # durable before the BNDACK
    return None
