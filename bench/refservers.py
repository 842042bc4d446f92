"""Servers the benchmark can measure, behind one small interface.

Every server runs in the same topology (see run.py): one lab segment with
the server host "srv" at 198.18.0.1/16, the perfdhcp host at 198.18.0.2/16
and, for pairs, the partner host "srvb" at 198.18.0.3/16, which `start` adds.
All serve the same pool, POOL_LO..POOL_HI (65,279 addresses), with the same
lease time, from fresh lease storage at every start.

To add a server: subclass `Server`, implement start/stop, decorate with
`@register`. run.py also imports every bench/srv_*.py module, so a server
defined there (the dhcpfo node, its failover pair) joins the registry
without touching this file.
"""

import json
import os
import re
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from integration.netns import Dhcpd, LabError, dhcpd_subnet, tail, tool, wait_until  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(HERE), "firmware"))
from dhcpfo.failover import hashing  # noqa: E402

SUBNET = "198.18.0.0/16"
PREFIX_LEN = 16
SERVER_A = "198.18.0.1"
CLIENT = "198.18.0.2"
SERVER_B = "198.18.0.3"
POOL_LO = "198.18.1.0"
POOL_HI = "198.18.255.254"
POOL_SIZE = 255 * 256 - 1     # .1.0 up to .255.254
LEASE_TIME = 3600
# Failover settings every pair gets (run.py states them in the report):
# WINDOW is the binding-update window, dhcpfo `max_unacked` and ISC
# `max-unacked-updates` (Kea HA has none: see KeaHA). MAX_RESPONSE_DELAY
# (s) is how long a silent partner is trusted (dhcpfo max_response_delay,
# ISC max-response-delay, Kea HA max-response-delay). LB_MAX_SECONDS: a
# client whose `secs` reached it is served by either failover server in
# NORMAL (dhcpfo load_balance_max_seconds, ISC load balance max seconds;
# Kea HA has no such rule).
WINDOW = 10
MAX_RESPONSE_DELAY = 10
LB_MAX_SECONDS = 3
# Kea's shipped config logs at INFO: one line per lease (and, in HA, per
# lease update received), like dhcpd's per-packet lines. "WARN" keeps only
# the start-up and HA state lines the bench waits for (run.py --kea-log).
KEA_LOG_SEVERITY = "INFO"

REGISTRY = {}


# A directory (run.py makes one per invocation) where each pair keeps its
# freshly balanced state: the first start of a pair balances its pool (the
# secondary gets its half as BACKUP leases, tens of seconds for 65k
# addresses), saves both servers' lease storage there, and every later start
# begins from that copy: no clients, pool already balanced.
SNAPSHOT_DIR = None


def snapshot_dir(name):
    """Where pair `name` keeps its balanced state for this pool and window (or None)."""
    if not SNAPSHOT_DIR:
        return None
    return os.path.join(SNAPSHOT_DIR, "%s-%d-w%d-%s" % (name, POOL_SIZE, WINDOW, POOL_LO))


def set_pool(lo, hi, size):
    """Serve POOL_LO..POOL_HI (`size` addresses) from the next start on: the
    takeover bench uses a small pool so that pairs balance it quickly."""
    global POOL_LO, POOL_HI, POOL_SIZE
    POOL_LO, POOL_HI, POOL_SIZE = lo, hi, size


def register(cls):
    """Class decorator: make `cls` selectable by its `name`."""
    if cls.name in REGISTRY:
        raise ValueError("duplicate server name " + cls.name)
    REGISTRY[cls.name] = cls
    return cls


class Server:
    """One server (or pair) under test.

    start(lab, host): start serving on `host` (198.18.0.1/16, interface
    eth0); a pair adds its partner host itself. Return only once the server
    (pair) answers clients: for pairs, once both are in their normal
    shared-load state. stop(): end every process started.
    `describe` is one line for the report.
    """

    name = "?"
    describe = ""
    order = 100     # table order
    tools = ()      # programs that must be on PATH

    def start(self, lab, host):
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError

    def logs(self):
        """Paths of the server logs (printed when a run fails)."""
        return []


class Pair(Server):
    """A failover/HA pair: "srv" (198.18.0.1, the primary, the survivor in
    the takeover bench) and its partner on host "srvb" (198.18.0.3).

    partner_owns(key): in the normal state, does the partner answer the
    client whose hash key (client identifier, else MAC) is `key`?
    survivor_knows(ip): does the primary hold `ip` as an active lease?
    fail(how): "kill" SIGKILLs the partner; "cut" takes its switch port
    down, its process running on.
    resync(): stop the partner, wipe its lease storage, start it again;
    returns (seconds until it has relearned the primary's bindings, seconds
    until the pair is back in its normal state or None when the partner
    must first wait out the MCLT), both from the restart.
    """

    lab = hostb = None

    def partner_owns(self, key):
        # dhcpfo and ISC (split 128): the secondary has the buckets not in the primary's half.
        return not hashing.serves(hashing.hba_split(128), key, True)

    def partner_pid(self):
        raise NotImplementedError

    def survivor_knows(self, ip):
        raise NotImplementedError

    def fail(self, how):
        if how == "kill":
            os.kill(self.partner_pid(), signal.SIGKILL)
        elif how == "cut":
            self.lab.link_down(self.hostb, "eth0")
        else:
            raise ValueError(how)

    def resync(self, timeout=180):
        raise NotImplementedError


def _log_from(path, offset):
    try:
        with open(path, errors="replace") as f:
            f.seek(offset)
            return f.read()
    except OSError:
        return ""


def _size(path):
    return os.path.getsize(path) if path and os.path.exists(path) else 0


# -- ISC dhcpd ----------------------------------------------------------------------------

DHCPD_GLOBAL = """ddns-update-style none;
authoritative;
ping-check false;
log-facility local7;
default-lease-time %d;
max-lease-time %d;
""" % (LEASE_TIME, LEASE_TIME)


@register
class IscDhcpd(Server):
    name = "isc-dhcpd"
    describe = "ISC dhcpd 4.4 single server, lease file (fsyncs each commit)"
    order = 20
    tools = ("dhcpd",)

    def __init__(self):
        self.d = None

    def start(self, lab, host):
        conf = DHCPD_GLOBAL + dhcpd_subnet(SUBNET, (POOL_LO, POOL_HI))
        self.d = Dhcpd(host, conf).start(timeout=60)

    def stop(self):
        if self.d:
            self.d.stop()

    def logs(self):
        return [self.d.log_path] if self.d and self.d.proc else []


def _failover_conf(role):
    if role == "primary":
        me, peer = SERVER_A, SERVER_B
        extra = "  mclt %d;\n  split 128;\n" % LEASE_TIME
    else:
        me, peer = SERVER_B, SERVER_A
        extra = ""
    peer_block = ('failover peer "bench" {\n  %s;\n  address %s;\n  port 647;\n'
                  '  peer address %s;\n  peer port 647;\n  max-response-delay %d;\n'
                  '  max-unacked-updates %d;\n%s  load balance max seconds %d;\n}\n'
                  % (role, me, peer, MAX_RESPONSE_DELAY, WINDOW, extra, LB_MAX_SECONDS))
    pool = ('  pool {\n    failover peer "bench";\n    range %s %s;\n  }' % (POOL_LO, POOL_HI))
    return DHCPD_GLOBAL + peer_block + dhcpd_subnet(SUBNET, extra=pool)


@register
class IscDhcpdPair(Pair):
    name = "isc-dhcpd-pair"
    describe = "ISC dhcpd 4.4 failover pair (split 128), load-balanced"
    order = 21
    tools = ("dhcpd",)
    ready_timeout = 300

    def __init__(self):
        self.a = self.b = None

    def start(self, lab, host):
        from integration.iscpair import IscServer
        self.lab = lab
        self.hostb = lab.add_host("srvb", "%s/%d" % (SERVER_B, PREFIX_LEN))
        snap = snapshot_dir(self.name)
        saved = snap and os.path.exists(os.path.join(snap, "b.leases"))
        leases = {}
        if saved:
            for side in ("a", "b"):
                with open(os.path.join(snap, side + ".leases")) as f:
                    leases[side] = f.read()
        self.a = IscServer(host, _failover_conf("primary"), name="dhcpd-primary", leases=leases.get("a", ""))
        self.b = IscServer(self.hostb, _failover_conf("secondary"), name="dhcpd-secondary",
                           leases=leases.get("b", ""))
        self._start_both()
        if saved:
            return
        # Fresh pair: recover -> recover-done -> normal, then pool balancing
        # hands the secondary its BACKUP half.
        self._wait_balanced()
        if snap:
            for d in (self.a, self.b):
                d.stop()
            os.makedirs(snap)
            for side, d in (("a", self.a), ("b", self.b)):
                with open(d.lease_path) as src, open(os.path.join(snap, side + ".leases"), "w") as dst:
                    dst.write(src.read())
            self._start_both()

    def _start_both(self):
        for d in (self.a, self.b):
            d.start(timeout=60)
        for d in (self.a, self.b):
            d.wait_log(r"I move from \S+ to normal", self.ready_timeout)

    def _wait_balanced(self, timeout=300):
        """Wait until the secondary holds the BACKUP leases the primary sent.

        The primary logs how many leases it moves ("lts N"); the secondary
        records each BNDUPD it accepts in its lease file.
        """
        m = self.a.wait_log(r"balancing pool .* lts (\d+)", 120)
        want = int(m.group(1))
        path = self.b.lease_path

        def count():
            with open(path, "rb") as f:
                return f.read().count(b"binding state backup;")

        # A lease moved to BACKUP may be written more than once; reaching the
        # count is enough.
        wait_until(lambda: count() >= want, timeout, 0.5, "secondary backup leases")
        return want

    def partner_pid(self):
        return self.b.proc.pid

    def survivor_knows(self, ip):
        return (self.a.leases().get(ip) or {}).get("state") == "active"

    def resync(self, timeout=180):
        """The secondary restarts with an empty lease file: RECOVER, UPDREQALL,
        every lease of the pool from the primary, UPDDONE."""
        self.b.stop()
        open(self.b.lease_path, "w").close()
        off_a = _size(self.a.log_path)
        t0 = time.monotonic()
        self.b.start(timeout=60)
        # (a restart logs "recover to startup" and "startup to recover" first)
        m = self.b.wait_log(r"I move from recover to (recover-\S+|normal)", timeout)
        synced = time.monotonic() - t0
        if m.group(1) == "recover-wait":
            return synced, None     # MCLT wait before serving again (see DhcpfoPair.resync)
        self.b.wait_log(r"I move from \S+ to normal", timeout)
        wait_until(lambda: "to normal" in _log_from(self.a.log_path, off_a), timeout, 0.1, "primary normal")
        return synced, time.monotonic() - t0

    def stop(self):
        for d in (self.a, self.b):
            if d:
                d.stop()

    def logs(self):
        return [d.log_path for d in (self.a, self.b) if d and d.proc]


# -- Kea ------------------------------------------------------------------------------------

KEA_HOOKS = "/usr/lib/x86_64-linux-gnu/kea/hooks"


def _kea_hook(name):
    for base in (KEA_HOOKS, "/usr/lib/kea/hooks", "/usr/local/lib/kea/hooks"):
        path = os.path.join(base, name)
        if os.path.exists(path):
            return path
    raise LabError("Kea hook library not found: " + name)


class _Kea:
    """One kea-dhcp4 process with its config, lease file and log in the lab dir."""

    def __init__(self, host, tag, dhcp4_extra):
        lab = host.lab
        self.host = host
        self.tag = tag
        self.conf_path = lab.path("%s.json" % tag)
        self.log_path = lab.path("%s.log" % tag)
        cfg = {
            "interfaces-config": {"interfaces": ["eth0"]},
            "lease-database": {"type": "memfile", "persist": True,
                               "name": lab.path("%s.leases.csv" % tag), "lfc-interval": 0},
            "valid-lifetime": LEASE_TIME,
            "subnet4": [{"id": 1, "subnet": SUBNET,
                         "pools": [{"pool": "%s - %s" % (POOL_LO, POOL_HI)}]}],
            "loggers": [{"name": "kea-dhcp4", "severity": KEA_LOG_SEVERITY,
                         "output_options": [{"output": self.log_path}]},
                        {"name": "kea-dhcp4.dhcp4", "severity": "INFO",
                         "output_options": [{"output": self.log_path}]},
                        {"name": "kea-dhcp4.ha-hooks", "severity": "INFO",
                         "output_options": [{"output": self.log_path}]}],
        }
        cfg.update(dhcp4_extra)
        with open(self.conf_path, "w") as f:
            json.dump({"Dhcp4": cfg}, f, indent=1)
        self.proc = None

    def start(self, timeout=30):
        lab = self.host.lab
        env = dict(os.environ, KEA_PIDFILE_DIR=lab.workdir, KEA_LOCKFILE_DIR=lab.workdir)
        self.offset = _size(self.log_path)
        self.proc = self.host.run_logged([tool("kea-dhcp4"), "-c", self.conf_path], self.tag, env=env)
        self.wait_log(r"DHCP4_STARTED", timeout, "kea-dhcp4 start")

    offset = 0

    def wait_log(self, pattern, timeout, what=None):
        """Wait for `pattern` in what this process (this start) logged."""
        rx = re.compile(pattern)

        def seen():
            if self.proc.poll() is not None:
                raise LabError("%s exited (%s) before %s; log tail:\n%s"
                               % (self.tag, self.proc.returncode, what or pattern, tail(self.log_path)))
            return rx.search(_log_from(self.log_path, self.offset))

        return wait_until(seen, timeout, 0.05, what or pattern)

    def stop(self):
        if self.proc is not None:
            self.host.stop(self.proc)


@register
class Kea(Server):
    name = "kea"
    describe = "Kea 2.2 kea-dhcp4, memfile (persist, LFC off), default threading (single)"
    order = 10
    tools = ("kea-dhcp4",)

    def __init__(self):
        self.k = None

    def start(self, lab, host):
        self.k = _Kea(host, "kea", {})
        self.k.start()

    def stop(self):
        if self.k:
            self.k.stop()

    def logs(self):
        return [self.k.log_path] if self.k else []


def _kea_ha(this, mt_threads=2):
    peers = [
        {"name": "kea1", "url": "http://%s:8001/" % SERVER_A, "role": "primary", "auto-failover": True},
        {"name": "kea2", "url": "http://%s:8001/" % SERVER_B, "role": "secondary", "auto-failover": True},
    ]
    ha = {
        "this-server-name": this,
        "mode": "load-balancing",
        "heartbeat-delay": 1000,
        "max-response-delay": MAX_RESPONSE_DELAY * 1000,
        "max-ack-delay": 5000,
        # 0: partner-down as soon as max-response-delay passes without a
        # heartbeat, like the failover pairs' timer (no client-traffic vote)
        "max-unacked-clients": 0,
        "sync-timeout": 60000,
        "multi-threading": {"enable-multi-threading": True, "http-dedicated-listener": True,
                            "http-listener-threads": mt_threads, "http-client-threads": mt_threads},
        "peers": peers,
    }
    return {
        "multi-threading": {"enable-multi-threading": True, "thread-pool-size": mt_threads,
                            "packet-queue-size": 64},
        "hooks-libraries": [
            {"library": _kea_hook("libdhcp_lease_cmds.so")},
            {"library": _kea_hook("libdhcp_ha.so"), "parameters": {"high-availability": [ha]}},
        ],
    }


KEA_READY_RX = r"HA_STATE_TRANSITION.*to LOAD-BALANCING|HA_STATE_TRANSITION.*new state load-balancing"


@register
class KeaHA(Pair):
    name = "kea-ha-pair"
    describe = ("Kea 2.2 HA pair, load-balancing (libdhcp_ha + lease_cmds), MT + dedicated HTTP listener; "
                "no update window: each lease update is answered before the DHCPACK leaves")
    order = 11
    tools = ("kea-dhcp4",)
    ready_timeout = 60

    def __init__(self):
        self.a = self.b = None

    def start(self, lab, host):
        self.lab = lab
        self.hostb = lab.add_host("srvb", "%s/%d" % (SERVER_B, PREFIX_LEN))
        self.a = _Kea(host, "kea1", _kea_ha("kea1"))
        self.b = _Kea(self.hostb, "kea2", _kea_ha("kea2"))
        self.a.start()
        self.b.start()
        for k in (self.a, self.b):
            k.wait_log(KEA_READY_RX, self.ready_timeout, "%s load-balancing" % k.tag)

    def partner_owns(self, key):
        # Kea: server index = RFC 3074 hash % number of active servers (query_filter.cc)
        return hashing.client_hash(key) % 2 == 1

    def partner_pid(self):
        return self.b.proc.pid

    def survivor_knows(self, ip):
        try:
            with open(self.lab.path("kea1.leases.csv")) as f:
                return ("\n%s," % ip) in f.read()
        except OSError:
            return False

    def resync(self, timeout=180):
        """kea2 restarts with no lease file: it fetches kea1's leases
        (lease4-get-page) in the SYNCING state, then READY, LOAD-BALANCING."""
        self.b.stop()
        for suffix in ("", ".2", ".1", ".completed"):
            path = self.lab.path("kea2.leases.csv" + suffix)
            if os.path.exists(path):
                os.unlink(path)
        t0 = time.monotonic()
        self.b.start(timeout=60)
        self.b.wait_log(r"HA_SYNC_SUCCESSFUL|HA_STATE_TRANSITION.*(READY|ready)", timeout, "kea2 synced")
        synced = time.monotonic() - t0
        self.b.wait_log(KEA_READY_RX, timeout, "kea2 load-balancing")
        return synced, time.monotonic() - t0

    def stop(self):
        for k in (self.a, self.b):
            if k:
                k.stop()

    def logs(self):
        return [k.log_path for k in (self.a, self.b) if k]
