"""A dhcpfo node and ISC dhcpd 4.4 as failover partners in a namespace lab.

Topology (as integration/pair.py: the failover link is its own segment, so
it can be cut without cutting the clients off):

    segment 0 (clients)    dfo:eth0 198.18.0.2   isc:eth0 198.18.0.3   c1, c2, ...
    segment 1 (failover)   dfo:eth1 198.18.2.2   isc:eth1 198.18.2.3

`dfo` runs `dhcpfo node` (integration.nodes.Node), `isc` runs Debian's
dhcpd (`IscServer`, a `netns.Dhcpd` that restarts, reads its failover
state from its log, parses its lease file fully and speaks OMAPI through
omshell). Either side may be the primary. Both serve the pool
198.18.0.100-149 of 198.18.0.0/24 in the relationship "interop".

ISC's `split` gives the primary's share of the hash buckets (0..256):
128 is load balance, 256 is the nearest ISC has to hot standby (the
primary answers every client in NORMAL; the pool is still balanced between
FREE and BACKUP by ISC's own rules, dhcpd.conf(5) "max-lease-misbalance").
"""

import calendar
import os
import re
import signal
import subprocess
import time

from dhcpfo.failover import hashing
from integration.netns import Dhclient, Dhcpcd, Dhcpd, LabError, Udhcpc, dhcpd_subnet, tool, wait_until
from integration.nodes import Node, node_config, relationship, scope, state_move
from integration.pair import _DROP, _HOLD

REL = "interop"
SCOPE = "198.18.0.0"
POOL = ("198.18.0.100", "198.18.0.149")
POOL_SIZE = 50
SIDS = {"dfo": "198.18.0.2", "isc": "198.18.0.3"}
FO_ADDRS = {"dfo": "198.18.2.2", "isc": "198.18.2.3"}
ROUTER = "198.18.0.1"
OMAPI_PORT = 7911
OMAPI_KEY = "interop-omapi"
OMAPI_SECRET = "c2VjcmV0LWZvci10ZXN0cy1vbmx5LWludGVyb3A="  # base64, HMAC-MD5 (omshell's only algorithm)

# ISC's failover state numbers (OMAPI local-state / partner-state, dhcpd(8))
ISC_STATES = {"normal": 2, "communications-interrupted": 3, "partner-down": 4,
              "potential-conflict": 5, "recover": 6, "paused": 7, "shutdown": 8,
              "recover-done": 9, "resolution-interrupted": 10, "conflict-done": 11,
              "recover-wait": 254}

CLIENTS = {"dhclient": Dhclient, "udhcpc": Udhcpc, "dhcpcd": Dhcpcd}
# hook events after which a client holds no address (dhcpcd's on top of pair.py's)
_GONE = _DROP | {"NAK", "DEPARTED", "NOCARRIER"}

_MOVE_RX = re.compile(r"failover peer %s: I move from (\S+) to (\S+)" % REL)


def isc_conf(role, lease_time, mclt, max_response_delay, split, lb_max_seconds, max_unacked=10):
    """dhcpd.conf for the ISC side: failover peer, OMAPI with a key, one pooled subnet."""
    peer = ["failover peer \"%s\" {" % REL,
            "  %s;" % role,
            "  address %s;" % FO_ADDRS["isc"],
            "  port 647;",
            "  peer address %s;" % FO_ADDRS["dfo"],
            "  peer port 647;",
            "  max-response-delay %d;" % max_response_delay,
            "  max-unacked-updates %d;" % max_unacked,
            "  load balance max seconds %d;" % lb_max_seconds]
    if role == "primary":  # the secondary takes both from CONNECT (dhcpd.conf(5))
        peer += ["  mclt %d;" % mclt, "  split %d;" % split]
    peer.append("}")
    pool = "  pool {\n    failover peer \"%s\";\n    range %s %s;\n  }" % (REL, POOL[0], POOL[1])
    return ("ddns-update-style none;\nauthoritative;\nping-check false;\n"
            "default-lease-time %d;\nmax-lease-time %d;\n" % (lease_time, lease_time)
            + "omapi-port %d;\nkey %s {\n  algorithm hmac-md5;\n  secret \"%s\";\n}\nomapi-key %s;\n"
            % (OMAPI_PORT, OMAPI_KEY, OMAPI_SECRET, OMAPI_KEY)
            + "\n".join(peer) + "\n"
            + dhcpd_subnet(SCOPE + "/24", routers=ROUTER, extra=pool))


class IscServer(Dhcpd):
    """ISC dhcpd as a failover peer: restartable, with its state and leases readable."""

    def start(self, timeout=20):
        """Start dhcpd; wait for "Server starting service" written by THIS run."""
        offset = os.path.getsize(self.log_path) if self.proc is not None and os.path.exists(self.log_path) else 0
        argv = [tool("dhcpd"), "-4", "-f", "-d", "-cf", self.conf_path, "-lf", self.lease_path,
                "-pf", self.pid_path] + self.ifaces
        self.proc = self.host.run_logged(argv, self.name)
        self.run_offset = offset
        self.wait_log(r"Server starting service", timeout)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL by PID: dhcpd gets no chance to close the failover link."""
        if self.running():
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(5)

    def run_log(self):
        """The log text of the current run only."""
        with open(self.proc.log_path, errors="replace") as f:
            f.seek(self.run_offset)
            return f.read()

    def wait_log(self, pattern, timeout):
        rx = re.compile(pattern)

        def seen():
            if self.proc.poll() is not None:
                raise LabError("dhcpd exited (%s) waiting for %r; log tail:\n%s"
                               % (self.proc.returncode, pattern, self.run_log()[-2000:]))
            return rx.search(self.run_log())

        return wait_until(seen, timeout, 0.05, "dhcpd log %r" % pattern)

    def moves(self):
        """[(from, to)] failover state changes logged by this run."""
        return _MOVE_RX.findall(self.run_log())

    def state(self):
        """ISC's failover state by its log (this run); "startup" before its first move."""
        mv = self.moves()
        return mv[-1][1] if mv else "startup"

    # -- OMAPI ---------------------------------------------------------------------

    def omshell(self, lines, timeout=15):
        """Run omshell in dhcpd's namespace with `lines` after connecting; returns stdout."""
        script = "\n".join(["server 127.0.0.1", "port %d" % OMAPI_PORT,
                            "key %s %s" % (OMAPI_KEY, OMAPI_SECRET), "connect"] + list(lines)) + "\n"
        try:
            res = subprocess.run(self.host.argv([tool("omshell")]), input=script, capture_output=True,
                                 text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise LabError("omshell timed out") from exc
        if res.returncode != 0 or "can't" in res.stdout.lower() or "error" in res.stdout.lower():
            raise LabError("omshell failed (%s): %s %s" % (res.returncode, res.stdout, res.stderr))
        return res.stdout

    def failover_object(self):
        """The failover-state object as OMAPI shows it: {attribute: text value}."""
        out = self.omshell(["new failover-state", 'set name = "%s"' % REL, "open"])
        return dict(re.findall(r"^(\S+) = (.*)$", out, re.M))

    def set_local_state(self, name):
        """Write `local-state` through OMAPI (the one writable attribute): e.g. partner-down."""
        return self.omshell(["new failover-state", 'set name = "%s"' % REL, "open",
                             "set local-state = %d" % ISC_STATES[name], "update"])

    # -- lease file ------------------------------------------------------------------

    def lease_file(self):
        """The lease file as {ip: {field: value}}, the last entry of each address
        (binding state, next binding state, hardware, uid, starts, ends, tstp,
        tsfp, atsfp, cltt; times as the text dhcpd wrote, e.g. "4 2026/12/03 09:00:00")."""
        out = {}
        try:
            with open(self.lease_path, errors="replace") as f:
                text = f.read()
        except OSError:
            return out
        for m in re.finditer(r"^lease (\S+) \{(.*?)^\}", text, re.S | re.M):
            row = {}
            for line in m.group(2).splitlines():
                line = line.strip().rstrip(";")
                for key in ("next binding state", "rewind binding state", "binding state",
                            "hardware ethernet", "uid", "starts", "ends", "tstp", "tsfp",
                            "atsfp", "cltt"):
                    if line.startswith(key + " "):
                        row.setdefault(key, line[len(key) + 1:].strip())
                        break
            out[m.group(1)] = row
        return out

    def saved_state(self):
        """(my state, partner state) of the last failover state block in the lease file."""
        try:
            with open(self.lease_path, errors="replace") as f:
                text = f.read()
        except OSError:
            return None
        blocks = re.findall(r"my state (\S+) at.*?partner state (\S+) at", text, re.S)
        return blocks[-1] if blocks else None


def isc_time(text):
    """Seconds since the epoch of a lease-file time ("w yyyy/mm/dd hh:mm:ss", UTC) or None."""
    if not text or text == "never":
        return None
    m = re.match(r"\d+ (\d+)/(\d+)/(\d+) (\d+):(\d+):(\d+)", text)
    if not m:
        return None
    y, mo, d, h, mi, s = (int(x) for x in m.groups())
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))


class IscPair:
    """dhcpfo (`dfo`) and ISC dhcpd (`isc`) in one relationship, plus clients.

    ours: "primary" or "secondary" (ISC takes the other role). split: ISC's
    split when ISC is primary, else the primary share we announce (128 =
    load balance, 256 = primary serves all, hot standby in our config).
    """

    def __init__(self, lab, ours="primary", split=128, mclt=20, lease_time=600,
                 max_response_delay=6, lb_max_seconds=3, verbose=True):
        self.lab = lab
        self.ours = ours
        self.isc_role = "secondary" if ours == "primary" else "primary"
        self.split = split
        self.hba = hashing.hba_split(split)
        self.mclt = mclt
        self.lease_time = lease_time
        self.fo_segment = lab.add_segment()
        self.hosts = {}
        for side in ("dfo", "isc"):
            host = lab.add_host(side, SIDS[side] + "/24", segment=0)
            lab.attach(host, self.fo_segment, "eth1", FO_ADDRS[side] + "/24")
            self.hosts[side] = host
        rel_extra = {"mclt": mclt, "max_response_delay": max_response_delay,
                     "load_balance_max_seconds": lb_max_seconds}
        if split in (0, 256):
            rel_extra["mode"] = "hot-standby"
            active_is_primary = split == 256
            rel_extra["hot_standby_role"] = "active" if (ours == "primary") == active_is_primary else "standby"
        else:
            rel_extra["mode"] = "load-balance"
            rel_extra["load_balance_percent"] = split * 100 // 256 if ours == "primary" else 100 - split * 100 // 256
        rel = relationship(REL, ours, FO_ADDRS["dfo"], FO_ADDRS["isc"], [SCOPE], **rel_extra)
        cfg = node_config("dfo", SIDS["dfo"],
                          [scope(SCOPE, POOL[0], POOL[1], lease_time=lease_time,
                                 options={"routers": [ROUTER]})],
                          lab.path("data-dfo"), failover=[rel])
        self.node = Node(self.hosts["dfo"], cfg, verbose=verbose)
        self.isc = IscServer(self.hosts["isc"],
                             isc_conf(self.isc_role, lease_time, mclt, max_response_delay, split,
                                      lb_max_seconds))
        self.clients = []
        self._mac_seq = 0
        self._client_seq = 0

    def capture(self):
        """Record the failover link (TCP 647) to <lab dir>/failover.pcap with
        dumpcap (for debugging: DFO_INTEROP_PCAP=1 in the tests). The lab
        ends the capture with the rest of its processes."""
        path = self.lab.path("failover.pcap")
        proc = self.hosts["dfo"].run_logged([tool("dumpcap"), "-q", "-i", "eth1", "-f", "tcp port 647",
                                             "-w", path], "dumpcap")
        wait_until(lambda: os.path.exists(path) or proc.poll() is not None, 10, 0.05, "dumpcap start")
        return path

    # -- states ------------------------------------------------------------------------

    def start(self, timeout=40):
        """Start dhcpd and the node; return seconds until both are NORMAL."""
        t0 = time.monotonic()
        self.isc.start()
        self.node.start()
        self.wait_states("normal", "normal", timeout)
        return time.monotonic() - t0

    def failover(self):
        return self.node.call("get-failover")["relationships"][0]

    def our_state(self):
        return self.failover()["state"]

    def wait_states(self, ours=None, isc=None, timeout=30, interval=0.2):
        """Wait until our state is in `ours` and ISC's in `isc` (a name or a tuple;
        None: any). Returns the seconds waited."""
        t0 = time.monotonic()
        seen = {}
        want_o = (ours,) if isinstance(ours, str) else ours
        want_i = (isc,) if isinstance(isc, str) else isc

        def ok():
            if want_o is not None:
                seen["dfo"] = self.our_state()
                if seen["dfo"] not in want_o:
                    return False
            if want_i is not None:
                seen["isc"] = self.isc.state()
                if seen["isc"] not in want_i:
                    return False
            return True

        try:
            wait_until(ok, timeout, interval, "states dfo=%s isc=%s" % (ours, isc))
        except LabError as e:
            raise LabError("%s (last seen %s)\n%s" % (e, seen, self.logs())) from None
        return time.monotonic() - t0

    def logs(self, n=40):
        out = []
        try:
            out.append("--- dfo log ---\n" + "".join(self.node.log().splitlines(True)[-n:]))
        except OSError:
            pass
        if self.isc.proc is not None:
            out.append("--- isc log ---\n" + "".join(self.isc.run_log().splitlines(True)[-n:]))
        return "\n".join(out)

    def our_path(self, limit=30):
        """Our own recent state changes, oldest first, as "a -> b (why)" texts."""
        evs = self.node.call("get-events", limit=200)["events"]
        return [t for t in (state_move(e) for e in reversed(evs)) if t][-limit:]

    # -- tables ------------------------------------------------------------------------

    def our_active(self):
        """{address: mac} of unexpired ACTIVE bindings in our table."""
        rows = self.node.leases(SCOPE, state="active")
        return dict((a, r["mac"]) for a, r in rows.items() if r["expires_in"] > 0)

    def isc_active(self):
        """{address: mac} of ACTIVE leases in ISC's lease file that have not ended."""
        now = time.time()
        out = {}
        for ip, row in self.isc.lease_file().items():
            ends = isc_time(row.get("ends"))
            if row.get("binding state") == "active" and (ends is None or ends > now):
                out[ip] = (row.get("hardware ethernet") or "").lower()
        return out

    def isc_acked(self, ip):
        """Did we acknowledge ISC's own update for `ip`? ISC keeps the potential
        expiration it sent in `tstp` and copies it to `atsfp` when our BNDACK
        comes (for an address we leased, ISC has no tstp of its own)."""
        row = self.isc.lease_file().get(ip) or {}
        tstp, atsfp = isc_time(row.get("tstp")), isc_time(row.get("atsfp"))
        return tstp is not None and atsfp == tstp

    # -- clients -----------------------------------------------------------------------

    @staticmethod
    def client_key(kind, mac):
        """The bytes both servers hash (RFC 3074): the client identifier when the
        client sends one (udhcpc and our dhcpcd config: 01 + MAC), else chaddr."""
        raw = bytes(int(x, 16) for x in mac.split(":"))
        return b"\x01" + raw if kind in ("udhcpc", "dhcpcd") else raw

    def primary_serves(self, kind, mac):
        return hashing.serves(self.hba, self.client_key(kind, mac), True)

    def owner(self, kind, mac):
        """Which side ("dfo" or "isc") answers this client in NORMAL."""
        p = self.primary_serves(kind, mac)
        return "dfo" if p == (self.ours == "primary") else "isc"

    def mac_for(self, kind, side):
        """A fresh locally administered MAC whose hash bucket `side` serves."""
        for _ in range(100000):
            self._mac_seq += 1
            n = self._mac_seq
            mac = "02:1c:%02x:%02x:%02x:%02x" % (os.getpid() & 0xFF, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF)
            if side is None or self.owner(kind, mac) == side:
                return mac
        raise LabError("no MAC hashes to %s" % side)

    def client(self, kind, side=None, **kw):
        """A new client namespace on segment 0 with a MAC whose bucket `side`
        serves, and a Dhclient, Udhcpc or Dhcpcd in it (not started)."""
        mac = self.mac_for(kind, side)
        self._client_seq += 1
        host = self.lab.add_host("c%d" % self._client_seq, segment=0)
        host.ip("link", "set", "eth0", "down")
        host.ip("link", "set", "eth0", "address", mac)
        host.ip("link", "set", "eth0", "up")
        if kind not in CLIENTS:
            raise LabError("unknown client kind " + kind)
        c = CLIENTS[kind](host, **kw)
        c.mac = mac
        c.side = self.owner(kind, mac)
        self.clients.append(c)
        return c

    # -- safety --------------------------------------------------------------------------

    @staticmethod
    def held(c, now=None):
        """(ip, server id, expires at) of what a client holds now by its hook events, or None."""
        now = time.time() if now is None else now
        cur = None
        for e in c.events():
            if e.event in _HOLD and e.ip:
                cur = (e.ip, e.server_id, int(e.stamp) / 1e9 + (e.lease_time or 0))
            elif e.event in _GONE:
                cur = None
        if cur is not None and cur[2] <= now:
            return None
        return cur

    def duplicates(self):
        """Every way an address is held twice, as text lines (empty = safe): two
        clients told the same unexpired address; our table and ISC's lease file
        binding one address to different MACs; a client holding an address a
        server binds to another MAC."""
        problems = []
        now = time.time()
        by_ip = {}
        for c in self.clients:
            h = self.held(c, now)
            if h is not None:
                by_ip.setdefault(h[0], []).append((c.mac.lower(), h[1]))
        for ip, holders in sorted(by_ip.items()):
            if len(set(m for m, _ in holders)) > 1:
                problems.append("%s held by clients %s" % (ip, holders))
        tables = {}
        if self.node.running():
            tables["dfo"] = self.our_active()
        tables["isc"] = self.isc_active()
        if len(tables) == 2:
            for ip, mac in tables["dfo"].items():
                other = tables["isc"].get(ip)
                if other and other != mac:
                    problems.append("%s active for %s on dfo and for %s on isc" % (ip, mac, other))
        for ip, holders in by_ip.items():
            for side, tab in tables.items():
                m = tab.get(ip)
                for mac, sid in holders:
                    if m and m != mac:
                        problems.append("client %s holds %s (from %s) but %s binds it to %s"
                                        % (mac, ip, sid, side, m))
        return problems
