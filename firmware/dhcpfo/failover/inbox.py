# failover/inbox.py - the partner's messages, as they arrive on a link.
#
# Before the handshake only CONNECT/CONNECTACK/DISCONNECT count (link.py
# checks them); after it, each message goes to the part that owns it:
# BNDUPD to receive.py, BNDACK and UPDREQ/UPDREQALL to the update queue,
# POOLREQ to the pool balancer; STATE and UPDDONE become state-machine
# events here (states.py decides what follows).

from dhcpfo import events as ev
from dhcpfo.failover import amnesia
from dhcpfo.failover import notice
from dhcpfo.failover import receive
from dhcpfo.failover import states as S
from dhcpfo.wire import failover as fw

# server-flags bit (option 23) of our own: "I have no record of you". The draft
# defines only STARTUP (0x01); ISC reads only that bit. A recovering dhcpfo
# node skips RECOVER-WAIT only when its partner says this (draft-12 §9.6.2:
# first run "as determined by the information received from the partner").
FLAG_NEVER_MET = 0x80

# partner states after which our own pool is no longer known to be ours: in
# PARTNER-DOWN it allocates from it once MCLT has passed, and the resolving
# states may follow one of its PARTNER-DOWNs we never saw
POOL_TAKERS = (S.PARTNER_DOWN, S.POTENTIAL_CONFLICT, S.RESOLUTION_INTERRUPTED, S.CONFLICT_DONE)


def feed(rel, conn, data, now, out):
    lk = rel.channel.find(conn)
    if lk is None:
        out.close(conn)
        return
    try:
        msgs = lk.decoder.feed(data)
    except fw.FailoverError as e:
        for m in e.messages:
            _message(rel, lk, m, now, out)
        rel.events.count("peer.bad-stream." + e.reason)
        if e.reason in ("bad-digest", "missing-digest", "digest"):
            rel.events.emit(now, ev.ERROR, ev.EV_AUTH_FAIL,
                            "relationship %s: message authentication failed; connection closed" % rel.name)
        rel.drop(lk, now, out, "bad stream: " + e.reason)
        return
    for m in msgs:
        if lk not in rel.channel.links:
            break
        _message(rel, lk, m, now, out)
    rel.push(now, out)


def _message(rel, lk, m, now, out):
    rel.channel.last_rx = now
    if m.time:
        rel.clockdiff.sample(m.time, now)
    t = m.mtype
    if not lk.up:
        _handshake(rel, lk, m, now, out)
        return
    try:
        if t == fw.STATE:
            _on_state(rel, m, now, out)
        elif t == fw.BNDUPD:
            receive.on_bndupd(rel, m, now, out)
        elif t == fw.BNDACK:
            rel.updates.on_bndack(m, now, out, rel.primary, rel.mclt, rel.state == S.PARTNER_DOWN)
        elif t == fw.CONTACT:
            pass
        elif t == fw.UPDREQALL or t == fw.UPDREQ:
            rel.answer_request(m.xid, t == fw.UPDREQALL, now, out)
        elif t == fw.UPDDONE:
            _on_upddone(rel, now, out)
        elif t == fw.POOLREQ:
            n = rel.balance(now, out, force=True)
            rel.channel.send(lk, fw.make_poolresp(m.xid, now, n), now, out)
        elif t == fw.POOLRESP:
            rel.pool_answered(m.get_u32(fw.OPT_ADDRESSES_TRANSFERRED, 0), now)
        elif t == fw.DISCONNECT:
            _on_disconnect(rel, lk, m, now, out)
        elif t == fw.CONNECT or t == fw.CONNECTACK:
            rel.events.count("peer.duplicate-connect")
            if t == fw.CONNECT:
                rel.channel.send(lk, fw.make_connectack(m.xid, now, rel.channel.name_b,
                                                         reject=fw.REJ_DUP_CONNECTION), now, out)
        else:
            rel.events.count("peer.unknown-type")
    except fw.FailoverError as e:
        rel.events.count("peer.bad-message." + e.reason)
        rel.drop(lk, now, out, "bad message: " + e.reason)


def _handshake(rel, lk, m, now, out):
    t = m.mtype
    if t == fw.CONNECT and not rel.primary:
        why = rel.channel.on_connect(lk, m, now, out, rel.clockdiff)
        if why is None:
            mclt = m.get_u32(fw.OPT_MCLT)
            if mclt != rel.mclt:
                rel.mclt = mclt  # the primary's MCLT wins (I15)
                rel.persist()
            rel.hba = bytes(m.get_bytes(fw.OPT_HBA))
    elif t == fw.CONNECTACK and rel.primary:
        why = rel.channel.on_connectack(lk, m, now, out, rel.clockdiff)
    elif t == fw.DISCONNECT:
        _on_disconnect(rel, lk, m, now, out)
        return
    else:
        rel.events.count("peer.before-handshake")
        why = "message before handshake"
    if why is None:
        rel.link_ready(lk, now, out)
    else:
        rel.drop(lk, now, out, why)


def _on_disconnect(rel, lk, m, now, out):
    rel.drop(lk, now, out, "partner sent DISCONNECT, reason %d" % m.get_u8(fw.OPT_REJECT_REASON, 0))


def _on_state(rel, m, now, out):
    ps = m.get_u8(fw.OPT_SERVER_STATE, S.UNKNOWN)
    flags = m.get_u8(fw.OPT_SERVER_FLAGS, 0)
    first = rel.state_link is not rel.channel.link
    rel.state_link = rel.channel.link
    if rel.cfgd is not None and m.get_bytes(fw.OPT_VENDOR_OPTIONS) is not None:
        from dhcpfo.failover import cfgdigest
        cfgdigest.partner_said(rel, m, first, now)
    if first:
        rel.partner_never_met = bool(flags & FLAG_NEVER_MET)
        amnesia.first_contact(rel, ps, now)
    changed = ps != rel.partner_state
    rel.partner_startup = bool(flags & fw.FLAG_STARTUP)
    # the partner's start-time-of-state on our clock (§9.3.2 compares it
    # with our own last operation); when it sends none, now
    stos = m.get_time(fw.OPT_STOS)
    pstos = rel.clockdiff.to_ours(stos) if stos else now
    if changed or (first and pstos != rel.partner_stos):
        was = rel.partner_state
        rel.partner_state = ps
        rel.partner_stos = pstos
        rel.persist()
        if changed:
            notice.state_event(rel, now, rel.partner_address, was, ps, "told by the partner")
    if ps in POOL_TAKERS and not rel.pool_unsure:
        rel.pool_unsure = True
        rel.persist()
    if rel.state == S.SHUTDOWN and ps == S.PARTNER_DOWN:
        if not rel.pd_seen:
            rel.pd_seen = True
            rel.persist()
    if first or changed:
        evt = S.EV_COMM_UP if first else S.EV_PARTNER_STATE
        # §9.3.2 step 5: the partner's PARTNER-DOWN is newer than anything we
        # did if it started after our last recorded operation (entering our
        # state, or the latest change the partner has not seen), or if we
        # were shut down (or saw it happen). Still in STARTUP after a restart
        # that forgot its downtime, all we recorded reads later than it was
        # and cannot show we operated after the partner took over: its
        # PARTNER-DOWN says we were down (§9.4; docs/time.md)
        down_newer = ps == S.PARTNER_DOWN and (rel.stos == 0 or rel.partner_stos > rel.last_operation()
                                               or rel.pd_seen or rel.saved in (S.SHUTDOWN, S.PAUSED)
                                               or (rel.time.forgot and rel.state == S.STARTUP))
        if not rel.event(evt, now, out, "partner is %s" % S.name(ps), partner_state=ps,
                           partner_down_newer=down_newer):
            rel.maybe_request(now, out)


def _on_upddone(rel, now, out):
    if rel.requested is None:
        rel.events.count("peer.unexpected-upddone")
        return
    # nothing of our own: no saved state, or a loss not resynchronised yet
    had_nothing = rel.requested == fw.UPDREQALL and rel.need_full
    if had_nothing:
        rel.need_full = False
        rel.persist()
    rel.requested = None
    # RECOVER-WAIT may be skipped only on a first run as the partner sees
    # it (§9.6.2); an ISC partner cannot say so, and ISC itself skips when
    # the partner is recovering too (interop §10). A server whose own
    # records show it ran failover is not on its first run, whatever a
    # partner that lost its storage says (seed 5807, I11).
    if not had_nothing:
        first = False
    elif rel.channel.partner_is_isc:
        first = rel.partner_state in (S.RECOVER, S.RECOVER_DONE)
    else:
        # new to each other: a partner that lost its storage also says it
        # never met us, while we may have served a moment ago (sim seed 527)
        first = rel.partner_never_met and not rel.knew_partner
    skip = first or now > rel.stos + rel.mclt
    rel.event(S.EV_UPDDONE, now, out, "partner sent all updates", skip_wait=skip)
