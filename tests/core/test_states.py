"""failover.states: the draft-12 §9 state machine, row by row."""
from dhcpfo.failover import states as st
from dhcpfo.failover.states import (
    COMM_INTERRUPTED as CI, CONFLICT_DONE as CD, NORMAL, PARTNER_DOWN as PD, PAUSED,
    POTENTIAL_CONFLICT as PC, RECOVER, RECOVER_DONE, RECOVER_WAIT, RESOLUTION_INTERRUPTED as RI,
    SHUTDOWN, STARTUP, UNKNOWN,
)
from dhcpfo.wire import failover as fo

REAL = (NORMAL, CI, PD, PC, RECOVER, PAUSED, SHUTDOWN, RECOVER_DONE, RI, CD, RECOVER_WAIT)


def nxt(state, event, partner=None, **kw):
    return st.next_state(state, event, partner, **kw)


def up(state, partner, **kw):
    """State after communications come up with the partner in `partner` (None: unchanged)."""
    return st.next_state(state, st.EV_COMM_UP, partner, **kw)


def test_wire_values_are_iscs():
    assert (STARTUP, NORMAL, CI, PD, PC, RECOVER, PAUSED, SHUTDOWN) == (1, 2, 3, 4, 5, 6, 7, 8)
    assert (RECOVER_DONE, RI, CD, RECOVER_WAIT, UNKNOWN) == (9, 10, 11, 254, 0)
    assert st.name(CI) == "communications-interrupted" and st.name(RECOVER_WAIT) == "recover-wait"
    assert st.name(77) == "state-77"
    assert st.is_state(254) and not st.is_state(12) and not st.is_state(253)


def test_silent_states_answer_nothing():
    for s in (STARTUP, PC, RECOVER, RECOVER_WAIT, PAUSED, SHUTDOWN, UNKNOWN, 99):
        assert st.silent(s) and not st.answers(s)
        assert st.service(s) & (st.ALLOCATE | st.TAKEOVER | st.PUSH) == 0
    for s in (NORMAL, CI, PD, RI, CD, RECOVER_DONE):
        assert st.answers(s) and not st.silent(s)
        assert st.service(s) & st.MCLT_LIMIT


def test_service_rules_per_state():
    assert st.service(NORMAL) & st.BALANCED  # §9.8.2 hash buckets
    for s in (CI, PD, RI, CD):  # §9.9.2, §9.4.2, §9.11.2, §9.12.2: all clients
        assert not st.service(s) & st.BALANCED and st.service(s) & st.ALLOCATE
    assert st.service(RECOVER_DONE) & st.RENEW_ONLY and not st.service(RECOVER_DONE) & st.ALLOCATE
    only_takeover = [s for s in REAL if st.service(s) & st.TAKEOVER]
    assert only_takeover == [PD]  # §9.4.2 partner's addresses after MCLT
    assert [s for s in REAL if st.service(s) & st.COMM_OK] == [NORMAL, PC]
    assert st.own_pool_status(True) == fo.B_FREE and st.own_pool_status(False) == fo.B_BACKUP


def test_comm_down():
    assert nxt(NORMAL, st.EV_COMM_DOWN) == CI  # §9.8.4
    assert nxt(PC, st.EV_COMM_DOWN) == RI  # §9.10.3
    for s in (CI, PD, RECOVER, RECOVER_WAIT, RECOVER_DONE, CD, RI, STARTUP, PAUSED, SHUTDOWN):
        assert nxt(s, st.EV_COMM_DOWN) is None, s  # all stay


def test_comm_interrupted_on_reconnect():  # §9.9.3
    assert up(CI, NORMAL) == NORMAL
    assert up(CI, CI) == NORMAL
    assert up(CI, RECOVER_DONE) == NORMAL
    for p in (PD, PC, CD, RI):
        assert up(CI, p) == PC
    assert up(CI, SHUTDOWN) == PD
    for p in (RECOVER, PAUSED, RECOVER_WAIT):
        assert up(CI, p) is None


def test_partner_down_on_reconnect():  # §9.4.3
    for p in (NORMAL, CI, PD, PC, RI, CD):
        assert up(PD, p) == PC
        assert up(PD, p, partner_startup=True) is None  # STARTUP bit: ignored
    for p in (RECOVER, RECOVER_WAIT, SHUTDOWN, PAUSED):
        assert up(PD, p) is None
    assert up(PD, RECOVER_DONE) == NORMAL
    assert nxt(PD, st.EV_PARTNER_STATE, RECOVER_DONE) == NORMAL


def test_normal_sees_partner_change():  # §9.2, §9.8.4
    assert nxt(NORMAL, st.EV_PARTNER_STATE, NORMAL) is None
    assert nxt(NORMAL, st.EV_PARTNER_STATE, PAUSED) == CI
    assert nxt(NORMAL, st.EV_PARTNER_STATE, SHUTDOWN) == PD
    assert nxt(NORMAL, st.EV_PARTNER_STATE, PD) == PC
    assert nxt(NORMAL, st.EV_PARTNER_STATE, RECOVER) == CI
    assert nxt(NORMAL, st.EV_PARTNER_STATE, PC) == PC


def test_recover_interlock():  # §9.5.2, §9.6.2, §9.7.2, Figure 9.5.2-1
    assert up(RECOVER, PD) is None
    assert st.request_on(RECOVER, PD, True, full=True) == fo.UPDREQALL
    assert st.request_on(RECOVER, PD, False) == fo.UPDREQ
    assert nxt(RECOVER, st.EV_UPDDONE) == RECOVER_WAIT
    assert nxt(RECOVER, st.EV_UPDDONE, skip_wait=True) == RECOVER_DONE
    assert up(RECOVER_WAIT, NORMAL) is None and nxt(RECOVER_WAIT, st.EV_COMM_DOWN) is None
    assert nxt(RECOVER_WAIT, st.EV_MCLT_EXPIRED) == RECOVER_DONE
    assert nxt(RECOVER_DONE, st.EV_PARTNER_STATE, PD) is None
    assert nxt(RECOVER_DONE, st.EV_PARTNER_STATE, NORMAL) == NORMAL
    assert up(RECOVER_DONE, RECOVER_DONE) == NORMAL
    for p in (PC, RI, CD):  # a resolving partner pulls RECOVER into POTENTIAL-CONFLICT
        assert up(RECOVER, p) == PC
        assert st.request_on(RECOVER, p, True) is None


def test_potential_conflict_resolution_order():  # §9.10, Figure 9.10.3-1
    assert st.request_on(PC, PC, True) == fo.UPDREQ  # primary asks on entry
    assert st.request_on(PC, PC, False) is None  # secondary waits ...
    assert st.request_on(PC, CD, False) == fo.UPDREQ  # ... for CONFLICT-DONE
    assert nxt(PC, st.EV_UPDDONE, primary=True) == CD
    assert nxt(PC, st.EV_UPDDONE, primary=False) == NORMAL
    assert nxt(PC, st.EV_PARTNER_STATE, CD, primary=False) is None
    assert nxt(CD, st.EV_PARTNER_STATE, PC) is None
    assert nxt(CD, st.EV_PARTNER_STATE, NORMAL) == NORMAL  # §9.12.3
    assert nxt(CD, st.EV_COMM_DOWN) is None
    for p in REAL:  # §9.11.3: restored communications -> POTENTIAL-CONFLICT
        assert up(RI, p) == PC


def test_operator_and_timer_events():
    for s in (NORMAL, CI, RI):
        assert nxt(s, st.EV_ADMIN_PARTNER_DOWN) == PD
    for s in (RECOVER, RECOVER_WAIT, PC, STARTUP, PD):
        assert nxt(s, st.EV_ADMIN_PARTNER_DOWN) is None
    assert nxt(CI, st.EV_SAFE_PERIOD) == PD
    assert nxt(NORMAL, st.EV_SAFE_PERIOD) is None
    assert nxt(NORMAL, st.EV_MCLT_EXPIRED) is None
    for s in REAL:
        assert nxt(s, st.EV_SHUTDOWN) == (None if s == SHUTDOWN else SHUTDOWN)
        assert nxt(s, st.EV_PAUSE) == (None if s == PAUSED else PAUSED)
    assert nxt(NORMAL, 999) is None


def test_startup():  # §9.3.2
    assert st.startup_previous(None) == RECOVER
    assert st.startup_previous(NORMAL) == CI
    assert st.startup_previous(PC) == RI
    assert st.startup_previous(PD) == PD
    assert st.startup_previous(PD, partner_down_seen=True) == RECOVER
    assert st.startup_previous(SHUTDOWN) == RECOVER and st.startup_previous(200) == RECOVER
    # step 5: resume the previous state, then the comm-OK transition
    assert up(STARTUP, NORMAL, previous=CI) == NORMAL
    assert up(STARTUP, NORMAL, previous=NORMAL) == NORMAL
    assert up(STARTUP, RECOVER, previous=CI) == CI
    assert up(STARTUP, RECOVER, previous=None) == RECOVER
    assert up(STARTUP, NORMAL, previous=PD) == PC
    # partner in PARTNER-DOWN: newer than our last operation -> RECOVER, else conflict
    assert up(STARTUP, PD, previous=CI, partner_down_newer=True) == RECOVER
    assert up(STARTUP, PD, previous=CI, partner_down_newer=False) == PC
    # step 6: the timer resumes the previous state, or PARTNER-DOWN if configured
    assert nxt(STARTUP, st.EV_STARTUP_TIMER, previous=CI) == CI
    assert nxt(STARTUP, st.EV_STARTUP_TIMER, previous=NORMAL) == CI
    assert nxt(STARTUP, st.EV_STARTUP_TIMER) == RECOVER
    assert nxt(STARTUP, st.EV_STARTUP_TIMER, previous=RECOVER, startup_to_partner_down=True) == PD
    assert nxt(NORMAL, st.EV_STARTUP_TIMER) is None
    assert up(STARTUP, 42, previous=CI) is None and up(NORMAL, None) is None


def test_tables_only_lead_to_real_states():
    for s in REAL + (STARTUP,):
        for p in REAL + (UNKNOWN, STARTUP):
            for ev in (st.EV_COMM_UP, st.EV_PARTNER_STATE):
                for prim in (True, False):
                    n = st.next_state(s, ev, p, primary=prim, previous=CI)
                    assert n is None or n in REAL, (s, p, n)
        for ev in range(1, 11):
            n = st.next_state(s, ev, None, primary=False)
            assert n != CD  # §9.12.1: a secondary never enters CONFLICT-DONE


def _run(a, b, steps):
    """Drive two endpoints through (side, event) steps, exchanging states like STATE messages."""
    s = {"a": a, "b": b}
    prim = {"a": True, "b": False}
    trace = []
    for side, ev, kw in steps:
        other = "b" if side == "a" else "a"
        n = st.next_state(s[side], ev, s[other], primary=prim[side], **kw)
        changed = []
        if n is not None:
            s[side] = n
            changed.append(side)
        # every state change is sent as STATE; the partner reacts (§9.2)
        while changed:
            who = changed.pop()
            peer = "b" if who == "a" else "a"
            m = st.next_state(s[peer], st.EV_PARTNER_STATE, s[who], primary=prim[peer])
            if m is not None:
                s[peer] = m
                changed.append(peer)
        trace.append((s["a"], s["b"]))
    return trace


def test_interlock_recovering_partner_against_partner_down():  # Figure 9.5.2-1
    trace = _run(RECOVER, PD, [
        ("a", st.EV_COMM_UP, {}),
        ("b", st.EV_COMM_UP, {}),
        ("a", st.EV_UPDDONE, {}),
        ("a", st.EV_MCLT_EXPIRED, {}),
    ])
    assert trace == [(RECOVER, PD), (RECOVER, PD), (RECOVER_WAIT, PD), (NORMAL, NORMAL)]


def test_two_fresh_servers_reach_normal_as_in_the_isc_capture():
    trace = _run(RECOVER, RECOVER, [
        ("a", st.EV_COMM_UP, {}),
        ("b", st.EV_COMM_UP, {}),
        ("a", st.EV_UPDDONE, {"skip_wait": True}),
        ("b", st.EV_UPDDONE, {"skip_wait": True}),
    ])
    assert trace[-1] == (NORMAL, NORMAL)
    assert trace[2] == (RECOVER_DONE, RECOVER)


def test_normal_comm_failure_and_back():  # Figure 9.9.3-1
    a = nxt(NORMAL, st.EV_COMM_DOWN)  # no STATE crosses a broken link
    b = nxt(NORMAL, st.EV_COMM_DOWN)
    assert a == b == CI
    # reconnect: each side's first STATE from the other reports CI
    assert up(a, b, primary=True) == NORMAL and up(b, a, primary=False) == NORMAL


def test_conflict_resolution_end_to_end():  # Figure 9.10.3-1
    trace = _run(PC, PC, [
        ("a", st.EV_UPDDONE, {}),  # primary got the secondary's updates
        ("b", st.EV_UPDDONE, {}),  # secondary got the primary's
    ])
    assert trace == [(CD, PC), (NORMAL, NORMAL)]


def test_startup_without_operations_meets_partner_down_with_recover():
    """§9.3.2 step 5: a server with no usable record, or one that was in
    RECOVER/RECOVER-WAIT (answering no client), has no operation newer than
    the partner's PARTNER-DOWN: it recovers rather than resolving a conflict."""
    S = st
    for prev in (None, S.RECOVER, S.RECOVER_WAIT):
        assert S.next_state(S.STARTUP, S.EV_COMM_UP, partner_state=S.PARTNER_DOWN,
                            previous=prev) == S.RECOVER, prev
    # a server that served (previous NORMAL -> COMM-INTERRUPTED) after the
    # partner went down has a potential conflict
    prev = S.startup_previous(S.NORMAL)
    assert S.next_state(S.STARTUP, S.EV_COMM_UP, partner_state=S.PARTNER_DOWN,
                        previous=prev) == S.POTENTIAL_CONFLICT
    assert S.next_state(S.STARTUP, S.EV_COMM_UP, partner_state=S.PARTNER_DOWN, previous=prev,
                        partner_down_newer=True) == S.RECOVER
