# failover/link.py - the connections of one relationship and their handshake.
#
# TCP connections come and go (both sides may dial at once); at most one
# gets past CONNECT/CONNECTACK and becomes *the* link the relationship
# talks on (draft-12 §8.1). The channel owns the connections, the
# transaction ids, the send path (with the optional digest) and what the
# partner told us at connect; what a new or lost link means for the state
# is the relationship's business.

from dhcpfo import events as ev
from dhcpfo.compat import int_to_be, sha256
from dhcpfo.wire import failover as fw


class Link:
    """One connection: its stream decoder and whether the handshake is done.

    With a key, `nonce` (ours) binds the connection's digest key to this
    connection (wire/failover.py, "Replay"); the decoder holds the key both
    directions use."""

    def __init__(self, conn, outgoing, key, now, nonce=None, primary=False):
        self.conn = conn
        self.outgoing = outgoing
        self.nonce = nonce
        self.decoder = fw.StreamDecoder(key, nonce=nonce, primary=primary)
        self.opened = now
        self.up = False  # handshake done

    def key(self):
        """The key our messages on this connection are signed with (None: unsigned)."""
        return self.decoder.key


class Channel:
    def __init__(self, name, primary, key, max_unacked, receive_timer, events):
        self.time = None  # the relationship's TimeBase (the wire offset), set by failover/peer.py
        self.name = name
        self.name_b = name.encode()
        self.primary = primary
        self.key = key  # shared secret for the digest, or None
        self.max_unacked = max_unacked
        self.receive_timer = receive_timer
        self.events = events
        self.links = []
        self.link = None  # the connection past the handshake
        self._xid = 1
        self._opened = 0  # connections opened, for a stand-in nonce (see open)
        self.last_rx = 0
        self.last_tx = 0
        # what the partner said at connect
        self.partner_is_isc = False
        self.partner_is_dhcpfo = False  # only a dhcpfo partner gets our configuration digest
        self.partner_max_unacked = 0
        self.partner_receive_timer = 0

    def connecting(self):
        """A link is up or a handshake is under way."""
        return self.link is not None or any(not l.up for l in self.links)

    def next_xid(self):
        x = self._xid
        self._xid = (self._xid + 1) & 0xFFFFFFFF or 1
        return x

    def send(self, lk, msg, now, out):
        off = self.time.offset
        try:
            if off:
                fw.shift_times(msg, off)  # local -> wall time, at the wire edge only
            data = fw.encode(msg, lk.key())
        except fw.FailoverError as e:
            self.events.count("peer.encode-error." + e.reason)
            return
        out.send_peer(lk.conn, data)
        self.last_tx = now

    def send_up(self, msg, now, out):
        """Send on the established link."""
        self.send(self.link, msg, now, out)

    def find(self, conn):
        for lk in self.links:
            if lk.conn is conn:
                return lk
        return None

    def open(self, conn, outgoing, now, out, mclt, hba, nonce=None):
        """A new connection; the primary starts the handshake (CONNECT).

        nonce: fresh random bytes from the driver (fw.NONCE_LEN), used with
        a key only. Without one (tests, the simulation) a stand-in is made
        from the relationship, a counter and `now`: unique within a run but
        predictable, so a driver must pass one."""
        self._opened += 1
        if self.key is not None and (nonce is None or len(nonce) != fw.NONCE_LEN):
            seed = self.name_b + (b"p" if self.primary else b"s") + int_to_be(self._opened, 4)
            nonce = sha256(seed + int_to_be(now & 0xFFFFFFFF, 4))[:fw.NONCE_LEN]
        lk = Link(conn, outgoing, self.key, now, nonce if self.key is not None else None, self.primary)
        self.links.append(lk)
        if self.primary:
            m = fw.make_connect(self.next_xid(), now, self.name_b, self.max_unacked, self.receive_timer, mclt, hba)
            if lk.nonce is not None:
                fw.with_nonce(m, lk.nonce)
            self.send(lk, m, now, out)
        return lk

    def remove(self, lk, out=None):
        """Forget a connection (closing it when `out` is given). True when it was the link."""
        if out is not None:
            out.close(lk.conn)
        if lk in self.links:
            self.links.remove(lk)
        if lk is self.link:
            self.link = None
            return True
        return False

    def ready(self, lk, out):
        """The handshake is done on `lk`: it is the link, any other connection goes."""
        lk.up = True
        self.link = lk
        for other in list(self.links):
            if other is not lk:
                out.close(other.conn)
                self.links.remove(other)

    def timed_out(self, now, timeout):
        return [lk for lk in self.links if not lk.up and now >= lk.opened + timeout]

    # ------------------------------------------------------------------
    # handshake: each returns None when the link is ready, else why it failed

    def on_connect(self, lk, m, now, out, clockdiff):
        """Secondary: the primary's CONNECT (its MCLT and HBA are the caller's
        to adopt). Returns None, or why the link failed."""
        name = m.get_bytes(fw.OPT_RELATIONSHIP_NAME)
        reject = None
        learned = name == self.name_b and clockdiff.learn(m, now, self.time)
        if name != self.name_b:
            reject = fw.REJ_INVALID_PARTNER
        elif not learned and clockdiff.out_of_sync(m, now, self.time):
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
            self.send(lk, self._signed(lk, fw.make_connectack(m.xid, now, name or self.name_b, tls_reply=tls,
                                                              reject=reject)), now, out)
            return "connect refused"
        self._learn_partner(m)
        self.send(lk, self._signed(lk, fw.make_connectack(m.xid, now, self.name_b, self.max_unacked,
                                                          self.receive_timer, tls_reply=tls)), now, out)
        return None

    @staticmethod
    def _signed(lk, m):
        """Our CONNECTACK carries our nonce when the connection is bound."""
        return fw.with_nonce(m, lk.nonce) if lk.nonce is not None else m

    def on_connectack(self, lk, m, now, out, clockdiff):
        """Primary: the secondary's CONNECTACK. Returns None, or why the link failed."""
        if m.time:
            clockdiff.reply(m.time, lk.opened)
        # a refusal still tells the time (a partner refusing our unsynced clock)
        named = m.get_bytes(fw.OPT_RELATIONSHIP_NAME) == self.name_b
        learned = named and clockdiff.learn(m, now, self.time)
        rej = m.get_u8(fw.OPT_REJECT_REASON)
        if rej == fw.REJ_TIME_MISMATCH:
            self.time.doubt()  # the partner finds our clock off
        if rej is not None:
            self.events.emit(now, ev.WARN, ev.EV_CONNECT_REJECT, "relationship %s: partner refused CONNECT, reason %d"
                             % (self.name, rej))
            return "connect refused by partner"
        why = None
        reason = None
        if not named:
            why, reason = "wrong relationship name", fw.REJ_INVALID_PARTNER
        elif learned and self.time.moved:
            # our CONNECT carried the old time, which the partner measured:
            # connect again with the learned one
            why, reason = "wall time learned: reconnecting", fw.REJ_TIME_MISMATCH
        elif not learned and clockdiff.out_of_sync(m, now, self.time):
            why, reason = "time mismatch", fw.REJ_TIME_MISMATCH
        if why is None and self.link is not None:
            why, reason = "duplicate connection", fw.REJ_DUP_CONNECTION
        if why is not None:
            self.send(lk, fw.make_disconnect(self.next_xid(), now, reason), now, out)
            return why
        self._learn_partner(m)
        return None

    def _learn_partner(self, m):
        vendor = m.get_bytes(fw.OPT_VENDOR_CLASS) or b""
        self.partner_is_isc = vendor[:4] == b"isc-"
        self.partner_is_dhcpfo = vendor[:7] == b"dhcpfo-"
        self.partner_max_unacked = m.get_u32(fw.OPT_MAX_UNACKED, 1) or 1
        self.partner_receive_timer = m.get_u32(fw.OPT_RECEIVE_TIMER, 0)
