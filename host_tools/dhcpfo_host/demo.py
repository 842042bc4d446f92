"""`make run`: a failover pair of emulated boards, deployed like real ones.

The story, on this machine, without root or hardware:

1. `dhcpfo build` makes one W5500-EVB-Pico bundle per board (.mpy firmware,
   compiled config, board.json, manifest with SHA-256s);
2. two emulated boards (`dhcpfo emuboard`: MicroPython's unix port, an empty
   flash directory, a console pty) power on to the REPL, and `dhcpfo flash`
   deploys each bundle over the board's pty: mpremote transport, staging,
   SHA-256 check on the board, switch, soft reset - the path a real board
   takes over USB;
3. the boards form a load-balance pair; a loopback relay agent forwards
   virtual clients' DHCP traffic to both (every address is in 127.0.0.0/8);
   the clients bind and renew;
4. one board is powered off (its emulator killed): the other sees the link
   drop, goes COMMUNICATIONS-INTERRUPTED, renews the lost board's clients and
   switches to PARTNER-DOWN by itself (auto_state_switchover); the times are
   measured from the power-off;
5. the board powers on again from its flash (firmware and lease store as it
   left them) and the pair returns to NORMAL;
6. the pair keeps serving until Ctrl-C (or --seconds).

Every step is printed and also written as one JSON object per line to
events.jsonl in the demo's folder, beside each board's console log and
flash; the folder is kept unless --clean is given.
"""

import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from dhcpfo.config import mac_str
from dhcpfo_host import build as buildmod
from dhcpfo_host import mgmtclient
from dhcpfo_host.emuboard import CONSOLE_RX
from dhcpfo_host.vclients import Relay

BOARD = "w5500-evb-pico"  # the profile whose heap budget holds a /24 pair today
NODES = (("board-a", "primary"), ("board-b", "secondary"))
VICTIM = 1  # the board that is powered off
DHCP_PORT = 16767  # unprivileged stand-in for 67
RELAY_PORT = 16768  # the relay's own port (relayed replies come back here)
FO_PORT = 16647  # unprivileged stand-in for 647
MGMT_PORT = 16470  # on each board's own address
HEAP = "1M"  # the 64-bit unix port needs about twice a 32-bit board's heap
MCLT = 30  # short so the return to NORMAL (RECOVER-WAIT) takes seconds, not an hour
SWITCHOVER = 10  # s in COMMUNICATIONS-INTERRUPTED before PARTNER-DOWN by itself
LEASE_TIME = 60  # the least a scope takes; renewals every 30 s, a lost board's clients rebind within 53 s
HOST_TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Generous: the machine this runs on may be loaded; a step that does not
# happen in this time is reported as not happening, and the demo goes on.
BOOT_WAIT = 120
STEP_WAIT = 180


class Addresses:
    """Every address of one demo run, under a 127.A.0.0/16 (default 127.77):
    two runs with different bases do not meet."""

    def __init__(self, base="127.77"):
        parts = base.split(".")
        if len(parts) != 2 or parts[0] != "127" or not parts[1].isdigit() or not 0 < int(parts[1]) < 255:
            raise ValueError("--base must be 127.N with N in 1..254, got %r" % base)
        self.base = base
        self.giaddr = base + ".0.1"
        self.subnet = base + ".0.0"
        self.boards = (base + ".1.1", base + ".1.2")


def node_config(i, addrs, token):
    """Board i's node config (docs/config.md); data_dir on its flash."""
    name, role = NODES[i]
    addr, partner = addrs.boards[i], addrs.boards[1 - i]
    return {
        "server": {
            "name": name,
            "server_id": addr,
            "listen": {"address": addr, "port": DHCP_PORT, "relay_port": RELAY_PORT},
            "data_dir": "data",
            "mgmt": {"address": addr, "port": MGMT_PORT, "token": token},
            "options": {"domain-name-servers": [addrs.base + ".0.53"], "domain-name": "demo.example"},
        },
        "scopes": [{
            "id": addrs.subnet, "mask": 24, "name": "demo", "lease_time": LEASE_TIME,
            "ranges": [{"start": addrs.base + ".0.100", "end": addrs.base + ".0.199"}],
            "options": {"routers": [addrs.giaddr]},
        }],
        "failover": [{
            "name": "demo-pair", "role": role, "mode": "load-balance",
            "local": {"address": addr, "port": FO_PORT},
            "partner": {"address": partner, "port": FO_PORT},
            "scopes": [addrs.subnet],
            "mclt": MCLT, "load_balance_percent": 50, "auto_state_switchover": SWITCHOVER,
            "shared_secret": "demo-secret",
        }],
    }


def _child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = HOST_TOOLS + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _own_session_dying_with_us():
    """A supervisor the terminal's Ctrl-C does not reach (the demo stops it,
    in order) and that gets SIGTERM if the demo itself is killed."""
    os.setsid()
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class DemoError(Exception):
    pass


class Story:
    """What happened, when: printed, and one JSON object per line in events.jsonl."""

    def __init__(self, path):
        self.t0 = time.monotonic()
        self.f = open(path, "a")
        self.path = path
        self.recap = []  # the lines of the closing summary

    def now(self):
        return time.monotonic() - self.t0

    RECAP = ("flashed", "normal", "bound", "renewed", "killed", "takeover", "normal-again", "timeout")

    def say(self, event, text, **fields):
        t = self.now()
        print("[%6.1fs] %s" % (t, text), flush=True)
        if event in self.RECAP:
            self.recap.append("[%6.1fs] %s" % (t, text))
        fields.update(t=round(t, 2), event=event)
        self.f.write(json.dumps(fields, sort_keys=True) + "\n")
        self.f.flush()

    def close(self):
        self.f.close()


class EmuBoard:
    """One emulated board: its flash folder, emulator process, console, management."""

    def __init__(self, work, i, addrs, heap):
        self.i = i
        self.name, self.role = NODES[i]
        self.ip = addrs.boards[i]
        self.heap = heap
        self.flash = os.path.join(work, self.name, "flash")
        self.tty = os.path.join(work, self.name, "console.tty")
        self.console_log = os.path.join(work, self.name, "console.log")
        self.token_file = os.path.join(work, self.name, "mgmt.token")
        os.makedirs(self.flash)
        self.token = secrets.token_hex(16)
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.token + "\n")
        self.bundle = None  # set by Demo.build
        self.proc = None
        self.pts = None
        self.conn = None

    def power_on(self):
        """Start the emulator; returns the console pty it reports."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dhcpfo_host.cli", "emuboard", "--flash", self.flash, "--ip", self.ip,
             "--heap", self.heap, "--name", self.name, "--log", self.console_log, "--pty-link", self.tty],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_child_env(),
            preexec_fn=_own_session_dying_with_us)
        line = self._first_line(30)
        prefix = CONSOLE_RX.split("%s")
        if not line.startswith(prefix[0] + self.name + prefix[1]):
            self.power_off()
            raise DemoError("%s: the emulator did not start: %r" % (self.name, line))
        self.pts = line.split()[-1]
        return self.pts

    def _first_line(self, timeout):
        fd = self.proc.stdout.fileno()
        got = b""
        deadline = time.monotonic() + timeout
        while b"\n" not in got and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                chunk = os.read(fd, 1)
                if not chunk:
                    break
                got += chunk
        return got.decode(errors="replace").strip()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def power_off(self):
        """Pull the plug: SIGKILL the emulator (the interpreter dies with it)."""
        self.drop_conn()
        if self.running():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()
            self.proc.stdout.close()

    def stop(self):
        """Shut down in order: the supervisor ends its interpreter and exits."""
        self.drop_conn()
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.proc is not None:
            self.proc.wait()
            self.proc.stdout.close()

    def console_size(self):
        try:
            return os.path.getsize(self.console_log)
        except OSError:
            return 0

    def console_text(self, offset=0):
        try:
            with open(self.console_log, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def call(self, cmd, **args):
        """One management command over a kept, authenticated connection; None if the board does not answer."""
        req = dict(args, cmd=cmd)
        for _ in range(2):
            try:
                if self.conn is None:
                    self.conn = mgmtclient.Connection(self.ip, MGMT_PORT, self.token, timeout=3.0)
                resp = self.conn.request(req)
                return resp if resp.get("ok") else None
            except (OSError, ValueError, mgmtclient.MgmtError):
                self.drop_conn()
        return None

    def drop_conn(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None

    def failover_state(self):
        r = self.call("get-failover")
        if r is None or not r.get("relationships"):
            return None
        rel = r["relationships"][0]
        return rel.get("state"), rel.get("partner_state")


class Demo:
    def __init__(self, work, addrs, clients, heap):
        self.work = work
        self.addrs = addrs
        self.story = Story(os.path.join(work, "events.jsonl"))
        self.boards = [EmuBoard(work, i, addrs, heap) for i in range(2)]
        self.by_ip = dict((b.ip, b.name) for b in self.boards)
        self.relay = Relay(addrs.giaddr, RELAY_PORT, [(b.ip, DHCP_PORT) for b in self.boards], count=clients)
        self.states = [None, None]
        self.transitions = []  # (board index, (state, partner state) or None, monotonic time seen)
        self.last_kick = 0.0
        self.last_show = -100.0

    # -- steps -----------------------------------------------------------------

    def build(self):
        for b in self.boards:
            cfg = os.path.join(self.work, b.name, "config.json")
            with open(cfg, "w") as f:
                json.dump(node_config(b.i, self.addrs, b.token), f, indent=1)
            try:
                m = buildmod.build(BOARD, cfg, os.path.join(self.work, b.name, "bundle"))
            except buildmod.BuildError as e:
                raise DemoError("dhcpfo build for %s: %s" % (b.name, e))
            b.bundle = m["out"]
            self.story.say("built", "%s: `dhcpfo build --board %s` -> %d files, %d B (mpy v%s); capacity %d of %d "
                           "addresses" % (b.name, BOARD, len(m["files"]), m["total_bytes"], m["mpy_cross"],
                                          m["capacity"]["addresses"], m["capacity"]["max_addresses"]),
                           board=b.name, files=len(m["files"]), bytes=m["total_bytes"])

    def power_on(self, b, first=False):
        pts = b.power_on()
        self.story.say("power-on", "%s powered on (emulated %s, MicroPython unix port, heap %s): console %s (%s)"
                       % (b.name, BOARD, b.heap, pts, b.tty), board=b.name, console=pts, link=b.tty,
                       first=first)

    def flash(self, b):
        """`dhcpfo flash` over the board's pty, as a separate process (the command a user types)."""
        off = b.console_size()
        t0 = time.monotonic()
        show_bar = sys.stderr.isatty()
        r = subprocess.run([sys.executable, "-m", "dhcpfo_host.cli", "flash", "--board", BOARD, "--port", b.tty,
                            "--bundle", b.bundle, "--any-platform"],
                           stdout=subprocess.PIPE, stderr=None if show_bar else subprocess.PIPE, text=True,
                           env=_child_env(), timeout=600)
        if r.returncode:
            raise DemoError("dhcpfo flash %s exited %d: %s%s" % (b.name, r.returncode, r.stdout, r.stderr or ""))
        self.story.say("flashed", "%s: `dhcpfo flash --port %s` staged, verified by SHA-256 on the board, switched "
                       "and reset in %.1f s: %s" % (b.name, b.tty, time.monotonic() - t0, r.stdout.strip()),
                       board=b.name, seconds=round(time.monotonic() - t0, 2), output=r.stdout.strip())
        return off

    def wait_serving(self, b, offset):
        """Until the firmware's start line shows on the console and management answers."""
        deadline = time.monotonic() + BOOT_WAIT
        marker = "dhcpfo: node %s: DHCP on" % b.name
        while time.monotonic() < deadline:
            if not b.running():
                raise DemoError("%s's emulator exited; console:\n%s" % (b.name, b.console_text()[-2000:]))
            text = b.console_text(offset)
            if "Traceback" in text or "FAIL-STOP" in text:
                raise DemoError("%s failed to start (an EADDRINUSE below means another demo runs on --base %s: "
                                "give another --base 127.N); console:\n%s" % (b.name, self.addrs.base, text[-2000:]))
            if marker in text and b.call("status") is not None:
                line = text[text.index(marker):].splitlines()[0]
                self.story.say("serving", "%s runs the deployed firmware: %s" % (b.name, line.strip()),
                               board=b.name, line=line.strip())
                return
            self.pump()
        raise DemoError("%s did not start serving in %d s; console:\n%s"
                        % (b.name, BOOT_WAIT, b.console_text(offset)[-2000:]))

    def endpoints(self):
        print("", flush=True)
        for b in self.boards:
            self.story.say("endpoints", "%s (%s, %s): console %s  management %s:%d  token %s"
                           % (b.name, b.ip, b.role, b.tty, b.ip, MGMT_PORT, b.token_file),
                           board=b.name, console=b.tty, mgmt="%s:%d" % (b.ip, MGMT_PORT), token_file=b.token_file)
        a = self.boards[0]
        print("  try, in another terminal:\n"
              "    .venv/bin/dhcpfo failover show --tcp %s:%d --token-file %s\n"
              "    .venv/bin/dhcpfo counters --serial %s       (the management protocol on the console)\n"
              "    .venv/bin/dhcpfo console --port %s      (Ctrl-] leaves; Ctrl-C would stop the node)\n"
              % (a.ip, MGMT_PORT, a.token_file, a.tty, a.tty), flush=True)

    # -- the loop under every wait ---------------------------------------------

    def pump(self, period=0.25):
        """Let the relay's clients run a little; track and print state changes; show the table now and then."""
        end = time.monotonic() + period
        if self.relay.sock is not None:
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    break
                select.select([self.relay.sock], [], [], left)
                now = time.monotonic()
                self.relay.receive(now)
                if now - self.last_kick >= 1.0:
                    self.last_kick = now
                    self.relay.kick(now)
        else:
            time.sleep(period)
        for b in self.boards:
            st = b.failover_state() if b.running() else None
            if st != self.states[b.i]:
                self.states[b.i] = st
                self.transitions.append((b.i, st, time.monotonic()))
                text = "%s: %s" % (b.name, "state %s, partner %s" % st if st else "not answering")
                self.story.say("state", text, board=b.name, state=st[0] if st else None,
                               partner=st[1] if st else None)
        if self.relay.sock is not None and self.story.now() - self.last_show >= 10:
            self.show()

    def show(self, fresh=False):
        """The pair and the clients; fresh: unless it was just shown."""
        if fresh and self.story.now() - self.last_show < 3:
            return
        self.last_show = self.story.now()
        lines = ["", "== t=%ds ==" % self.last_show]
        for b in self.boards:
            st = self.states[b.i]
            use = ""
            if st:
                s = b.call("get-scope-statistics")
                if s and s.get("scopes"):
                    sc = s["scopes"][0]
                    use = "in use %3d, free here %3d" % (sc["in_use"], sc.get("free_this_server", sc["free"]))
            lines.append("  %-8s %-12s %-9s %-44s %s" % (
                b.name, b.ip, b.role, "%s / partner %s" % st if st else "(off)", use))
        for c in self.relay.clients.values():
            acks = len(c.log)
            lines.append("    %s  %-9s %-15s from %-8s lease %3ds  %s" % (
                mac_str(c.mac), c.state, c.log[-1][2] if c.log else "-",
                self.by_ip.get(c.server, c.server or "-"), c.lease,
                "bound" if acks == 1 else ("renewed %dx" % (acks - 1) if acks else "")))
        print("\n".join(lines) + "\n", flush=True)

    def wait_for(self, what, test, timeout=STEP_WAIT):
        """Pump until test() is true; False (and a printed note) after timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = test()
            if got:
                return got
            self.pump()
        self.story.say("timeout", "did not see %s within %d s" % (what, timeout), what=what)
        return False

    def both(self, state):
        return all(st is not None and st[0] == state and st[1] == state for st in self.states)

    # -- the story ---------------------------------------------------------------

    def run(self, seconds):
        self.build()
        for b in self.boards:
            self.power_on(b, first=True)
        for b in self.boards:
            self.wait_serving(b, self.flash(b))
        self.endpoints()
        t = time.monotonic()
        if self.wait_for("the pair in NORMAL", lambda: self.both("normal")):
            self.story.say("normal", "the pair is in NORMAL, %.1f s after both served" % (time.monotonic() - t),
                           seconds=round(time.monotonic() - t, 2))
        self.serve_clients()
        self.takeover()
        self.comeback()
        print("\n== what happened (also in %s) ==\n%s\n" % (self.story.path, "\n".join(self.story.recap)),
              flush=True)
        if seconds and self.story.now() >= seconds:
            self.story.say("story-done", "story done; stopping (--seconds %d)" % seconds)
            return
        self.story.say("story-done", "story done; the pair keeps serving %s"
                       % ("until t=%ds" % seconds if seconds else "until Ctrl-C"))
        while not seconds or self.story.now() < seconds:
            self.pump()
        self.show(fresh=True)

    def serve_clients(self):
        r = self.relay
        try:
            r.open()
        except OSError as e:
            raise DemoError("cannot open the relay on %s:%d (%s): is another demo running on --base %s? "
                            "give it another --base 127.N" % (self.addrs.giaddr, RELAY_PORT, e, self.addrs.base))
        t = time.monotonic()
        if self.wait_for("every client bound", lambda: all(c.log for c in r.clients.values())):
            by = {}
            for c in r.clients.values():
                by[self.by_ip.get(c.server, c.server)] = by.get(self.by_ip.get(c.server, c.server), 0) + 1
            self.story.say("bound", "%d clients bound in %.1f s (%s)" % (
                len(r.clients), time.monotonic() - t, ", ".join("%s %d" % kv for kv in sorted(by.items()))),
                seconds=round(time.monotonic() - t, 2), by=by,
                clients=[{"mac": mac_str(c.mac), "addr": c.log[0][2], "server": c.log[0][3]}
                         for c in r.clients.values()])
        if self.wait_for("every client renewed", lambda: all(len(c.log) >= 2 for c in r.clients.values())):
            self.story.say("renewed", "every client renewed its lease at least once (%.1f s after binding began)"
                           % (time.monotonic() - t), seconds=round(time.monotonic() - t, 2),
                           clients=[{"mac": mac_str(c.mac), "addr": c.log[-1][2], "server": c.log[-1][3],
                                     "acks": len(c.log)} for c in r.clients.values()])
        self.show(fresh=True)

    def takeover(self):
        """Power the victim off; measure, from that moment, when the survivor
        saw it, when it declared PARTNER-DOWN, and when each of the victim's
        clients got its answer from the survivor (at the client's rebinding time)."""
        victim, survivor = self.boards[VICTIM], self.boards[1 - VICTIM]
        theirs = [c for c in self.relay.clients.values() if c.server == victim.ip]
        victim.power_off()
        t = time.monotonic()
        self.story.say("killed", "%s powered off (its emulator SIGKILLed); %d of its clients must move to %s"
                       % (victim.name, len(theirs), survivor.name), board=victim.name,
                       clients=[mac_str(c.mac) for c in theirs])
        moved = {}  # client mac -> seconds after the power-off

        def progress():
            for c in theirs:
                key = mac_str(c.mac)
                if key not in moved:
                    acks = [e for e in c.log if e[0] > t and e[3] == survivor.ip]
                    if acks:
                        moved[key] = round(acks[0][0] - t, 2)
                        self.story.say("client-moved", "client %s keeps %s, now from %s (%.1f s after the power-off)"
                                       % (key, acks[0][2], survivor.name, moved[key]), client=key,
                                       addr=acks[0][2], seconds=moved[key])
            return self.entered(survivor, "partner-down", t) is not None and len(moved) == len(theirs)

        self.wait_for("the takeover by %s" % survivor.name, progress)
        measured = {}
        for key, state in (("interrupted", "communications-interrupted"), ("partner_down", "partner-down")):
            at = self.entered(survivor, state, t)
            if at is not None:
                measured[key] = round(at - t, 2)
        if "interrupted" not in measured and "partner_down" in measured:
            measured["interrupted"] = measured["partner_down"]  # straight to PARTNER-DOWN
        if moved:
            measured["first_client"] = min(moved.values())
            measured["all_clients"] = max(moved.values())
        ok = "partner_down" in measured and len(moved) == len(theirs)
        self.story.say("takeover", "takeover by %s %s: saw the loss after %s s, PARTNER-DOWN after %s s "
                       "(auto_state_switchover %d s), %d of %d clients of %s served by it, the last %s s "
                       "after the power-off"
                       % (survivor.name, "complete" if ok else "INCOMPLETE", measured.get("interrupted", "-"),
                          measured.get("partner_down", "-"), SWITCHOVER, len(moved), len(theirs), victim.name,
                          measured.get("all_clients", "-")),
                       board=survivor.name, ok=ok, clients_moved=len(moved), clients=len(theirs), **measured)
        self.show(fresh=True)

    def entered(self, board, state, after):
        """When (monotonic) the board was first seen in `state` after `after`, or None."""
        for i, st, at in self.transitions:
            if i == board.i and at >= after and st is not None and st[0] == state:
                return at
        return None

    def comeback(self):
        victim = self.boards[VICTIM]
        off = victim.console_size()
        self.power_on(victim)
        t = time.monotonic()
        self.wait_serving(victim, off)
        if self.wait_for("the pair back in NORMAL", lambda: self.both("normal")):
            s = round(time.monotonic() - t, 2)
            self.story.say("normal-again", "the pair is back in NORMAL %.1f s after %s powered on (MCLT %d s)"
                           % (s, victim.name, MCLT), board=victim.name, seconds=s)
        self.show(fresh=True)

    def close(self):
        self.relay.close()
        for b in self.boards:
            b.stop()
        self.story.close()


def _stop_on_signal(signum, frame):
    raise KeyboardInterrupt


def main(seconds=None, clients=8, clean=False, work=None, base="127.77", heap=HEAP):
    # Ctrl-C (and SIGTERM from a supervisor) end the demo cleanly, even when
    # started without job control, where SIGINT arrives ignored
    signal.signal(signal.SIGINT, _stop_on_signal)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    try:
        addrs = Addresses(base)
    except ValueError as e:
        print("dhcpfo demo: %s" % e, file=sys.stderr)
        return 2
    if work:
        os.makedirs(work, exist_ok=True)
        if os.listdir(work):
            print("dhcpfo demo: %s is not empty" % work, file=sys.stderr)
            return 2
    else:
        work = tempfile.mkdtemp(prefix="dhcpfo-demo-")
    print("dhcpfo demo: two emulated %s boards in a load-balance pair; logs, flash and events in %s"
          % (BOARD, work), flush=True)
    print("Ctrl-C stops the demo.", flush=True)
    demo = None
    rc = 0
    try:
        demo = Demo(work, addrs, clients, heap)
        demo.run(seconds)
    except KeyboardInterrupt:
        print("\ninterrupted", flush=True)
    except DemoError as e:
        print("dhcpfo demo: %s" % e, flush=True)
        rc = 1
    finally:
        # a second Ctrl-C must not leave boards running
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if demo is not None:
            demo.close()
        if clean:
            shutil.rmtree(work, ignore_errors=True)
            print("dhcpfo demo stopped; %s removed." % work, flush=True)
        else:
            print("dhcpfo demo stopped; logs kept in %s (events.jsonl, board-*/console.log)." % work, flush=True)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    return rc
