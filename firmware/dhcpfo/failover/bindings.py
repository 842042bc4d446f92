# failover/bindings.py - binding updates: what we tell the partner, and how
# we take what it tells us (draft-12 §7.1, ISC's dialect in interop §7).
#
# Sans-I/O helpers used by failover.peer: build a BNDUPD from a table record,
# decide whether an incoming BNDUPD is accepted (and how it is stored), and
# resolve dueling updates (draft-12 §7.1.3 as ISC orders it: ACTIVE beats
# non-ACTIVE, then the later client-last-transaction-time, then the primary).

from dhcpfo.lease import table as lt
from dhcpfo.wire import failover as fw

_HW_REQUIRED = (lt.ACTIVE, lt.EXPIRED, lt.RELEASED)


def potential_expiration(t, off, desired, now):
    """The potential expiration to ask the partner to acknowledge for a binding.

    For ACTIVE it covers a full renewal (last transaction + desired lease
    time) so the next renewal can be full length under the MCLT rule;
    otherwise the lease end.
    """
    st = t.state(off)
    exp = t.expiry(off)
    if st == lt.ACTIVE:
        # from the client's last transaction time, not the sending time, so
        # that what we sent can be recomputed from the durable record after
        # a crash (draft-12 §7.1.5)
        want = t.stamp(off) + desired
        return want if want > exp else exp
    if st == lt.FREE or st == lt.BACKUP:
        return None
    # an expired or released binding: the latest time a client may still
    # hold it as far as anyone acknowledged (a partner that lost its storage
    # holds the address until then + MCLT)
    ack = t.ack_pexp(off)
    if ack > exp:
        exp = ack
    return exp if exp else None


def build_bndupd(xid, now, addr, t, off, pexp):
    """BNDUPD for the binding at `off` of table `t` (ISC's option order)."""
    st, flags, mac, expiry, _ack, stamp = t.get(off)
    cid = None
    chaddr = None
    if st != lt.ABANDONED:
        hw = t.hwaddr(off)
        if hw is not None:
            chaddr = bytes([hw[0]]) + hw[1]
        cid = t.client_id(off)
    ipf = fw.IPF_RESERVED if flags & lt.RESERVED else 0
    return fw.make_bndupd(
        xid, now, addr, st,
        lease_end=expiry or None,
        potential_end=pexp,
        stos=stamp or None,
        client_id=cid,
        chaddr=chaddr if st in _HW_REQUIRED or chaddr is not None else None,
        cltt=stamp if st == lt.ACTIVE and stamp else None,
        ip_flags=ipf,
    )


def check_bndupd(msg):
    """Reject reason for a malformed BNDUPD, or None when its options are complete."""
    if not msg.has(fw.OPT_ASSIGNED_IP) or not msg.has(fw.OPT_BINDING_STATUS):
        return fw.REJ_MISSING_BINDING
    if len(msg.get_bytes(fw.OPT_ASSIGNED_IP)) != 4:
        return fw.REJ_ILLEGAL_ADDRESS
    st = msg.get_u8(fw.OPT_BINDING_STATUS)
    if st < lt.FREE or st > lt.BACKUP:
        return fw.REJ_MISSING_BINDING
    if st in _HW_REQUIRED and not msg.has(fw.OPT_CHADDR):
        return fw.REJ_MISSING_BINDING
    return None


def same_client(t, off, msg):
    """Does the BNDUPD name the client our record holds? By client id when
    both have one, else by hardware address; nothing to compare is no proof
    of two clients."""
    cid = msg.get_bytes(fw.OPT_CLIENT_ID)
    ours = t.client_id(off)
    if cid and ours is not None:
        return bytes(cid) == ours
    ch = msg.get_bytes(fw.OPT_CHADDR)
    hw = t.hwaddr(off)
    if ch and len(ch) >= 2 and hw is not None:
        return ch[0] == hw[0] and bytes(ch[1:]) == hw[1]
    return True


def ours_wins(t, off, our_primary, their_state, their_cltt, tie=0):
    """Dueling updates: does our unacknowledged copy beat the incoming one?

    Both sides must reach the same verdict. Client transaction times come
    from two clocks whose difference is only estimated, so times within
    `tie` seconds count as equal and the primary's copy wins.
    """
    ours = t.state(off)
    if (ours == lt.ACTIVE) != (their_state == lt.ACTIVE):
        return ours == lt.ACTIVE
    our_cltt = t.stamp(off)
    tc = their_cltt or 0
    if our_cltt > tc + tie:
        return True
    if tc > our_cltt + tie:
        return False
    return our_primary


def apply_bndupd(t, off, msg, now, shift=0):
    """Store an accepted BNDUPD in the table. Returns the stored state.

    EXPIRED, RELEASED and RESET from the partner are stored as FREE, as ISC
    does: the sender moves its own copy to FREE once we acknowledge, so both
    sides agree the address is the primary's again. The client identity is
    kept on FREE so the same client can get its address back.

    shift (seconds) turns the partner's clock into ours (draft-12 §5.10);
    the caller's estimate may be up to a second off either way (message
    times have one-second resolution), so lease and potential expiration
    are stored one second later: never earlier than the partner meant. The
    MCLT rule (peer.max_lease) takes its own margin the other way.
    """
    st = msg.get_u8(fw.OPT_BINDING_STATUS)
    stored = lt.FREE if st in (lt.EXPIRED, lt.RELEASED, lt.RESET) else st
    chaddr = msg.get_bytes(fw.OPT_CHADDR)
    cid = msg.get_bytes(fw.OPT_CLIENT_ID)
    mac = None
    htype = 1
    if chaddr and len(chaddr) >= 2:
        htype = chaddr[0]
        mac = bytes(chaddr[1:])
    if st == lt.ABANDONED:
        mac = None
        cid = None
    expiry = msg.get_time(fw.OPT_LEASE_EXPIRATION) or 0
    pexp = msg.get_time(fw.OPT_POTENTIAL_EXPIRATION) or 0
    stamp = msg.get_time(fw.OPT_CLTT) or msg.get_time(fw.OPT_STOS) or 0
    if expiry:
        expiry += shift + 1
    if pexp:
        pexp += shift + 1
    stamp = stamp + shift if stamp else now
    flags = t.flags(off) & lt.RESERVED
    ipf = msg.get_u16(fw.OPT_IP_FLAGS, 0)
    if ipf & fw.IPF_RESERVED:
        flags |= lt.RESERVED
    if expiry < 0:
        expiry = 0
    if pexp < 0:
        pexp = 0
    t.set(off, stored, flags, mac, cid, expiry, pexp, stamp if stamp > 0 else now, htype)
    return stored
