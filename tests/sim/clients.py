"""Virtual DHCP clients for the simulation (RFC 2131 §4.4 client behaviour).

Each client is a small state machine on the world's virtual clock (integer
milliseconds of real time). It builds real packets with dhcpfo.wire.dhcp,
broadcasts DISCOVER / REQUEST / DECLINE, unicasts renewals and releases to
its server, retransmits with backoff, renews at T1, rebinds at T2 and stops
using its address at the end of the lease. What a client holds is measured
on its own (real) clock from the moment it sent the request that was
acknowledged (RFC 2131 §4.4.1), which is what the I1 check compares.

A client talks to the world through four calls: `world.client_send`,
`world.client_timer`, `world.client_acked` and `world.client_dropped`.
"""

from dhcpfo.wire import dhcp as wire

ZERO4 = b"\x00\x00\x00\x00"

OFF = 0  # away / powered off (may still hold an unexpired lease)
INIT = 1
SELECTING = 2
REQUESTING = 3
BOUND = 4
RENEWING = 5
REBINDING = 6
REBOOTING = 7
STATE_NAMES = ("off", "init", "selecting", "requesting", "bound", "renewing", "rebinding", "rebooting")

_PRL = bytes((1, 3, 6, 15, 51, 54, 58, 59))


def _u32(b, default):
    if b is None or len(b) != 4:
        return default
    return (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]


def ip_text(b):
    return "%d.%d.%d.%d" % (b[0], b[1], b[2], b[3])


class Client:
    """One DHCP client with a MAC, an optional client id and a behaviour profile."""

    def __init__(self, world, idx, mac, cid_kind, rng, profile):
        self.world = world
        self.idx = idx
        self.name = "c%d" % idx
        self.mac = mac
        if cid_kind == 1:
            self.cid = b"\x01" + mac  # what most clients send
        elif cid_kind == 2:
            self.cid = b"\xffsim" + bytes((idx >> 8, idx & 255)) + mac  # an RFC 4361-style id
        else:
            self.cid = None
        self.key = self.cid if self.cid else b"\x01" + mac  # identity as the server indexes it
        self.rng = rng
        self.p = profile
        self.state = OFF
        self.xid = 0
        self.tries = 0
        self.exchange_ms = 0  # when this exchange began (secs field)
        self.first_sent_ms = 0  # first transmission of the current REQUEST (lease start)
        self.offers = []
        self.chosen = None
        self.pending_action = None
        self.timer_gen = 0
        # the lease in use: addr, server id, start_ms, secs, t1_ms, t2_ms, end_ms
        self.lease = None
        self.history = []  # (t_ms, event text) for traces
        self.acks = 0
        self.naks = 0

    # ------------------------------------------------------------------ helpers

    def _log(self, now, text):
        h = self.history
        h.append((now, text))
        if len(h) > 40:
            del h[:20]

    def _timer(self, at_ms):
        self.timer_gen += 1
        self.world.client_timer(self, at_ms, self.timer_gen)

    def _new_xid(self):
        self.xid = self.rng.getrandbits(32)

    def _packet(self, mtype, now, ciaddr=ZERO4, requested=None, server=None):
        opts = wire.new_options()
        opts[wire.OPT_MSG_TYPE] = bytes((mtype,))
        if self.cid is not None:
            opts[wire.OPT_CLIENT_ID] = self.cid
        if requested is not None:
            opts[wire.OPT_REQUESTED_IP] = requested
        if server is not None:
            opts[wire.OPT_SERVER_ID] = server
        if mtype in (wire.DISCOVER, wire.REQUEST):
            opts[wire.OPT_PARAM_REQUEST] = _PRL
        secs = (now - self.exchange_ms) // 1000
        if secs > 0xFFFF:
            secs = 0xFFFF
        if secs < 0:
            secs = 0
        p = wire.Packet(op=wire.BOOTREQUEST, htype=1, hlen=6, xid=self.xid, secs=secs, flags=0,
                        ciaddr=ciaddr, chaddr=self.mac, options=opts)
        return wire.encode(p)

    def _send(self, data, now, unicast_to=None):
        self.world.client_send(self, data, unicast_to, now)

    def _backoff(self, now, base_s, cap_s):
        d = base_s * (1 << self.tries)
        if d > cap_s:
            d = cap_s
        return now + d * 1000 + self.rng.randrange(-500, 500)

    def _drop(self, now, why):
        if self.lease is not None:
            self.world.client_dropped(self, self.lease["addr"], now, why)
            self._log(now, "drop %s (%s)" % (ip_text(self.lease["addr"]), why))
        self.lease = None

    def holds(self, now):
        """The address this client may use at `now` (ms), or None."""
        ls = self.lease
        if ls is not None and ls["end_ms"] > now:
            return ls["addr"]
        return None

    # ------------------------------------------------------------------ lifecycle

    def power_on(self, now):
        """Start (or come back): INIT-REBOOT with a live lease, else INIT."""
        if self.lease is not None and self.lease["end_ms"] > now + 2000:
            self._start_reboot(now)
        else:
            if self.lease is not None:
                self._drop(now, "expired while away")
            self._start_init(now)

    def _go_off(self, now, away_ms):
        self.state = OFF
        self._log(now, "off for %d s" % (away_ms // 1000))
        self._timer(now + away_ms)

    def _start_init(self, now):
        self.state = INIT
        self._new_xid()
        self.exchange_ms = now
        self.tries = 0
        self.offers = []
        self._discover(now)

    def _discover(self, now):
        self.state = SELECTING
        self._send(self._packet(wire.DISCOVER, now), now)
        self._timer(self._backoff(now, 4, 32))

    def _start_reboot(self, now):
        self.state = REBOOTING
        self._new_xid()
        self.exchange_ms = now
        self.first_sent_ms = now
        self.tries = 0
        self._send(self._packet(wire.REQUEST, now, requested=self.lease["addr"]), now)
        self._timer(self._backoff(now, 4, 16))

    def _request_selected(self, now):
        offer = self.offers[0] if self.p.get("first_offer", True) or len(self.offers) == 1 \
            else self.offers[self.rng.randrange(len(self.offers))]
        self.chosen = offer
        self.state = REQUESTING
        self.tries = 0
        self.first_sent_ms = now
        self._send(self._packet(wire.REQUEST, now, requested=offer[0], server=offer[1]), now)
        self._timer(self._backoff(now, 4, 16))

    def _bound_timers(self, now):
        ls = self.lease
        at = ls["t1_ms"]
        # behaviour while bound: release, leave (lease kept) or reboot before T1
        r = self.rng.random()
        self.pending_action = None
        if r < self.p["release"]:
            self.pending_action = "release"
        elif r < self.p["release"] + self.p["leave"]:
            self.pending_action = "leave"
        elif r < self.p["release"] + self.p["leave"] + self.p["reboot"]:
            self.pending_action = "reboot"
        if self.pending_action is not None and at > now + 1000:
            at = now + self.rng.randrange(1000, at - now)
        else:
            self.pending_action = None
        self._timer(at)

    # ------------------------------------------------------------------ timers

    def wake(self, now, gen):
        if gen != self.timer_gen:
            return
        st = self.state
        if st == OFF:
            self.power_on(now)
        elif st == INIT:
            self._start_init(now)
        elif st == SELECTING:
            if self.offers:
                self._request_selected(now)
                return
            self.tries += 1
            if self.tries > self.p["discover_tries"]:
                self._go_off(now, self.rng.randrange(5000, 30000))
                return
            self._discover(now)
        elif st == REQUESTING:
            self.tries += 1
            if self.tries > 3:
                self._start_init(now)
                return
            o = self.chosen
            self._send(self._packet(wire.REQUEST, now, requested=o[0], server=o[1]), now)
            self._timer(self._backoff(now, 4, 16))
        elif st == REBOOTING:
            self.tries += 1
            if self.tries > 3:
                ls = self.lease
                if ls is not None and ls["end_ms"] > now:
                    # RFC 2131 §3.2: no answer -> keep using the unexpired lease
                    self.state = BOUND
                    self._after_bound(now)
                else:
                    self._drop(now, "expired in init-reboot")
                    self._start_init(now)
                return
            self._send(self._packet(wire.REQUEST, now, requested=self.lease["addr"]), now)
            self._timer(self._backoff(now, 4, 16))
        elif st == BOUND:
            act = getattr(self, "pending_action", None)
            self.pending_action = None
            if act == "release":
                ls = self.lease
                self._new_xid()
                self._send(self._packet(wire.RELEASE, now, ciaddr=ls["addr"], server=ls["server"]), now,
                           unicast_to=ls["server"])
                self._drop(now, "released")
                self._go_off(now, self.rng.randrange(2000, self.p["away_ms"]))
                self.lease = None
                return
            if act == "leave":
                self._go_off(now, self.rng.randrange(2000, self.p["away_ms"]))
                return
            if act == "reboot":
                self._start_reboot(now)
                return
            self._after_bound(now)
        elif st == RENEWING or st == REBINDING:
            self._after_bound(now)

    def _after_bound(self, now):
        """Pick the renewal phase for `now` and send or wait accordingly."""
        ls = self.lease
        if ls is None or now >= ls["end_ms"]:
            self._drop(now, "lease ended")
            self._start_init(now)
            return
        if now < ls["t1_ms"]:
            self.state = BOUND
            self._timer(ls["t1_ms"])
            return
        if now < ls["t2_ms"]:
            if self.state != RENEWING:
                self.state = RENEWING
                self._new_xid()
                self.exchange_ms = now
                self.first_sent_ms = now
            self._send(self._packet(wire.REQUEST, now, ciaddr=ls["addr"]), now, unicast_to=ls["server"])
            wait = (ls["t2_ms"] - now) // 2
            if wait < 3000:
                wait = 3000
            nxt = now + wait
            self._timer(nxt if nxt < ls["t2_ms"] else ls["t2_ms"])
            return
        if self.state != REBINDING:
            self.state = REBINDING
            self._new_xid()
            self.exchange_ms = now
            self.first_sent_ms = now
        self._send(self._packet(wire.REQUEST, now, ciaddr=ls["addr"]), now)
        wait = (ls["end_ms"] - now) // 2
        if wait < 2000:
            wait = 2000
        nxt = now + wait
        self._timer(nxt if nxt < ls["end_ms"] else ls["end_ms"])

    # ------------------------------------------------------------------ replies

    def receive(self, pkt, now):
        """A decoded reply addressed to this client's chaddr."""
        if pkt.xid != self.xid or pkt.op != wire.BOOTREPLY:
            return
        mt = pkt.msg_type
        st = self.state
        sid = pkt.options.get(wire.OPT_SERVER_ID)
        if mt == wire.OFFER:
            if st == SELECTING and sid is not None and pkt.yiaddr != ZERO4:
                first = not self.offers
                self.offers.append((pkt.yiaddr, sid))
                if first:
                    self._timer(now + self.rng.randrange(50, self.p["collect_ms"]))
            return
        if mt == wire.NAK:
            if st == REQUESTING and sid is not None and sid != self.chosen[1]:
                return
            if st in (REQUESTING, RENEWING, REBINDING, REBOOTING):
                self.naks += 1
                self._log(now, "nak from %s" % (ip_text(sid) if sid else "?"))
                self._drop(now, "nak")
                self.state = INIT
                self._timer(now + self.rng.randrange(500, 3000))
            return
        if mt != wire.ACK:
            return
        if st == REQUESTING:
            if pkt.yiaddr != self.chosen[0]:
                return
        elif st in (RENEWING, REBINDING, REBOOTING):
            if self.lease is None or pkt.yiaddr != self.lease["addr"]:
                return
        else:
            return
        secs = _u32(pkt.options.get(wire.OPT_LEASE_TIME), None)
        if secs is None or sid is None:
            return
        start = self.first_sent_ms
        end = start + secs * 1000
        t1 = start + _u32(pkt.options.get(wire.OPT_RENEWAL_TIME), secs // 2) * 1000
        t2 = start + _u32(pkt.options.get(wire.OPT_REBINDING_TIME), (secs * 7) // 8) * 1000
        if end <= now:
            self._drop(now, "ack already expired")
            self._start_init(now)
            return
        old = self.lease
        if old is not None and old["addr"] != pkt.yiaddr:
            self._drop(now, "moved")
        self.lease = {"addr": pkt.yiaddr, "server": sid, "start_ms": start, "secs": secs,
                      "t1_ms": t1 if t1 > now else now + 1000, "t2_ms": t2, "end_ms": end}
        self.acks += 1
        self._log(now, "ack %s from %s for %d s" % (ip_text(pkt.yiaddr), ip_text(sid), secs))
        self.world.client_acked(self, pkt.yiaddr, start, end, sid, now)
        if st == REQUESTING and self.rng.random() < self.p["decline"]:
            # the address answered our ARP probe: decline it (RFC 2131 §4.4.1)
            self._new_xid()
            self._send(self._packet(wire.DECLINE, now, requested=pkt.yiaddr, server=sid), now)
            self._drop(now, "declined")
            self.state = INIT
            self._timer(now + 10000)
            return
        self.state = BOUND
        self._bound_timers(now)


def default_profile(rng):
    """Behaviour knobs for one client (probabilities per bound period)."""
    return {
        "release": rng.choice((0.0, 0.02, 0.05, 0.1)),
        "leave": rng.choice((0.0, 0.02, 0.05)),
        "reboot": rng.choice((0.0, 0.02, 0.05)),
        "decline": rng.choice((0.0, 0.0, 0.01)),
        "away_ms": rng.choice((60000, 300000, 900000)),
        "collect_ms": rng.choice((200, 1000)),
        "discover_tries": 4,
        "first_offer": rng.random() < 0.7,
    }
