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
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from integration.netns import Dhcpd, LabError, dhcpd_subnet, tool, wait_for_text, wait_until  # noqa: E402

SUBNET = "198.18.0.0/16"
PREFIX_LEN = 16
SERVER_A = "198.18.0.1"
CLIENT = "198.18.0.2"
SERVER_B = "198.18.0.3"
POOL_LO = "198.18.1.0"
POOL_HI = "198.18.255.254"
POOL_SIZE = 255 * 256 - 1     # .1.0 up to .255.254
LEASE_TIME = 3600
# Kea's shipped config logs at INFO: one line per lease (and, in HA, per
# lease update received), like dhcpd's per-packet lines. "WARN" keeps only
# the start-up and HA state lines the bench waits for (run.py --kea-log).
KEA_LOG_SEVERITY = "INFO"

REGISTRY = {}


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
                  '  peer address %s;\n  peer port 647;\n  max-response-delay 30;\n'
                  '  max-unacked-updates 10;\n%s  load balance max seconds 3;\n}\n'
                  % (role, me, peer, extra))
    pool = ('  pool {\n    failover peer "bench";\n    range %s %s;\n  }' % (POOL_LO, POOL_HI))
    return DHCPD_GLOBAL + peer_block + dhcpd_subnet(SUBNET, extra=pool)


@register
class IscDhcpdPair(Server):
    name = "isc-dhcpd-pair"
    describe = "ISC dhcpd 4.4 failover pair (split 128), load-balanced"
    order = 21
    tools = ("dhcpd",)
    ready_timeout = 120

    def __init__(self):
        self.a = self.b = None

    def start(self, lab, host):
        hostb = lab.add_host("srvb", "%s/%d" % (SERVER_B, PREFIX_LEN))
        self.a = Dhcpd(host, _failover_conf("primary"), name="dhcpd-primary")
        self.b = Dhcpd(hostb, _failover_conf("secondary"), name="dhcpd-secondary")
        self.a.start(timeout=60)
        self.b.start(timeout=60)
        # Fresh pair: recover -> recover-done -> normal, then pool balancing
        # hands the secondary its BACKUP half.
        for d in (self.a, self.b):
            d.wait_log(r"I move from \S+ to normal", self.ready_timeout)
        self._wait_balanced()

    def _wait_balanced(self, timeout=120):
        """Wait until the secondary holds the BACKUP leases the primary sent.

        The primary logs how many leases it moves ("lts N"); the secondary
        records each BNDUPD it accepts in its lease file.
        """
        m = self.a.wait_log(r"balancing pool .* lts (\d+)", 30)
        want = int(m.group(1))
        path = self.b.lease_path

        def count():
            with open(path, "rb") as f:
                return f.read().count(b"binding state backup;")

        # A lease moved to BACKUP may be written more than once; reaching the
        # count is enough.
        wait_until(lambda: count() >= want, timeout, 0.5, "secondary backup leases")
        return want

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
        self.proc = self.host.run_logged([tool("kea-dhcp4"), "-c", self.conf_path], self.tag, env=env)
        wait_for_text(self.log_path, r"DHCP4_STARTED", timeout, self.proc, "kea-dhcp4 start")

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
        "max-response-delay": 60000,
        "max-ack-delay": 5000,
        "max-unacked-clients": 5,
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


@register
class KeaHA(Server):
    name = "kea-ha-pair"
    describe = "Kea 2.2 HA pair, load-balancing (libdhcp_ha + lease_cmds), MT + dedicated HTTP listener"
    order = 11
    tools = ("kea-dhcp4",)
    ready_timeout = 60

    def __init__(self):
        self.a = self.b = None

    def start(self, lab, host):
        hostb = lab.add_host("srvb", "%s/%d" % (SERVER_B, PREFIX_LEN))
        self.a = _Kea(host, "kea1", _kea_ha("kea1"))
        self.b = _Kea(hostb, "kea2", _kea_ha("kea2"))
        self.a.start()
        self.b.start()
        for k in (self.a, self.b):
            wait_for_text(k.log_path, r"HA_STATE_TRANSITION.*to LOAD-BALANCING|"
                          r"HA_STATE_TRANSITION.*new state load-balancing",
                          self.ready_timeout, k.proc, "%s load-balancing" % k.tag)

    def stop(self):
        for k in (self.a, self.b):
            if k:
                k.stop()

    def logs(self):
        return [k.log_path for k in (self.a, self.b) if k]
