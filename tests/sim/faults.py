"""Scenarios and fault schedules drawn from a seed.

`Scenario.from_seed(seed)` fixes everything about one run: one node or a
failover pair, pool and population, lease time, MCLT, mode, safe period,
authentication, the constant clock skew of each node, how long the faulty
phase lasts. `FaultPlan` then injects faults during that phase from its own
seeded RNG: failover-link partitions (both directions or one), connection
resets, DHCP loss / duplication / reordering, a server cut off the client
segment, crashes (between turns, or in the middle of a commit with a torn
write), restarts with or without wiped storage, wall clock jumps (forward
and back, up to 5 minutes) and operator commands (partner-down, shutdown).
Each node's clock has a kind (world.py): a trusted clock at boot, a board
without one that restarts its count at 0 and learns wall time from its
partner, or a board whose NTP answers some time after boot.

Every fault respects what draft-12 asks of the operator, because a protocol
cannot be faulted for what it says must not happen (docs/simulation.md):

* partner-down is commanded only while the partner is really down, and a
  server that may have been declared down comes back only while it can
  reach its partner (§9.4 "If one server is in PARTNER-DOWN state, the other
  server MUST NOT be operating"; §9.3.2 step 6, "reasons to wait");
* with a safe period configured, a partition between two running servers
  heals before the safe period can expire (§10: the safe period is the
  operator's promise that a longer silence means the partner is down);
* storage is wiped on one server at a time, never while the other one is
  itself recovering its bindings (both copies lost is outside the model);
* wall clock skews stay within the configured time_skew_max between nodes
  that have wall time (beyond it the draft refuses the partner: TIME
  MISMATCH). Local time never steps (compat.Clock); a wall clock jump is an
  NTP correction of the node's offset (Node.set_wall). A node that is off
  has its clock set back only, never ahead: a trusted clock that is ahead
  when the node boots shortens what the restart carries over, the one clock
  duty docs/time.md leaves the operator.

After the faulty phase everything heals - partitions, loss, dead or shut
down servers restart - and a quiet period follows, at the end of which I16
(liveness) is checked.
"""

import random

from dhcpfo.failover import states as S

from sim import invariants as inv

PRESETS = ("ci", "soak")


class Scenario:
    """Everything one seed decides before the run starts."""

    def __init__(self, seed):
        self.seed = seed

    @classmethod
    def from_seed(cls, seed, preset="ci"):
        r = random.Random(seed)
        sc = cls(seed)
        sc.preset = preset
        sc.nodes = 1 if r.random() < 0.08 else 2
        big = preset == "soak"
        sc.pool = r.choice((24, 32, 48) if not big else (48, 64, 96))
        sc.population = r.randrange(8, 20) if not big else r.randrange(20, 48)
        sc.lease_time = r.choice((60, 90, 120, 180, 300))
        sc.mclt = r.choice((20, 30, 45, 60, 90))
        sc.secondary_mclt = sc.mclt if r.random() < 0.7 else r.choice((15, 40, 120))
        sc.mode = "hot-standby" if r.random() < 0.3 else "load-balance"
        sc.lb_percent = r.choice((50, 50, 30, 70))
        sc.reserve_percent = r.choice((5, 10, 30))
        sc.safe_period = r.choice((None, None, None, 120, 240))
        sc.secret = "sim-secret-%d" % seed if r.random() < 0.3 else None
        sc.max_unacked = r.choice((1, 4, 10))
        sc.max_response_delay = r.choice((10, 15, 30))
        sc.lb_max_seconds = r.choice((0, 3, 10))
        sc.time_skew_max = 60
        sc.decline_hold = r.choice((60, 300))
        sc.tick_ms = 1000
        # a constant skew per node: one base offset for the pair (the clocks'
        # error against real time) and a difference within time_skew_max
        base = r.randrange(-3600, 3600) if r.random() < 0.5 else 0
        diff = r.choice((0, 0, 3, 10, 25, 40))
        if big and r.random() < 0.2:
            sc.time_skew_max = 3600  # "arbitrary constant skew" (I17), far beyond ISC's 60 s (config max)
            diff = r.randrange(61, 3000)
        sc.skews = [base] + [base + r.randrange(-diff, diff + 1) for _ in range(sc.nodes - 1)]
        sc.faulty_s = r.choice((300, 450, 600)) if not big else r.choice((900, 1800, 3600))
        sc.fault_gap_s = r.choice((10, 20, 40))
        sc.intensity = r.random()
        r.random()  # kept so every other scenario value stays as it was
        # Clocks (their own RNG, so the values above stay as they were): each
        # node's kind, and whether wall clocks jump while nodes run (then the
        # nodes accept up to 15 minutes between wall clocks, so a 5 minute
        # step on either side keeps the pair connected).
        k = random.Random(seed * 40503 + 7)
        sc.clock_kinds = [k.choice(("rtc", "rtc", "board", "ntp")) for _ in range(sc.nodes)]
        sc.allow_jumps = k.random() < 0.4
        if sc.allow_jumps and sc.time_skew_max < 900:
            sc.time_skew_max = 900
        # the filesystem under the lease store (flash.MemFs): (metadata durable
        # at once, rename atomic) - littlefs is (True, True)
        sc.fs_model = r.choice(((True, True), (True, True), (False, True), (True, False), (False, False)))
        # a third of the pair seeds also run the takeover script (FaultPlan._takeover),
        # decided by their own RNG so every other value above stays as it was
        f = random.Random(seed * 2654435761 + 97)
        sc.focus = "takeover" if sc.nodes == 2 and f.random() < 0.35 else None
        sc.spares = max(0, sc.pool - sc.population - 2) if sc.focus else 0
        # the takeover script crashes a recovering server again, wiped storage
        # or not (a restart in RECOVER with the partner in PARTNER-DOWN once
        # resolved with UPDREQ only and handed bindings out twice: seed 95)
        sc.recrash_wiped = True
        return sc

    def describe(self):
        if self.nodes == 1:
            return "seed %d: standalone, pool %d, %d clients, lease %ds" % (
                self.seed, self.pool, self.population, self.lease_time)
        return ("seed %d: pair %s, pool %d, %d clients, lease %ds, MCLT %ds (secondary cfg %ds), safe period %s, "
                "skews %s, auth %s, %ds of faults" % (
                    self.seed, self.mode, self.pool, self.population, self.lease_time, self.mclt,
                    self.secondary_mclt, self.safe_period, self.skews, "on" if self.secret else "off",
                    self.faulty_s) + (", takeover script with %d new clients" % self.spares
                                      if getattr(self, "focus", None) else "")
                + ", clocks %s%s" % ("/".join(self.clock_kinds), " with jumps" if self.allow_jumps else ""))


class FaultPlan:
    """Injects faults into a World during [start, end) of real time."""

    def __init__(self, world, rng):
        self.w = world
        self.r = rng
        self.end = None
        self.declared_down = set()  # nodes a partner-down / shutdown may concern
        self.down_until = {}  # node idx -> planned restart time (ms) or None (waits)
        self.wipe_on_restart = {}
        self.log = []
        world.faults = self

    # ------------------------------------------------------------------ guards

    def _pair(self):
        return len(self.w.nodes) == 2

    def _pd_risk(self):
        """Could a server be (or become) in PARTNER-DOWN now?"""
        w = self.w
        if w.sc.safe_period:
            return True
        if self.declared_down:
            return True
        for sn in w.nodes:
            if sn.up and sn.rel is not None and sn.rel.state in (S.PARTNER_DOWN, S.POTENTIAL_CONFLICT,
                                                                  S.RESOLUTION_INTERRUPTED, S.CONFLICT_DONE):
                return True
        return False

    def _someone_unsettled(self):
        """A node is down, stopping, or up but has not yet talked to its partner since booting."""
        for sn in self.w.nodes:
            if not sn.up or sn.stopping:
                return True
            if sn.rel is not None and sn.rel.state == S.STARTUP:
                return True
        return False

    def _may_partition(self):
        if not self._pair():
            return False
        if self._pd_risk() and self._someone_unsettled():
            return False
        return True

    def _max_partition_ms(self):
        """A partition between two running servers must end before a safe
        period can expire: the safe-period timer runs from the start of
        COMMUNICATIONS-INTERRUPTED (§9.9.1), which may be well before now."""
        w = self.w
        sp = w.sc.safe_period
        if not sp:
            return 4 * w.sc.mclt * 1000 + 60000
        limit = (sp - 30) * 1000
        for sn in w.nodes:
            if sn.up and sn.rel is not None and sn.rel.state == S.COMM_INTERRUPTED and sn.ci_since is not None:
                left = sn.to_real(sn.ci_since + sp) - w.t - 30000
                if left < limit:
                    limit = left
        return limit

    def _may_restart(self, sn):
        w = self.w
        if not self._pair():
            return True
        if self._pd_risk() and w.partitions:
            return False
        return True

    def _may_wipe(self, sn):
        if not self._pair():
            return False  # a lone server that loses its storage has nobody to recover from
        for o in self.w.nodes:
            if o is not sn:
                if not o.up or o.rel is None:
                    return False
                if o.rel.state in (S.STARTUP, S.RECOVER, S.RECOVER_WAIT, S.RECOVER_DONE,
                                   S.POTENTIAL_CONFLICT, S.RESOLUTION_INTERRUPTED, S.CONFLICT_DONE):
                    return False  # its own bindings are still being reconciled
                if o.name in self.w.checker.wiped:
                    return False
        return True

    # ------------------------------------------------------------------ driving

    def start(self, t_end):
        self.end = t_end
        w = self.w
        w.at(w.t + self.r.randrange(1000, w.sc.fault_gap_s * 1000), self.step)
        if getattr(w.sc, "focus", None) == "takeover":
            self.rs = random.Random(w.sc.seed * 40503 + 29)
            span = t_end - w.t
            w.at(w.t + self.rs.randrange(span // 10, span // 3), self._takeover)

    # ------------------------------------------------------------------ the takeover script
    #
    # Reaches the rare paths on purpose: a server is down long, the operator
    # declares it down (PARTNER-DOWN, I9), new clients arrive so the survivor
    # must take addresses of its partner's pool or other clients' expired
    # ones (I8's waits), the server comes back (sometimes with wiped storage:
    # I12) and crashes again while recovering, so it restarts into
    # POTENTIAL-CONFLICT (I13). Every step keeps the operator rules above.

    def _takeover(self):
        w = self.w
        rs = self.rs
        if w.t >= self.end - 30000:
            return
        ups = [sn for sn in w.nodes if sn.up and not sn.stopping and sn.rel is not None
               and sn.crash_at_flush is None and sn.crash_in_compaction is None]
        if (len(ups) != 2 or w.partitions or self.declared_down
                or any(sn.rel.state != S.NORMAL for sn in ups)):
            # only from NORMAL: a server that has not synchronised with its
            # partner since a restart may not be the one declared to survive
            # (§9.4: the other MUST NOT be operating while one is in PARTNER-DOWN)
            w.at(w.t + 10000, self._takeover)
            return
        x = rs.choice(ups)
        down = 2 * w.sc.mclt * 1000 + rs.randrange(30000, 90000)
        wipe = rs.random() < 0.4 and self._may_wipe(x)
        self.note("takeover: crash %s for %ds%s" % (x.name, down // 1000, ", storage wiped" if wipe else ""))
        w.crash(x)
        self.down_until[x.idx] = w.t + down
        self.wipe_on_restart[x.idx] = wipe
        w.at(w.t + down, self.pending_restarts)
        w.at(w.t + 2000, self._takeover_pd, x, x.inc, w.t + 120000)

    def _takeover_pd(self, x, inc, deadline):
        """Partner-down on the survivor once it noticed (CI), then new clients."""
        w = self.w
        if x.up or x.inc != inc:
            return
        s = [sn for sn in w.nodes if sn is not x][0]
        if s.up and s.rel is not None and s.rel.state in (S.COMM_INTERRUPTED, S.RESOLUTION_INTERRUPTED):
            self.f_admin_pd()
        elif w.t < deadline:
            w.at(w.t + 2000, self._takeover_pd, x, inc, deadline)
            return
        # they arrive within MCLT of entering PARTNER-DOWN, more than the
        # survivor's own pool holds, while the partner's pool must still be
        # left alone
        for c in w.spares:
            if c.state == 0:
                w.at(w.t + self.rs.randrange(0, w.sc.mclt * 500), w.client_power_on, c)
        w.at(w.t + 5000, self._takeover_recrash, x, inc, w.t + 600000)

    def _takeover_recrash(self, x, inc, deadline):
        """The server crashes again while it recovers from its partner."""
        w = self.w
        if w.t >= min(deadline, self.end - 30000):
            return
        if x.name in w.checker.wiped and not w.sc.recrash_wiped:
            return
        if (x.up and x.inc > inc and x.rel is not None and not x.stopping
                and x.rel.state in (S.RECOVER, S.RECOVER_WAIT)):
            down = self.rs.randrange(3000, 15000)
            self.note("takeover: %s crashes again while recovering, down %ds" % (x.name, down // 1000))
            w.crash(x)
            self.down_until[x.idx] = w.t + down
            self.wipe_on_restart[x.idx] = False
            w.at(w.t + down, self.pending_restarts)
            return
        w.at(w.t + 2000, self._takeover_recrash, x, inc, deadline)

    def step(self):
        w = self.w
        if w.t >= self.end:
            return
        self.pending_restarts()
        if self.r.random() < 0.3 + 0.6 * w.sc.intensity:
            self.inject()
        w.at(w.t + self.r.randrange(1000, 2 * w.sc.fault_gap_s * 1000), self.step)

    def note(self, text):
        self.log.append("%.1f %s" % ((self.w.t / 1000.0), text))
        self.w.log("FAULT " + text)

    def inject(self):
        w = self.w
        r = self.r
        menu = [("dhcp", 3), ("segment", 1), ("crash", 2), ("reset", 1)]
        if self._pair():
            menu += [("partition", 3), ("oneway", 1), ("admin_pd", 1), ("shutdown", 1)]
        if w.sc.allow_jumps:
            menu.append(("jump", 2))
        total = sum(n for _k, n in menu)
        x = r.randrange(total)
        for kind, n in menu:
            if x < n:
                break
            x -= n
        getattr(self, "f_" + kind)()

    # ------------------------------------------------------------------ faults

    def f_dhcp(self):
        w = self.w
        r = self.r
        w.dhcp_loss = r.choice((0.0, 0.05, 0.15, 0.3))
        w.dhcp_dup = r.choice((0.0, 0.02, 0.1))
        w.dhcp_late = r.choice((0.0, 0.05, 0.1))
        w.dhcp_delay = (0, r.choice((2, 20, 200)))
        self.note("dhcp loss %.2f dup %.2f late %.2f" % (w.dhcp_loss, w.dhcp_dup, w.dhcp_late))

    def f_segment(self):
        w = self.w
        sn = self.r.choice(w.nodes)
        if not sn.dhcp_up:
            return
        sn.dhcp_up = False
        d = self.r.randrange(5000, 120000)
        self.note("%s off the client segment for %ds" % (sn.name, d // 1000))
        w.at(w.t + d, self._segment_up, sn)

    def _segment_up(self, sn):
        sn.dhcp_up = True

    def f_reset(self):
        if not self._pair() or (self._pd_risk() and self._someone_unsettled()):
            return
        self.note("failover connections reset")
        self.w.reset_links()

    def _partition(self, dirs):
        w = self.w
        if not self._may_partition() or w.partitions:
            return
        m = self._max_partition_ms()
        if m <= 3000:
            return
        d = self.r.randrange(3000, m)
        for p in dirs:
            w.partitions.add(p)
        w.stats["partitions"] += 1
        self.note("partition %s for %ds" % (sorted(dirs), d // 1000))
        w.at(w.t + d, self._heal_partition)

    def f_partition(self):
        self._partition(((0, 1), (1, 0)))

    def f_oneway(self):
        self._partition((self.r.choice(((0, 1), (1, 0))),))

    def _heal_partition(self):
        w = self.w
        if not w.partitions:
            return
        w.partitions.clear()
        self.note("partition healed")
        w.release_held()
        self.pending_restarts()

    def f_crash(self):
        w = self.w
        r = self.r
        ups = [sn for sn in w.nodes if sn.up and not sn.stopping]
        if not ups:
            return
        sn = r.choice(ups)
        if self._pair() and len(ups) < 2:
            return  # one node down at a time keeps service alive (and is the draft's model)
        if self._pd_risk() and any(o is not sn and o.rel is not None and o.rel.state == S.STARTUP for o in ups):
            # to a server in STARTUP its partner crashing looks like a
            # partition: it would resume alone while the partner's record
            # says PARTNER-DOWN (§9.4, §9.3.2 step 6; sim seed 42441, I1)
            return
        wipe = r.random() < 0.15 and self._may_wipe(sn)
        down = r.choice((2000, 10000, 30000, w.sc.mclt * 1000, 2 * w.sc.mclt * 1000 + 5000))
        x = r.random()
        torn = x < 0.5
        compaction = x >= 0.8
        how = "during a commit" if torn else ("during a compaction" if compaction else "between turns")
        self.note("crash %s (%s), down %ds%s" % (sn.name, how, down // 1000, ", storage wiped" if wipe else ""))
        if compaction:
            # at the next tick, power goes at one of the compaction's filesystem operations
            sn.crash_in_compaction = r.randrange(10)
            self.down_until[sn.idx] = w.t + down
            self.wipe_on_restart[sn.idx] = wipe
        elif torn:
            sn.crash_at_flush = (True, wipe, None)
            self.down_until[sn.idx] = w.t + down
            self.wipe_on_restart[sn.idx] = wipe
            # if no commit comes soon, crash between turns instead
            w.at(w.t + 5000, self._crash_if_still_up, sn, sn.inc)
        else:
            w.crash(sn)
            self.down_until[sn.idx] = w.t + down
            self.wipe_on_restart[sn.idx] = wipe
        w.at(w.t + down, self.pending_restarts)

    def _crash_if_still_up(self, sn, inc):
        if sn.up and sn.inc == inc and sn.crash_at_flush is not None:
            sn.crash_at_flush = None
            self.w.crash(sn)

    def pending_restarts(self):
        w = self.w
        for sn in w.nodes:
            if sn.up:
                continue
            due = self.down_until.get(sn.idx)
            if due is None or w.t < due:
                continue
            if not self._may_restart(sn):
                continue
            self.restart(sn, self.wipe_on_restart.get(sn.idx, False))

    def restart(self, sn, wipe):
        w = self.w
        if sn.up:
            return
        if wipe and not self._may_wipe(sn):
            wipe = False
        self.down_until.pop(sn.idx, None)
        self.wipe_on_restart.pop(sn.idx, None)
        self.note("restart %s%s" % (sn.name, " with wiped storage" if wipe else ""))
        w.stats["restarts"] += 1
        w.boot(sn, wipe=wipe)
        self.declared_down.discard(sn.name)

    def f_admin_pd(self):
        """Operator: partner-down on the survivor while its partner is really down."""
        w = self.w
        downs = [sn for sn in w.nodes if not sn.up]
        ups = [sn for sn in w.nodes if sn.up and sn.rel is not None]
        if len(downs) != 1 or len(ups) != 1:
            return
        sn = ups[0]
        if sn.rel.state not in (S.COMM_INTERRUPTED, S.RESOLUTION_INTERRUPTED):
            return
        self.declared_down.add(downs[0].name)
        res = w.admin(sn, "partner-down")
        self.note("admin partner-down on %s (%s is down): %s" % (
            sn.name, downs[0].name, "ok" if res and res.get("ok") else (res or {}).get("error")))

    def f_shutdown(self):
        """Operator: planned shutdown of one server (§9.14), stopped a few seconds later."""
        w = self.w
        ups = [sn for sn in w.nodes if sn.up and sn.rel is not None and not sn.stopping]
        if len(ups) != 2 or (self._pd_risk() and self._someone_unsettled()):
            return
        sn = self.r.choice(ups)
        self.declared_down.add(sn.name)
        res = w.admin(sn, "shutdown")
        self.note("admin shutdown on %s: %s" % (sn.name, "ok" if res and res.get("ok") else (res or {}).get("error")))
        sn.stopping = True
        w.at(w.t + self.r.randrange(2000, 6000), self._stop, sn, sn.inc)

    def _stop(self, sn, inc):
        w = self.w
        if not sn.up or sn.inc != inc:
            return
        self.note("%s stopped after shutdown" % sn.name)
        w.crash(sn, power=False)
        self.down_until[sn.idx] = w.t + self.r.choice((5000, 60000, 3 * w.sc.mclt * 1000))
        self.wipe_on_restart[sn.idx] = False
        w.at(self.down_until[sn.idx], self.pending_restarts)

    def f_jump(self):
        """One node's wall clock steps forward or back by up to 5 minutes. A
        node with wall time hears of it as an NTP correction; its local time
        never moves (a board without wall time sees nothing)."""
        w = self.w
        sn = self.r.choice(w.nodes)
        other = [o for o in w.nodes if o is not sn]
        j = self.r.randrange(1, 301) * self.r.choice((1, -1))
        if j > 0 and not sn.up:
            # a trusted clock found ahead at boot is outside the contract
            # (docs/time.md): set back while off is fine, ahead is not
            j = -j
        new = sn.skew + j
        if other and abs(new - other[0].skew) > w.sc.time_skew_max - 20:
            return
        sn.skew = new
        w.stats["jumps"] += 1
        self.note("%s wall clock steps %+ds" % (sn.name, j))
        if w.has_wall(sn):
            w.ntp(sn, sn.inc)

    # ------------------------------------------------------------------ heal

    def heal_all(self):
        w = self.w
        self.end = w.t
        w.partitions.clear()
        w.release_held()
        w.dhcp_loss = 0.0
        w.dhcp_dup = 0.0
        w.dhcp_late = 0.0
        w.dhcp_delay = (0, 5)
        for sn in w.nodes:
            sn.dhcp_up = True
            sn.crash_at_flush = None
            sn.crash_in_compaction = None
        for sn in w.nodes:
            if sn.up and sn.rel is not None and sn.rel.state in (S.SHUTDOWN, S.PAUSED):
                w.crash(sn, power=False)
        for sn in w.nodes:
            if not sn.up:
                self.restart(sn, self.wipe_on_restart.get(sn.idx, False))
        self.note("all faults healed")


def run_seed(seed, preset="ci", trace=False, scenario=None, **overrides):
    """Run one seed to the end; returns the World (checker in world.checker).
    overrides replace scenario attributes (e.g. skews=[0, 0])."""
    from sim.world import World

    sc = scenario if scenario is not None else Scenario.from_seed(seed, preset)
    for k, v in overrides.items():
        if k == "same_clock":
            if v:
                sc.skews = [sc.skews[0]] * len(sc.skews)
                sc.clock_kinds = ["rtc"] * len(sc.skews)
            continue
        setattr(sc, k, v)
    w = World(sc, trace=trace)
    plan = FaultPlan(w, random.Random(seed * 65537 + 11))
    # bring the servers up (a staggered start) and the clients
    for sn in w.nodes:
        w.at(w.t + plan.r.randrange(0, 3000), w.boot, sn)
    for c in w.clients:
        if c not in w.spares:
            w.at(w.t + plan.r.randrange(2000, 60000), w.client_power_on, c)
    t_faults = w.t + 60000
    t_heal = t_faults + sc.faulty_s * 1000
    plan.start(t_heal)
    w.run_until(t_heal)
    plan.heal_all()
    w.heal_t = w.t
    bound = (sc.mclt + 120) * 1000
    quiet = bound + (sc.lease_time + 60) * 1000
    w.run_until(w.t + quiet)
    _check_liveness(w, bound)
    return w


def _check_liveness(w, bound):
    states = {}
    for sn in w.nodes:
        if sn.rel is None:
            continue
        states[sn.name] = S.name(sn.rel.state) if sn.up else "down"
    starving = []
    for c in w.clients:
        if c.state in (0, 4, 5, 6):  # off, bound, renewing, rebinding
            continue
        if w.t - c.exchange_ms > 120000:
            starving.append(c.key)
    if states or starving:
        w.checker.liveness(w.t, states, w.heal_t, bound, starving)
