"""Network-namespace lab for integration tests and benchmarks.

A `Lab` is a throw-away network: one "switch" namespace holding Linux
bridges (one per segment) and any number of host namespaces, each attached
to a bridge by a veth pair. Tests start real servers and real DHCP clients
in the hosts, cut a host off by taking its switch port down, and kill
processes by PID. Everything is named after this run (``dfo<pid>x<n>...``)
so a crashed earlier run never clashes; `reap_stale()` removes what such a
run left behind.

Rules this module keeps (the machine is shared, the network is not ours):
  * addresses are 198.18.0.0/15 only, and only inside our namespaces;
  * DHCP clients run our own hook script (client-script.sh), never the stock
    one, because `ip netns exec` shares the host's /etc;
  * every wait is bounded in time, every process is tracked and ended by PID.
"""

import ipaddress
import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT_SCRIPT = os.path.join(HERE, "client-script.sh")
ROOT_REASON = "needs root for network namespaces"
NET = ipaddress.ip_network("198.18.0.0/15")
NS_PREFIX = "dfo"
_counter = itertools.count(1)


class LabError(RuntimeError):
    """A lab step failed (a command, a timeout, a process that died)."""


def have_root():
    return os.geteuid() == 0


def missing_tools(*names):
    """The names in `names` that are not on PATH (sbin included)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [n for n in names if shutil.which(n, path=path) is None]


def tool(name):
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    found = shutil.which(name, path=path)
    if found is None:
        raise LabError("tool not found: " + name)
    return found


def check_addr(addr):
    """Refuse any address outside 198.18.0.0/15 (returns the interface)."""
    iface = ipaddress.ip_interface(addr)
    if iface.ip not in NET:
        raise LabError("address outside 198.18.0.0/15: %s" % addr)
    return iface


def sh(argv, timeout=20, check=True, **kw):
    """Run a short command in the host's namespace (only `ip` is used)."""
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as exc:
        raise LabError("timeout: %s" % " ".join(argv)) from exc
    if check and res.returncode != 0:
        raise LabError("%s -> %d: %s" % (" ".join(argv), res.returncode, res.stderr.strip()))
    return res


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Poll `pred` until it returns a true value or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        val = pred()
        if val:
            return val
        if time.monotonic() >= deadline:
            raise LabError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def wait_for_text(path, pattern, timeout, proc=None, what=None):
    """Wait until file `path` contains regex `pattern`; fail early if `proc` dies."""
    rx = re.compile(pattern)

    def seen():
        if proc is not None and proc.poll() is not None:
            raise LabError("process %d exited (%s) before %s; log tail:\n%s"
                           % (proc.pid, proc.returncode, what or pattern, tail(path)))
        try:
            with open(path, errors="replace") as f:
                return rx.search(f.read())
        except FileNotFoundError:
            return None

    return wait_until(seen, timeout, 0.05, what or pattern)


def tail(path, lines=25):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)"


def _pid_alive(pid):
    """True while `pid` runs (a zombie waiting to be reaped counts as ended)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _ns_pids(ns):
    res = sh(["ip", "netns", "pids", ns], check=False)
    return [int(p) for p in res.stdout.split() if p.isdigit()]


def kill_pids(pids, grace=3.0):
    """SIGTERM each PID, wait up to `grace` s, then SIGKILL the rest."""
    pids = [p for p in pids if p > 1 and p != os.getpid()]
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
        time.sleep(0.05)
    for p in pids:
        if _pid_alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _list_ns():
    res = sh(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in res.stdout.splitlines() if line.strip()]


def reap_stale():
    """Delete namespaces (and their processes) left by dead runs of this harness.

    Only names of our own form ``dfo<pid>x<n>...`` whose <pid> no longer
    exists are touched.
    """
    rx = re.compile(r"^%s(\d+)x\d+" % NS_PREFIX)
    reaped = []
    for ns in _list_ns():
        m = rx.match(ns)
        if not m or _pid_alive(int(m.group(1))):
            continue
        kill_pids(_ns_pids(ns), grace=1.0)
        sh(["ip", "netns", "del", ns], check=False)
        reaped.append(ns)
    return reaped


class Host:
    """One namespace attached to the lab's switch."""

    def __init__(self, lab, name, ns, index):
        self.lab = lab
        self.name = name
        self.ns = ns
        self.index = index
        self.ifaces = {}        # ifname -> (segment, switch port, interface or None)
        self.procs = []

    def __repr__(self):
        return "Host(%s ns=%s %s)" % (self.name, self.ns, self.addr)

    @property
    def addr(self):
        """The first address of eth0 (without prefix length), or None."""
        ent = self.ifaces.get("eth0")
        return str(ent[2].ip) if ent and ent[2] is not None else None

    def iface_addr(self, iface):
        ent = self.ifaces[iface]
        return ent[2]

    def argv(self, argv):
        return ["ip", "netns", "exec", self.ns] + [str(a) for a in argv]

    def run(self, argv, **popen_kw):
        """Start `argv` in this namespace; the lab kills it by PID at teardown.

        `ip netns exec` execs the program in place, so the Popen's pid is the
        program's own pid.
        """
        popen_kw.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(self.argv(argv), **popen_kw)
        self.procs.append(proc)
        return proc

    def run_logged(self, argv, log_name, **popen_kw):
        """`run` with stdout and stderr going to a log file in the lab dir."""
        path = self.lab.path("%s.%s.log" % (self.name, log_name))
        log = open(path, "ab")
        try:
            proc = self.run(argv, stdout=log, stderr=subprocess.STDOUT, **popen_kw)
        finally:
            log.close()
        proc.log_path = path
        return proc

    def exec(self, argv, timeout=30, check=False, **kw):
        """Run `argv` in this namespace to completion (bounded by `timeout`)."""
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        try:
            res = subprocess.run(self.argv(argv), timeout=timeout, **kw)
        except subprocess.TimeoutExpired as exc:
            raise LabError("timeout in %s: %s" % (self.name, " ".join(map(str, argv)))) from exc
        if check and res.returncode != 0:
            raise LabError("%s: %s -> %d: %s" % (self.name, " ".join(map(str, argv)),
                                                 res.returncode, res.stderr))
        return res

    def ip(self, *args, check=True):
        return sh(["ip", "-n", self.ns] + [str(a) for a in args], check=check)

    def stop(self, proc, grace=3.0):
        """End one tracked process: SIGTERM, then SIGKILL after `grace` s."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        return proc.returncode

    def add_addr(self, addr, iface="eth0"):
        itf = check_addr(addr)
        self.ip("addr", "add", str(itf), "dev", iface)
        seg, port, first = self.ifaces[iface]
        if first is None:
            self.ifaces[iface] = (seg, port, itf)
        return itf

    def add_route(self, prefix, via):
        net = ipaddress.ip_network(prefix)
        if not net.subnet_of(NET) or ipaddress.ip_address(via) not in NET:
            raise LabError("route outside 198.18.0.0/15: %s via %s" % (prefix, via))
        self.ip("route", "replace", str(net), "via", str(via))

    def mac(self, iface="eth0"):
        out = self.ip("-o", "link", "show", "dev", iface).stdout
        m = re.search(r"link/ether ([0-9a-f:]{17})", out)
        return m.group(1) if m else None


class Lab:
    """A switch namespace with bridges, and host namespaces on veth pairs.

    Use as a context manager; `close()` kills every tracked process (and any
    other process still inside the lab's namespaces) by PID and deletes the
    namespaces. Set DFO_KEEP_LAB=1 to keep the work directory for debugging.
    """

    def __init__(self, workdir=None, keep_files=None, base=None):
        if not have_root():
            raise LabError(ROOT_REASON)
        self.prefix = "%s%dx%d" % (NS_PREFIX, os.getpid(), next(_counter))
        self.switch = self.prefix + "sw"
        self.hosts = {}
        self.segments = []
        self._nsnames = []
        self._host_index = 0
        self._open = False
        self.keep_files = (os.environ.get("DFO_KEEP_LAB") == "1") if keep_files is None else keep_files
        self.workdir = workdir or tempfile.mkdtemp(prefix=self.prefix + ".", dir=base)
        self._own_workdir = workdir is None

    # -- set-up ---------------------------------------------------------
    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def open(self):
        reap_stale()
        self._add_ns(self.switch)
        self._open = True
        self.add_segment()
        return self

    def path(self, name):
        return os.path.join(self.workdir, name)

    def _add_ns(self, ns):
        sh(["ip", "netns", "add", ns])
        self._nsnames.append(ns)
        sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        # No IPv6 chatter (router solicitations, MLD) on lab links.
        sh(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"], check=False)
        sh(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"], check=False)

    def add_segment(self):
        """Add a bridge (a separate layer-2 segment); returns its number."""
        n = len(self.segments)
        br = "br%d" % n
        sh(["ip", "-n", self.switch, "link", "add", br, "type", "bridge",
            "stp_state", "0", "forward_delay", "0"])
        sh(["ip", "-n", self.switch, "link", "set", br, "up"])
        self.segments.append(br)
        return n

    def add_host(self, name, addr=None, segment=0, iface="eth0"):
        """Create a host namespace with `iface` on `segment` (and `addr` on it)."""
        if name in self.hosts:
            raise LabError("duplicate host " + name)
        if not re.match(r"^[a-z][a-z0-9]{0,7}$", name):
            raise LabError("host names: lower-case letters/digits, at most 8: " + name)
        if addr:
            check_addr(addr)
        self._host_index += 1
        host = Host(self, name, self.prefix + name, self._host_index)
        self._add_ns(host.ns)
        self.hosts[name] = host
        self.attach(host, segment, iface, addr)
        return host

    def attach(self, host, segment, iface, addr=None):
        """Give `host` one more interface `iface`, plugged into `segment`."""
        port = "h%di%d" % (host.index, len(host.ifaces))
        sh(["ip", "-n", self.switch, "link", "add", port, "type", "veth",
            "peer", "name", iface, "netns", host.ns])
        sh(["ip", "-n", self.switch, "link", "set", port, "master", self.segments[segment], "up"])
        host.ip("link", "set", iface, "up")
        host.ifaces[iface] = (segment, port, None)
        if addr:
            host.add_addr(addr, iface)
        return port

    def add_relay(self, name, upstream, downstream, servers, segment=0, new_segment=True,
                  extra_args=(), timeout=10):
        """A relay host between `segment` and a new segment (ISC dhcrelay).

        upstream/downstream: "198.18.x.y/len" on eth0 (server side) and eth1
        (client side). servers: Host objects or addresses that get relayed
        packets; each Host in it gets a route to the downstream subnet via the
        relay. Returns the relay Host with `.segment` (the client segment),
        `.proc` (dhcrelay) and `.giaddr`.
        """
        relay = self.add_host(name, upstream, segment=segment)
        down_seg = self.add_segment() if new_segment else segment
        self.attach(relay, down_seg, "eth1", downstream)
        relay.exec(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], check=True)
        down_net = ipaddress.ip_interface(downstream).network
        up_ip = ipaddress.ip_interface(upstream).ip
        targets = []
        for s in servers:
            if isinstance(s, Host):
                s.add_route(down_net, up_ip)
                targets.append(s.addr)
            else:
                check_addr(s)
                targets.append(str(s))
        pid_file = self.path(name + ".dhcrelay.pid")
        argv = [tool("dhcrelay"), "-4", "-d", "-pf", pid_file,
                "-iu", "eth0", "-id", "eth1"] + list(extra_args) + targets
        proc = relay.run_logged(argv, "dhcrelay")
        wait_for_text(proc.log_path, r"Sending on +Socket/fallback", timeout, proc, "dhcrelay start")
        relay.segment = down_seg
        relay.proc = proc
        relay.giaddr = str(ipaddress.ip_interface(downstream).ip)
        return relay

    # -- failures ------------------------------------------------------------
    def _port(self, host, iface):
        return host.ifaces[iface][1]

    def link_down(self, host, iface="eth0"):
        """Partition: take `host`'s switch port down (its link loses carrier)."""
        sh(["ip", "-n", self.switch, "link", "set", self._port(host, iface), "down"])

    def link_up(self, host, iface="eth0"):
        sh(["ip", "-n", self.switch, "link", "set", self._port(host, iface), "up"])

    # -- teardown ------------------------------------------------------------
    def close(self):
        if not self._open:
            return
        self._open = False
        pids = []
        for host in self.hosts.values():
            pids += [p.pid for p in host.procs if p.poll() is None]
        kill_pids(pids)
        for host in self.hosts.values():
            for p in host.procs:
                try:
                    p.wait(2)
                except subprocess.TimeoutExpired:
                    pass
        # Anything else still inside our namespaces (children, daemons).
        for ns in self._nsnames:
            kill_pids(_ns_pids(ns), grace=1.0)
        for ns in reversed(self._nsnames):
            sh(["ip", "netns", "del", ns], check=False)
        self._nsnames = []
        if self._own_workdir and not self.keep_files:
            shutil.rmtree(self.workdir, ignore_errors=True)


# -- DHCP clients ---------------------------------------------------------------

class Lease:
    """What a client's hook script was told about a lease (one event)."""

    def __init__(self, client, event, env, stamp):
        self.client = client
        self.event = event
        self.env = env
        self.stamp = stamp
        if client == "dhclient":
            g = lambda k: env.get("new_" + k)
            self.ip = g("ip_address")
            self.mask = g("subnet_mask")
            self.server_id = g("dhcp_server_identifier")
            lt = g("dhcp_lease_time")
            self.routers = (g("routers") or "").split()
            self.dns = (g("domain_name_servers") or "").split()
            self.domain = g("domain_name")
            self.old_ip = env.get("old_ip_address")
        else:
            self.ip = env.get("ip")
            self.mask = env.get("subnet")
            self.server_id = env.get("serverid")
            lt = env.get("lease")
            self.routers = (env.get("router") or "").split()
            self.dns = (env.get("dns") or "").split()
            self.domain = env.get("domain")
            self.old_ip = None
        self.lease_time = int(lt) if lt and lt.isdigit() else None

    def __repr__(self):
        return "Lease(%s %s ip=%s sid=%s time=%s)" % (self.client, self.event, self.ip,
                                                      self.server_id, self.lease_time)


class _ClientBase:
    """Shared event-directory handling for both clients."""

    kind = "client"

    def __init__(self, host, iface="eth0", configure=True):
        self.host = host
        self.iface = iface
        self.configure = configure
        self.dir = tempfile.mkdtemp(prefix="%s.%s." % (self.kind, host.name), dir=host.lab.workdir)
        self.events_dir = os.path.join(self.dir, "events")
        os.mkdir(self.events_dir)
        self.proc = None
        self._seen = 0

    def env(self):
        e = dict(os.environ)
        e["DFO_CLIENT_DIR"] = self.events_dir
        e["DFO_CLIENT_CONFIGURE"] = "1" if self.configure else "0"
        return e

    def events(self):
        """All recorded events, oldest first."""
        out = []
        for fn in sorted(f for f in os.listdir(self.events_dir) if f.startswith("ev.")):
            env = {}
            with open(os.path.join(self.events_dir, fn), errors="replace") as f:
                for line in f:
                    k, sep, v = line.rstrip("\n").partition("=")
                    if sep:
                        env[k] = v
            stamp = fn.split(".")[1]
            out.append(Lease(env.pop("client", self.kind), env.pop("event", ""), env, stamp))
        return out

    def wait_event(self, names, timeout, fail=()):
        """Wait for the next not-yet-consumed event whose name is in `names`.

        An event named in `fail` (or the client process exiting) raises.
        """
        names = set(names)
        fail = set(fail)

        def check():
            evs = self.events()
            for i in range(self._seen, len(evs)):
                ev = evs[i]
                if ev.event in names:
                    self._seen = i + 1
                    return ev
                if ev.event in fail:
                    self._seen = i + 1
                    raise LabError("%s on %s reported %s" % (self.kind, self.host.name, ev.event))
            if self.proc is not None and self.proc.poll() is not None and not self._exit_ok:
                raise LabError("%s on %s exited %s; log:\n%s" % (
                    self.kind, self.host.name, self.proc.returncode, tail(self.proc.log_path)))
            return None

        return wait_until(check, timeout, 0.05, "%s event %s" % (self.kind, sorted(names)))

    _exit_ok = False

    def stop(self):
        """End the client without releasing (SIGTERM/SIGKILL by PID)."""
        if self.proc is not None:
            self._exit_ok = True
            self.host.stop(self.proc)


class Dhclient(_ClientBase):
    """ISC dhclient in a lab host, with a private config, lease and pid file.

    acquire(): start `dhclient -d` and wait for BOUND (or REBOOT).
    renew():   wait for the next RENEW (the server must hand out a short
               lease: dhclient renews at T1, there is no signal to force it).
    reboot():  stop without release and start again: INIT-REBOOT, a REQUEST
               for the address in the lease file (event REBOOT).
    release(): `dhclient -r` with the same pid/lease files: it stops the
               running client and sends DHCPRELEASE (event RELEASE).
    """

    kind = "dhclient"

    def __init__(self, host, iface="eth0", configure=True, conf_extra="", timeout=10,
                 request=("subnet-mask", "broadcast-address", "routers", "domain-name",
                          "domain-name-servers", "dhcp-lease-time", "dhcp-server-identifier")):
        super().__init__(host, iface, configure)
        self.timeout = timeout
        self.conf = os.path.join(self.dir, "dhclient.conf")
        self.lease_file = os.path.join(self.dir, "dhclient.leases")
        self.pid_file = os.path.join(self.dir, "dhclient.pid")
        with open(self.conf, "w") as f:
            f.write("timeout %d;\nretry 1;\ninitial-interval 1;\nbackoff-cutoff 2;\n"
                    "select-timeout 0;\nreboot 5;\nrequest %s;\n%s\n"
                    % (timeout, ", ".join(request), conf_extra))
        self.runs = 0

    def argv(self, *extra):
        return [tool("dhclient"), "-4", "-v", "-cf", self.conf, "-sf", CLIENT_SCRIPT,
                "-lf", self.lease_file, "-pf", self.pid_file,
                "-e", "DFO_CLIENT_DIR=" + self.events_dir,
                "-e", "DFO_CLIENT_CONFIGURE=" + ("1" if self.configure else "0")] + list(extra) + [self.iface]

    def start(self):
        self.runs += 1
        self._exit_ok = False
        self.proc = self.host.run_logged(self.argv("-d", "-1"), "%s%d" % (os.path.basename(self.dir), self.runs),
                                         env=self.env())
        return self.proc

    def acquire(self, timeout=None):
        self.start()
        return self.wait_event({"BOUND", "REBOOT"}, timeout or self.timeout + 5, fail={"FAIL"})

    def renew(self, timeout=30):
        return self.wait_event({"RENEW"}, timeout, fail={"EXPIRE", "FAIL"})

    def rebind(self, timeout=60):
        return self.wait_event({"REBIND"}, timeout, fail={"EXPIRE", "FAIL"})

    def reboot(self, timeout=None):
        self.exit()
        return self.acquire(timeout)

    def release(self, timeout=15):
        self._exit_ok = True
        self.host.exec(self.argv("-r"), timeout=timeout, env=self.env())
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.host.stop(self.proc)
        return self.wait_event({"RELEASE"}, 5)

    def exit(self, timeout=15):
        """`dhclient -x`: stop the running client without a release."""
        self._exit_ok = True
        self.host.exec(self.argv("-x"), timeout=timeout, env=self.env())
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.host.stop(self.proc)


class Udhcpc(_ClientBase):
    """busybox udhcpc in a lab host, in the foreground, with our script.

    acquire(): start and wait for "bound".
    renew():   SIGUSR1, then wait for "renew" (unicast REQUEST to the server).
    release(): SIGUSR2: DHCPRELEASE and "deconfig"; the client stays idle.
    """

    kind = "udhcpc"

    def __init__(self, host, iface="eth0", configure=True, tries=5, extra_args=()):
        super().__init__(host, iface, configure)
        self.tries = tries
        self.extra_args = list(extra_args)

    def start(self):
        self._exit_ok = False
        argv = [tool("busybox"), "udhcpc", "-f", "-n", "-i", self.iface, "-s", CLIENT_SCRIPT,
                "-t", str(self.tries), "-T", "1", "-A", "1"] + self.extra_args
        self.proc = self.host.run_logged(argv, os.path.basename(self.dir), env=self.env())
        return self.proc

    def acquire(self, timeout=None):
        self.start()
        return self.wait_event({"bound"}, timeout or self.tries * 2 + 5, fail={"leasefail", "nak"})

    def renew(self, timeout=10):
        self.proc.send_signal(signal.SIGUSR1)
        return self.wait_event({"renew", "bound"}, timeout, fail={"leasefail", "nak"})

    def release(self, timeout=10):
        self.proc.send_signal(signal.SIGUSR2)
        return self.wait_event({"deconfig"}, timeout)


def dhclient(host, iface="eth0", timeout=None, **kw):
    """Start a Dhclient on `host` and wait for its lease: returns (client, Lease)."""
    c = Dhclient(host, iface, **kw)
    return c, c.acquire(timeout)


class Dhcpcd(_ClientBase):
    """dhcpcd 9 (Debian dhcpcd-base) in a lab host, with a private config,
    our hook script and private run/state directories.

    dhcpcd keeps its pid file, control sockets and leases in /run/dhcpcd and
    /var/lib/dhcpcd, which `ip netns exec` shares with the machine (and with
    every other dhcpcd of the lab). So it starts under `sh`, which mounts a
    tmpfs on both inside the mount namespace `ip netns exec` gives each
    command (not propagated back), then execs dhcpcd in place (same PID).
    The config sends the client identifier 01 + MAC (as udhcpc does), no
    ARP probe, no IPv4LL, no IPv6; the hook script sees dhclient-style
    variables (reason, new_ip_address, ...), so events parse as dhclient's.

    acquire(): start and wait for BOUND (or REBOOT).
    renew():   `dhcpcd -n` is a rebind; the next RENEW comes at T1 by itself.
    """

    kind = "dhcpcd"

    def __init__(self, host, iface="eth0", configure=True, timeout=15, conf_extra=""):
        super().__init__(host, iface, configure)
        self.timeout = timeout
        self.conf = os.path.join(self.dir, "dhcpcd.conf")
        with open(self.conf, "w") as f:
            f.write("ipv4only\nnoipv6rs\nnoarp\nnoipv4ll\nnodelay\nclientid\n"
                    "option subnet_mask, routers, domain_name_servers, domain_name\n"
                    "require dhcp_server_identifier\ntimeout %d\nreboot 5\n"
                    "env DFO_CLIENT_DIR=%s\nenv DFO_CLIENT_CONFIGURE=%s\n%s\n"
                    % (timeout, self.events_dir, "1" if configure else "0", conf_extra))
        self.runs = 0

    def start(self):
        self.runs += 1
        self._exit_ok = False
        prog = ("mount -t tmpfs -o mode=0755 dfo-dhcpcd-run /run && "
                "mount -t tmpfs -o mode=0755 dfo-dhcpcd-db /var/lib/dhcpcd && "
                "exec %s -B -4 -f %s -c %s %s" % (tool("dhcpcd"), self.conf, CLIENT_SCRIPT, self.iface))
        self.proc = self.host.run_logged(["sh", "-c", prog], "%s%d" % (os.path.basename(self.dir), self.runs),
                                         env=self.env())
        return self.proc

    def acquire(self, timeout=None):
        self.start()
        return self.wait_event({"BOUND", "REBOOT"}, timeout or self.timeout + 5, fail={"FAIL", "NAK"})

    def renew(self, timeout=30):
        return self.wait_event({"RENEW", "REBIND"}, timeout, fail={"EXPIRE", "FAIL", "NAK"})


def dhcpcd(host, iface="eth0", timeout=None, **kw):
    """Start a Dhcpcd on `host` and wait for its lease: returns (client, Lease)."""
    c = Dhcpcd(host, iface, **kw)
    return c, c.acquire(timeout)


def udhcpc(host, iface="eth0", timeout=None, **kw):
    """Start a Udhcpc on `host` and wait for its lease: returns (client, Lease)."""
    c = Udhcpc(host, iface, **kw)
    return c, c.acquire(timeout)


# -- servers -----------------------------------------------------------------------

class Dhcpd:
    """ISC dhcpd 4.4 in a lab host: `dhcpd -f -d -cf -lf -pf IFACES`.

    `conf` is the dhcpd.conf text. `leases` optionally seeds the lease file
    (e.g. a saved failover state). The log (stderr) is in `.log_path`.
    """

    def __init__(self, host, conf, ifaces=("eth0",), leases="", name="dhcpd"):
        self.host = host
        self.name = name
        self.conf_path = host.lab.path("%s.%s.conf" % (host.name, name))
        self.lease_path = host.lab.path("%s.%s.leases" % (host.name, name))
        self.pid_path = host.lab.path("%s.%s.pid" % (host.name, name))
        self.ifaces = list(ifaces)
        with open(self.conf_path, "w") as f:
            f.write(conf)
        with open(self.lease_path, "w") as f:
            f.write(leases)
        self.proc = None

    @property
    def log_path(self):
        return self.proc.log_path if self.proc else None

    def start(self, timeout=20):
        argv = [tool("dhcpd"), "-4", "-f", "-d", "-cf", self.conf_path, "-lf", self.lease_path,
                "-pf", self.pid_path] + self.ifaces
        self.proc = self.host.run_logged(argv, self.name)
        wait_for_text(self.proc.log_path, r"Server starting service", timeout, self.proc, "dhcpd start")
        return self

    def wait_log(self, pattern, timeout):
        return wait_for_text(self.proc.log_path, pattern, timeout, self.proc, pattern)

    def log(self):
        with open(self.proc.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc is not None:
            self.host.stop(self.proc)

    def leases(self):
        """Parse the lease file: {ip: {"state": ..., "hw": ...}} (last entry wins)."""
        out = {}
        try:
            text = open(self.lease_path, errors="replace").read()
        except OSError:
            return out
        for m in re.finditer(r"lease (\S+) \{(.*?)\n\}", text, re.S):
            body = m.group(2)
            st = re.search(r"\n\s*binding state (\S+);", body)
            hw = re.search(r"hardware ethernet (\S+);", body)
            out[m.group(1)] = {"state": st.group(1) if st else None,
                               "hw": hw.group(1) if hw else None}
        return out


def dhcpd_subnet(network, pool=None, routers=None, dns=None, extra=""):
    """One dhcpd.conf `subnet` block for a 198.18/15 network."""
    net = ipaddress.ip_network(network)
    if not net.subnet_of(NET):
        raise LabError("subnet outside 198.18.0.0/15: %s" % network)
    lines = ["subnet %s netmask %s {" % (net.network_address, net.netmask)]
    if routers:
        lines.append("  option routers %s;" % routers)
    if dns:
        lines.append("  option domain-name-servers %s;" % dns)
    if pool:
        lines.append("  range %s %s;" % pool)
    if extra:
        lines.append(extra)
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- perfdhcp ------------------------------------------------------------------------

class PerfResult:
    """Parsed perfdhcp (DHCPv4) final report."""

    def __init__(self, text, returncode, seconds):
        self.text = text
        self.returncode = returncode
        self.seconds = seconds
        rate = re.search(r"^Rate:\s*([0-9.]+)", text, re.M)
        self.rate = float(rate.group(1)) if rate else 0.0
        self.stats = {}
        for block in re.split(r"\*\*\*Statistics for: ", text)[1:]:
            name = block.split("***", 1)[0].strip()
            d = {}
            for key in ("sent packets", "received packets", "drops", "drops ratio", "orphans",
                        "rejected leases", "non unique addresses"):
                m = re.search(r"^%s:\s*([0-9.]+)" % key, block, re.M)
                if m:
                    d[key] = float(m.group(1))
            self.stats[name] = d
        do = self.stats.get("DISCOVER-OFFER", {})
        ra = self.stats.get("REQUEST-ACK", {})
        self.discovers = int(do.get("sent packets", 0))
        self.offers = int(do.get("received packets", 0))
        self.requests = int(ra.get("sent packets", 0))
        self.acks = int(ra.get("received packets", 0))
        self.drops = int(do.get("drops", 0) + ra.get("drops", 0))

    def __repr__(self):
        return "PerfResult(rate=%.1f discovers=%d offers=%d acks=%d drops=%d)" % (
            self.rate, self.discovers, self.offers, self.acks, self.drops)


def perfdhcp(host, iface="eth0", rate=None, clients=1, duration=5.0, server=None,
             num_requests=None, drop_time=None, extra=(), timeout=None):
    """Run Kea's perfdhcp -4 in `host` against a server on its segment.

    rate: exchanges started per second (None: as fast as possible for
    `num_requests`); clients: distinct client MACs (-R); duration: -p
    seconds. perfdhcp sends from `iface`'s address and puts it in giaddr, so
    the server sees relayed traffic for that address's subnet. The run is
    killed after `timeout` (default duration + 20 s).
    """
    argv = [tool("perfdhcp"), "-4", "-l", iface, "-R", str(clients)]
    if rate is not None:
        argv += ["-r", str(rate)]
    if duration is not None:
        argv += ["-p", str(max(1, int(duration)))]
    if num_requests is not None:
        argv += ["-n", str(num_requests)]
    if drop_time is not None:
        argv += ["-d", str(drop_time)]
    argv += [str(a) for a in extra]
    if server is not None:
        check_addr(server)
        argv.append(str(server))
    limit = timeout or (duration or 10) + 20
    t0 = time.monotonic()
    res = host.exec(argv, timeout=limit)
    out = res.stdout + res.stderr
    if res.returncode not in (0, 3):
        raise LabError("perfdhcp failed (%d): %s" % (res.returncode, out.strip()[-600:]))
    return PerfResult(out, res.returncode, time.monotonic() - t0)
