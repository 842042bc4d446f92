# failover/states.py - the draft-12 §9 failover endpoint state machine, as data.
#
# Tables first, one small pure function over them (`next_state`). Each row
# names the draft-ietf-dhc-failover-12 section it comes from; where the text
# and Figure 9.2-1 differ the text wins (draft §9). Where ISC dhcpd 4.4
# differs (interop §11) we keep the draft; both interlock with ISC, and the
# notes say where. Actions (which message to send, timers) belong to the
# peer; the only action helper here is `request_on`, the UPDREQ/UPDREQALL
# rule, because it is decided by the same table cells.

from dhcpfo.compat import const
from dhcpfo.wire import failover as _w

# State codes: the wire values of option 24, ISC's numbering (interop §6.1).
UNKNOWN = _w.S_UNKNOWN  # ISC's "unknown-state"; we never sit in it
STARTUP = _w.S_STARTUP  # initial state (§9.1); never sent on the wire
NORMAL = _w.S_NORMAL
COMM_INTERRUPTED = _w.S_COMM_INTERRUPTED
PARTNER_DOWN = _w.S_PARTNER_DOWN
POTENTIAL_CONFLICT = _w.S_POTENTIAL_CONFLICT
RECOVER = _w.S_RECOVER
PAUSED = _w.S_PAUSED
SHUTDOWN = _w.S_SHUTDOWN
RECOVER_DONE = _w.S_RECOVER_DONE
RESOLUTION_INTERRUPTED = _w.S_RESOLUTION_INTERRUPTED
CONFLICT_DONE = _w.S_CONFLICT_DONE
RECOVER_WAIT = _w.S_RECOVER_WAIT  # 254: ISC's number, the draft has none

# The names ISC logs ("I move from recover to recover-done").
NAMES = {
    UNKNOWN: "unknown-state", STARTUP: "startup", NORMAL: "normal",
    COMM_INTERRUPTED: "communications-interrupted", PARTNER_DOWN: "partner-down",
    POTENTIAL_CONFLICT: "potential-conflict", RECOVER: "recover", PAUSED: "paused",
    SHUTDOWN: "shutdown", RECOVER_DONE: "recover-done",
    RESOLUTION_INTERRUPTED: "resolution-interrupted", CONFLICT_DONE: "conflict-done",
    RECOVER_WAIT: "recover-wait",
}

# States a partner may report. ISC shuts down on anything else (interop §6.1).
PARTNER_STATES = (UNKNOWN, STARTUP, NORMAL, COMM_INTERRUPTED, PARTNER_DOWN, POTENTIAL_CONFLICT,
                  RECOVER, PAUSED, SHUTDOWN, RECOVER_DONE, RESOLUTION_INTERRUPTED,
                  CONFLICT_DONE, RECOVER_WAIT)


def is_state(v):
    return v in NAMES


def name(state):
    return NAMES.get(state, "state-%d" % state)


# ---------------------------------------------------------------------------
# Service rules per state (what the DHCP side may do).
ANSWER = const(0x01)  # answers DHCP clients at all (0: the state is silent)
RENEW_ONLY = const(0x02)  # only DHCPREQUEST renewing/rebinding, no new clients
BALANCED = const(0x04)  # new clients only from own hash buckets; renewals from all
ALLOCATE = const(0x08)  # may allocate from its own pool (primary FREE, secondary BACKUP)
TAKEOVER = const(0x10)  # may allocate the partner's pool once MCLT has passed since STOS
MCLT_LIMIT = const(0x20)  # lease <= MCLT beyond the partner-acked potential expiry (§5.2.1)
PUSH = const(0x40)  # sends its own binding changes as BNDUPDs (lazy update) unprompted
COMM_OK = const(0x80)  # held only while communicating: losing the link leaves it

_SERVING = ANSWER | ALLOCATE | MCLT_LIMIT | PUSH

SERVICE = {
    STARTUP: 0,  # §9.3.1 MUST be unresponsive
    NORMAL: _SERVING | BALANCED | COMM_OK,  # §9.8.2 load balanced, §9.8.3 lazy update
    COMM_INTERRUPTED: _SERVING,  # §9.9.2 all clients, own pool, MCLT-bounded renewals
    # §9.4.2 all clients; own pool at once, the partner's after MCLT. The
    # MCLT limit is optional in PARTNER-DOWN (§9.4.2); we keep it so a loss
    # of our stable storage stays recoverable.
    PARTNER_DOWN: _SERVING | TAKEOVER,
    POTENTIAL_CONFLICT: COMM_OK,  # §9.10.2 MUST NOT process DHCP requests
    RECOVER: 0,  # §9.5.1 MUST NOT respond
    PAUSED: 0,  # §9.13 the server is going down
    SHUTDOWN: 0,  # §9.14.2 MUST NOT respond
    # §9.7.1 renewals and rebinds only. (ISC answers nobody here, interop §9;
    # answering renewals is what the draft asks and is safe under MCLT.)
    RECOVER_DONE: ANSWER | RENEW_ONLY | MCLT_LIMIT | PUSH,
    RESOLUTION_INTERRUPTED: _SERVING,  # §9.11.2 like COMMUNICATIONS-INTERRUPTED
    CONFLICT_DONE: _SERVING,  # §9.12.2 primary, fully responsive
    RECOVER_WAIT: 0,  # §9.6.1 MUST NOT respond
    UNKNOWN: 0,
}


def service(state):
    """The SERVICE flags of a state (0 for an unknown state)."""
    return SERVICE.get(state, 0)


def answers(state):
    return SERVICE.get(state, 0) & ANSWER != 0


def silent(state):
    return SERVICE.get(state, 0) & ANSWER == 0


def own_pool_status(primary):
    """The binding status of addresses this server may allocate (§5.4)."""
    return _w.B_FREE if primary else _w.B_BACKUP


# ---------------------------------------------------------------------------
# Events.
EV_COMM_UP = const(1)  # communications OK: partner's first STATE on a new link (§8.3)
EV_PARTNER_STATE = const(2)  # partner's STATE changed while communicating (§9.2)
EV_COMM_DOWN = const(3)  # link lost or tReceive expired (§8.3)
EV_ADMIN_PARTNER_DOWN = const(4)  # operator says the partner is down (§9.8.4, §9.9.3, §9.11.3)
EV_SAFE_PERIOD = const(5)  # safe period expired in COMMUNICATIONS-INTERRUPTED (§9.9.3, §10)
EV_MCLT_EXPIRED = const(6)  # RECOVER-WAIT timer fired (§9.6.2)
EV_UPDDONE = const(7)  # UPDDONE received for our UPDREQ/UPDREQALL (§9.5.2, §9.10.3)
EV_STARTUP_TIMER = const(8)  # startup period over without communications (§9.3.2 step 6)
EV_SHUTDOWN = const(9)  # operator stops the server for a long time (§9.14)
EV_PAUSE = const(10)  # operator stops the server briefly (§9.13)

EVENT_NAMES = {
    EV_COMM_UP: "comm-up", EV_PARTNER_STATE: "partner-state", EV_COMM_DOWN: "comm-down",
    EV_ADMIN_PARTNER_DOWN: "admin-partner-down", EV_SAFE_PERIOD: "safe-period-expired",
    EV_MCLT_EXPIRED: "mclt-expired", EV_UPDDONE: "upddone", EV_STARTUP_TIMER: "startup-timer",
    EV_SHUTDOWN: "shutdown", EV_PAUSE: "pause",
}

# "Communications failed" (Figure 9.2-1). States not listed stay as they are:
# RECOVER (§9.5.2), RECOVER-WAIT (§9.6.2), RECOVER-DONE (§9.7.2),
# CONFLICT-DONE (§9.12.3), PARTNER-DOWN (§9.4), and the comm-failed states.
ON_COMM_DOWN = {
    NORMAL: COMM_INTERRUPTED,  # §9.8.4
    POTENTIAL_CONFLICT: RESOLUTION_INTERRUPTED,  # §9.10.3
}

# "Communications OK", keyed by my state, then the partner's state. A
# partner state not listed means: stay.
_ALL_REAL = (NORMAL, COMM_INTERRUPTED, PARTNER_DOWN, POTENTIAL_CONFLICT, RECOVER, PAUSED,
             SHUTDOWN, RECOVER_DONE, RESOLUTION_INTERRUPTED, CONFLICT_DONE, RECOVER_WAIT)
ON_COMM_OK = {
    # §9.9.3. RECOVER, PAUSED: stay. RECOVER-WAIT is not in the text; the
    # figure keeps CI (wait for RECOVER-DONE). ISC would go to NORMAL for
    # RECOVER-WAIT and to PARTNER-DOWN for RECOVER (interop §11).
    COMM_INTERRUPTED: {
        NORMAL: NORMAL, COMM_INTERRUPTED: NORMAL, RECOVER_DONE: NORMAL,
        PARTNER_DOWN: POTENTIAL_CONFLICT, POTENTIAL_CONFLICT: POTENTIAL_CONFLICT,
        CONFLICT_DONE: POTENTIAL_CONFLICT, RESOLUTION_INTERRUPTED: POTENTIAL_CONFLICT,
        SHUTDOWN: PARTNER_DOWN,
    },
    # §9.4.3 (a partner STATE with the STARTUP flag is ignored, see next_state).
    # RECOVER, RECOVER-WAIT, SHUTDOWN, PAUSED: stay.
    PARTNER_DOWN: {
        NORMAL: POTENTIAL_CONFLICT, COMM_INTERRUPTED: POTENTIAL_CONFLICT,
        PARTNER_DOWN: POTENTIAL_CONFLICT, POTENTIAL_CONFLICT: POTENTIAL_CONFLICT,
        RESOLUTION_INTERRUPTED: POTENTIAL_CONFLICT, CONFLICT_DONE: POTENTIAL_CONFLICT,
        RECOVER_DONE: NORMAL,
    },
    # §9.5.2: a resolving partner pulls us into POTENTIAL-CONFLICT; with any
    # other partner state we stay and send UPDREQ/UPDREQALL (request_on).
    RECOVER: {
        POTENTIAL_CONFLICT: POTENTIAL_CONFLICT, RESOLUTION_INTERRUPTED: POTENTIAL_CONFLICT,
        CONFLICT_DONE: POTENTIAL_CONFLICT,
    },
    # §9.6.2: communications have no effect on RECOVER-WAIT.
    RECOVER_WAIT: {},
    # §9.7.2
    RECOVER_DONE: {NORMAL: NORMAL, RECOVER_DONE: NORMAL},
    # §9.11.3: restored communications -> POTENTIAL-CONFLICT, whatever the partner.
    RESOLUTION_INTERRUPTED: dict([(s, POTENTIAL_CONFLICT) for s in _ALL_REAL]),
    # §9.12.3
    CONFLICT_DONE: {NORMAL: NORMAL},
    # §9.10.3: POTENTIAL-CONFLICT is left only by UPDDONE; a partner moving
    # to CONFLICT-DONE makes a secondary send UPDREQ (request_on).
    POTENTIAL_CONFLICT: {},
    # NORMAL is left through the comm-failed rule first (§9.2), so NORMAL
    # here only sees states that keep it NORMAL after the CI row.
    NORMAL: {},
    # §9.13.2, §9.14.3: left only by a restart.
    PAUSED: {},
    SHUTDOWN: {},
}

# Events that do not depend on the partner's state: (my state, event) -> new.
ON_EVENT = {
    (NORMAL, EV_ADMIN_PARTNER_DOWN): PARTNER_DOWN,  # §9.8.4
    (COMM_INTERRUPTED, EV_ADMIN_PARTNER_DOWN): PARTNER_DOWN,  # §9.9.3
    (RESOLUTION_INTERRUPTED, EV_ADMIN_PARTNER_DOWN): PARTNER_DOWN,  # §9.11.3
    (COMM_INTERRUPTED, EV_SAFE_PERIOD): PARTNER_DOWN,  # §9.9.3, §10
    (RECOVER_WAIT, EV_MCLT_EXPIRED): RECOVER_DONE,  # §9.6.2
    (RECOVER, EV_UPDDONE): RECOVER_WAIT,  # §9.5.2
}


def _comm_ok(state, partner_state, partner_startup):
    if state == PARTNER_DOWN and partner_startup:
        return state  # §9.4.3: ignore STATE messages with the STARTUP bit
    row = ON_COMM_OK.get(state)
    if row is None:
        return state
    return row.get(partner_state, state)


def next_state(state, event, partner_state=None, primary=True, previous=None,
               partner_startup=False, partner_down_newer=False, skip_wait=False,
               startup_to_partner_down=False):
    """The state after `event`, or None when the state does not change.

    partner_state: the partner's server-state (EV_COMM_UP, EV_PARTNER_STATE).
    partner_startup: its STATE carried the STARTUP flag.
    primary: our role (POTENTIAL-CONFLICT resolution differs, §9.10.3).
    previous: in STARTUP, the recorded state to resume; it goes through
      startup_previous (None or nothing usable -> RECOVER, NORMAL -> CI, ...).
    partner_down_newer: in STARTUP with the partner in PARTNER-DOWN, its
      start-time-of-state is later than our last recorded operation (§9.3.2 step 5).
    skip_wait: on UPDDONE in RECOVER, the MCLT wait is already over or not
      needed (first run, §9.6.2); go straight to RECOVER-DONE as ISC does.
    startup_to_partner_down: configured to leave STARTUP for PARTNER-DOWN
      when the startup period ends without contact (§9.3.2 step 1).
    """
    new = None
    if event == EV_COMM_UP or event == EV_PARTNER_STATE:
        if partner_state is None or partner_state not in NAMES:
            return None
        if state == STARTUP:
            # §9.3.2 step 5: resume the previous state, unless the partner
            # is in PARTNER-DOWN; then take the comm-OK transition from it.
            base = startup_previous(previous)
            if partner_state == PARTNER_DOWN:
                # A server with no usable record (new, or storage lost and
                # not yet resynchronised: previous None) or that was in
                # RECOVER or RECOVER-WAIT answered no client since (§9.5.1,
                # §9.6.1): it has no operation that can conflict with the
                # partner's, and its bindings may be incomplete, so it goes
                # to RECOVER (and relearns everything) rather than resolving
                # a conflict with UPDREQ only. The simulation found the latter
                # handing out bindings never relearned (seed 95, recrash_wiped).
                if partner_down_newer or previous is None or previous in (RECOVER, RECOVER_WAIT):
                    base = RECOVER
                else:
                    base = POTENTIAL_CONFLICT
            new = _comm_ok(base, partner_state, partner_startup)
        else:
            # §9.2: a partner state change (or a new link while we still
            # thought communications were OK) is the comm-failed transition
            # followed at once by the comm-OK transition.
            new = _comm_ok(ON_COMM_DOWN.get(state, state), partner_state, partner_startup)
    elif event == EV_COMM_DOWN:
        new = ON_COMM_DOWN.get(state)
    elif event == EV_UPDDONE:
        if state == POTENTIAL_CONFLICT:
            new = CONFLICT_DONE if primary else NORMAL  # §9.10.3
        elif state == RECOVER and skip_wait:
            new = RECOVER_DONE  # §9.6.2: the wait may be skipped
        else:
            new = ON_EVENT.get((state, event))
    elif event == EV_STARTUP_TIMER:
        if state == STARTUP:  # §9.3.2 step 6 (the server MAY resume previous)
            if startup_to_partner_down:
                new = PARTNER_DOWN
            else:
                new = startup_previous(previous)
    elif event == EV_SHUTDOWN:
        new = SHUTDOWN  # §9.14
    elif event == EV_PAUSE:
        new = PAUSED  # §9.13
    else:
        new = ON_EVENT.get((state, event))
    if new is None or new == state:
        return None
    return new


def startup_previous(saved=None, partner_down_seen=False):
    """The previous-state a restarting server resumes after STARTUP (§9.3.2 steps 1-2).

    saved: the last state recorded in stable storage, or None. For PAUSED
    and SHUTDOWN the caller records the state held before them (§9.13.1,
    §9.14.1) and passes that. partner_down_seen: while in SHUTDOWN we saw
    the partner enter PARTNER-DOWN (§9.14.2).
    """
    if saved is None or partner_down_seen:
        return RECOVER
    if saved in (UNKNOWN, STARTUP, PAUSED, SHUTDOWN) or saved not in NAMES:
        return RECOVER  # nothing usable recorded: resynchronise
    return ON_COMM_DOWN.get(saved, saved)


def request_on(state, partner_state, primary, full=False):
    """The update request to send with communications OK in `state`, or None.

    RECOVER (§9.5.2): UPDREQALL when `full` (stable storage lost, or the
    partner knows us and we do not know it), else UPDREQ - unless the
    partner is resolving a conflict. POTENTIAL-CONFLICT (§9.10.1, §9.10.3):
    the primary asks at once, the secondary once the primary reports
    CONFLICT-DONE. Send each at most once per link and state.
    """
    if state == RECOVER:
        if partner_state in (POTENTIAL_CONFLICT, RESOLUTION_INTERRUPTED, CONFLICT_DONE):
            return None
        return _w.UPDREQALL if full else _w.UPDREQ
    if state == POTENTIAL_CONFLICT:
        if primary or partner_state == CONFLICT_DONE:
            return _w.UPDREQ
    return None
