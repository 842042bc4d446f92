"""RTC-free safety (docs/time.md): a board without a real-time clock runs on
local time that never steps; wall time is an offset the core learns.

The step bug (issue 7): an unsynced board ACKed a 600 s lease at local time
~20, then learned its partner's time (+89,999,980 s) and the old rule stepped
its clock by that much: the next tick found the binding 90 million seconds
old and marked it EXPIRED while the client held it for 579 s more.
"""

from dhcpfo.failover import hashing
from dhcpfo.failover import states as S
from dhcpfo.lease import table as lt
from dhcpfo import timeboot
from dhcpfo.timebase import TimeBase
from dhcpfo.wire import dhcp as wire
from dhcpfo.wire import failover as fw
from pairlink import Pair, client_packet

WALL = 90001000  # the partner's wall time (core seconds): ~2026
LEASE = 600


def _lease(p, s, mac, xid=7):
    """DISCOVER + REQUEST to one server; (address, lease seconds) it ACKed."""
    offer = [r for r in p.dhcp(s, client_packet(mac, wire.DISCOVER, xid)) if r.msg_type == wire.OFFER]
    assert offer, "no offer"
    addr = offer[0].yiaddr
    acks = [r for r in p.dhcp(s, client_packet(mac, wire.REQUEST, xid, o50=addr, o54=s.addr))
            if r.msg_type == wire.ACK]
    assert acks, "no ack"
    lt_opt = acks[0].options[51]
    return addr, (lt_opt[0] << 24) | (lt_opt[1] << 16) | (lt_opt[2] << 8) | lt_opt[3]


def _secondary_mac(n):
    """The n-th MAC whose hash bucket the secondary serves in NORMAL (50/50)."""
    hba = hashing.hba_for_percent(50)
    for i in range(256):
        mac = bytes([2, 0, 0, 0, 1, i])
        if not hashing.in_buckets(hba, hashing.client_hash(mac)):
            if n == 0:
                return mac
            n -= 1
    raise ValueError("no mac")


def _binding(s, addr):
    t = s.node.tables[0]
    off = addr[3] - 10  # the pair's range starts at 198.18.0.10
    return t.state(off), t.expiry(off)


def _board_pair():
    """A synced primary at WALL and a secondary board that has met it once
    (its local time began at 0 on a fresh store), then lost the link and
    rebooted without a clock: it serves in COMMUNICATIONS-INTERRUPTED on its
    own local time, its wall offset unknown."""
    p = Pair(now=WALL, mclt=3600, lease=LEASE)
    p.b.records = []
    p.restart(p.b, clock="board")
    assert p.b.node.time.offset is None and p.now + p.b.shift == 0
    p.connect()
    p.tick(3)
    assert p.state(p.b) == S.NORMAL
    p.cut()
    p.tick(400)
    p.restart(p.b, clock="board")
    assert p.b.node.time.offset is None
    p.tick(20)
    assert p.state(p.b) == S.COMM_INTERRUPTED
    return p


def test_old_stepping_rule_expires_a_held_lease():
    """The bug, reproduced against the old rule: stepping the clock that
    stored times are in by the learned offset expires what a client holds."""
    p = _board_pair()
    mac = bytes([2, 0, 0, 0, 1, 5])
    addr, secs = _lease(p, p.b, mac)
    assert secs == LEASE
    local = p.now + p.b.shift
    assert _binding(p.b, addr) == (lt.ACTIVE, local + LEASE + 1) or _binding(p.b, addr)[1] >= local + LEASE
    p.connect()  # the partner's CONNECT carries its time: about WALL + 423
    step = p.b.node.time.offset
    assert step > 89000000
    # the old rule: the driver's clock jumps by the learned offset
    p.b.node.tick(local + step + 1)
    assert _binding(p.b, addr)[0] == lt.EXPIRED  # while the client holds it ~599 s more


def test_learning_partner_time_never_moves_a_held_lease():
    """The new rule: the offset is learned, local time and stored times stay.
    Fails if stepping comes back in any form that moves `now` or the stored
    expiry, or if the binding reaches the partner as anything but its wall time."""
    p = _board_pair()
    mac = bytes([2, 0, 0, 0, 1, 5])
    addr, secs = _lease(p, p.b, mac)
    acked_local = p.now + p.b.shift
    state, expiry = _binding(p.b, addr)
    assert state == lt.ACTIVE and expiry >= acked_local + secs
    p.connect()
    learned = p.b.node.time.offset
    assert learned is not None and p.b.node.time.source == "partner"
    assert p.b.node.events.get("clock.learned-from-partner") >= 1
    p.tick(3)
    assert p.state(p.b) == S.NORMAL and p.state(p.a) == S.NORMAL
    assert _binding(p.b, addr) == (lt.ACTIVE, expiry)  # not moved by learning
    # the partner stored it at the same real moment, on its own (wall) clock
    a_state, a_expiry = _binding(p.a, addr)
    assert a_state == lt.ACTIVE
    assert abs((a_expiry - p.now) - (expiry - (p.now + p.b.shift))) <= 3
    # held on both sides until its end: checked just before it
    held = expiry - (p.now + p.b.shift) - 2
    p.tick(held)
    assert _binding(p.b, addr)[0] == lt.ACTIVE and _binding(p.a, addr)[0] == lt.ACTIVE


def test_restart_without_wall_time_resumes_from_the_log_and_caps_leases_at_mclt():
    """A board rebooting without a clock resumes its local time at the last
    clock note (downtime forgotten: stored times come out later, never
    earlier), and acknowledgements from before the restart do not count for
    the MCLT rule until the latest of them has passed."""
    p = Pair(now=WALL, mclt=300, lease=LEASE)
    p.connect()
    p.tick(3)
    mac = _secondary_mac(0)
    s = p.b
    addr, secs = _lease(p, s, mac)
    p.tick(2)
    assert _renew(p, s, mac, addr, 8) == LEASE  # the full lease, once the partner acked the first
    state, expiry = _binding(s, addr)
    assert state == lt.ACTIVE
    t = s.node.tables[0]
    acked = t.ack_pexp(addr[3] - 10)
    assert acked > p.now
    p.cut()
    p.tick(30)
    before = p.now + s.shift
    p.restart(s, clock="board")
    start = p.now + s.shift
    assert before - 300 <= start <= before  # the last note, at most NOTE_INTERVAL back
    assert _binding(s, addr) == (lt.ACTIVE, expiry)  # same base: nothing moved
    assert s.node.time.unsure_until >= acked
    p.tick(20)
    assert p.state(s) == S.COMM_INTERRUPTED
    # a renewal now gets at most MCLT: the old acknowledgement does not count
    secs2 = _renew(p, s, mac, addr, 12)
    assert 0 < secs2 <= 300
    # (which is the rule's doing: trusted, the old acknowledgement allowed more)
    s.node.time.unsure_until = 0
    assert _renew(p, s, mac, addr, 13) > 300


def _renew(p, s, mac, addr, xid):
    ren = client_packet(mac, wire.REQUEST, xid)
    ren.ciaddr = addr
    acks = [r for r in p.dhcp(s, ren) if r.msg_type == wire.ACK]
    assert acks, "no ack"
    v = acks[0].options[51]
    return (v[0] << 24) | (v[1] << 16) | (v[2] << 8) | v[3]


def test_ntp_correction_moves_only_the_offset_and_restarts_the_link():
    p = Pair(now=WALL, mclt=3600, lease=LEASE)
    p.connect()
    p.tick(3)
    mac = _secondary_mac(0)
    addr, _secs = _lease(p, p.b, mac)
    before = _binding(p.b, addr)
    node = p.b.node
    node.set_wall(p.now + 30, p.now)  # NTP says our clock is 30 s slow
    assert node.time.offset == 30 and node.time.source == "ntp"
    assert node.events.get("clock.offset-moved") == 1
    p.drain(p.b)
    assert not p.up  # the partner measured our old wire time: reconnect
    assert _binding(p.b, addr) == before
    node.set_wall(p.now + 31, p.now)  # within a second: nothing restarts
    assert node.events.get("clock.offset-moved") == 1
    # reconnected, the partner measures the new wire time (within its
    # time_skew_max), and the binding keeps its end
    p.connect()
    p.tick(3)
    assert p.state(p.b) == S.NORMAL
    assert _binding(p.b, addr) == before


def test_wire_times_carry_the_offset():
    m = fw.make_bndupd(1, 100, b"\xc6\x12\x00\x0a", fw.B_ACTIVE, 700, 800, 100)
    fw.shift_times(m, 5000)
    assert m.get_time(fw.OPT_LEASE_EXPIRATION) == 5700
    assert m.get_time(fw.OPT_POTENTIAL_EXPIRATION) == 5800
    assert m.get_time(fw.OPT_STOS) == 5100
    assert fw.time_skew(m, 100) == 5000


def test_resume_rules():
    # fresh store: wall time when trusted, else 0
    tb = TimeBase()
    assert timeboot.resume(tb, 1000, 0) == 1000 and tb.offset == 0 and tb.unsure_until == 0
    tb = TimeBase()
    assert timeboot.resume(tb, None, 0) == 0 and tb.offset is None
    # a log from before clock notes holds wall times: trusted wall time places it
    tb = TimeBase()
    assert timeboot.resume(tb, 1000, 1500) == 1000 and tb.unsure_until == 0
    # ... without wall time it cannot be placed: its acknowledgements are unsure
    tb = TimeBase()
    assert timeboot.resume(tb, None, 1500) == 0 and tb.unsure_until == 1500
    # a run on trusted wall time, restarted with trusted wall time: the
    # downtime is added; a clock found earlier than the note adds nothing;
    # without wall time the note is where local time resumes. After any
    # restart the acknowledgements from before it are unsure.
    run = TimeBase()
    run.set(500, "ntp")
    note = run.note_payload(2000)  # wall 2500 at local 2000
    for wall, start in ((2600, 2100), (2400, 2000), (None, 2000)):
        tb = TimeBase()
        tb.restore(note)
        assert timeboot.resume(tb, wall, 9999) == start
        assert tb.unsure_until == 9999
        assert tb.offset == (wall - start if wall is not None else None)
    # the unsure horizon survives a further restart through the note
    tb2 = TimeBase()
    tb2.restore(tb.note_payload(2100))
    assert timeboot.resume(tb2, None, 50) == 2100 and tb2.unsure_until == 9999
    # an offset learned from a partner (maybe a board's guess) places nothing
    guess = TimeBase()
    guess.offset = None
    guess.set(90000000, "partner")
    tb3 = TimeBase()
    tb3.restore(guess.note_payload(50))
    assert timeboot.resume(tb3, 90000999, 7) == 50 and tb3.unsure_until == 7


def test_offset_moves_only_past_the_tolerance():
    tb = TimeBase()
    tb.offset = None
    assert not tb.set(1, "partner") and tb.offset == 0  # the wire keeps its base
    assert tb.set(90000000, "partner") and tb.offset == 90000000
    assert not tb.set(90000001, "ntp") and tb.offset == 90000000
    assert tb.set(89999700, "ntp") and tb.offset == 89999700


def test_restart_with_a_clock_set_back_while_off_keeps_bindings():
    """A trusted clock set back while the node was off (behind its last
    clock note) moves the offset only: the restart resumes at the note."""
    p = Pair(now=WALL, mclt=3600, lease=LEASE)
    p.connect()
    p.tick(3)
    addr, _secs = _lease(p, p.b, _secondary_mac(0))
    before = _binding(p.b, addr)
    p.cut()
    p.tick(10)
    wall = p.now - 86400
    p.restart(p.b, clock=wall)
    start = p.now + p.b.shift
    assert p.now - 310 <= start <= p.now - 10  # the note: not a day back
    assert p.b.node.time.offset == wall - start and p.b.node.time.source == "clock"
    assert _binding(p.b, addr) == before
    p.tick(20)
    assert _binding(p.b, addr)[0] == lt.ACTIVE


def test_board_restarted_without_wall_time_recovers_from_a_partner_down_partner():
    """§9.3.2 compares our last operation with the partner's PARTNER-DOWN
    start; a restart that forgot its downtime reads its own times late and
    would take POTENTIAL-CONFLICT, where its stale bindings win conflicts.
    Still in STARTUP, the partner's PARTNER-DOWN says we were down: RECOVER."""
    p = Pair(now=WALL, mclt=60, lease=LEASE)
    p.connect()
    p.tick(3)
    p.cut()
    p.tick(30)
    a = p.a.node.relationships[0]
    a.admin("partner-down", p.now, p.a.node.out)
    p.drain(p.a)
    p.tick(200)
    assert p.state(p.a) == S.PARTNER_DOWN
    p.restart(p.b, clock="board")
    assert p.b.node.time.forgot
    p.connect()
    assert p.state(p.b) in (S.RECOVER, S.RECOVER_WAIT), S.name(p.state(p.b))


def test_a_clock_the_partner_refused_does_not_place_a_restart():
    """The real fault suite's skew-a-5m: a node whose clock ran 5 min behind
    (its partner refused it: TIME MISMATCH) wrote notes with that offset;
    restarted with the clock set right, adding the "downtime" those notes
    measure would move local time 5 min ahead and expire every lease it
    granted meanwhile. Once either side finds the clocks apart beyond
    time_skew_max, the offset is doubted: the restart resumes at the note."""
    def note(doubted):
        tb = TimeBase()
        tb.offset = 1000 - 300  # 5 min behind
        tb.noted = 500
        if doubted:
            tb.doubt()
            assert tb.due(501)  # a note saying so goes out at the next tick
        return tb.note_payload(500)

    trusted, doubted = TimeBase(), TimeBase()
    trusted.restore(note(False))
    doubted.restore(note(True))
    wall = 500 + 1000 + 10  # 10 s later, the clock right again
    assert timeboot.resume(trusted, wall, 0) == 810 and not trusted.forgot  # 5 min too far
    assert timeboot.resume(doubted, wall, 0) == 500 and doubted.forgot  # downtime forgotten
    assert doubted.offset == wall - 500
