# dhcp/server.py - DHCPv4 decisions (RFC 2131 §4.3): which address, which
# reply, which binding change. Sans-I/O: a decoded packet and `now` in,
# replies and lease-log records out through the node's Outbox.
#
# Failover stays out of this file: every decision that depends on the
# failover state (answer this client? allocate this address? how long a
# lease? reuse this address?) is asked of an *authority* object, one per
# scope. `Standalone` below is the authority of a scope without a partner;
# failover.authority provides the failover one.

from dhcpfo.compat import const, ip_str
from dhcpfo.dhcp.scope import share
from dhcpfo.wire import dhcp as wire
from dhcpfo.lease import table as lt
from dhcpfo.lease import log as ll
from dhcpfo import events as ev

ZERO4 = b"\x00\x00\x00\x00"
OFFER_CAP = const(512)  # outstanding offers remembered (not per lease)

# Abuse defences (docs/config.md, "abuse"): keys of the server's "abuse"
# object and their defaults. A rate of 0 turns that limit off.
ABUSE_DEFAULTS = {
    "client_rate": 30,  # messages one client (client id, else chaddr) may send per client_window
    "client_window": 10,  # seconds
    "client_slots": 256,  # fixed table of client counters (shared by hash beyond that)
    "relay_rate": 2000,  # messages one relay agent (giaddr) may forward per relay_window
    "relay_window": 1,
    "relay_slots": 32,
    "pool_alarm_percent": 95,  # warn once when a scope's in-use share crosses this; again at 100
}


def abuse_settings(given):
    """The abuse settings: `given` (a dict, or None) over ABUSE_DEFAULTS."""
    out = dict(ABUSE_DEFAULTS)
    if given:
        for k in out:
            v = given.get(k)
            if type(v) is int and v >= 0:
                out[k] = v
    return out


def _hash(b):
    """A small deterministic hash of bytes (stays a small int on 32-bit boards)."""
    h = len(b)
    for x in b:
        h = (h * 31 + x) & 0xFFFFF
    return h


class RateTable:
    """Fixed-window message counters for many senders in a fixed-size table.

    A sender's key hashes to one slot; a slot holds one sender (its hash tag),
    the start of its window and its count. Another sender hashing to a busy
    slot takes it over, so a flood of made-up senders costs no memory and can
    only make others' counts start afresh, never push a real client over.
    Slots are 9 bytes of one bytearray (tag u24, start u32, count u16): a
    list per field held ~12 B per slot on a 32-bit board, 24 B on 64-bit.
    """

    def __init__(self, slots, rate, window):
        self.slots = slots if slots > 0 else 1
        self.rate = rate if rate < 0xFFFF else 0xFFFF
        self.window = window if window > 0 else 1
        self._t = bytearray(9 * self.slots)
        for i in range(self.slots):
            self._t[9 * i] = 0xFF  # tag 0xFFxxxx: no sender (_hash stays below 2**20)

    def allow(self, key, now):
        """Count one message from `key` (bytes); False when over the rate."""
        if self.rate <= 0:
            return True
        h = _hash(key)
        t = self._t
        p = 9 * (h % self.slots)
        start = (t[p + 3] << 24) | (t[p + 4] << 16) | (t[p + 5] << 8) | t[p + 6]
        if ((t[p] << 16) | (t[p + 1] << 8) | t[p + 2]) != h or now - start >= self.window or now < start:
            t[p] = h >> 16
            t[p + 1] = (h >> 8) & 255
            t[p + 2] = h & 255
            t[p + 3] = (now >> 24) & 255
            t[p + 4] = (now >> 16) & 255
            t[p + 5] = (now >> 8) & 255
            t[p + 6] = now & 255
            t[p + 7] = 0
            t[p + 8] = 1
            return True
        n = (t[p + 7] << 8) | t[p + 8]
        if n >= self.rate:
            return False
        n += 1
        t[p + 7] = n >> 8
        t[p + 8] = n & 255
        return True


class Standalone:
    """Authority of a scope with no failover partner: serve everyone, no caps."""

    failover = False

    def answering(self, scope, pkt, now):
        return True

    def serving(self, now):
        return True

    def may_allocate(self, scope, offset, state, now):
        # BACKUP too: a scope taken out of a failover relationship keeps
        # the addresses its former secondary held
        return state != lt.ACTIVE

    def alloc_states(self, now):
        return _ALLOC_ORDER

    def max_lease(self, scope, offset, now, fresh):
        return None

    def may_reuse(self, scope, offset, now):
        return True

    def may_rebind(self, scope, offset, now):
        return True

    def committed(self, scope, offset, now):
        pass


STANDALONE = Standalone()


class DhcpServer:
    """One node's DHCP service over its scopes.

    `scopes` is the dhcp.scope.Scopes collection; `tables[i]` the LeaseTable
    of scope i; `authorities[i]` the authority for scope i.
    """

    def __init__(self, scopes, tables, events, server_id, offer_hold=60, decline_hold=3600, abuse=None):
        self.scopes = scopes
        self.tables = tables
        self.events = events
        self.server_id = server_id
        self.offer_hold = offer_hold
        self.decline_hold = decline_hold
        self.authorities = [STANDALONE] * len(tables)
        self._offers = {}  # client key -> (scope index, offset, until)
        self._offered = {}  # (scope index, offset) -> client key
        # no held offer ends before this (a lower bound; None: none held since
        # the last scan): _prune skips its scan of every offer until then
        self._first_until = None
        self._cursor = [0] * len(tables)  # allocation scan start per scope
        self._expire_cursor = [0] * len(tables)
        a = abuse_settings(abuse)
        self.abuse = a
        self._clients = RateTable(a["client_slots"], a["client_rate"], a["client_window"])
        self._relays = RateTable(a["relay_slots"], a["relay_rate"], a["relay_window"])
        self._alarm_pct = a["pool_alarm_percent"] or 100
        # pool alarm per scope: 0 armed, 1 warned (>= alarm percent), 2 full;
        # _full: the last allocation for a new client failed (cleared by the next success)
        self._alarm = [0] * len(tables)
        self._full = [False] * len(tables)
        self._used = [0] * len(tables)  # ACTIVE count at the last check
        self._usable = [sc.size - sc.excluded_count() for sc in scopes]

    # ------------------------------------------------------------------
    # entry point

    def handle(self, data, local_addr, now, out):
        """Process one datagram received on an interface whose address is `local_addr`."""
        c = self.events
        try:
            pkt = wire.decode(data)
        except wire.DecodeError as e:
            c.count_as("drop.", e.reason)
            return
        if pkt.op != 1:
            c.count("drop.not-request")
            return
        if pkt.giaddr != ZERO4 and not self._relays.allow(pkt.giaddr, now):
            c.count("drop.rate-relay")
            return
        if not self._clients.allow(pkt.client_key(), now):
            c.count("drop.rate-client")
            return
        mt = pkt.msg_type
        if mt == 0:
            sc = self.scopes.for_packet(pkt, local_addr)
            if sc is None or not sc.active or not sc.bootp:
                c.count("drop.bootp")
                return
            self._bootp(sc, pkt, now, out)
            return
        cid = pkt.options.get(wire.OPT_CLIENT_ID)
        if cid is not None and len(cid) > 255:  # RFC 3396 pieces; a binding holds 255 octets
            c.count("drop.bad-client-id")
            return
        sc = self._scope_for(pkt, mt, local_addr)
        if sc is None or not sc.active:
            c.count("drop.no-scope")
            return
        auth = self.authorities[sc.index]
        if not auth.serving(now):
            c.count("drop.silent-state")
            return
        c.count_as("rx.", _TYPE_NAMES[mt] if mt < len(_TYPE_NAMES) else "other")
        if mt == wire.DISCOVER or mt == wire.REQUEST or mt == wire.INFORM:
            fx = sc.fixed_for(pkt)
            if fx is not None and self._fixed_client(sc, fx, pkt, mt, now, out):
                return  # a fixed address: either server answers, no binding
            if not auth.answering(sc, pkt, now):
                c.count("drop.not-ours")  # the seed's audit event 36: hash mismatch or standby
                return
        if mt == wire.DISCOVER:
            self._discover(sc, pkt, now, out)
        elif mt == wire.REQUEST:
            self._request(sc, pkt, now, out)
        elif mt == wire.RELEASE:
            self._release(sc, pkt, now, out)
        elif mt == wire.DECLINE:
            self._decline(sc, pkt, now, out)
        elif mt == wire.INFORM:
            self._inform(sc, pkt, now, out)
        else:
            c.count("drop.bad-msg-type")

    def _scope_for(self, pkt, mt, local_addr):
        """The scope serving a packet: by its link (118, 82/5, giaddr, our
        interface), except that a REQUEST, RELEASE or INFORM sent straight to
        us with ciaddr set (RENEWING, RFC 2131 §4.3.2: "the DHCP server will
        trust the value in 'ciaddr'") is served by the scope holding ciaddr:
        a client behind a relay renews and releases by unicast, without the
        relay. ISC dhcpd does the same. A ciaddr in no scope falls back to
        the link, whose scope then NAKs it as on the wrong network."""
        scopes = self.scopes
        link = scopes.link_address(pkt, local_addr)
        if (link is local_addr and pkt.ciaddr != ZERO4
                and (mt == wire.REQUEST or mt == wire.RELEASE or mt == wire.INFORM)):
            sc = scopes.by_addr(pkt.ciaddr)
            if sc is not None:
                return sc
        return scopes.select(link)

    # ------------------------------------------------------------------
    # message handlers

    def _discover(self, sc, pkt, now, out):
        policy = sc.policy_for(pkt)
        mine = self._binding_of(sc, self.tables[sc.index], pkt)  # looked up once per packet
        off = self._choose(sc, pkt, policy, now, mine)
        if off < 0:
            if sc.reservation_for(pkt) >= 0:
                self.events.count("drop.reserved-in-use")  # its reservation is bound to another client
                return
            self.events.count("drop.pool-exhausted")
            self._exhausted(sc, now)
            return
        key = pkt.client_key()
        self._hold(sc.index, off, key, now)
        lease = self._lease_time(sc, off, policy, now, mine != off, pkt)
        self._reply(sc, pkt, wire.OFFER, sc.addr_of(off), off, policy, lease, now, out, sc.offer_delay_ms)

    def _request(self, sc, pkt, now, out):
        sid = pkt.options.get(wire.OPT_SERVER_ID)
        req = pkt.options.get(wire.OPT_REQUESTED_IP)
        t = self.tables[sc.index]
        key = pkt.client_key()
        if sid is not None:
            # SELECTING: the client answers an OFFER
            if sid != self.server_id:
                self._unhold(key)  # it chose another server
                self.events.count("rx.request-other-server")
                return
            if req is None or len(req) != 4:
                self._nak(sc, pkt, now, out, "selecting without requested address")
                return
            off = sc.offset_of(req)
            mine = self._binding_of(sc, t, pkt)  # looked up once per packet
            if off < 0 or not self._may_commit(sc, t, off, pkt, now, mine):
                self._nak(sc, pkt, now, out, "requested address not offered to this client")
                return
            self._ack(sc, pkt, off, now, out, mine)
            return
        if pkt.ciaddr == ZERO4:
            # INIT-REBOOT: verify the remembered address
            if req is None or len(req) != 4 or not sc.in_subnet(req):
                self._refuse(sc, pkt, now, out, "address on the wrong network")
                return
            off = sc.offset_of(req)
            mine = self._binding_of(sc, t, pkt)
            if off >= 0 and mine == off and self._may_commit(sc, t, off, pkt, now, mine):
                self._ack(sc, pkt, off, now, out, mine)
            elif mine >= 0 or (off >= 0 and t.state(off) == lt.ACTIVE and mine != off):
                self._refuse(sc, pkt, now, out, "address not this client's")
            else:
                self.events.count("drop.init-reboot-unknown")  # RFC 2131 §4.3.2: silent
            return
        # RENEWING (unicast) or REBINDING (broadcast): ciaddr is the lease
        if not sc.in_subnet(pkt.ciaddr):
            self._refuse(sc, pkt, now, out, "ciaddr on the wrong network")
            return
        off = sc.offset_of(pkt.ciaddr)
        mine = self._binding_of(sc, t, pkt)
        if off >= 0 and mine == off and self._may_commit(sc, t, off, pkt, now, mine):
            self._ack(sc, pkt, off, now, out, mine)
        elif off >= 0 and t.state(off) == lt.ACTIVE and mine != off:
            self._refuse(sc, pkt, now, out, "address bound to another client")
        else:
            self.events.count("drop.renew-unknown")

    def _release(self, sc, pkt, now, out):
        t = self.tables[sc.index]
        off = sc.offset_of(pkt.ciaddr)
        if off < 0 and sc.fixed_at(pkt.ciaddr) is not None:
            self.events.count("rx.release-fixed")  # nothing held: the address stays reserved
            return
        if off < 0 or self._binding_of(sc, t, pkt) != off or t.state(off) != lt.ACTIVE:
            self.events.count("drop.release-unknown")
            return
        t.set_state(off, lt.RELEASED, now)
        t.set_expiry(off, now)
        self._changed(sc, off, now, out)
        self.events.emit(now, ev.INFO, ev.EV_RELEASE, "%s released %s" % (_mac_text(pkt), ip_str(pkt.ciaddr)))

    def _decline(self, sc, pkt, now, out):
        t = self.tables[sc.index]
        req = pkt.options.get(wire.OPT_REQUESTED_IP)
        off = sc.offset_of(req) if req is not None and len(req) == 4 else -1
        if off < 0 and req is not None and sc.fixed_at(req) is not None:
            self.events.count("rx.decline-fixed")
            self.events.emit(now, ev.WARN, ev.EV_DECLINE, "%s declined its fixed address %s: in use on the link"
                             % (_mac_text(pkt), ip_str(req)))
            return
        if off < 0 or self._binding_of(sc, t, pkt) != off:
            self.events.count("drop.decline-unknown")
            return
        # draft-12: an ABANDONED binding carries no client; hold it for decline_hold
        t.set(off, lt.ABANDONED, 0, None, None, now + self.decline_hold, t.get(off)[4], now)
        self._unhold(pkt.client_key())
        self._changed(sc, off, now, out)
        self.events.emit(now, ev.WARN, ev.EV_DECLINE, "%s declined %s: address in use on the link" % (_mac_text(pkt), ip_str(req)))

    def _bootp(self, sc, pkt, now, out):
        """RFC 951/1542: a BOOTP client gets an address it keeps for good (only
        in scopes with bootp enabled, which config keeps out of failover)."""
        t = self.tables[sc.index]
        self.events.count("rx.bootp")
        fx = sc.fixed_for(pkt)
        if fx is not None:
            self._bootreply(sc, pkt, fx.address, -1, fx, out)
            return
        off = sc.reservation_for(pkt)
        if off < 0:
            off = self._binding_of(sc, t, pkt)
            if off >= 0 and t.state(off) != lt.ACTIVE and not self._available(sc, t, STANDALONE, off, None, now,
                                                                                pkt.client_key()):
                off = -1
        if off < 0:
            off = self._allocate(sc, t, STANDALONE, None, now)
        if off < 0:
            self.events.count("drop.pool-exhausted")
            self._exhausted(sc, now)
            return
        flags = lt.BOOTP | (lt.RESERVED if sc.is_reserved(off) else 0)
        t.set(off, lt.ACTIVE, flags, pkt.hwaddr(), None, lt.INFINITE, 0, now, pkt.htype)
        self._changed(sc, off, now, out)
        self._bootreply(sc, pkt, sc.addr_of(off), off, None, out)

    def _bootreply(self, sc, pkt, yiaddr, off, res, out):
        rep = wire.make_reply(pkt, wire.ACK, yiaddr, self.server_id)
        opts = rep.options
        for code in (wire.OPT_MSG_TYPE, wire.OPT_SERVER_ID):
            if code in opts:
                del opts[code]
        for code, val in sc.options_for(pkt, off, None, res).items():
            if code not in opts:
                opts[code] = val
        dst, port = wire.reply_destination(pkt, wire.ACK)
        out.send_dhcp(wire.encode(rep, 576), dst, port, 0)
        self.events.count("tx.bootreply")

    def _fixed_client(self, sc, fx, pkt, mt, now, out):
        """A client with a reservation outside every range (ISC's fixed-address
        outside a pool). No binding is kept and failover does not manage it:
        the address can only ever be this client's, so either server of a
        pair answers, with the full lease time (no MCLT cap), and nothing goes
        to the partner. True when handled; False leaves the packet to the
        ordinary path (a REQUEST about some other address, such as a dynamic
        lease the client held before it was given the reservation)."""
        addr = fx.address
        policy = sc.policy_for(pkt)
        if mt == wire.DISCOVER:
            lease = sc.lease_time_for(policy, _asked(pkt))
            self._reply(sc, pkt, wire.OFFER, addr, -1, policy, lease, now, out, sc.offer_delay_ms, fx)
            return True
        if mt == wire.INFORM:
            self._reply(sc, pkt, wire.ACK, ZERO4, -1, policy, 0, now, out, 0, fx)
            return True
        sid = pkt.options.get(wire.OPT_SERVER_ID)
        if sid is not None:
            if sid != self.server_id or pkt.options.get(wire.OPT_REQUESTED_IP) != addr:
                return False
        elif pkt.ciaddr == ZERO4:
            req = pkt.options.get(wire.OPT_REQUESTED_IP)
            if req != addr:
                if req is None or not sc.in_subnet(req):
                    return False  # wrong network: the ordinary path answers that
                self._refuse(sc, pkt, now, out, "address not this client's")
                return True
        elif pkt.ciaddr != addr:
            return False
        lease = sc.lease_time_for(policy, _asked(pkt))
        self._unhold(pkt.client_key())
        self._reply(sc, pkt, wire.ACK, addr, -1, policy, lease, now, out, 0, fx)
        self.events.count("lease.fixed")
        return True

    def _inform(self, sc, pkt, now, out):
        policy = sc.policy_for(pkt)
        # a reserved client's own options too (§4.3.5 -> §4.3.1); yiaddr stays 0
        self._reply(sc, pkt, wire.ACK, ZERO4, sc.reservation_for(pkt), policy, 0, now, out, 0)

    # ------------------------------------------------------------------
    # address choice

    def _binding_of(self, sc, t, pkt):
        """Offset of this client's binding in the scope, or -1."""
        cid = pkt.options.get(wire.OPT_CLIENT_ID)
        return t.find_client(cid, pkt.htype, pkt.hwaddr())

    def _choose(self, sc, pkt, policy, now, mine):
        """The address to offer (`mine`: the client's binding, _binding_of), or -1."""
        t = self.tables[sc.index]
        auth = self.authorities[sc.index]
        res = sc.reservation_for(pkt)
        if res >= 0:
            st = t.state(res)
            if st == lt.ACTIVE and mine != res:
                return -1  # its reservation is bound to another client
            return res
        off = mine
        if off >= 0:
            st = t.state(off)
            if st == lt.ACTIVE or st == lt.EXPIRED or st == lt.RELEASED:
                # its previous address only if not offered to another meanwhile (§4.3.1)
                if sc.can_allocate(off, policy) and (
                        st == lt.ACTIVE or (not self._held_for_other(sc.index, off, pkt.client_key(), now)
                                            and self.authorities[sc.index].may_rebind(sc, off, now))):
                    return off
        held = self._offers.get(pkt.client_key())
        if held is not None and held[0] == sc.index and held[2] > now:
            return held[1]
        req = pkt.options.get(wire.OPT_REQUESTED_IP)
        if req is not None and len(req) == 4:
            off = sc.offset_of(req)
            if off >= 0 and self._available(sc, t, auth, off, policy, now):
                return off
        return self._allocate(sc, t, auth, policy, now)

    def _available(self, sc, t, auth, off, policy, now, key=None):
        """May this offset go to a new client now? (`key`: the client whose
        own offer does not count as taken.)"""
        if not sc.can_allocate(off, policy):
            return False
        hk = self._offered.get((sc.index, off))
        if hk is not None and hk != key:
            held = self._offers.get(hk)
            if held is not None and held[2] > now:
                return False
        st = t.state(off)
        if st == lt.ACTIVE:
            return False
        if st == lt.ABANDONED:
            if t.expiry(off) > now:
                return False
            return auth.may_reuse(sc, off, now) and auth.may_allocate(sc, off, lt.FREE, now)
        if not auth.may_allocate(sc, off, st, now):
            return False
        if st == lt.EXPIRED or st == lt.RELEASED or st == lt.RESET:
            return auth.may_reuse(sc, off, now)
        return True

    def _allocate(self, sc, t, auth, policy, now):
        """Scan for a new address: never-used addresses first, so that a
        returning client more often finds its old address still free."""
        for want in auth.alloc_states(now):
            if t.count(want) == 0:
                continue
            start = self._cursor[sc.index]
            off = t.next_in_state(want, start)
            first = off
            while off >= 0:
                if self._available(sc, t, auth, off, policy, now):
                    self._cursor[sc.index] = (off + 1) % t.size
                    self._full[sc.index] = False
                    return off
                off = t.next_in_state(want, (off + 1) % t.size)
                if off == first:
                    break
        return -1

    def _may_commit(self, sc, t, off, pkt, now, mine):
        """May `off` be ACKed to this client now? Checked afresh on every
        REQUEST: an OFFER is no promise once the address changed hands.
        `mine`: the client's binding (_binding_of)."""
        if off < 0 or off >= sc.size or sc.is_excluded(off):
            return False
        res = sc.reservation_for(pkt)
        if sc.is_reserved(off) and res != off:
            return False
        st = t.state(off)
        if st == lt.ACTIVE:
            return mine == off  # this client's own binding, not another's
        if (st == lt.EXPIRED or st == lt.RELEASED) and mine == off:
            if self._held_for_other(sc.index, off, pkt.client_key(), now):
                return False  # offered to another client since (§4.3.1 SHOULD NOT reuse)
            return self.authorities[sc.index].may_rebind(sc, off, now)
        if res == off:
            return True
        return self._available(sc, t, self.authorities[sc.index], off, sc.policy_for(pkt), now,
                               pkt.client_key())

    def _held_for_other(self, si, off, key, now):
        """Is `off` offered to a client other than `key`, the offer still open?"""
        hk = self._offered.get((si, off))
        if hk is None or hk == key:
            return False
        held = self._offers.get(hk)
        return held is not None and held[2] > now

    def is_offered(self, si, off, now):
        """Is `off` held for a client between OFFER and REQUEST?"""
        key = self._offered.get((si, off))
        if key is None:
            return False
        held = self._offers.get(key)
        return held is not None and held[2] > now

    # ------------------------------------------------------------------
    # commits and replies

    def _lease_time(self, sc, off, policy, now, fresh, pkt):
        """The lease for this client (its asked-for time held within the
        scope's bounds, else the default), capped by the authority (MCLT
        rule): a client never gets more than failover allows. `fresh`: the
        address goes to a client other than the one it was last bound to."""
        want = sc.lease_time_for(policy, _asked(pkt))
        cap = self.authorities[sc.index].max_lease(sc, off, now, fresh)
        if cap is not None and cap < want:
            return cap
        return want

    def _ack(self, sc, pkt, off, now, out, mine):
        t = self.tables[sc.index]
        policy = sc.policy_for(pkt)
        same = mine == off
        renew = same and t.state(off) == lt.ACTIVE
        lease = self._lease_time(sc, off, policy, now, not same, pkt)
        if lease <= 0:
            self._nak(sc, pkt, now, out, "no lease time left under MCLT")
            return
        old = t.get(off)
        flags = lt.RESERVED if sc.is_reserved(off) else 0
        cid = pkt.options.get(wire.OPT_CLIENT_ID)
        # htype + chaddr of any hardware type: a client without a client id is
        # found again by them (non-Ethernet ones through the table's side dict)
        # the partner's acknowledged potential expiration only counts for the same client
        # `now` is whole seconds: the client's lease may run up to a second past
        # now + lease, so the binding is kept that second longer
        t.set(off, lt.ACTIVE, flags, pkt.hwaddr(), cid, now + lease + 1, old[4] if same else 0, now,
              pkt.htype)
        self._unhold(pkt.client_key())
        self._changed(sc, off, now, out)
        self._reply(sc, pkt, wire.ACK, sc.addr_of(off), off, policy, lease, now, out, 0)
        self.events.count("lease.renew" if renew else "lease.new")

    def _refuse(self, sc, pkt, now, out, why):
        """A client in INIT-REBOOT, RENEWING or REBINDING holds an address that
        is wrong for this network or not its own. An authoritative scope
        NAKs it; one that is not stays silent (ISC's `not authoritative;`),
        so a second server on the link cannot NAK another server's clients."""
        if sc.authoritative:
            self._nak(sc, pkt, now, out, why)
        else:
            self.events.count("drop.not-authoritative")

    def _nak(self, sc, pkt, now, out, why):
        self.events.count("tx.nak")
        self.events.emit(now, ev.INFO, ev.EV_NAK, "NAK to %s: %s" % (_mac_text(pkt), why))
        rep = wire.make_reply(pkt, wire.NAK, ZERO4, self.server_id)
        rep.options[wire.OPT_MESSAGE] = why.encode()
        dst, port = wire.reply_destination(pkt, wire.NAK)
        out.send_dhcp(wire.encode(rep, _max_size(pkt)), dst, port, 0)

    def _reply(self, sc, pkt, mtype, yiaddr, off, policy, lease, now, out, delay_ms, res=None):
        opts = sc.options_for(pkt, off, policy, res)  # a fresh map: ours to add to
        if lease:
            opts[wire.OPT_LEASE_TIME] = _u32(lease)
            opts[wire.OPT_RENEWAL_TIME] = _u32(share(lease, sc.t1_permille))  # T1, T2
            opts[wire.OPT_REBINDING_TIME] = _u32(share(lease, sc.t2_permille))
        size = _max_size(pkt)
        data = wire.encode_reply(pkt, mtype, yiaddr, self.server_id, opts, size)
        if data is None:  # long options: split, overloaded or dropped by the general encoder
            rep = wire.make_reply(pkt, mtype, yiaddr, self.server_id)
            ropts = rep.options
            for code in opts:
                if code not in ropts:
                    ropts[code] = opts[code]
            data = wire.encode(rep, size)
        dst, port = wire.reply_destination(pkt, mtype)
        out.send_dhcp(data, dst, port, delay_ms)
        self.events.count_as("tx.", _TYPE_NAMES[mtype])

    def _changed(self, sc, off, now, out):
        """A binding changed: tell the authority (which marks it for the partner),
        then log it, flag included, durable before any reply of this turn."""
        self.authorities[sc.index].committed(sc, off, now)
        out.records.append(ll.encode_binding(sc.index, off, self.tables[sc.index]))
        self._pool_alarm(sc, now)

    # ------------------------------------------------------------------
    # pool exhaustion alarm: one event per upward crossing, re-armed below

    def _pool_alarm(self, sc, now):
        si = sc.index
        usable = self._usable[si]
        if usable <= 0:
            return
        used = self.tables[si].count(lt.ACTIVE)
        if used < self._used[si]:
            self._full[si] = False  # an address came free: clients may find one again
        self._used[si] = used
        pct = 100 * used // usable
        level = 2 if pct >= 100 or self._full[si] else (1 if pct >= self._alarm_pct else 0)
        was = self._alarm[si]
        if level > was:
            self._alarm[si] = level
            if level == 2:
                self.events.count("alarm.pool-exhausted")
                self.events.emit(now, ev.ERROR, ev.EV_POOL_LOW, "scope %s: pool exhausted, %d of %d addresses in use"
                                 % (sc.name, used, usable))
            elif was == 0:
                self.events.count("alarm.pool-low")
                self.events.emit(now, ev.WARN, ev.EV_POOL_LOW, "scope %s: %d%% of addresses in use (%d of %d)"
                                 % (sc.name, pct, used, usable))
        elif level < was:
            self._alarm[si] = level  # re-armed: the next crossing alarms again

    def _exhausted(self, sc, now):
        """No address for a new client: the pool is full as far as clients see."""
        self._full[sc.index] = True
        self._pool_alarm(sc, now)

    # ------------------------------------------------------------------
    # offers held for a client between OFFER and REQUEST

    def _hold(self, si, off, key, now):
        old = self._offers.get(key)
        if old is not None:
            self._offered.pop((old[0], old[1]), None)
        if len(self._offers) >= OFFER_CAP:
            self._prune(now)
        until = now + self.offer_hold
        self._offers[key] = (si, off, until)
        self._offered[(si, off)] = key
        first = self._first_until
        if first is None or until < first:
            self._first_until = until

    def _unhold(self, key):
        old = self._offers.pop(key, None)
        if old is not None:
            self._offered.pop((old[0], old[1]), None)

    def pending_offers(self, si, now):
        """Addresses of scope `si` offered and not yet requested (offer still open)."""
        n = 0
        for v in self._offers.values():
            if v[0] == si and v[2] > now:
                n += 1
        return n

    def _prune(self, now):
        first = self._first_until
        if first is not None and first <= now:
            # some offer may have ended: one scan, which also finds the next end
            # (a full table pruned on every DISCOVER scanned 512 offers each time)
            gone = []
            first = None
            for k, v in self._offers.items():
                until = v[2]
                if until <= now:
                    gone.append(k)
                elif first is None or until < first:
                    first = until
            for key in gone:
                self._unhold(key)
            self._first_until = first
        while len(self._offers) >= OFFER_CAP:  # still full: drop an arbitrary one
            for key in self._offers:
                self._unhold(key)
                break

    # ------------------------------------------------------------------
    # time

    def expire(self, now, out, budget=256):
        """Move ACTIVE bindings past their expiry to EXPIRED; bounded work per call."""
        for si in range(len(self.tables)):
            t = self.tables[si]
            if t.count(lt.ACTIVE) == 0:
                continue
            sc = self.scopes[si]

            def visit(off):
                t.set_state(off, lt.EXPIRED, now)
                self._changed(sc, off, now, out)
                self.events.count("lease.expired")

            self._expire_cursor[si] = t.expire(now, visit, self._expire_cursor[si], budget)
        if len(self._offers) > OFFER_CAP // 2:
            self._prune(now)


_ALLOC_ORDER = (lt.FREE, lt.BACKUP, lt.EXPIRED, lt.RELEASED, lt.ABANDONED, lt.RESET)
_TYPE_NAMES = ("none", "discover", "offer", "request", "decline", "ack", "nak", "release", "inform")




def _max_size(pkt):
    """The client's maximum message size (option 57, at least 576), at most an Ethernet MTU."""
    n = pkt.max_message_size()
    return n if n < 1500 else 1500


def _asked(pkt):
    """The lease time the client asks for (option 51), or -1. A value beyond
    any configurable lease (2**25 s and up, "infinite" included) becomes
    2**25, so no big int is built on a 32-bit board."""
    v = pkt.options.get(wire.OPT_LEASE_TIME)
    if v is None or len(v) != 4:
        return -1
    if v[0] or v[1] > 1:
        return 1 << 25
    return (v[1] << 16) | (v[2] << 8) | v[3]


def _u32(n):
    return bytes(((n >> 24) & 0xFF, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF))


def _mac_text(pkt):
    return ":".join("%02x" % x for x in pkt.hwaddr())
