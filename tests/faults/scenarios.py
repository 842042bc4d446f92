"""The faults, each on a fresh dhcpfo pair in a namespace lab (docs/faults.md).

One run of a fault (`run_fault`):
1. a load-balance pair (integration/pair.py) with a 231-address pool comes
   up and balances its pool;
2. perfdhcp runs in the background for the whole run (10 clients, 20
   exchanges/s) and a first wave of loadclient.py clients and real clients
   (dhclient, udhcpc of both hash buckets) gets leases;
3. the fault: its function breaks something while a second wave and more
   real clients ask for leases, then repairs it and returns the moment of
   the repair;
4. from the repair: both nodes NORMAL (timed), a last wave, tables in sync;
5. checks over every ACK the clients got (faults.ledger): no address held
   by two clients at once, and every running lease in both nodes' tables.

Every wait polls with a deadline; every loop is bounded in count and time.
"""

import glob
import json
import os
import resource
import shutil
import threading
import time

from faults import ledger
from integration.netns import LabError, PerfResult, tool, wait_until
from integration.nodes import PYTHON, Node, NodeError
from integration.pair import SCOPE, Pair

HERE = os.path.dirname(os.path.abspath(__file__))
LOADCLIENT = os.path.join(HERE, "..", "integration", "loadclient.py")
POOL = ("198.18.0.20", "198.18.0.250")
PERF_ADDR = "198.18.0.10/24"
MCLT = 90          # first leases are MCLT long: longer than a run's checks need
LEASE_TIME = 900
RECEIVE_TIMER = 8
CI = "communications-interrupted"
NORMAL_DEADLINE = 60 + MCLT  # wiped storage waits MCLT in RECOVER-WAIT
FAKETIME_LIBS = "/usr/lib/*/faketime/libfaketime.so.1"


def faketime_lib():
    found = sorted(glob.glob(FAKETIME_LIBS))
    return found[0] if found else None


class FaultNode(Node):
    """A lab node whose clock can be shifted: with `skew` (seconds) set, the
    interpreter runs under libfaketime (FAKETIME="+300s": the wall clock
    only; monotonic time stays real). `env` execs it in place, so the
    node's PID is still the interpreter's (SIGKILL hits the node)."""

    skew = 0

    def argv(self):
        argv = Node.argv(self)
        if not self.skew:
            return argv
        lib = faketime_lib()
        if lib is None:
            raise LabError("libfaketime not installed (Debian package faketime)")
        return ["env", "LD_PRELOAD=" + lib, "FAKETIME=%+ds" % self.skew,
                "FAKETIME_DONT_FAKE_MONOTONIC=1", "FAKETIME_NO_CACHE=1"] + argv


class FaultPair(Pair):
    """The lab pair plus load generators and the ledger of every ACK."""

    def __init__(self, lab, time_skew_max=None):
        Pair.__init__(self, lab, mclt=MCLT, lease_time=LEASE_TIME, max_response_delay=RECEIVE_TIMER,
                      lb_max_seconds=3, pool=POOL, node_class=FaultNode)
        for node in self.nodes.values():
            if time_skew_max is not None:
                node.config["server"]["time_skew_max"] = time_skew_max
            node.write_config()
        self.load_host = lab.add_host("load")
        self.perf_host = lab.add_host("perf", PERF_ADDR)
        self.waves = []            # (name, process, output file)
        self.perf_runs = []
        self._perf_stop = threading.Event()
        self._perf_thread = None
        self.unserved = 0          # real clients that got no lease while asking during a fault
        self.notes = []
        self._impaired = []        # (host, iface, "netem" or "nft")

    # -- set-up -------------------------------------------------------------------
    def up(self, timeout=60):
        self.start(timeout)

        def balanced():
            return len(self.pool("b")) >= 40 and len(self.pool("a")) >= 40

        wait_until(balanced, timeout, 0.2, "pool balanced")

    # -- load ---------------------------------------------------------------------
    def perf_start(self, burst=4, max_bursts=100):
        """perfdhcp in bursts of `burst` s until perf_stop() (at most `max_bursts`)."""
        def loop():
            for _ in range(max_bursts):
                if self._perf_stop.is_set():
                    return
                argv = [tool("perfdhcp"), "-4", "-l", "eth0", "-R", "10", "-r", "20", "-p", str(burst)]
                t0 = time.monotonic()
                try:
                    res = self.perf_host.exec(argv, timeout=burst + 20)
                except LabError:
                    continue
                self.perf_runs.append(PerfResult(res.stdout + res.stderr, res.returncode,
                                                 time.monotonic() - t0))

        self._perf_thread = threading.Thread(target=loop, daemon=True)
        self._perf_thread.start()

    def perf_stop(self, timeout=40):
        self._perf_stop.set()
        if self._perf_thread is not None:
            self._perf_thread.join(timeout)

    def wave(self, name, count, seconds=30, wait=True, window=16):
        """A loadclient.py run of `count` fresh clients; with `wait`, until it ends."""
        out = self.lab.path("wave-%s.jsonl" % name)
        prefix = "02:%02x" % (0xd0 + len(self.waves))
        proc = self.load_host.run_logged([PYTHON, LOADCLIENT, "--iface", "eth0", "--count", count,
                                          "--out", out, "--window", window, "--retry", 0.5,
                                          "--seconds", seconds, "--mac-prefix", prefix], "wave-" + name)
        self.waves.append((name, proc, out))
        if wait:
            self.wave_wait(proc, seconds + 15)
        return proc, out

    def wave_wait(self, proc, timeout):
        wait_until(lambda: proc.poll() is not None, timeout, 0.1, "load wave to end")

    def acks_in(self, out):
        return len(ledger.from_loadclient(out))

    def real_clients(self, sides=("a", "b"), kinds=("dhclient", "udhcpc"), during_fault=False):
        """Real clients of the given hash buckets, each waiting for its lease."""
        for side in sides:
            for kind in kinds:
                c = self.client(kind, side)
                try:
                    c.acquire(40 if during_fault else 25)
                except LabError:
                    if not during_fault:
                        raise
                    self.unserved += 1

    # -- faults' tools --------------------------------------------------------------
    def impair(self, host, iface, loss, delay_ms):
        """`loss` % of the packets leaving `iface` dropped, and (with netem)
        `delay_ms` +- half of it added. tc netem when the kernel has it;
        else nftables drops at the device's egress hook (no delay): the
        method used is in the run's notes."""
        spec = "delay %dms %dms loss %d%%" % (delay_ms, delay_ms // 2, loss)
        res = host.exec([tool("tc"), "qdisc", "replace", "dev", iface, "root", "netem"] + spec.split(),
                        timeout=10)
        if res.returncode == 0:
            self._impaired.append((host, iface, "netem"))
            self.note_once("tc netem: " + spec)
            return
        if "unknown" not in res.stderr:
            raise LabError("tc netem on %s: %s" % (host.name, res.stderr.strip()))
        self.note_once("no netem in this kernel (%s): nftables random drop %d%%, no delay"
                       % (res.stderr.strip(), loss))
        rules = ('table netdev dfofault {\n chain out_%s { type filter hook egress device "%s" priority 0;'
                 ' numgen random mod 100 < %d counter drop; }\n}\n' % (iface, iface, loss))
        path = self.lab.path("%s.%s.nft" % (host.name, iface))
        with open(path, "w") as f:
            f.write(rules)
        host.exec([tool("nft"), "-f", path], check=True, timeout=10)
        self._impaired.append((host, iface, "nft"))

    def repair(self):
        """Undo every impair(); returns the packets nftables dropped."""
        dropped = 0
        for host, iface, how in self._impaired:
            if how == "netem":
                host.exec([tool("tc"), "qdisc", "del", "dev", iface, "root"], timeout=10)
                continue
            res = host.exec([tool("nft"), "list", "chain", "netdev", "dfofault", "out_" + iface], timeout=10)
            for word in res.stdout.split("packets ")[1:]:
                dropped += int(word.split()[0])
            host.exec([tool("nft"), "delete", "chain", "netdev", "dfofault", "out_" + iface], timeout=10)
        self._impaired = []
        return dropped

    def note_once(self, text):
        if text not in self.notes:
            self.notes.append(text)

    def wipe(self, side):
        d = self.nodes[side].data_dir
        shutil.rmtree(d)
        os.makedirs(d)

    def restart(self, side, skew=None, timeout=40):
        node = self.nodes[side]
        if node.running():
            node.stop()
        if skew is not None:
            node.skew = skew
        node.start(timeout)

    # -- the ledger ---------------------------------------------------------------
    def grants(self):
        out = []
        for name, _, path in self.waves:
            out += ledger.from_loadclient(path, "load-" + name)
        for c in self.clients:
            out += ledger.from_client(c)
        return ledger.settle(out)

    def lost_now(self, sides=("a", "b")):
        grants = self.grants()
        now = time.time()
        out = []
        for side in sides:
            out += ledger.lost(grants, self.nodes[side].leases(SCOPE), side, now)
        return out

    def stop_all(self):
        self.perf_stop(5)
        for _, proc, _ in self.waves:
            if proc.poll() is None:
                self.load_host.stop(proc)
        for c in self.clients:
            c.stop()


# -- the faults: each breaks something under load, repairs it, returns the
# -- monotonic time of the repair -----------------------------------------------------

def _kill_under_load(fp, side):
    other = "b" if side == "a" else "a"
    proc, out = fp.wave("during", 40, wait=False, window=1)
    wait_until(lambda: fp.acks_in(out) >= 3, 30, 0.01, "ACKs flowing before the kill")
    fp.nodes[side].kill()
    fp.notes.append("%s killed with %d of 40 wave clients ACKed" % (side, fp.acks_in(out)))
    fp.wait_states({other: CI}, 30, interval=0.1)
    fp.real_clients(sides=(side,), during_fault=True)   # the dead node's buckets
    fp.wave_wait(proc, 60)
    t = time.monotonic()
    fp.nodes[side].start(40)
    return t


def kill_a(fp):
    return _kill_under_load(fp, "a")


def kill_b(fp):
    return _kill_under_load(fp, "b")


def partition(fp):
    fp.lab.link_down(fp.hosts["a"], "eth1")
    try:
        fp.wait_states({"a": CI, "b": CI}, RECEIVE_TIMER + 30, interval=0.2)
        fp.wave("during", 40)
        fp.real_clients(during_fault=True)
    finally:
        t = time.monotonic()
        fp.lab.link_up(fp.hosts["a"], "eth1")
    return t


def loss_delay(fp):
    """Loss and delay on the client segment (both servers' and the load's
    egress) and on the failover link (both ends)."""
    try:
        for host in (fp.hosts["a"], fp.hosts["b"], fp.load_host):
            fp.impair(host, "eth0", 15, 40)
        for side in ("a", "b"):
            fp.impair(fp.hosts[side], "eth1", 10, 100)
        fp.wave("during", 40, seconds=40)
        fp.real_clients(during_fault=True)
    finally:
        t = time.monotonic()
        dropped = fp.repair()
    if dropped:
        fp.notes.append("nftables dropped %d packets" % dropped)
    return t


def skew_within_limit(fp):
    """b's wall clock 5 min ahead, with time_skew_max (600 s) above it: the
    pair must run NORMAL on translated times; then SIGKILL a, so the skewed
    b takes over, and restart a."""
    fp.restart("b", skew=300)
    fp.wait_states({"a": "normal", "b": "normal"}, NORMAL_DEADLINE)
    fp.wave("skewed", 40)
    fp.real_clients(sides=("a",), kinds=("udhcpc",))
    fp.nodes["a"].kill()
    fp.wait_states({"b": CI}, 30, interval=0.1)
    fp.wave("during", 40)
    fp.real_clients(sides=("a",), during_fault=True)
    t = time.monotonic()
    fp.nodes["a"].start(40)
    return t


def skew_refused(fp):
    """a's wall clock 5 min behind, past time_skew_max (60 s, the default):
    b refuses a's CONNECT (reason 4, docs/failover.md "Time"), so both stay
    COMMUNICATIONS-INTERRUPTED and serve from their own pools; the repair
    is a's clock set right (a restart without the skew)."""
    fp.restart("a", skew=-300)
    fp.wait_states({"a": CI, "b": CI}, 60, interval=0.2)
    fp.wave("during", 40)
    fp.real_clients(during_fault=True)
    t = time.monotonic()
    fp.restart("a", skew=0)
    return t


def wipe_b(fp):
    """SIGKILL b, wipe its lease store, restart it: it must learn every
    binding from a (RECOVER, UPDREQALL) before it serves again. The tables
    are checked when b has all updates (RECOVER-WAIT), as leases granted
    before the fault may run out during b's MCLT wait."""
    fp.nodes["b"].kill()
    fp.wait_states({"a": CI}, 30, interval=0.1)
    fp.wipe("b")
    fp.wave("during", 40)
    fp.real_clients(sides=("b",), kinds=("udhcpc",), during_fault=True)
    t = time.monotonic()
    fp.nodes["b"].start(40)
    fp.wait_states({"b": ("recover-wait", "recover-done", "normal")}, NORMAL_DEADLINE, interval=0.2)
    fp.early_lost = fp.lost_now(sides=("b",))
    fp.notes.append("checked %d running leases on b in %s" % (
        len(ledger.current(fp.grants(), time.time())), fp.state("b")))
    return t


def _vm_size(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise LabError("no VmSize for pid %d" % pid)


def _ack_records(path):
    """The ACK lines of a loadclient output file (complete lines only)."""
    out = []
    with open(path) as f:
        for line in f:
            if line.endswith("\n"):
                rec = json.loads(line)
                if rec.get("ev") == "ack":
                    out.append(rec)
    return out


def _served(fp, out):
    """(ACKs by a, clients that got an ACK) of one loadclient wave."""
    recs = _ack_records(out)
    by_a = sum(1 for rec in recs if fp.side_of_sid(rec.get("sid")) == "a")
    return by_a, len(set(rec["mac"] for rec in recs))


BIG_SCOPE_ID = "10.0.0.0"  # a /16 off the lab's segments: no client asks in it
BIG_SCOPE_RANGE = ["10.0.0.1", "10.0.255.254"]  # 65,534 addresses (MAX_POOL is 65,536)


def memory_a(fp):
    """Starve a: its address-space limit (RLIMIT_AS, prlimit: the soft limit) set to what
    it maps now, so no allocation may take a new page from the kernel.

    Measured (docs/faults.md "What starves a node"): a running node maps nothing new
    under any load (its tables are preallocated), so load alone never makes
    it allocate. Under the limit: a storm of 100 new clients in one window,
    real clients and whole-table management reads must still be served
    (a has not lost its memory, so it must not stop or go half-dead). Then
    the one thing that must allocate, a live add-scope of 65,534 addresses
    (a new preallocated table): it must be refused "out of memory" with the
    node unchanged and still serving, both NORMAL (docs/boards.md
    "Fail-stop": a MemoryError in a command that changed nothing is an
    error answer, not a fail-stop). Repair: the limit lifted; the same
    add-scope must then succeed (it was refused for memory only), and is
    removed again."""
    node = fp.nodes["a"]
    size = _vm_size(node.pid)
    hard = resource.prlimit(node.pid, resource.RLIMIT_AS)[1]  # kept: lowering it could not be undone here
    resource.prlimit(node.pid, resource.RLIMIT_AS, (size, hard))
    fp.notes.append("a limited to its mapping, %d KB" % (size // 1024))
    _, out = fp.wave("storm", 100, window=100)
    fp.real_clients(during_fault=True)
    for _ in range(5):
        node.call("get-leases", timeout=10, scope=SCOPE, limit=100000)
        node.call("get-events", timeout=10, limit=100000)
        node.call("status", timeout=10)
    served, bound = _served(fp, out)
    grown = _vm_size(node.pid) - size
    nomem = dict((k, v) for k, v in node.counters().items() if "nomem" in k)
    fp.notes.append("under the limit: %d of the storm's 100 clients bound, %d by a; mapping grew %d KB; "
                    "nomem counters %s" % (bound, served, grown // 1024, nomem or "none"))
    if not served or bound < 100:
        fp.failures.append("under the limit the storm was not served: %d bound, %d by a" % (bound, served))
    cfg = dict(node.call("get-scope-config", scope=SCOPE)["config"])
    cfg.update({"id": BIG_SCOPE_ID, "name": "memory-a", "prefix": 16, "ranges": [BIG_SCOPE_RANGE],
                "exclusions": [], "reservations": []})
    try:
        resp = node.call("add-scope", timeout=20, config=cfg)
        fp.failures.append("add-scope of %d addresses under the limit was not refused: %s"
                           % (65534, resp))
    except NodeError as e:
        fp.notes.append("add-scope under the limit: %s" % str(e).split(": ", 1)[-1])
        if "out of memory" not in str(e):
            fp.failures.append("add-scope under the limit refused for another reason: %s" % e)
    scopes = [s["scope"] for s in node.call("status")["scopes"]]
    if scopes != [SCOPE]:
        fp.failures.append("a's scopes after the refused add-scope: %s" % scopes)
    if not node.running():
        fp.failures.append("a exited under the limit (status %s)" % node.proc.returncode)
    _, out = fp.wave("refused", 20)
    served, bound = _served(fp, out)
    fp.notes.append("after the refusal %d of 20 new clients bound, %d by a" % (bound, served))
    if not served or bound < 20:
        fp.failures.append("after the refused add-scope: %d of 20 bound, %d by a (a zombie?)" % (bound, served))
    states = dict((side, fp.state(side)) for side in ("a", "b"))
    if states != {"a": "normal", "b": "normal"}:
        fp.failures.append("the pair left NORMAL under the limit: %s" % states)
    resource.prlimit(node.pid, resource.RLIMIT_AS, (hard, hard))
    node.call("add-scope", timeout=20, config=cfg)
    node.call("remove-scope", timeout=20, scope=BIG_SCOPE_ID)
    return time.monotonic()  # the pair never left NORMAL: the time to NORMAL is one poll


FAULTS = {
    "sigkill-a": kill_a,
    "sigkill-b": kill_b,
    "partition": partition,
    "loss-delay": loss_delay,
    "skew-b+5m": skew_within_limit,
    "skew-a-5m": skew_refused,
    "wipe-b": wipe_b,
    "memory-a": memory_a,
}
SHORT = ("sigkill-b", "partition")
LOSSY = ("loss-delay",)
PAIR_OPTIONS = {"skew-b+5m": {"time_skew_max": 600}}  # a real client may give up under loss: not counted as a failure


def needs(name):
    """Tools a fault needs beyond the pair's (missing ones: skip)."""
    base = ["ip", "dhclient", "busybox", "perfdhcp"]
    if name == "loss-delay":
        base += ["tc", "nft"]
    return base


def run_fault(lab, name):
    """Run one fault on a fresh pair in `lab`; returns its result row."""
    fp = FaultPair(lab, **PAIR_OPTIONS.get(name, {}))
    fp.failures = []
    fp.early_lost = []
    row = {"fault": name}
    t_start = time.monotonic()
    phases = row["phases_s"] = {}

    def phase(what, t0=[t_start]):
        t = time.monotonic()
        phases[what] = round(t - t0[0], 1)
        t0[0] = t

    try:
        fp.up()
        phase("up")
        fp.perf_start()
        fp.wave("before", 40)
        fp.real_clients()
        phase("before")
        t_fix = FAULTS[name](fp)
        phase("fault")
        fp.wait_states({"a": "normal", "b": "normal"}, NORMAL_DEADLINE)
        row["time_to_normal_s"] = round(time.monotonic() - t_fix, 2)
        phase("normal")
        fp.wave("after", 30)
        fp.perf_stop()
        try:
            fp.wait_synced(60)
        except LabError as e:
            fp.failures.append("tables not in sync: %s" % str(e)[:500])
        phase("after")
        grants = fp.grants()
        dups = ledger.overlaps(grants) + fp.duplicates()
        lost = fp.early_lost + fp.lost_now()
        row.update({
            "leases_served": len(grants),
            "clients": len(set(g.mac for g in grants)),
            "duplicates": len(dups),
            "lost_leases": len(lost),
            "checked_leases": len(ledger.current(grants, time.time())),
            "perfdhcp_acks": sum(r.acks for r in fp.perf_runs),
            "unserved_real_clients": fp.unserved,
            "details": (dups + lost + fp.failures)[:20],
            "notes": fp.notes,
        })
        phase("checks")
        if fp.unserved and name not in LOSSY:
            fp.failures.append("%d real client(s) asking during the fault got no lease" % fp.unserved)
            row["details"] = (dups + lost + fp.failures)[:20]
        row["ok"] = not dups and not lost and not fp.failures
    except LabError as e:
        row["ok"] = False
        row["details"] = ["lab: %s" % str(e)[:1500]]
    finally:
        fp.stop_all()
        row["seconds"] = round(time.monotonic() - t_start, 1)
    return row
