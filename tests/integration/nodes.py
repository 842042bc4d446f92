"""Real `dhcpfo node` processes inside lab namespaces.

A `Node` is a config dict, the lab `Host` it runs in, and (while running)
the process: `python -m dhcpfo_host.cli node --config FILE` started with
`Host.run_logged`, so `ip netns exec` execs the interpreter in place and the
process's PID is the node's own (SIGTERM/SIGKILL go straight to it).

The management port is bound to the namespace's loopback, so every node
can use the default port without clashing; `Node.call` reaches it by
running a tiny client in the same namespace (`ip netns exec`).

The helpers build configs for single nodes and failover pairs alike:
`node_config(..., failover=[relationship(...)])`.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

from integration.netns import LabError, tail, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
PYTHON = os.path.join(REPO, ".venv", "bin", "python")
if not os.path.exists(PYTHON):
    PYTHON = sys.executable
FIRMWARE = os.path.join(REPO, "firmware")
MGMT_PORT = 6470
READY_RX = r"dhcpfo node \S+: DHCP on \S+"

# One management request in the node's namespace: argv = host port json.
_CALL = (
    "import json,sys\n"
    "from dhcpfo_host import mgmtclient\n"
    "with mgmtclient.Connection(sys.argv[1],int(sys.argv[2]),sys.argv[4] or None,timeout=%(t)s) as c:\n"
    "    sys.stdout.write(json.dumps(c.request(json.loads(sys.argv[3]))))\n"
)


_MOVE = re.compile(r"changed (?:from (\S+) )?to (\S+) \((.*)\)\.$")
PARTNER_TOLD = "told by the partner"  # failover/inbox.py's reason for the partner's own changes


def state_move(event):
    """Event 20252 of the node's own transition as "old -> new (why)" (old is
    "?" when the event leaves it out), else None (other events, and the
    partner's transitions)."""
    m = _MOVE.search(event.get("text", "")) if event.get("code") == 20252 else None
    if m is None or m.group(3) == PARTNER_TOLD:
        return None
    return "%s -> %s (%s)" % (m.group(1) or "?", m.group(2), m.group(3))


class NodeError(LabError):
    """A node did not start, stop or answer as expected."""


# -- configs ---------------------------------------------------------------------------

def scope(network, start, end, mask=24, lease_time=3600, **extra):
    """One `scopes[]` item: a /mask subnet with one range (extra keys as given)."""
    sc = {"id": network, "mask": mask, "lease_time": lease_time,
          "ranges": [{"start": start, "end": end}]}
    sc.update(extra)
    return sc


def relationship(name, role, local, partner, scopes, port=647, **extra):
    """One `failover[]` item between `local` and `partner` (addresses, same port)."""
    rel = {"name": name, "role": role, "local": {"address": local, "port": port},
           "partner": {"address": partner, "port": port}, "scopes": list(scopes)}
    rel.update(extra)
    return rel


def node_config(name, server_id, scopes, data_dir, failover=None, interface="eth0",
                mgmt_port=MGMT_PORT, options=None, **server_extra):
    """A node config for a lab host: DHCP on 0.0.0.0:67 bound to `interface`,
    answering as `server_id`, management on the namespace's 127.0.0.1."""
    server = {
        "name": name,
        "server_id": server_id,
        "listen": {"address": "0.0.0.0", "port": 67, "interface": interface},
        "data_dir": data_dir,
        "mgmt": {"address": "127.0.0.1", "port": mgmt_port},
    }
    if options:
        server["options"] = options
    server.update(server_extra)
    return {"server": server, "scopes": list(scopes), "failover": list(failover or [])}


# -- processes -------------------------------------------------------------------------

class Node:
    """One dhcpfo node in a lab host.

    node = Node(host, config) writes the config to the lab dir;
    start() runs it and waits until DHCP and management are up; stop()
    (SIGTERM) and kill() (SIGKILL) end it by PID; call(cmd, **args) is a
    management request. `starts` lists (pid, seconds to ready) per start.
    """

    def __init__(self, host, config, name=None, verbose=False):
        self.host = host
        self.config = config
        self.name = name or config["server"].get("name", "dhcpfo")
        self.verbose = verbose
        self.config_path = host.lab.path("%s.%s.json" % (host.name, self.name))
        self.log_path = host.lab.path("%s.%s.log" % (host.name, self.name))
        self.proc = None
        self.starts = []
        self.write_config()

    def __repr__(self):
        return "Node(%s in %s pid=%s)" % (self.name, self.host.name, self.pid)

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    @property
    def mgmt(self):
        m = self.config["server"].get("mgmt") or {}
        return m.get("address", "127.0.0.1"), m.get("port", MGMT_PORT)

    @property
    def data_dir(self):
        return self.config["server"].get("data_dir")

    def write_config(self):
        d = self.data_dir
        if d:
            os.makedirs(d, exist_ok=True)
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=1)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def argv(self):
        argv = [PYTHON, "-m", "dhcpfo_host.cli", "node", "--config", self.config_path]
        if self.verbose:
            argv.append("--verbose")
        return argv

    def start(self, timeout=15):
        """Start the node; return once it printed its banner and management answers."""
        if self.running():
            raise NodeError("%s already running (pid %d)" % (self.name, self.pid))
        offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        env = dict(os.environ)
        env["PYTHONPATH"] = FIRMWARE + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["PYTHONUNBUFFERED"] = "1"
        t0 = time.monotonic()
        log = open(self.log_path, "ab")
        try:
            self.proc = self.host.run(self.argv(), stdout=log, stderr=subprocess.STDOUT, env=env)
        finally:
            log.close()
        self.proc.log_path = self.log_path
        rx = re.compile(READY_RX)

        def banner():
            self._check_alive("banner")
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return rx.search(f.read().decode(errors="replace"))

        wait_until(banner, timeout, 0.02, "%s banner" % self.name)

        def answers():
            self._check_alive("management port")
            try:
                return self.call("status", timeout=2)
            except NodeError:
                return None

        left = max(1.0, timeout - (time.monotonic() - t0))
        wait_until(answers, left, 0.05, "%s management port" % self.name)
        self.starts.append((self.proc.pid, time.monotonic() - t0))
        return self

    def _check_alive(self, what):
        if self.proc.poll() is not None:
            raise NodeError("%s exited (%s) before %s; log tail:\n%s"
                            % (self.name, self.proc.returncode, what, tail(self.log_path)))

    def stop(self, grace=5.0):
        """SIGTERM by PID and wait (SIGKILL after `grace`); returns the exit status."""
        if self.proc is None:
            return None
        return self.host.stop(self.proc, grace)

    def kill(self):
        """SIGKILL by PID: the crash case (no shutdown code runs)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        return self.proc.wait(5)

    def restart(self, timeout=15):
        self.stop()
        return self.start(timeout)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    # -- management ------------------------------------------------------------

    def call(self, cmd, timeout=5, **args):
        """One management request; returns the answer dict, raises NodeError on refusal."""
        req = dict(args)
        req["cmd"] = cmd
        token = (self.config["server"].get("mgmt") or {}).get("token") or ""
        addr, port = self.mgmt
        res = self.host.exec([PYTHON, "-c", _CALL % {"t": float(timeout)}, addr, port, json.dumps(req), token],
                             timeout=timeout + 5)
        if res.returncode != 0 or not res.stdout.strip():
            raise NodeError("%s: no answer to %s: %s" % (self.name, cmd, (res.stderr or "").strip()[-300:]))
        resp = json.loads(res.stdout)
        if not resp.get("ok"):
            raise NodeError("%s: %s refused: %s" % (self.name, cmd, resp.get("error")))
        return resp

    def leases(self, scope_id, state=None, limit=100000):
        """get-leases of one scope as {address: row}."""
        args = {"scope": scope_id, "limit": limit}
        if state:
            args["state"] = state
        rows = self.call("get-leases", **args)["leases"]
        return dict((r["address"], r) for r in rows)

    def lease_of(self, scope_id, mac):
        """The row of `mac`'s binding in a scope (any state), or None."""
        mac = mac.lower()
        for row in self.leases(scope_id).values():
            if row.get("mac") == mac:
                return row
        return None

    def counters(self):
        return self.call("get-counters")["counters"]

    def wait_lease(self, scope_id, address, state, timeout=5):
        """Wait until `address` is in `state` in the node's table; returns the row."""
        def seen():
            row = self.leases(scope_id).get(address)
            return row if row is not None and row["state"] == state else None

        return wait_until(seen, timeout, 0.1, "%s: %s %s" % (self.name, address, state))
