"""Engine fixes found by simulation seeds with clock kinds (unsynced boards,
restarts at 0, clock jumps), each reduced to the rule it broke. The seeds
themselves are replayed in tests/sim/test_sim_seeds.py (REGRESSION_SEEDS)."""

from dhcpfo import events as ev
from dhcpfo.compat import to_unix
from dhcpfo.failover import states as S
from dhcpfo.failover.clockdiff import ClockDiff
from dhcpfo.failover.holds import Holds
from dhcpfo.lease import table as lt
from dhcpfo.lease.table import LeaseTable
from dhcpfo.wire import dhcp as wire
from pairlink import Pair, client_packet


def test_mclt_margin_keeps_the_width_a_stored_time_was_translated_with():
    """Seed 803 (I7 by 0.87 s): a potential expiration received right after
    a restart was translated with a poor estimate (skew -18, width 3); the
    estimate later improved (-16, width 0), but the stored time did not.
    The MCLT rule must keep width 3 back from it until it has passed."""
    cd = ClockDiff("pair", 60, ev.Events())
    cd.new_link()
    cd.sample(to_unix(1000) - 18, 1000)  # a late message: estimate 18 s behind
    cd.reply(to_unix(1000) - 16, 1000)  # a reply bounds it at -15
    assert cd.width() == 3
    cd.stored(1050, 1000)  # a partner pexp stored in our time with this estimate
    cd.sample(to_unix(1010) - 16, 1010)
    cd.reply(to_unix(1010) - 17, 1010)
    assert cd.width() == 0  # the estimate is now exact ...
    assert cd.margin(1010) == 3  # ... but the time stored at 1000 is not
    assert cd.margin(1049) == 3
    assert cd.margin(1050) == 0  # passed: only the current width counts
    cd.stored(1100, 1060)  # a new translation with the good estimate
    assert cd.margin(1060) == 0


def test_partner_down_holds_an_acknowledged_expiry_for_mclt():
    """Seed 1302 (I1): in PARTNER-DOWN, a partner restarted into RECOVER
    acknowledges our EXPIRED over its own renewal from a partition (it takes
    our copy); the address must not go to another client before MCLT past
    every time either side knew (§9.4.2), storage loss or not."""
    t = LeaseTable(4)
    t.set(1, lt.EXPIRED, 0, b"\x02\x00\x00\x00\x00\x01", None, 500, 700, 500)
    holds = Holds([], [t], ev.Events())
    assert holds.until(t, 1, (650,), 720, 60) == 0  # NORMAL: the partner would have refused
    assert holds.until(t, 1, (650,), 720, 60, partner_down=True) == 760
    assert holds.until(t, 1, (650,), 761, 60, partner_down=True) == 0  # all passed


def _bind(p, s, mac, xid=7):
    offer = [r for r in p.dhcp(s, client_packet(mac, wire.DISCOVER, xid)) if r.msg_type == wire.OFFER]
    assert offer
    acks = [r for r in p.dhcp(s, client_packet(mac, wire.REQUEST, xid, o50=offer[0].yiaddr, o54=s.addr))
            if r.msg_type == wire.ACK]
    assert acks
    return acks[0].yiaddr


def test_startup_expiry_is_no_operation_after_the_partners_takeover():
    """Seed 1894 (I1): a server down while its partner took over (PARTNER-
    DOWN) restarts; its first tick expires a lease that ran out meanwhile,
    which marks a change the partner has not seen, stamped now. That is not
    an operation as a server: it must meet the PARTNER-DOWN partner in
    RECOVER (§9.3.2 step 5), not POTENTIAL-CONFLICT (whose resolution lets
    it serve its own pool, which the partner took over)."""
    p = Pair(mclt=60, lease=600)
    p.connect()
    p.tick(5)
    assert p.state(p.a) == S.NORMAL and p.state(p.b) == S.NORMAL
    for i in range(6):  # leases on the primary, acknowledged by the secondary
        ra = p.dhcp(p.a, client_packet(bytes([2, 0, 0, 0, 9, i]), wire.DISCOVER, 40 + i))
        if any(r.msg_type == wire.OFFER for r in ra):
            _bind(p, p.a, bytes([2, 0, 0, 0, 9, i]), 40 + i)
    p.tick(2)
    p.cut()  # the primary goes down here
    p.now += 5
    rb = p.b.node.relationships[0]
    p.b.node.tick(p.now + p.b.shift)
    p.drain(p.b)
    rb.admin("partner-down", p.now + p.b.shift, p.b.node.out)
    p.drain(p.b)
    assert p.state(p.b) == S.PARTNER_DOWN
    p.now += 2000  # long after every lease ran out, the primary comes back
    p.restart(p.a)
    p.a.node.tick(p.now + p.a.shift)  # expires the leases: changes stamped now
    p.drain(p.a)
    ra = p.a.node.relationships[0]
    assert ra.state == S.STARTUP and ra.updates.latest_unacked() >= p.now - 1
    p.connect()
    p.tick(1)
    assert ra.state in (S.RECOVER, S.RECOVER_WAIT, S.RECOVER_DONE), S.name(ra.state)


def test_restart_in_partner_down_delivers_its_updates_before_normal():
    """Seed 248 (I1): a server restarted in PARTNER-DOWN met its partner in
    RECOVER-DONE and went from STARTUP straight to NORMAL while its grants
    made alone (from the partner's pool too) were still queued; the partner,
    NORMAL at once, gave such an address to another client. Like PARTNER-
    DOWN -> NORMAL, the restarted server resumes PARTNER-DOWN and goes to
    NORMAL only once its updates are acknowledged."""
    p = Pair(mclt=30, lease=600)
    p.connect()
    p.tick(5)
    assert p.state(p.a) == S.NORMAL and p.state(p.b) == S.NORMAL
    p.cut()
    p.tick(2)
    rb = p.b.node.relationships[0]
    rb.admin("partner-down", p.now + p.b.shift, p.b.node.out)
    p.drain(p.b)
    assert p.state(p.b) == S.PARTNER_DOWN
    p.now += 100
    p.restart(p.a)  # the primary was down while the secondary took over
    p.connect()
    p.tick(2)
    assert p.state(p.a) == S.RECOVER_WAIT, S.name(p.state(p.a))
    p.cut()
    p.tick(40)  # takeover wait over: the secondary serves the primary's pool too
    granted = []
    for i in range(40):  # clients the secondary serves alone, none of it told to the primary yet
        mac = bytes([2, 0, 0, 0, 8, i])
        if any(r.msg_type == wire.OFFER for r in p.dhcp(p.b, client_packet(mac, wire.DISCOVER, 60 + i))):
            granted.append(_bind(p, p.b, mac, 60 + i))
    assert granted
    assert p.state(p.a) == S.RECOVER_DONE, S.name(p.state(p.a))
    p.restart(p.b)  # restarts in PARTNER-DOWN with its updates still queued
    ra = p.a.node.relationships[0]
    seen = []
    plain = ra.set_state

    def watch(new, now, out, why):
        if new == S.NORMAL:  # what the primary knows when it may allocate again
            t = p.a.node.tables[0]
            sc = p.a.node.server.scopes[0]
            seen.append([t.state(sc.offset_of(a)) for a in granted])
        plain(new, now, out, why)

    ra.set_state = watch
    p.connect()
    p.tick(5)
    assert p.state(p.a) == S.NORMAL and p.state(p.b) == S.NORMAL
    assert seen and all(st == lt.ACTIVE for st in seen[0]), seen


def test_recover_done_renews_no_further_than_mclt_past_the_acknowledgement():
    """Seed 1966 (I1): in RECOVER-DONE (partner in PARTNER-DOWN, the link cut
    again) a renewal got MCLT from now, past the acknowledged potential
    expiration; the partner, reusing by §9.4.2's timer (MCLT past what it
    acknowledged), gave the address to another client. RECOVER-DONE caps a
    renewal at MCLT past the acknowledgement, and NAKs once that passed or
    while no acknowledgement is sure."""
    p = Pair(mclt=60, lease=600)
    p.connect()
    p.tick(5)
    addr = None
    for i in range(10):
        mac = bytes([2, 0, 0, 0, 7, i])
        if any(r.msg_type == wire.OFFER for r in p.dhcp(p.a, client_packet(mac, wire.DISCOVER, 80 + i))):
            addr = _bind(p, p.a, mac, 80 + i)
            break
    assert addr is not None
    p.tick(2)
    ra = p.a.node.relationships[0]
    sc = p.a.node.server.scopes[0]
    off = sc.offset_of(addr)
    ack = p.a.node.tables[0].ack_pexp(off)
    now = p.now + p.a.shift
    assert ack > now
    auth = ra.authority
    assert auth.max_lease(sc, off, ack + 30, False) == 60  # NORMAL: MCLT from now
    ra.state = S.RECOVER_DONE
    cap = auth.max_lease(sc, off, now, False)
    assert 0 < cap <= ack - now + 60  # never past the acknowledgement + MCLT
    assert auth.max_lease(sc, off, ack + 30, False) <= 30  # what is left of it
    assert auth.max_lease(sc, off, ack + 90, False) <= 0  # passed: a NAK
    ra.time.unsure_until = ack + 1000
    assert auth.max_lease(sc, off, now, False) <= 0  # no acknowledgement sure: a NAK
