"""The safety checker: draft-ietf-dhc-failover-12 rules as small functions.

The world reports what it observes - a client accepting a DHCPACK, a reply
leaving a server, a failover message sent or delivered, a state change, a
crash - as calls on `Checker`. The checker keeps the little history the
rules need (which potential expiration the partner acknowledged, when a
server entered PARTNER-DOWN, ...) and runs the rule functions below; each
returns None or a message, and a message becomes a `Violation`.

Every time is real time in integer milliseconds: the world converts a
server's own clock (core seconds, with that node's skew) before reporting,
so rules compare what really happened, whatever the servers' clocks say.
That is what makes I17 (constant skew) a property of the same checks.

State names are the draft's (as ISC logs them): "normal",
"communications-interrupted", "partner-down", ... Binding statuses are the
draft's numbers (§12.3): FREE=1 ACTIVE=2 EXPIRED=3 RELEASED=4 ABANDONED=5
RESET=6 BACKUP=7. A client is named by its identity bytes as a server keys
it: the client identifier, else htype + chaddr.
"""

FREE = 1
ACTIVE = 2
EXPIRED = 3
RELEASED = 4
ABANDONED = 5
RESET = 6
BACKUP = 7

STARTUP = "startup"
NORMAL = "normal"
CI = "communications-interrupted"
PD = "partner-down"
PC = "potential-conflict"
RECOVER = "recover"
PAUSED = "paused"
SHUTDOWN = "shutdown"
RECOVER_DONE = "recover-done"
RI = "resolution-interrupted"
CD = "conflict-done"
RECOVER_WAIT = "recover-wait"

SILENT = (STARTUP, RECOVER, RECOVER_WAIT, PC, SHUTDOWN, PAUSED)  # §5.9, §9.3.1, §9.5.1, §9.6.1, §9.10.2, §9.14.2
ALLOCATING = (NORMAL, CI, RI, CD, PD)  # states that hand out new addresses

# message types (draft §6.1 / ISC numbering)
BNDUPD = 3
BNDACK = 4
CONNECT = 5
CONNECTACK = 6
UPDREQALL = 7
UPDDONE = 8
UPDREQ = 9
STATE_MSG = 10

INVARIANTS = {
    "I1": "no address held by two clients",
    "I2": "client lease <= partner's acknowledged potential expiration + MCLT",
    "I3": "first lease <= MCLT",
    "I4": "nothing acknowledged before it is durable",
    "I5": "each available address owned by at most one server; own pool only in NORMAL/CI",
    "I6": "no reuse for another client before the partner acknowledged release/expiry",
    "I7": "renewals in COMMUNICATIONS-INTERRUPTED capped by MCLT",
    "I8": "PARTNER-DOWN waits MCLT before partner-owned or other clients' addresses",
    "I9": "PARTNER-DOWN entered only by command or safe period, never while the partner serves",
    "I10": "silent states stay silent",
    "I11": "RECOVER-WAIT lasts MCLT past the last service",
    "I12": "lost storage recovers through UPDREQALL before serving",
    "I13": "conflict resolution order",
    "I14": "failover state survives crashes",
    "I15": "both servers use the primary's MCLT",
    "I16": "with faults healed both servers reach NORMAL and serve",
    "I17": "partner times are translated so skew never shortens a binding",
}


class Violation:
    __slots__ = ("inv", "t", "node", "msg")

    def __init__(self, inv, t, node, msg):
        self.inv = inv
        self.t = t
        self.node = node
        self.msg = msg

    def __repr__(self):
        return "%s at t=%.3fs%s: %s" % (self.inv, self.t / 1000.0, " [%s]" % self.node if self.node else "", self.msg)


class Reply:
    """A DHCP reply a server sent (fields filled by the world)."""

    __slots__ = ("node", "state", "req_type", "req_ciaddr", "secs_phase", "reply_type", "addr", "client",
                 "lease_end", "t_floor", "prior", "durable")

    def __init__(self, node, state, req_type, reply_type, addr=None, client=None, lease_end=None, t_floor=None,
                 prior=None, durable=None, req_ciaddr=False):
        self.node = node
        self.state = state  # failover state at input time, None for a standalone server
        self.req_type = req_type  # DHCP message type of the request
        self.req_ciaddr = req_ciaddr  # request had ciaddr set (renewing/rebinding)
        self.reply_type = reply_type
        self.addr = addr  # yiaddr (bytes) for OFFER/ACK
        self.client = client  # client identity bytes
        self.lease_end = lease_end  # real ms the server's lease ends (server's view)
        self.t_floor = t_floor  # real ms of the server's 'now' (its clock's whole second)
        self.prior = prior  # (status, client, expiry_ms) durable before the input, or None
        self.durable = durable  # (status, client, expiry_ms) durable when the reply left


class Binding:
    """What a BNDUPD says (times already in real ms)."""

    __slots__ = ("addr", "status", "client", "lease_end", "pexp")

    def __init__(self, addr, status, client, lease_end=None, pexp=None):
        self.addr = addr
        self.status = status
        self.client = client
        self.lease_end = lease_end
        self.pexp = pexp


# ---------------------------------------------------------------------------
# The rules. Each takes the checker and the facts of one event and returns a
# message (violated), None (held) or NA: the rule's situation did not arise
# (its precondition is false), so it was not exercised and is not counted.

NA = ("not applicable",)


def i1_no_duplicate(ck, t, client, addr, end):
    """I1 (draft-12 §9.9: "No duplicate IP address allocation can occur"):
    at no instant do two clients hold unexpired leases (by their own clocks)
    on the same address."""
    holders = ck.holders.get(addr)
    if not holders:
        return None
    for other, other_end in holders.items():
        if other != client and other_end > t:
            return "%s acked %s until %.3fs while %s holds it until %.3fs" % (
                ck.cname(client), ip(addr), end / 1000.0, ck.cname(other), other_end / 1000.0)
    return None


def i2_mclt_bound(ck, r, t):
    """I2 (§5.2.1): "the lease expiration time known to a DHCP client MUST NOT
    be more than the maximum client lead time greater than the potential
    expiration time known to a server's partner"; §9.8.3: never more than MCLT
    beyond the later of now and the potential-expiration-time received from
    the partner (the one it acknowledged, or the one it sent us)."""
    known = ck.partner_knows(r.node, r.addr, r.client)
    if known is None:
        return NA  # I3 covers a binding the partner knows nothing about
    base = known if known > r.t_floor else r.t_floor
    if r.lease_end > base + ck.mclt:
        return "ack to %s for %s ends %.3fs > partner-known %.3fs + MCLT %ds" % (
            ck.cname(r.client), ip(r.addr), r.lease_end / 1000.0, base / 1000.0, ck.mclt // 1000)
    return None


def i3_first_lease(ck, r, t):
    """I3 (§5.2.1): "the offer made to the client is for the remainder of the
    current acknowledged potential lease interval (i.e., zero) plus the MCLT":
    a binding the partner has no potential expiration for gets at most MCLT."""
    if ck.partner_knows(r.node, r.addr, r.client) is not None:
        return NA
    if r.state in (CI, RI) and r.prior is not None and r.prior[1] == r.client:
        return NA  # §9.9.2 renewal of the current lease: I7
    if r.lease_end > r.t_floor + ck.mclt:
        return "first lease to %s for %s is %ds > MCLT %ds" % (
            ck.cname(r.client), ip(r.addr), (r.lease_end - r.t_floor) // 1000, ck.mclt // 1000)
    return None


def i4_durable_ack(ck, r, t):
    """I4 (§3.1.3, §5.2.1): a server must update stable storage before it
    sends the DHCPACK: when the ACK leaves, the sender's flash already holds
    the binding for this client, lasting at least as long as the lease."""
    d = r.durable
    if d is None or d[0] != ACTIVE or d[1] != r.client:
        return "DHCPACK of %s to %s left before the binding was durable (flash has %r)" % (
            ip(r.addr), ck.cname(r.client), d)
    if r.lease_end is not None and d[2] < r.lease_end:
        return "DHCPACK of %s to %s until %.3fs but flash says %.3fs" % (
            ip(r.addr), ck.cname(r.client), r.lease_end / 1000.0, d[2] / 1000.0)
    return None


def i4_durable_bndack(ck, node, b, durable, t):
    """I4 (§5.2.1 DISCUSSION): "A server MUST NOT send a BNDACK in response to
    a BNDUPD message until it is sure that the information in the BNDUPD
    message resides in its stable storage"."""
    if durable is None:
        return "BNDACK for %s left but flash has no record" % ip(b.addr)
    st, client, expiry = durable[0], durable[1], durable[2]
    if b.status == ACTIVE:
        if st != ACTIVE or client != b.client:
            return "BNDACK for ACTIVE %s (%s) left but flash has status %d for %s" % (
                ip(b.addr), ck.cname(b.client), st, ck.cname(client))
    elif st == ACTIVE and b.status != ACTIVE and client == b.client and expiry > t:
        return "BNDACK for %s status %d left but flash still has it ACTIVE" % (ip(b.addr), b.status)
    return None


def i5_own_pool(ck, r, t):
    """I5 (§9.9.2): "When allocating new IP addresses, each server allocates
    from its own IP address pool, where the primary MUST allocate only FREE
    IP addresses, and the secondary MUST allocate only BACKUP IP addresses"
    (NORMAL: §5.4, the same pools)."""
    if r.state not in (NORMAL, CI) or not ck.new_allocation(r):
        return NA
    st = r.prior[0] if r.prior is not None else FREE
    role = ck.roles.get(r.node)
    if role == "primary" and st == BACKUP:
        return "primary in %s allocated BACKUP address %s to %s" % (r.state, ip(r.addr), ck.cname(r.client))
    if role == "secondary" and st != BACKUP:
        return "secondary in %s allocated %s (status %d, not BACKUP) to %s" % (
            r.state, ip(r.addr), st, ck.cname(r.client))
    return None


def i5_single_owner(ck, t, addr, owners):
    """I5 (§5.4): "each available address is owned by at most one server":
    FREE addresses are the primary's, BACKUP ones the secondary's, and no
    address may be allocatable by both servers at once."""
    if len(owners) > 1:
        return "%s allocatable by %s at once" % (ip(addr), " and ".join(owners))
    return None


def i6_no_silent_reuse(ck, r, t):
    """I6 (§5.2.2): "In any other state [than PARTNER-DOWN], a server cannot
    reallocate an address from one client to another client without first
    notifying its partner (through a BNDUPD message) and receiving
    acknowledgement (through a BNDACK message) that its partner is aware that
    that first client is not using the address"."""
    if r.state is None or r.state == PD or not ck.new_allocation(r):
        return NA
    prev = r.prior[1] if r.prior is not None else None
    if prev is None:
        return NA
    if ck.partner_cleared(r.node, r.addr):
        return None
    return "%s gave %s to %s before the partner acknowledged that %s stopped using it" % (
        r.state, ip(r.addr), ck.cname(r.client), ck.cname(prev))


def i7_ci_renewal_cap(ck, r, t):
    """I7 (§9.9.2): in COMMUNICATIONS-INTERRUPTED (and §9.11.2
    RESOLUTION-INTERRUPTED) "the renewal period MUST NOT exceed the maximum
    client lead time (MCLT) beyond the latest of: 1) the potential-expiration-
    time already acknowledged by the other server, or 2) the
    lease-expiration-time, or 3) the potential-expiration-time received from
    the partner server"."""
    base = r.t_floor
    k = ck.partner_knows(r.node, r.addr, r.client)
    if k is not None and k > base:
        base = k
    if r.prior is not None and r.prior[1] == r.client and r.prior[2] > base:
        base = r.prior[2]
    if r.lease_end > base + ck.mclt:
        return "%s lease to %s for %s ends %.3fs > %.3fs + MCLT" % (
            r.state, ck.cname(r.client), ip(r.addr), r.lease_end / 1000.0, base / 1000.0)
    return None


def i8_pd_waits(ck, r, t):
    """I8 (§9.4.2): "Any IP address tagged as available for allocation by the
    other server (at entry to PARTNER-DOWN state) MUST NOT be allocated to a
    new client until the maximum-client-lead-time beyond the entry into
    PARTNER-DOWN state has elapsed", and an address "MUST NOT [go to] a DHCP
    client different from that to which it was allocated at the entrance to
    PARTNER-DOWN state until the maximum-client-lead-time beyond the maximum
    of the following times: client expiration time, most recently transmitted
    potential-expiration-time, most recently received ack of
    potential-expiration-time from the partner, and most recently acked
    potential-expiration-time to the partner"."""
    if r.state != PD or not ck.new_allocation(r):
        return NA
    entry = ck.pd_entry.get(r.node)
    if entry is None:
        return NA
    role = ck.roles.get(r.node)
    st = r.prior[0] if r.prior is not None else FREE
    partner_pool = BACKUP if role == "primary" else FREE
    prev = r.prior[1] if r.prior is not None else None
    partner_owned = st == partner_pool and prev is None
    reuse = prev is not None and prev != r.client and not ck.partner_cleared(r.node, r.addr)
    if not partner_owned and not reuse:
        return NA  # an address of our own pool, nobody else's: nothing to wait for
    if partner_owned and t < entry + ck.mclt:
        return "partner-owned %s allocated %.3fs after entering PARTNER-DOWN (< MCLT)" % (
            ip(r.addr), (t - entry) / 1000.0)
    if reuse:
        if ck.granted_in_pd(r.node, r.addr, prev):
            need = r.prior[2]
        else:
            m = ck.times_for(r.node, r.addr, prev)
            if r.prior[2] > m:
                m = r.prior[2]
            if entry > m:
                m = entry
            need = m + ck.mclt
        if t < need:
            return "%s of %s reused for %s in PARTNER-DOWN %.3fs too early" % (
                ip(r.addr), ck.cname(prev), ck.cname(r.client), (need - t) / 1000.0)
    return None


def i9_pd_entry(ck, node, t, cause, partner_serving):
    """I9 (§9.4.2): "Once a server has entered NORMAL state, the PARTNER-DOWN
    state is entered only on command of an external agency ... or after the
    expiration of an externally configured minimum safe-time after the
    beginning of COMMUNICATIONS-INTERRUPTED state" (a partner in SHUTDOWN,
    §9.8.4/§9.9.3, or the state saved before a restart, §9.3.2, also lead
    there); and §9.4: "If one server is in PARTNER-DOWN state, the other
    server MUST NOT be operating"."""
    if cause is None:
        return "entered PARTNER-DOWN without command, safe period or partner shutdown"
    if partner_serving and cause in ("admin", "safe-period"):
        return "entered PARTNER-DOWN (%s) while the partner was serving clients" % cause
    return None


def i10_silent(ck, r, t):
    """I10 (§9.3.1, §9.5.1, §9.6.1, §9.10.2, §9.14.2): a server in STARTUP,
    RECOVER, RECOVER-WAIT, POTENTIAL-CONFLICT or SHUTDOWN (and PAUSED) "MUST
    NOT respond to DHCP client requests"; §9.7.1: in RECOVER-DONE it "MUST
    respond only to DHCPREQUEST/RENEWAL and DHCPREQUEST/REBINDING"."""
    if r.state in SILENT:
        return "sent a %s in %s" % (TYPE_NAMES.get(r.reply_type, r.reply_type), r.state)
    if r.state == RECOVER_DONE and not (r.req_type == 3 and r.req_ciaddr):
        return "answered a %s in recover-done" % TYPE_NAMES.get(r.req_type, r.req_type)
    return None


def i11_recover_wait(ck, node, t, old):
    """I11 (§9.6.2): RECOVER-WAIT ends no sooner than "a time equal to the time
    the server went down (if known) or the time the server started (if the
    down-time is unknown) plus the maximum-client-lead-time" - unless it never
    ran before. Safety core checked here: RECOVER-DONE is reached no sooner
    than MCLT after this server last acknowledged any client."""
    last = ck.last_ack.get(node)
    if last is None:
        return NA  # it never answered a client: nothing to wait out
    if t < last + ck.mclt:
        return "%s -> recover-done %.3fs after its last DHCPACK (< MCLT %ds)" % (
            old, (t - last) / 1000.0, ck.mclt // 1000)
    return None


def i12_storage_loss(ck, node, t, what):
    """I12 (§9.5.2): a server that lost its stable storage "MUST send an
    UPDREQALL message" and serves no client before the UPDDONE and
    RECOVER-DONE (§9.5.1, §9.6.1); §9.4.3: a server in PARTNER-DOWN "ignores
    all STATE messages from its partner that have the STARTUP bit set".
    `what` is the violation found by the caller, None when its situation
    arose and the rule held."""
    return what


def i13_conflict_order(ck, node, t, old, new):
    """I13 (§9.10.3): "Whenever either server receives an UPDDONE message from
    its partner while in POTENTIAL-CONFLICT state, it MUST transition to a new
    state. The primary MUST transition to CONFLICT-DONE state, and the
    secondary MUST transition to NORMAL state"; communications failure leads
    to RESOLUTION-INTERRUPTED; §9.12.3: CONFLICT-DONE goes to NORMAL when the
    secondary has entered NORMAL."""
    role = ck.roles.get(node)
    if old == PC:
        if new == RI:
            return None if not ck.connected.get(node) else "potential-conflict -> resolution-interrupted while connected"
        if new in (SHUTDOWN, PAUSED):
            return None
        info = ck.pc_progress.get(node, ())
        if "upddone" not in info:
            return "potential-conflict -> %s without UPDREQ/UPDDONE" % new
        if new == CD and role != "primary":
            return "secondary entered conflict-done"
        if new == NORMAL and role != "secondary":
            return "primary went potential-conflict -> normal (must be conflict-done)"
        if new not in (CD, NORMAL):
            return "potential-conflict -> %s" % new
    if old == CD and new == NORMAL and ck.partner_state.get(node) != NORMAL:
        return "conflict-done -> normal while the partner is %s" % ck.partner_state.get(node)
    return None


def previous_state(state):
    """§9.3.2 steps 1-2: the previous-state a restart resumes from a recorded
    state (none recorded: RECOVER; a communications-OK state: the result of
    its communications-failed transition)."""
    if state is None or state == STARTUP:
        return RECOVER
    if state == NORMAL:
        return CI
    if state == PC:
        return RI
    return state


def i14_state_durable(ck, node, t, restored, stos):
    """I14 (§9.2): "Whenever a server makes a transition into a new state, it
    MUST record the state and the time at which it entered that state in
    stable storage"; "The current state of a server MUST be recorded in stable
    storage and thus be available to the server after a server restart". So a
    restart resumes (§9.3.2) from the last recorded transition: same
    previous-state, same start time of state."""
    want = ck.durable_state.get(node)
    cand = ck.torn_state.get(node)
    for w in (want, cand):
        if w is None:
            continue
        if previous_state(w[0]) == previous_state(restored) and w[1] == stos:
            return None
    if want is None and previous_state(restored) == RECOVER:
        return None  # nothing recorded: a restart must resynchronise (RECOVER)
    if want is not None and want[0] in (SHUTDOWN, PAUSED) and want[1] == stos:
        # A restart from SHUTDOWN/PAUSED resumes the state held before it
        # (§9.13.1, §9.14.1), or RECOVER when the partner entered
        # PARTNER-DOWN meanwhile (§9.14.2: "MUST record RECOVER state as the
        # previous state to be used when it is restarted"). While that
        # restart is still in STARTUP its record holds the previous state it
        # resumes, with the start time unchanged; a crash there restores it
        # (seeds 31244, 31453, 32077).
        resumed = previous_state(restored)
        if resumed == previous_state(ck.before_stop.get(node)) or (want[0] == SHUTDOWN and resumed == RECOVER):
            return None
    return "restored %s (since %s), last recorded transition %r" % (restored, stos, want)


def i15_mclt(ck, node, t, mclt_s):
    """I15 (§5.2.1): the MCLT "MUST be the same and known to both the primary
    and secondary servers. The secondary server determines the MCLT from the
    MCLT option sent from the primary server ... in the CONNECT message"."""
    if mclt_s * 1000 != ck.mclt:
        return "uses MCLT %ds, the primary's is %ds" % (mclt_s, ck.mclt // 1000)
    return None


def i16_liveness(ck, t, states, heal_t, reached, bound_ms, starving):
    """I16 (§9.9, liveness): with communications restored and no further
    faults, both servers reach NORMAL within a bounded time, and a server
    keeps serving the clients that reach it."""
    bad = [n for n, s in states.items() if s != NORMAL]
    if bad:
        return "%s not NORMAL %.0fs after faults healed (%s)" % (
            ", ".join(bad), (t - heal_t) / 1000.0, ", ".join("%s=%s" % kv for kv in sorted(states.items())))
    late = [n for n, r in reached.items() if r is None or r - heal_t > bound_ms]
    if late:
        return "%s reached NORMAL later than %ds after healing" % (", ".join(late), bound_ms // 1000)
    if starving:
        return "%d active clients without an address at the end (%s)" % (
            len(starving), ", ".join(ck.cname(c) for c in starving[:5]))
    return None


def i17_translated(ck, node, t, b, stored_end, stored_pexp):
    """I17 (§5.10): "The failover protocol is designed to operate between two
    servers whose time values are not closely synchronized" - a time the
    partner sends must be corrected by the difference between the clocks, so
    that under any constant skew the receiver never believes a binding ends
    (or may be reused) earlier in real time than the sender does (I1-I8 then
    hold as without skew)."""
    if b.lease_end is not None and stored_end is not None and stored_end + ck.slack < b.lease_end:
        return "%s: stored lease end %.3fs, partner sent %.3fs (real time)" % (
            ip(b.addr), stored_end / 1000.0, b.lease_end / 1000.0)
    if b.pexp is not None and stored_pexp is not None and stored_pexp + ck.slack < b.pexp:
        return "%s: stored potential expiration %.3fs, partner sent %.3fs (real time)" % (
            ip(b.addr), stored_pexp / 1000.0, b.pexp / 1000.0)
    return None


TYPE_NAMES = {1: "DHCPDISCOVER", 2: "DHCPOFFER", 3: "DHCPREQUEST", 4: "DHCPDECLINE", 5: "DHCPACK",
              6: "DHCPNAK", 7: "DHCPRELEASE", 8: "DHCPINFORM"}


def ip(b):
    if b is None:
        return "?"
    return "%d.%d.%d.%d" % (b[0], b[1], b[2], b[3])


# ---------------------------------------------------------------------------


class Checker:
    """Collects observations and reports violations of I1-I17.

    roles: node name -> "primary" | "secondary" | "standalone".
    mclt_s: the primary's MCLT. safe_period: node -> seconds or None.
    names: optional client identity -> printable name.
    """

    def __init__(self, roles, mclt_s, safe_period=None, names=None, slack_ms=0):
        self.roles = dict(roles)
        self.mclt = mclt_s * 1000
        self.safe_period = dict(safe_period or {})
        self.names = names if names is not None else {}
        self.slack = slack_ms
        self.violations = []
        self.seen = set()
        self.checks = {}  # invariant -> evaluations (how much each rule was exercised)
        self.holders = {}  # addr -> {client: end_ms}
        self.acked = {}  # (node, addr, client) -> max potential expiration the partner acknowledged
        self.received = {}  # (node, addr, client) -> max time the partner told us (accepted)
        self.sent_times = {}  # (node, addr, client) -> max pexp/lease end this node sent
        self.cleared = {}  # (node, addr) -> partner acknowledged the last client is gone
        self.epoch = {}  # (node, addr) -> bumps whenever the binding becomes ACTIVE
        self.inflight = {}  # (conn, xid) -> (node, Binding, epoch)
        self.delivered = {}  # (conn, xid) -> (node, Binding) BNDUPD delivered to node, awaiting its BNDACK
        self.pd_entry = {}  # node -> real ms of entering PARTNER-DOWN (while in it)
        self.pd_grants = {}  # (node, addr) -> client granted in the current PD period
        self.state = {}  # node -> failover state name
        self.state_since = {}  # node -> real ms of entering it
        self.partner_state = {}  # node -> last partner state delivered to it
        self.connected = {}
        self.last_ack = {}  # node -> real ms of its last DHCPACK with a lease
        self.wiped = {}  # node -> progress set while recovering lost storage
        self.pc_progress = {}
        self.durable_state = {}  # node -> (state, stos) of the last recorded transition
        self.torn_state = {}  # node -> transition whose record a crash may have half-written
        self.reached_normal = {}
        self.up = {}  # node -> running
        self.before_stop = {}  # node -> state held when it entered SHUTDOWN/PAUSED
        self.limit = 50  # stop recording after this many violations

    # ----------------------------------------------------------- utilities

    def cname(self, client):
        if client is None:
            return "nobody"
        n = self.names.get(client)
        if n is not None:
            return n
        return "client " + "".join("%02x" % x for x in client)

    def report(self, inv, t, node, msg):
        """Count an evaluation of `inv` (unless its situation did not arise:
        msg is NA) and record a violation (msg a text)."""
        if msg is NA:
            return
        c = self.checks
        c[inv] = c.get(inv, 0) + 1
        if msg is None:
            return
        if len(self.violations) < self.limit or inv not in self.seen:
            self.violations.append(Violation(inv, t, node, msg))
        self.seen.add(inv)

    def ok(self):
        return not self.violations

    def kinds(self):
        return sorted(self.seen, key=lambda s: int(s[1:]))

    def partner_knows(self, node, addr, client):
        """Latest time the partner has recorded for this binding, or None."""
        a = self.acked.get((node, addr, client))
        b = self.received.get((node, addr, client))
        if a is None:
            return b
        if b is None or a > b:
            return a
        return b

    def times_for(self, node, addr, client):
        """Max of every potential expiration / lease end this node sent,
        received or had acknowledged for the binding (for I8)."""
        m = 0
        for d in (self.acked, self.received, self.sent_times):
            v = d.get((node, addr, client))
            if v is not None and v > m:
                m = v
        return m

    def partner_cleared(self, node, addr):
        return self.cleared.get((node, addr), True)

    def granted_in_pd(self, node, addr, client):
        return self.pd_grants.get((node, addr)) == client

    def new_allocation(self, r):
        """An ACK handing r.addr to a client that did not hold it on this server."""
        if r.reply_type != 5 or r.addr is None:
            return False
        if r.prior is None:
            return True
        st, prev = r.prior[0], r.prior[1]
        if prev == r.client:
            return False
        return True

    # ----------------------------------------------------------- client side

    def client_acked(self, t, client, addr, start, end, server=None):
        self.report("I1", t, None, i1_no_duplicate(self, t, client, addr, end))
        h = self.holders.get(addr)
        if h is None:
            h = self.holders[addr] = {}
        h[client] = end

    def client_dropped(self, t, client, addr):
        h = self.holders.get(addr)
        if h is not None and client in h:
            h[client] = t if h[client] > t else h[client]

    # ----------------------------------------------------------- DHCP replies

    def reply(self, t, r):
        """A server sent a DHCP reply (after its commit): r is a Reply."""
        node = r.node
        failover = self.roles.get(node) in ("primary", "secondary")
        if failover:
            self.report("I10", t, node, i10_silent(self, r, t))
            w = self.wiped.get(node)
            if w is not None and r.reply_type in (2, 5, 6):
                self.report("I12", t, node, i12_storage_loss(
                    self, node, t, None if "upddone" in w else
                    "answered a client after losing storage before UPDREQALL/UPDDONE"))
        if r.reply_type != 5 or r.addr is None or r.lease_end is None:
            return
        self.report("I4", t, node, i4_durable_ack(self, r, t))
        if failover:
            if r.state in (CI, RI):
                self.report("I7", t, node, i7_ci_renewal_cap(self, r, t))
            elif r.state != PD:
                self.report("I2", t, node, i2_mclt_bound(self, r, t))
            if r.state != PD:
                self.report("I3", t, node, i3_first_lease(self, r, t))
            self.report("I5", t, node, i5_own_pool(self, r, t))
            self.report("I6", t, node, i6_no_silent_reuse(self, r, t))
            self.report("I8", t, node, i8_pd_waits(self, r, t))
            if r.state == PD:
                self.pd_grants[(node, r.addr)] = r.client
        self.last_ack[node] = t

    def binding_changed(self, t, node, addr, status):
        """A record for addr was committed on node with this status."""
        if status == ACTIVE:
            k = (node, addr)
            self.epoch[k] = self.epoch.get(k, 0) + 1
            self.cleared[k] = False

    # ----------------------------------------------------------- failover messages

    def peer_sent(self, t, node, conn, mtype, xid, b=None, durable=None, reject=None, mclt_s=None):
        """node sent a failover message on conn (after its commit)."""
        if mtype == BNDUPD and b is not None:
            key = (node, b.addr, b.client)
            for v in (b.pexp, b.lease_end):
                if v is not None and v > self.sent_times.get(key, 0):
                    self.sent_times[key] = v
            self.inflight[(conn, node, xid)] = (node, b, self.epoch.get((node, b.addr), 0))
        elif mtype == BNDACK:
            d = self.delivered.pop((conn, node, xid), None)
            if d is None or reject is not None:
                return
            b = d[1]
            self.report("I4", t, node, i4_durable_bndack(self, node, b, durable, t))
            key = (node, b.addr, b.client)
            best = self.received.get(key)
            for v in (b.pexp, b.lease_end):
                if v is not None and (best is None or v > best):
                    best = v
            if best is not None:
                self.received[key] = best
            if b.status != ACTIVE:
                self.cleared[(node, b.addr)] = True
        elif mtype == CONNECT and mclt_s is not None and self.roles.get(node) == "primary":
            self.report("I15", t, node, i15_mclt(self, node, t, mclt_s))
        elif mtype == UPDREQALL:
            w = self.wiped.get(node)
            if w is not None:
                w.discard("upddone")
                w.add("updreqall")
        elif mtype == UPDREQ:
            if self.state.get(node) == PC:
                self.pc_progress.setdefault(node, set()).add("updreq")
            w = self.wiped.get(node)
            if w is not None and self.state.get(node) == RECOVER:
                self.report("I12", t, node, i12_storage_loss(
                    self, node, t, None if "updreqall" in w else
                    "sent UPDREQ, not UPDREQALL, after losing storage"))

    def peer_delivered(self, t, node, conn, mtype, xid, b=None, reject=None, sender=None,
                       partner_state=None, startup_flag=False, state_before=None, state_after=None):
        """A failover message from `sender` was processed by `node`."""
        if mtype == BNDUPD and b is not None:
            self.delivered[(conn, node, xid)] = (node, b)
        elif mtype == BNDACK:
            ent = self.inflight.pop((conn, node, xid), None)
            if ent is None or reject is not None:
                return
            _n, b, ep = ent
            key = (node, b.addr, b.client)
            if b.pexp is not None and b.pexp > self.acked.get(key, 0):
                self.acked[key] = b.pexp
            if b.status != ACTIVE and self.epoch.get((node, b.addr), 0) == ep:
                self.cleared[(node, b.addr)] = True
        elif mtype == UPDDONE:
            w = self.wiped.get(node)
            if w is not None and "updreqall" in w:
                w.add("upddone")
            if self.state.get(node) == PC and "updreq" in self.pc_progress.get(node, ()):
                self.pc_progress[node].add("upddone")
        elif mtype == STATE_MSG and partner_state is not None:
            if startup_flag and state_before == PD:
                self.report("I12", t, node, i12_storage_loss(
                    self, node, t, None if state_after == PD else
                    "left partner-down on a STATE with the STARTUP bit (-> %s)" % state_after))
            if not startup_flag:
                self.partner_state[node] = partner_state

    def translated(self, t, node, b, stored_end, stored_pexp):
        """node accepted the partner's BNDUPD b and stored these (real ms) times."""
        self.report("I17", t, node, i17_translated(self, node, t, b, stored_end, stored_pexp))

    def mclt_in_use(self, t, node, mclt_s):
        self.report("I15", t, node, i15_mclt(self, node, t, mclt_s))

    # ----------------------------------------------------------- states

    def state_changed(self, t, node, old, new, cause=None, partner_serving=False):
        if new in (SHUTDOWN, PAUSED) and old not in (SHUTDOWN, PAUSED):
            # §9.13.1, §9.14.1: what a restart resumes (from STARTUP: the
            # previous-state it was about to resume)
            if old == STARTUP:
                d = self.durable_state.get(node)
                self.before_stop[node] = previous_state(d[0] if d is not None else None)
            else:
                self.before_stop[node] = old
        self.state[node] = new
        self.state_since[node] = t
        if new == PD:
            self.pd_entry[node] = t
            self.pd_grants = dict((k, v) for k, v in self.pd_grants.items() if k[0] != node)
            self.report("I9", t, node, i9_pd_entry(self, node, t, cause, partner_serving))
        elif old == PD:
            self.pd_entry.pop(node, None)
        if new == RECOVER_DONE and old != STARTUP:
            # resuming RECOVER-DONE after a restart with intact storage
            # (§9.3.2 resumes the previous state) is not a way out of the wait
            self.report("I11", t, node, i11_recover_wait(self, node, t, old))
        if old == PC or (old == CD and new == NORMAL):
            self.report("I13", t, node, i13_conflict_order(self, node, t, old, new))
        if new == PC:
            self.pc_progress[node] = set()
        if new in (NORMAL, RECOVER_DONE):
            w = self.wiped.get(node)
            if w is not None:
                self.report("I12", t, node, i12_storage_loss(
                    self, node, t, None if "upddone" in w else
                    "reached %s after losing storage without UPDREQALL/UPDDONE" % new))
                self.wiped.pop(node, None)
        if new == NORMAL:
            self.reached_normal[node] = t

    def link(self, t, node, up):
        self.connected[node] = up
        if up:
            self.pd_grants = dict((k, v) for k, v in self.pd_grants.items() if k[0] != node)

    def recorded_state(self, t, node, state, stos):
        """A commit made this (state, start time) durable on node."""
        self.durable_state[node] = (state, stos)
        self.torn_state.pop(node, None)

    def crashed(self, t, node, torn_transition=None):
        """node lost power; torn_transition: a transition whose record was in the torn batch."""
        self.up[node] = False
        self.torn_state[node] = torn_transition
        self.connected[node] = False

    def wiped_storage(self, t, node):
        self.wiped[node] = set()
        self.durable_state.pop(node, None)
        self.torn_state.pop(node, None)

    def restarted(self, t, node, restored, stos):
        self.up[node] = True
        self.report("I14", t, node, i14_state_durable(self, node, t, restored, stos))
        self.torn_state.pop(node, None)
        if restored is not None:
            self.durable_state[node] = (restored, stos)

    # ----------------------------------------------------------- pool

    def pool(self, t, conflicts):
        """A scan of the pool while both servers allocate: conflicts is a list
        of (addr, owners) with more than one owner (empty: I5 held)."""
        if not conflicts:
            self.report("I5", t, None, None)
        for addr, owners in conflicts:
            self.report("I5", t, None, i5_single_owner(self, t, addr, owners))

    # ----------------------------------------------------------- end of run

    def liveness(self, t, states, heal_t, bound_ms, starving):
        reached = dict((n, self.reached_normal.get(n)) for n in states)
        for n in reached:
            if reached[n] is not None and reached[n] < heal_t and states[n] == NORMAL:
                reached[n] = heal_t
        self.report("I16", t, None, i16_liveness(self, t, states, heal_t, reached, bound_ms, starving))
