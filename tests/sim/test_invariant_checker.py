"""The checker catches what it claims to: for every invariant a planted
violation (a crafted event trace, or a crafted world) is reported as exactly
that invariant, and the legal twin of the trace is not reported at all."""

import random

from sim import invariants as inv
from sim.invariants import ACTIVE, BACKUP, EXPIRED, FREE, Binding, Checker, Reply

P = "A"  # primary
Q = "B"  # secondary
C1 = b"\x01\x02\x00\x00\x00\x00\x01"
C2 = b"\x01\x02\x00\x00\x00\x00\x02"
ADDR = bytes((10, 0, 0, 100))
ADDR2 = bytes((10, 0, 0, 101))
MCLT = 60
S = 1000  # ms per second


def _ck():
    return Checker({P: "primary", Q: "secondary"}, MCLT, {P: None, Q: None}, {C1: "c1", C2: "c2"})


def _kinds(ck):
    return ck.kinds()


def _ack(node, state, t, client, lease_s, prior=None, durable_end=None, addr=ADDR, req_ciaddr=False):
    """A DHCPACK as the world reports it (durable unless durable_end is False)."""
    end = t + lease_s * S
    if durable_end is False:
        dur = None
    else:
        dur = (ACTIVE, client, end if durable_end is None else durable_end)
    return Reply(node, state, 3, 5, addr, client, end, t, prior, dur, req_ciaddr=req_ciaddr)


def _bndupd_acked(ck, sender, receiver, t, b, conn=1, xid=7):
    """sender's BNDUPD b reaches receiver, which stores it and acknowledges."""
    ck.peer_sent(t, sender, conn, inv.BNDUPD, xid, b=b)
    ck.peer_delivered(t + 10, receiver, conn, inv.BNDUPD, xid, b=b, sender=sender)
    ck.peer_sent(t + 20, receiver, conn, inv.BNDACK, xid,
                 durable=(b.status, b.client if b.status == ACTIVE else None, b.lease_end or 0))
    ck.peer_delivered(t + 30, sender, conn, inv.BNDACK, xid, sender=receiver)


# --------------------------------------------------------------------------- I1


def test_i1_two_clients_one_address():
    ck = _ck()
    ck.client_acked(10 * S, C1, ADDR, 10 * S, 70 * S)
    ck.client_acked(20 * S, C2, ADDR, 20 * S, 80 * S)
    assert _kinds(ck) == ["I1"]
    assert "c2" in ck.violations[0].msg and "c1" in ck.violations[0].msg


def test_i1_legal_after_expiry_or_release():
    ck = _ck()
    ck.client_acked(10 * S, C1, ADDR, 10 * S, 70 * S)
    ck.client_acked(71 * S, C2, ADDR, 71 * S, 130 * S)  # c1's lease ended at 70 s
    ck.client_dropped(80 * S, C2, ADDR)  # released
    ck.client_acked(81 * S, C1, ADDR, 81 * S, 140 * S)
    ck.client_acked(90 * S, C1, ADDR, 90 * S, 150 * S)  # a renewal is not a duplicate
    assert ck.ok(), ck.violations


# --------------------------------------------------------------------------- I2 / I3


def test_i2_lease_beyond_acked_potential_expiration():
    ck = _ck()
    _bndupd_acked(ck, P, Q, 10 * S, Binding(ADDR, ACTIVE, C1, lease_end=70 * S, pexp=100 * S))
    # renewal at 40 s: allowed up to pexp 100 + MCLT 60 = 160 s; 161 s is one too many
    ck.reply(40 * S, _ack(P, inv.NORMAL, 40 * S, C1, 121, prior=(ACTIVE, C1, 70 * S)))
    assert _kinds(ck) == ["I2"]


def test_i2_legal_at_the_bound():
    ck = _ck()
    _bndupd_acked(ck, P, Q, 10 * S, Binding(ADDR, ACTIVE, C1, lease_end=70 * S, pexp=100 * S))
    ck.reply(40 * S, _ack(P, inv.NORMAL, 40 * S, C1, 120, prior=(ACTIVE, C1, 70 * S)))
    # the secondary renewing the primary's client may use the pexp it received
    ck.reply(41 * S, _ack(Q, inv.NORMAL, 41 * S, C1, 119, prior=(ACTIVE, C1, 70 * S)))
    assert ck.ok(), ck.violations


def test_i3_first_lease_longer_than_mclt():
    ck = _ck()
    ck.reply(10 * S, _ack(P, inv.NORMAL, 10 * S, C1, MCLT + 1, prior=(FREE, None, 0)))
    assert _kinds(ck) == ["I3"]


def test_i3_legal_first_lease_of_mclt_and_pd_exemption():
    ck = _ck()
    ck.reply(10 * S, _ack(P, inv.NORMAL, 10 * S, C1, MCLT, prior=(FREE, None, 0)))
    # §9.4.2: in PARTNER-DOWN the MCLT rule is optional
    ck.state_changed(20 * S, P, inv.CI, inv.PD, "admin", False)
    ck.reply(21 * S, _ack(P, inv.PD, 21 * S, C2, 3600, prior=(FREE, None, 0), addr=ADDR2))
    assert ck.ok(), ck.violations


# --------------------------------------------------------------------------- I4


def test_i4_ack_before_durable():
    ck = Checker({"S": "standalone"}, 0)
    ck.reply(10 * S, _ack("S", None, 10 * S, C1, 600, prior=(FREE, None, 0), durable_end=False))
    assert _kinds(ck) == ["I4"]


def test_i4_ack_longer_than_flash_says():
    ck = Checker({"S": "standalone"}, 0)
    ck.reply(10 * S, _ack("S", None, 10 * S, C1, 600, prior=(FREE, None, 0), durable_end=300 * S))
    assert _kinds(ck) == ["I4"]


def test_i4_bndack_before_durable():
    ck = _ck()
    b = Binding(ADDR, ACTIVE, C1, lease_end=70 * S, pexp=100 * S)
    ck.peer_sent(10 * S, P, 1, inv.BNDUPD, 5, b=b)
    ck.peer_delivered(11 * S, Q, 1, inv.BNDUPD, 5, b=b, sender=P)
    ck.peer_sent(11 * S, Q, 1, inv.BNDACK, 5, durable=(FREE, None, 0))
    assert _kinds(ck) == ["I4"]


def test_i4_legal_ack_and_bndack_after_commit_and_rejects():
    ck = Checker({"S": "standalone"}, 0)
    ck.reply(10 * S, _ack("S", None, 10 * S, C1, 600, prior=(FREE, None, 0)))
    assert ck.ok()
    ck = _ck()
    _bndupd_acked(ck, P, Q, 10 * S, Binding(ADDR, ACTIVE, C1, lease_end=70 * S, pexp=100 * S))
    b = Binding(ADDR2, ACTIVE, C2, lease_end=70 * S, pexp=100 * S)
    ck.peer_delivered(11 * S, Q, 1, inv.BNDUPD, 9, b=b, sender=P)
    ck.peer_sent(11 * S, Q, 1, inv.BNDACK, 9, durable=(FREE, None, 0), reject=16)  # a reject stores nothing
    assert ck.ok(), ck.violations


# --------------------------------------------------------------------------- I5


def test_i5_secondary_allocates_a_free_address():
    ck = _ck()
    ck.reply(10 * S, _ack(Q, inv.CI, 10 * S, C1, 30, prior=(FREE, None, 0)))
    assert _kinds(ck) == ["I5"]


def test_i5_primary_allocates_a_backup_address():
    ck = _ck()
    ck.reply(10 * S, _ack(P, inv.NORMAL, 10 * S, C1, 30, prior=(BACKUP, None, 0)))
    assert _kinds(ck) == ["I5"]


def test_i5_two_owners_of_one_address():
    ck = _ck()
    ck.pool(10 * S, [(ADDR, [P, Q])])
    assert _kinds(ck) == ["I5"]


def test_i5_legal_own_pools():
    ck = _ck()
    ck.reply(10 * S, _ack(P, inv.NORMAL, 10 * S, C1, 30, prior=(FREE, None, 0)))
    ck.reply(11 * S, _ack(Q, inv.CI, 11 * S, C2, 30, prior=(BACKUP, None, 0), addr=ADDR2))
    ck.pool(12 * S, [])
    assert ck.ok(), ck.violations


# --------------------------------------------------------------------------- I6


def test_i6_reuse_before_partner_acknowledged():
    ck = _ck()
    ck.binding_changed(10 * S, P, ADDR, ACTIVE)  # c1's lease
    ck.binding_changed(70 * S, P, ADDR, EXPIRED)
    ck.peer_sent(70 * S, P, 1, inv.BNDUPD, 3, b=Binding(ADDR, EXPIRED, C1, lease_end=70 * S))  # never acked
    ck.reply(80 * S, _ack(P, inv.NORMAL, 80 * S, C2, 30, prior=(EXPIRED, C1, 70 * S)))
    assert _kinds(ck) == ["I6"]


def test_i6_legal_after_bndack_or_partner_update():
    ck = _ck()
    ck.binding_changed(10 * S, P, ADDR, ACTIVE)
    ck.binding_changed(70 * S, P, ADDR, EXPIRED)
    _bndupd_acked(ck, P, Q, 70 * S, Binding(ADDR, EXPIRED, C1, lease_end=70 * S))
    ck.reply(80 * S, _ack(P, inv.NORMAL, 80 * S, C2, 30, prior=(FREE, C1, 70 * S)))
    ck.binding_changed(80 * S, P, ADDR, ACTIVE)
    # on the secondary: the primary tells it the address is free again
    ck.binding_changed(10 * S, Q, ADDR2, ACTIVE)
    _bndupd_acked(ck, P, Q, 90 * S, Binding(ADDR2, FREE, None), xid=8)
    ck.reply(95 * S, _ack(Q, inv.CI, 95 * S, C2, 30, prior=(BACKUP, C1, 60 * S), addr=ADDR2))
    assert ck.ok(), ck.violations


def test_i6_ack_racing_a_new_lease_does_not_clear():
    """A BNDACK for an EXPIRED update that arrives after the address was leased
    again does not vouch for the newer lease."""
    ck = _ck()
    ck.binding_changed(10 * S, P, ADDR, ACTIVE)
    ck.peer_sent(70 * S, P, 1, inv.BNDUPD, 3, b=Binding(ADDR, EXPIRED, C1, lease_end=70 * S))
    ck.binding_changed(71 * S, P, ADDR, ACTIVE)  # c1 came back before the ack
    ck.peer_delivered(72 * S, P, 1, inv.BNDACK, 3, sender=Q)
    ck.reply(200 * S, _ack(P, inv.NORMAL, 200 * S, C2, 30, prior=(EXPIRED, C1, 130 * S)))
    assert _kinds(ck) == ["I6"]


# --------------------------------------------------------------------------- I7


def test_i7_ci_renewal_beyond_mclt():
    ck = _ck()
    # lease ends at 100 s; in CI the renewal may run to 100 + 60 = 160 s at most
    ck.reply(90 * S, _ack(Q, inv.CI, 90 * S, C1, 71, prior=(ACTIVE, C1, 100 * S), req_ciaddr=True))
    assert _kinds(ck) == ["I7"]


def test_i7_legal_ci_renewal():
    ck = _ck()
    ck.reply(90 * S, _ack(Q, inv.CI, 90 * S, C1, 70, prior=(ACTIVE, C1, 100 * S), req_ciaddr=True))
    assert ck.ok(), ck.violations


# --------------------------------------------------------------------------- I8


def test_i8_partner_pool_before_mclt():
    ck = _ck()
    ck.state_changed(100 * S, P, inv.CI, inv.PD, "admin", False)
    ck.reply(159 * S, _ack(P, inv.PD, 159 * S, C1, 30, prior=(BACKUP, None, 0)))
    assert _kinds(ck) == ["I8"]


def test_i8_other_clients_address_too_early():
    ck = _ck()
    ck.binding_changed(10 * S, P, ADDR, ACTIVE)
    _bndupd_acked(ck, Q, P, 20 * S, Binding(ADDR, ACTIVE, C1, lease_end=120 * S, pexp=200 * S))
    ck.binding_changed(21 * S, P, ADDR, ACTIVE)
    ck.state_changed(100 * S, P, inv.CI, inv.PD, "admin", False)
    # c1's lease ended at 120 s but the partner may have renewed it up to pexp 200 + MCLT
    ck.reply(250 * S, _ack(P, inv.PD, 250 * S, C2, 30, prior=(EXPIRED, C1, 120 * S)))
    assert _kinds(ck) == ["I8"]


def test_i8_legal_waits():
    ck = _ck()
    ck.state_changed(100 * S, P, inv.CI, inv.PD, "admin", False)
    ck.reply(160 * S, _ack(P, inv.PD, 160 * S, C1, 30, prior=(BACKUP, None, 0)))
    ck.binding_changed(10 * S, P, ADDR2, ACTIVE)
    ck.reply(261 * S, _ack(P, inv.PD, 261 * S, C2, 30, prior=(EXPIRED, C1, 200 * S), addr=ADDR2))
    assert ck.ok(), ck.violations


# --------------------------------------------------------------------------- I9


def test_i9_partner_down_without_cause():
    ck = _ck()
    ck.state_changed(100 * S, P, inv.CI, inv.PD, None, False)
    assert _kinds(ck) == ["I9"]


def test_i9_partner_down_while_partner_serves():
    ck = _ck()
    ck.state_changed(100 * S, P, inv.CI, inv.PD, "safe-period", True)
    assert _kinds(ck) == ["I9"]


def test_i9_legal_causes():
    ck = _ck()
    ck.state_changed(100 * S, P, inv.CI, inv.PD, "admin", False)
    ck.state_changed(100 * S, Q, inv.NORMAL, inv.PD, "partner-shutdown", False)
    ck.state_changed(200 * S, P, inv.STARTUP, inv.PD, "resume", False)
    assert ck.ok(), ck.violations


# --------------------------------------------------------------------------- I10


def test_i10_reply_in_recover():
    ck = _ck()
    ck.reply(10 * S, Reply(P, inv.RECOVER, 1, 2, ADDR, C1))
    assert _kinds(ck) == ["I10"]


def test_i10_recover_done_answers_a_discover():
    ck = _ck()
    ck.reply(10 * S, Reply(P, inv.RECOVER_DONE, 1, 2, ADDR, C1))
    assert _kinds(ck) == ["I10"]


def test_i10_legal_recover_done_renewal():
    ck = _ck()
    ck.reply(10 * S, _ack(P, inv.RECOVER_DONE, 10 * S, C1, 30, prior=(ACTIVE, C1, 40 * S), req_ciaddr=True))
    assert ck.ok(), ck.violations


# --------------------------------------------------------------------------- I11


def test_i11_recover_wait_too_short():
    ck = _ck()
    ck.reply(10 * S, _ack(Q, inv.NORMAL, 10 * S, C1, 30, prior=(BACKUP, None, 0)))
    ck.state_changed(20 * S, Q, inv.NORMAL, inv.RECOVER, None, False)
    ck.state_changed(30 * S, Q, inv.RECOVER, inv.RECOVER_WAIT, None, False)
    ck.state_changed(69 * S, Q, inv.RECOVER_WAIT, inv.RECOVER_DONE, None, False)
    assert _kinds(ck) == ["I11"]


def test_i11_legal_wait_and_first_run():
    ck = _ck()
    ck.state_changed(1 * S, P, inv.RECOVER, inv.RECOVER_DONE, None, False)  # never served: no wait
    ck.reply(10 * S, _ack(Q, inv.NORMAL, 10 * S, C1, 30, prior=(BACKUP, None, 0)))
    ck.state_changed(70 * S, Q, inv.RECOVER_WAIT, inv.RECOVER_DONE, None, False)
    assert ck.ok(), ck.violations


# --------------------------------------------------------------------------- I12


def test_i12_serving_after_storage_loss_without_updreqall():
    ck = _ck()
    ck.wiped_storage(5 * S, Q)
    ck.peer_sent(6 * S, Q, 2, inv.UPDREQ, 3)
    ck.state["B"] = inv.RECOVER
    ck.peer_sent(7 * S, Q, 2, inv.UPDREQ, 4)
    assert _kinds(ck) == ["I12"]


def test_i12_recover_done_without_upddone():
    ck = _ck()
    ck.wiped_storage(5 * S, Q)
    ck.peer_sent(6 * S, Q, 2, inv.UPDREQALL, 3)
    ck.state_changed(7 * S, Q, inv.RECOVER, inv.RECOVER_DONE, None, False)
    assert _kinds(ck) == ["I12"]


def test_i12_partner_down_obeys_a_startup_state():
    ck = _ck()
    ck.peer_delivered(10 * S, P, 3, inv.STATE_MSG, 1, sender=Q, partner_state=inv.CI, startup_flag=True,
                      state_before=inv.PD, state_after=inv.PC)
    assert _kinds(ck) == ["I12"]


def test_i12_legal_full_recovery():
    ck = _ck()
    ck.wiped_storage(5 * S, Q)
    ck.state_changed(6 * S, Q, inv.STARTUP, inv.RECOVER, None, False)
    ck.peer_sent(7 * S, Q, 2, inv.UPDREQALL, 3)
    ck.peer_delivered(8 * S, Q, 2, inv.UPDDONE, 3, sender=P)
    ck.state_changed(8 * S, Q, inv.RECOVER, inv.RECOVER_WAIT, None, False)
    ck.state_changed(70 * S, Q, inv.RECOVER_WAIT, inv.RECOVER_DONE, None, False)
    ck.reply(71 * S, _ack(Q, inv.RECOVER_DONE, 71 * S, C1, 30, prior=(ACTIVE, C1, 80 * S), req_ciaddr=True))
    ck.peer_delivered(10 * S, P, 3, inv.STATE_MSG, 1, sender=Q, partner_state=inv.CI, startup_flag=True,
                      state_before=inv.PD, state_after=inv.PD)
    assert ck.ok(), ck.violations


# --------------------------------------------------------------------------- I13


def test_i13_conflict_done_without_upddone():
    ck = _ck()
    ck.state_changed(10 * S, P, inv.PD, inv.PC, None, False)
    ck.link(10 * S, P, True)
    ck.peer_sent(10 * S, P, 4, inv.UPDREQ, 1)
    ck.state_changed(11 * S, P, inv.PC, inv.CD, None, False)
    assert _kinds(ck) == ["I13"]


def test_i13_secondary_into_conflict_done():
    ck = _ck()
    ck.state_changed(10 * S, Q, inv.CI, inv.PC, None, False)
    ck.peer_sent(10 * S, Q, 4, inv.UPDREQ, 1)
    ck.peer_delivered(11 * S, Q, 4, inv.UPDDONE, 1, sender=P)
    ck.state_changed(11 * S, Q, inv.PC, inv.CD, None, False)
    assert _kinds(ck) == ["I13"]


def test_i13_legal_resolution():
    ck = _ck()
    for n in (P, Q):
        ck.state_changed(10 * S, n, inv.CI, inv.PC, None, False)
        ck.link(10 * S, n, True)
    ck.peer_sent(10 * S, P, 4, inv.UPDREQ, 1)
    ck.peer_delivered(11 * S, P, 4, inv.UPDDONE, 1, sender=Q)
    ck.state_changed(11 * S, P, inv.PC, inv.CD, None, False)
    ck.peer_sent(12 * S, Q, 4, inv.UPDREQ, 2)
    ck.peer_delivered(13 * S, Q, 4, inv.UPDDONE, 2, sender=P)
    ck.state_changed(13 * S, Q, inv.PC, inv.NORMAL, None, False)
    ck.peer_delivered(14 * S, P, 4, inv.STATE_MSG, 3, sender=Q, partner_state=inv.NORMAL)
    ck.state_changed(14 * S, P, inv.CD, inv.NORMAL, None, False)
    ck.state_changed(15 * S, P, inv.NORMAL, inv.PC, None, False)
    ck.link(16 * S, P, False)
    ck.state_changed(16 * S, P, inv.PC, inv.RI, None, False)
    assert ck.ok(), ck.violations


# --------------------------------------------------------------------------- I14


def test_i14_restart_loses_recorded_state():
    ck = _ck()
    ck.recorded_state(10 * S, P, inv.PD, 1000010)
    ck.crashed(20 * S, P)
    ck.restarted(30 * S, P, inv.NORMAL, 1000005)
    assert _kinds(ck) == ["I14"]


def test_i14_legal_restart_and_torn_transition():
    ck = _ck()
    ck.recorded_state(10 * S, P, inv.NORMAL, 1000010)
    ck.crashed(20 * S, P)
    ck.restarted(30 * S, P, inv.CI, 1000010)  # the previous-state of NORMAL, same start time
    ck.crashed(40 * S, P, torn_transition=(inv.PD, 1000039))
    ck.restarted(50 * S, P, inv.PD, 1000039)  # the half-written record did land
    ck.restarted(60 * S, Q, None, 0)  # first start: nothing recorded
    assert ck.ok(), ck.violations


def test_i14_a_restart_from_shutdown_keeps_what_it_resumes():
    """§9.14.1/§9.14.2: from SHUTDOWN a restart resumes the state held before
    it, or RECOVER (the partner went PARTNER-DOWN); a crash while that restart
    is in STARTUP restores its record with the same start time (seeds 31244,
    32077). Another state, or another start time, is still a violation."""
    ck = _ck()
    ck.state_changed(10 * S, P, inv.CI, inv.SHUTDOWN)
    ck.recorded_state(10 * S, P, inv.SHUTDOWN, 1000010)
    ck.crashed(20 * S, P)
    ck.restarted(30 * S, P, inv.SHUTDOWN, 1000010)
    ck.crashed(31 * S, P)
    ck.restarted(40 * S, P, inv.CI, 1000010)  # the state before SHUTDOWN
    assert ck.ok(), ck.violations
    ck.state_changed(50 * S, P, inv.CI, inv.SHUTDOWN)
    ck.recorded_state(50 * S, P, inv.SHUTDOWN, 1000050)
    ck.crashed(60 * S, P)
    ck.restarted(70 * S, P, inv.RECOVER, 1000050)  # §9.14.2
    assert ck.ok(), ck.violations
    ck.state_changed(80 * S, P, inv.CI, inv.SHUTDOWN)
    ck.recorded_state(80 * S, P, inv.SHUTDOWN, 1000080)
    ck.crashed(90 * S, P)
    ck.restarted(100 * S, P, inv.PD, 1000080)  # never held: a violation
    assert _kinds(ck) == ["I14"] and len(ck.violations) == 1
    ck.state_changed(110 * S, Q, inv.NORMAL, inv.SHUTDOWN)
    ck.recorded_state(110 * S, Q, inv.SHUTDOWN, 1000110)
    ck.crashed(120 * S, Q)
    ck.restarted(130 * S, Q, inv.CI, 1000099)  # another start time: a violation
    assert len(ck.violations) == 2, ck.violations


# --------------------------------------------------------------------------- I15


def test_i15_primary_sends_other_mclt():
    ck = _ck()
    ck.peer_sent(10 * S, P, 1, inv.CONNECT, 1, mclt_s=MCLT * 2)
    assert _kinds(ck) == ["I15"]


def test_i15_secondary_keeps_its_own_mclt():
    ck = _ck()
    ck.peer_sent(10 * S, P, 1, inv.CONNECT, 1, mclt_s=MCLT)
    ck.mclt_in_use(11 * S, Q, 120)
    assert _kinds(ck) == ["I15"]


# --------------------------------------------------------------------------- I16


def test_i16_not_normal_after_healing():
    ck = _ck()
    ck.state_changed(10 * S, P, inv.CI, inv.NORMAL, None, False)
    ck.liveness(500 * S, {P: inv.NORMAL, Q: inv.CI}, 100 * S, 180 * S, [])
    assert _kinds(ck) == ["I16"]


def test_i16_starving_clients():
    ck = _ck()
    ck.state_changed(110 * S, P, inv.CI, inv.NORMAL, None, False)
    ck.state_changed(111 * S, Q, inv.CI, inv.NORMAL, None, False)
    ck.liveness(500 * S, {P: inv.NORMAL, Q: inv.NORMAL}, 100 * S, 180 * S, [C1])
    assert _kinds(ck) == ["I16"]


def test_i16_legal():
    ck = _ck()
    ck.state_changed(110 * S, P, inv.CI, inv.NORMAL, None, False)
    ck.state_changed(111 * S, Q, inv.CI, inv.NORMAL, None, False)
    ck.liveness(500 * S, {P: inv.NORMAL, Q: inv.NORMAL}, 100 * S, 180 * S, [])
    assert ck.ok(), ck.violations


# --------------------------------------------------------------------------- I17


def test_i17_untranslated_partner_time():
    ck = _ck()
    b = Binding(ADDR, ACTIVE, C1, lease_end=100 * S, pexp=200 * S)
    ck.translated(20 * S, Q, b, 77 * S, 200 * S)  # a receiver 23 s ahead stored the raw time
    assert _kinds(ck) == ["I17"]


def test_i17_legal_later_is_safe():
    ck = _ck()
    b = Binding(ADDR, ACTIVE, C1, lease_end=100 * S, pexp=200 * S)
    ck.translated(20 * S, Q, b, 100 * S, 201 * S)
    assert ck.ok(), ck.violations


# --------------------------------------------------------------------------- whole worlds


def test_world_two_servers_without_failover_duplicate_addresses():
    """Two independent servers with one pool on one segment: the classic
    duplicate, caught as I1 from the clients' side."""
    from sim.faults import Scenario, run_seed

    found = False
    for seed in range(1, 6):
        sc = Scenario.from_seed(seed)
        sc.nodes = 2
        sc.no_failover = True
        sc.skews = [0, 0]
        sc.faulty_s = 120
        sc.population = 10
        sc.pool = 24
        w = run_seed(seed, scenario=sc, allow_jumps=False, intensity=0.0)
        if "I1" in w.checker.kinds():
            found = True
            break
    assert found


def test_world_flash_that_forgets_is_caught_as_i4():
    """A driver that sends before the binding is durable (records dropped)."""
    from runtime.store import LeaseStore

    from sim.faults import Scenario
    from sim.world import STORE_DIR, World

    class Forgetful(LeaseStore):
        def append(self, records):  # drops BINDING records: replies then leave with nothing on flash
            if isinstance(records, (list, tuple)):
                for r in records:
                    self.append(r)
            elif records[0] != 1:
                LeaseStore.append(self, records)

    sc = Scenario.from_seed(3)
    sc.nodes = 1
    sc.skews = [0]
    w = World(sc)
    sn = w.nodes[0]
    sn.make_store = lambda: Forgetful(STORE_DIR, fs=sn.fs)
    w.boot(sn)
    for c in w.clients[:3]:
        w.at(w.t + 1000, w.client_power_on, c)
    w.run_until(w.t + 30 * S)
    assert "I4" in w.checker.kinds()
    assert set(w.checker.kinds()) <= {"I4", "I14"}


def test_sim_flash_torn_commit_and_a_lying_sync():
    """The real LeaseStore over MemFs: a power cut inside a commit keeps all
    that was committed and at most a prefix of the batch; a filesystem whose
    sync lies loses committed records (what I4 exists to catch)."""
    from dhcpfo.lease import log as L
    from dhcpfo.lease.table import ACTIVE as T_ACTIVE
    from dhcpfo.lease.table import LeaseTable
    from runtime.store import LeaseStore

    from sim.flash import DurableView, MemFs, PowerCut

    def load(fs):
        t = LeaseTable(8)
        info = LeaseStore("/f", fs=fs).load({0: t})
        return t, info

    fs = MemFs()
    store = LeaseStore("/f", fs=fs)
    t = LeaseTable(8)
    store.load({0: LeaseTable(8)})
    view = DurableView(fs, "/f", [8])
    t.set(1, T_ACTIVE, 0, b"\x02\x00\x00\x00\x00\x01", None, 500, 0, 10)
    store.append(L.encode_binding(0, 1, t))
    assert view.binding(0, 1)[0] == FREE  # appended, not committed: not durable
    store.commit()
    assert view.binding(0, 1)[0] == ACTIVE and view.binding(0, 1)[3] == 500
    t.set(2, T_ACTIVE, 0, b"\x02\x00\x00\x00\x00\x02", None, 600, 0, 10)
    t.set(3, T_ACTIVE, 0, b"\x02\x00\x00\x00\x00\x03", None, 600, 0, 10)
    store.append([L.encode_binding(0, 2, t), L.encode_binding(0, 3, t)])
    fs.arm(op=fs.ops, partial=40)  # the write lands 40 bytes: record 2 whole, record 3 cut
    try:
        store.commit()
    except PowerCut:
        pass
    else:
        raise AssertionError("no power cut")
    assert view.binding(0, 2)[0] == FREE  # never synced
    fs.crash(keep="all", garbage=b"\xff")
    t2, info = load(fs)
    assert t2.state(1) == T_ACTIVE and t2.state(2) == T_ACTIVE and t2.state(3) == FREE
    assert info["ignored"] > 0 and not info["lost"]

    class LyingFs(MemFs):
        def sync(self, f):  # acknowledges, keeps nothing
            f._live()

    fs = LyingFs()
    store = LeaseStore("/f", fs=fs)
    store.load({0: LeaseTable(8)})
    store.append(L.encode_binding(0, 1, t))
    store.commit()
    fs.crash(random.Random(5), keep="none")
    t3, _info = load(fs)
    assert t3.state(1) == FREE  # the lie cost a committed record
    fs.wipe()
    t4, _info = load(fs)
    assert t4.state(1) == FREE


def test_checks_count_only_rules_whose_situation_arose():
    """Checker.checks counts an evaluation only when the rule applied: a first
    lease in NORMAL exercises I3/I4/I10 but not I2 (the partner knows nothing
    yet), I8 (not PARTNER-DOWN) or I12 (no storage lost)."""
    ck = _ck()
    ck.reply(10 * S, _ack(P, inv.NORMAL, 10 * S, C1, 20, prior=(FREE, None, 0)))
    assert ck.ok(), ck.violations
    assert ck.checks.get("I3") == 1 and ck.checks.get("I4") == 1 and ck.checks.get("I10") == 1
    for k in ("I2", "I8", "I12", "I13"):
        assert k not in ck.checks, (k, ck.checks)
    # storage lost: the recovery reaching RECOVER-DONE properly is an I12 evaluation
    ck.wiped_storage(20 * S, P)
    ck.peer_sent(21 * S, P, 1, inv.UPDREQALL, 1)
    ck.peer_delivered(22 * S, P, 1, inv.UPDDONE, 2, sender=Q)
    ck.state_changed(90 * S, P, inv.RECOVER, inv.RECOVER_DONE)
    assert ck.ok(), ck.violations
    assert ck.checks.get("I12") == 1
    # a pool scan with no double owner is one I5 evaluation
    n = ck.checks.get("I5", 0)
    ck.pool(91 * S, [])
    assert ck.checks["I5"] == n + 1


def test_every_invariant_has_a_planted_violation():
    names = dict((k, []) for k in inv.INVARIANTS)
    for name in globals():
        if name.startswith("test_i"):
            key = "I" + name.split("_")[1][1:]
            if key in names:
                names[key].append(name)
    missing = [k for k, v in names.items() if not v]
    assert not missing, missing
