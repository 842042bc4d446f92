"""The seed's Configure Failover wizard and Deconfigure Failover, for a pair
of running nodes (`dhcpfo failover configure|deconfigure`).

Each node changes only through its own management commands
(firmware/dhcpfo/mgmt/failover.py acts on one node); the wizard is what
makes the pair change together. It checks the seed's nine prerequisites
first (nothing is changed when one fails), then performs the seed's steps in
its order with a progress line each, and on any failure undoes every step
already done, newest first, on both nodes. When the partner stops answering
the rollback is done locally, the partner is waited for (`partner_wait`
seconds) to finish it there, and a warning says what was left undone and the
command that completes it.

Scopes: configure creates the selected scopes on the partner deactivated
(add-scope), provisions them identically (set-scope-config, verified by
digest), and activates them there once both nodes have the relationship;
a scope the partner already holds identically, in no relationship, is taken
as provisioned (check 9) and left as it is. Deconfigure deactivates the
scopes on the partner, takes them out of the relationship on both nodes and
deletes them from the partner (remove-scope), each step undone on failure.
"""
import json
import socket
import time

from dhcpfo.mgmt import serverinfo, session
from dhcpfo_host import mgmtclient

MGMT_PORT = 6470

# The seed's messages for its prerequisite checks (its table, in its order).
MSG_DNS = "Unable to resolve specified DNS name."
MSG_IP = "The specified IP address %s is invalid"
MSG_REACH = "The specified DHCP server is not reachable. Please provide a DHCP server that is reachable."
MSG_VERSION = "The version of specified DHCP server does not support failover."
MSG_PERM = "You do not have permissions to perform this operation on the remote DHCP server."
MSG_MAX = ("The %s server already has %d (maximum allowed) failover relationships. "
           "A server cannot have more than %d failover relationships.")
MSG_RUNNING = ("DHCP server is not running on the specified server. "
               "Please ensure that DHCP server is running on the specified server.")
MSG_TIME = ("The time difference between this server and the specified partner server is greater than the "
            "permissible value of %s. It is recommended to ensure that both servers are time synchronized "
            "before configuring failover. You could setup Network Time Protocol (NTP) service on both servers "
            "to ensure time synchronization.")
# Check 9: the wizard creates the scopes on the partner, so they must be absent
# there; one configured identically and in no relationship is accepted as
# already provisioned (the seed's message names the others, each with why).
MSG_SCOPES_EXIST = ("Following scopes already exist on the specified partner server: %s. These scope(s) will need "
                    "to be deleted on the partner server before configuring failover.")
MSG_LOST = ("Contact with the partner server %s was lost: %s. The rollback was performed on this server; "
            "it could not be completed on the partner server.")

CHECKS = (
    "Is the specified DNS name resolvable",
    "Is the IP address specified a valid IP address",
    "Is the specified DHCP server reachable",
    "Is the specified server running a dhcpfo version that supports failover",
    "Is the management token an administrator's on the partner server",
    "Have either of the two servers already hit the maximum limit on the number of failover relationships",
    "Is DHCP server running on the partner server",
    "Is time synchronized between the two servers",
    "Are any of the scopes selected for failover setup present on the partner server",
)
NOT_APPLICABLE = ("Is the partner server authorized (Active Directory)",
                  "not applicable: dhcpfo has no directory; the administrator's management token is the authorization")


class WizardError(Exception):
    """A prerequisite failed or the wizard cannot start: nothing was changed."""



class Lost(Exception):
    """A node stopped answering: its connection broke."""


class StepFailed(Exception):
    """A node refused a step. `done` is true when the node changed something
    anyway (a change answered with non-terminating errors): the step is then
    undone with the others."""

    def __init__(self, text, done=False):
        super().__init__(text)
        self.done = done


class Endpoint:
    """How to reach a node's management: TCP (`host` by name or address) or a serial console."""

    def __init__(self, host="127.0.0.1", port=MGMT_PORT, serial=None, token=None, timeout=10.0):
        self.host, self.port, self.serial, self.token, self.timeout = host, port, serial, token, timeout

    def __str__(self):
        return self.serial or "%s:%d" % (self.host, self.port)

    def open(self):
        return mgmtclient.connect(self.host, self.port, self.serial, self.token, session.ADMIN, self.timeout)


class Side:
    """One node during the wizard: requests that raise Lost on a broken
    connection and StepFailed on a refusal."""

    def __init__(self, label, endpoint, conn):
        self.label = label  # "this server" / "the partner server"
        self.endpoint = endpoint
        self.conn = conn
        self.lost = None  # why the current connection is gone (None: it works)
        self.was_lost = None  # why contact was lost, kept after a reconnect

    def ask(self, req):
        if self.lost is not None:
            raise Lost(self.lost)
        try:
            resp = self.conn.request(req)
        except (OSError, mgmtclient.MgmtError) as e:
            self.lost = self.was_lost = str(e) or e.__class__.__name__
            self.close()
            raise Lost(self.lost) from None
        if not resp.get("ok"):
            raise StepFailed("%s refused %s: %s" % (self.label, req.get("cmd"), resp.get("error")))
        return resp

    def change(self, req):
        """A change: non-terminating errors fail the step, which is still undone."""
        resp = self.ask(req)
        if resp.get("errors"):
            raise StepFailed("%s: %s" % (self.label, "; ".join(resp["errors"])), done=True)
        return resp

    def reconnect(self, wait):
        """After a loss: a new connection within `wait` seconds (polled), or False."""
        deadline = time.monotonic() + wait
        while True:
            try:
                self.conn = self.endpoint.open()
                self.lost = None
                return True
            except (OSError, mgmtclient.MgmtError):
                if time.monotonic() >= deadline:
                    return False
            time.sleep(0.25)

    def close(self):
        try:
            self.conn.close()
        except OSError:
            pass


class Step:
    """One of the wizard's steps: `do()` -> a detail for the progress line;
    `undo` = (side, request) that reverses it, None, or a list of them that
    `do` fills as it goes (one per change it sends, added just before the
    request, so a change whose answer was lost is undone too); the list is
    undone in its order."""

    def __init__(self, title, do, undo=None, undo_title=None):
        self.title, self.do, self.undo_title = title, do, undo_title or title
        self.undo = [] if undo is None else [undo] if isinstance(undo, tuple) else undo
        self.uncertain = False  # contact was lost during it: it may or may not have taken effect


def command_line(req):
    """The `dhcpfo call` line that sends `req` (a warning the admin can act on)."""
    args = ["%s=%s" % (k, v if isinstance(v, str) else json.dumps(v)) for k, v in req.items() if k != "cmd"]
    return " ".join(["dhcpfo call", req["cmd"]] + args)


def run_steps(steps, sides, say, hook=None, partner_wait=0.0):
    """Perform `steps` in order, a progress line each; on a failure undo the
    done ones newest first, waiting up to `partner_wait` s for a node that
    stopped answering. `hook(i)` runs after step i is done (tests stop a node
    there). The result: ok, error, done/rolled_back step numbers,
    not_rolled_back (with the command that completes each), warnings."""
    done = []
    failure = None
    n = len(steps)
    for i, st in enumerate(steps, 1):
        try:
            detail = st.do()
        except (StepFailed, Lost) as e:
            if isinstance(e, StepFailed) and e.done:
                done.append((i, st))
            elif isinstance(e, Lost) and st.undo:
                # lost while asking: the node may have made the change before it went
                st.uncertain = True
                done.append((i, st))
            failure = "step %d (%s) failed: %s" % (i, st.title, e)
            say("[%d/%d] %s: FAILED: %s" % (i, n, st.title, e))
            break
        say("[%d/%d] %s: %s" % (i, n, st.title, detail or "done"))
        done.append((i, st))
        if hook is not None:
            hook(i)
    result = {"ok": failure is None, "steps": n, "done": [i for i, _ in done], "rolled_back": [],
              "not_rolled_back": [], "warnings": []}
    if failure is None:
        return result
    result["error"] = failure
    say("rolling back the %d step(s) done" % len([1 for _, st in done if st.undo]))
    undone_on = []
    for i, st in reversed(done):
        outcomes = []
        for side, req in st.undo:
            outcomes.append(undo_one(i, st, side, req, result, say, partner_wait))
            if outcomes[-1] == UNDONE:
                undone_on.append(side)
        if UNDONE in outcomes and FAILED not in outcomes:
            result["rolled_back"].append(i)
    for side in sides:
        if side.was_lost is None:
            continue
        left = [x["command"] for x in result["not_rolled_back"] if x["server"] == side.label]
        if left:
            result["warnings"].append(
                "Contact with %s (%s) was lost (%s), so the rollback could not be completed on it; it was "
                "performed on the other server. To complete it, run against %s: %s"
                % (side.label, side.endpoint, side.was_lost, side.label, "; ".join(left)))
        elif side in undone_on:
            result["warnings"].append(
                "Contact with %s (%s) was lost (%s); it answered again within %g s and its rollback was "
                "completed too." % (side.label, side.endpoint, side.was_lost, partner_wait))
        else:
            result["warnings"].append(
                "Contact with %s (%s) was lost (%s); nothing had been changed on it, so no rollback was "
                "needed there." % (side.label, side.endpoint, side.was_lost))
    return result


UNDONE, NOTHING, FAILED = "undone", "nothing to undo", "failed"


def undo_one(i, st, side, req, result, say, partner_wait):
    """One request of step i's rollback: UNDONE, NOTHING (a step whose answer
    was lost had not taken effect) or FAILED (then in result["not_rolled_back"])."""
    what = st.undo_title if len(st.undo) == 1 else "%s: %s" % (st.undo_title, command_line(req)[len("dhcpfo call "):])
    left = {"step": i, "server": side.label, "endpoint": str(side.endpoint), "command": command_line(req)}
    if st.uncertain:
        left["command"] += " (if step %d took effect there)" % i
    if side.lost is not None and not side.reconnect(partner_wait):
        say("rollback of step %d (%s): NOT DONE: %s (%s) cannot be reached" % (i, what, side.label, side.endpoint))
        result["not_rolled_back"].append(left)
        return FAILED
    try:
        side.change(req)
    except (StepFailed, Lost) as e:
        if st.uncertain and isinstance(e, StepFailed):
            say("rollback of step %d (%s): nothing to undo (the step had not taken effect: %s)" % (i, what, e))
            return NOTHING
        partly = isinstance(e, StepFailed) and e.done  # non-terminating errors: some of it was undone
        say("rollback of step %d (%s): %s: %s" % (i, what, "PARTLY DONE" if partly else "FAILED", e))
        left["error"] = str(e)
        left["partly_done"] = partly
        result["not_rolled_back"].append(left)
        return FAILED
    say("rollback of step %d (%s): done" % (i, what))
    return UNDONE


# ---------------------------------------------------------------------------
# The prerequisite checks. Facts are gathered from the real nodes; each check
# is a function of those facts that raises WizardError with the seed's message.


def partner_address(host):
    """Checks 1 and 2: the address the partner's name or address text stands for."""
    if all(c.isdigit() or c == "." for c in host):
        parts = host.split(".")
        if (len(parts) != 4 or not all(p.isdigit() and int(p) <= 255 for p in parts)
                or int(parts[0]) == 0 or int(parts[0]) >= 224):
            raise WizardError(MSG_IP % host)
        return host
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise WizardError(MSG_DNS) from None
    return infos[0][4][0]


def open_partner(ep):
    """Checks 3, 4 and 5, in the seed's order: reachable, speaks a failover-
    capable dhcpfo management protocol, and our token is an administrator's
    there. The open connection."""
    try:
        if ep.serial:
            conn = mgmtclient.SerialConnection(ep.serial, login=False, timeout=ep.timeout)
        else:
            conn = mgmtclient.Connection(ep.host, ep.port, None, timeout=ep.timeout)
    except mgmtclient.MgmtError as e:
        raise WizardError("%s (%s)" % (MSG_REACH, e)) from None
    try:
        hello = conn.request({"cmd": "hello"})
    except (OSError, mgmtclient.MgmtError) as e:
        conn.close()
        raise WizardError("%s (%s: %s)" % (MSG_VERSION, ep, e)) from None
    if not isinstance(hello, dict) or not hello.get("ok") or hello.get("proto") != session.PROTO:
        conn.close()
        raise WizardError("%s (%s answered hello with %r)" % (MSG_VERSION, ep, hello))
    try:
        if hello.get("auth") == "none":
            if hello.get("role", session.ADMIN) != session.ADMIN:
                raise mgmtclient.MgmtError("the console grants the %s role only" % hello.get("role"))
        else:
            conn._login(ep.token, session.ADMIN)
    except (OSError, mgmtclient.MgmtError) as e:
        conn.close()
        raise WizardError("%s (%s)" % (MSG_PERM, e)) from None
    return conn


def server_info(side, version_check=False):
    try:
        return side.ask({"cmd": "get-server-info"})
    except StepFailed as e:
        if version_check and "unknown command" in str(e):
            raise WizardError("%s (%s has no get-server-info)" % (MSG_VERSION, side.endpoint)) from None
        raise WizardError(str(e)) from None
    except Lost as e:
        raise WizardError("%s (%s)" % (MSG_REACH, e)) from None


def check_limit(info, which, new_relationship):
    """Check 6 for one server."""
    if new_relationship and info["relationship_count"] >= info["max_relationships"]:
        raise WizardError(MSG_MAX % (which, info["relationship_count"], info["max_relationships"]))


def check_running(info):
    """Check 7: the partner says its DHCP service has started (the drivers
    start it before they open management, so this guards a driver that would
    answer first)."""
    if not info.get("serving"):
        raise WizardError(MSG_RUNNING)


def span_text(seconds):
    if seconds % 60 == 0:
        return "%d minute%s" % (seconds // 60, "" if seconds == 60 else "s")
    return "%d seconds" % seconds


def check_time(local_info, local_mid, partner_info, partner_mid):
    """Check 8: each node's clock minus the host's at the moment it answered
    (midpoint of the request), compared; the permissible difference is the
    smaller of both nodes' time_skew_max (the seed's "minimum of the registry
    values"). Node times have 1 s resolution, so 1 s more is tolerated.
    The difference and the limit used; None for the difference when a node
    has no wall time yet (a board without a clock before NTP or its partner
    told it the time, docs/time.md): it takes the partner's time at connect
    and keeps its own local time, so there is no difference to check."""
    limit = min(local_info["time_skew_max"], partner_info["time_skew_max"])
    if local_info["time"] is None or partner_info["time"] is None:
        return None, limit
    diff = abs((partner_info["time"] - partner_mid) - (local_info["time"] - local_mid))
    if diff > limit + 1:
        raise WizardError(MSG_TIME % span_text(limit))
    return diff, limit


def check_scopes(local_info, partner_info, scopes):
    """Check 9: the selected scopes must not exist on the partner (the wizard
    creates them there). One that does, configured identically (the same
    digest of its whole compiled configuration) and in no relationship, is
    accepted as provisioned already; any other is refused with the seed's
    message. The scopes accepted that way."""
    theirs = dict((s["scope"], s) for s in partner_info["scopes"])
    ours = dict((s["scope"], s) for s in local_info["scopes"])
    refused, provisioned = [], []
    for sid in scopes:
        t = theirs.get(sid)
        if t is None:
            continue
        if t["relationship"]:
            refused.append("%s (in failover relationship %s)" % (sid, t["relationship"]))
        elif t["digest"] is None or t["digest"] != ours[sid]["digest"]:
            refused.append("%s (configured differently)" % sid)
        else:
            provisioned.append(sid)
    if refused:
        raise WizardError(MSG_SCOPES_EXIST % ", ".join(refused))
    return provisioned


def send_changes(side, pairs, undo):
    """Send each (request, its undo request) to `side`, the undo added to the
    step's `undo` list just before its request; a refusal after some took
    effect fails the step as done (they are undone)."""
    for req, back in pairs:
        undo.append((side, back))
        try:
            side.change(req)
        except StepFailed as e:
            if not e.done:
                undo.pop()
            raise StepFailed(str(e), done=e.done or bool(undo)) from None


def select_scopes(local_info, wanted):
    """The seed's first page: the scopes given, or "Select All" (every scope
    of this server that is in no relationship). Only scopes in no
    relationship and serving DHCP alone (no BOOTP) can be set up."""
    ours = dict((s["scope"], s) for s in local_info["scopes"])
    if not wanted:
        wanted = [s["scope"] for s in local_info["scopes"] if not s["relationship"] and not s["bootp"]]
        if not wanted:
            raise WizardError("every scope of this server is already in a failover relationship (or serves "
                              "BOOTP): nothing to configure")
    for sid in wanted:
        sc = ours.get(sid)
        if sc is None:
            raise WizardError("scope %s does not exist on this server" % sid)
        if sc["relationship"]:
            raise WizardError("scope %s is already in failover relationship %s on this server (Configure "
                              "Failover is offered only for scopes in none)" % (sid, sc["relationship"]))
        if sc["bootp"]:
            raise WizardError("scope %s serves BOOTP clients: only scopes configured for DHCP alone can be "
                              "set up for failover" % sid)
    return list(wanted)


def _entry(info, name):
    for r in info["relationships"]:
        if r["name"] == name:
            return r
    return None


# ---------------------------------------------------------------------------
# Configure


class Settings:
    """The seed's second page: relationship name, MCLT, mode, split, switchover, secret."""

    def __init__(self, name=None, mode=None, mclt=None, load_balance_percent=None, reserve_percent=None,
                 server_role=None, auto_state_transition=None, safe_period=None, shared_secret=None,
                 secondary=False, local_address=None, partner_address=None, local_port=None, partner_port=None,
                 reuse=True):
        self.__dict__.update(locals())
        del self.__dict__["self"]


SETTING_KEYS = ("mode", "mclt", "load_balance_percent", "reserve_percent", "server_role",
                "auto_state_transition", "safe_period", "shared_secret")
SWAP_ROLE = {"active": "standby", "standby": "active", "primary": "secondary", "secondary": "primary"}


def add_requests(s, name, scopes, local_addr, partner_addr):
    """The add-failover request for this node and the mirrored one for the
    partner: role, addresses, ports, hot-standby role and load-balance share
    swapped; everything else the same."""
    lport = s.local_port or 647
    pport = s.partner_port or 647
    role = "secondary" if s.secondary else "primary"
    mine = {"cmd": "add-failover", "name": name, "partner": partner_addr, "local_address": local_addr,
            "role": role, "scopes": list(scopes), "local_port": lport, "partner_port": pport, "force": True}
    for k in SETTING_KEYS:
        v = getattr(s, k)
        if v is not None:
            mine[k] = v
    theirs = dict(mine, partner=local_addr, local_address=partner_addr, role=SWAP_ROLE[role],
                  local_port=pport, partner_port=lport)
    if s.load_balance_percent is not None:
        theirs["load_balance_percent"] = 100 - s.load_balance_percent
    if s.server_role is not None:
        theirs["server_role"] = SWAP_ROLE[s.server_role]
    return mine, theirs


def configure(local_ep, partner_ep, scopes=None, settings=None, say=print, hook=None, partner_wait=30.0,
              connect_wait=60.0):
    """The Configure Failover wizard. Raises WizardError (nothing changed) when
    a prerequisite fails; else the run_steps result (plus "relationship")."""
    s = settings or Settings()
    checks = []

    def passed(i, detail):
        checks.append((CHECKS[i - 1], detail))
        say("check %d/9 %s: %s" % (i, CHECKS[i - 1], detail))

    host = partner_ep.host if not partner_ep.serial else None
    if host is not None:
        is_name = not all(c.isdigit() or c == "." for c in host)
        addr = partner_address(host)
        passed(1, "%s -> %s" % (host, addr) if is_name else "not needed (an address was given)")
        passed(2, "yes (%s)" % addr if not is_name else "yes")
        partner_ep = Endpoint(host, partner_ep.port, None, partner_ep.token, partner_ep.timeout)
    else:
        passed(1, "not needed (serial console %s)" % partner_ep.serial)
        passed(2, "not needed (serial console)")
    try:
        local = Side("this server", local_ep, local_ep.open())
    except (OSError, mgmtclient.MgmtError) as e:
        raise WizardError("this server (%s) cannot be managed: %s" % (local_ep, e)) from None
    try:
        pconn = open_partner(partner_ep)
    except WizardError:
        local.close()
        raise
    partner = Side("the partner server", partner_ep, pconn)
    try:
        passed(3, "yes (%s)" % partner_ep)
        t0 = time.time()
        li = server_info(local)
        t1 = time.time()
        pi = server_info(partner, version_check=True)
        t2 = time.time()
        passed(4, "dhcpfo %s, %s" % (pi["version"], pi["failover"]))
        passed(5, "yes (administrator)")
        say("       %s: %s" % NOT_APPLICABLE)
        scopes = select_scopes(li, scopes)
        paddr = s.partner_address or pi["server_id"]
        laddr = s.local_address or li["server_id"]
        reuse = None
        if s.reuse:
            reuse = [r for r in li["relationships"] if r["partner_address"] == paddr]
            reuse = reuse[0] if reuse else None
        name = reuse["name"] if reuse else (s.name or "%s-%s" % (li["name"], pi["name"]))
        new = reuse is None
        check_limit(li, "local", new)
        check_limit(pi, "partner", new)
        passed(6, "no (this server %d, partner %d of %d)" % (li["relationship_count"], pi["relationship_count"],
                                                            li["max_relationships"]))
        check_running(pi)
        passed(7, "yes")
        diff, limit = check_time(li, (t0 + t1) / 2, pi, (t1 + t2) / 2)
        if diff is None:
            passed(8, "not applicable: %s has no wall time yet and takes its partner's at connect (docs/time.md)"
                   % ("this server" if li["time"] is None else "the partner server"))
        else:
            passed(8, "yes (%.0f s apart; permissible %s, the smaller of both servers')" % (diff, span_text(limit)))
        provisioned = check_scopes(li, pi, scopes)
        passed(9, "no" + (" (%s: present identically in no relationship, taken as provisioned)"
                          % ", ".join(provisioned) if provisioned else ""))
        if new:
            for info, label in ((li, "this server"), (pi, "the partner server")):
                if _entry(info, name) is not None:
                    raise WizardError("a failover relationship named %s already exists on %s" % (name, label))
        elif _entry(pi, name) is None or _entry(pi, name)["partner_address"] != laddr:
            raise WizardError("this server's relationship %s with %s has no mirror on the partner server: it "
                              "cannot be reused (give --no-reuse for a new one)" % (name, paddr))
        say("%s failover relationship %s: %s <-> %s, scopes %s"
            % ("new" if new else "reusing", name, laddr, paddr, ", ".join(scopes)))
        try:  # this node's scopes, to be created as they are on the partner
            configs = dict((sid, local.ask({"cmd": "get-scope-config", "scope": sid})["config"]) for sid in scopes)
        except (StepFailed, Lost) as e:
            raise WizardError("this server's scopes cannot be read: %s" % e) from None
        steps = configure_steps(local, partner, configs, provisioned, name, scopes, s, laddr, paddr, new,
                                connect_wait)
        result = run_steps(steps, (local, partner), say, hook, partner_wait)
    finally:
        local.close()
        partner.close()
    result["relationship"] = name
    result["scopes"] = scopes
    result["checks"] = checks
    return result


def _digests(side):
    return dict((x["scope"], x["digest"]) for x in side.ask({"cmd": "get-server-info"})["scopes"])


def configure_steps(local, partner, configs, provisioned, name, scopes, s, laddr, paddr, new, connect_wait):
    """The seed's five creation steps. `configs`: this node's scopes as
    get-scope-config gives them; `provisioned`: scopes the partner holds
    identically already (check 9), which are neither created nor changed."""
    listed = ", ".join(scopes)
    create = [sid for sid in scopes if sid not in provisioned]
    # on the partner until step 5: the scope as here, deactivated
    inactive = dict((sid, dict(configs[sid], active=False)) for sid in create)
    created = []  # step 1's undo: remove-scope for each scope sent

    def create_scopes():
        if not create:
            return "nothing to create (%s provisioned already)" % listed
        send_changes(partner, [({"cmd": "add-scope", "config": inactive[sid]},
                                {"cmd": "remove-scope", "scope": sid, "force": True}) for sid in create], created)
        return "created and deactivated: %s" % ", ".join(create)

    def provision():
        want = dict((sid, serverinfo.scope_digest(inactive[sid] if sid in inactive else configs[sid]))
                    for sid in scopes)
        have = _digests(partner)
        moved = [sid for sid in provisioned if have.get(sid) != want[sid]]
        if moved:
            raise StepFailed("scope(s) %s changed on the partner server since the checks" % ", ".join(moved))
        copied = [sid for sid in create if have.get(sid) != want[sid]]
        for sid in copied:
            partner.change({"cmd": "set-scope-config", "scope": sid, "config": inactive[sid]})
        if copied:
            have = _digests(partner)
        differ = [sid for sid in scopes if have.get(sid) != want[sid]]
        if differ:
            raise StepFailed("scope(s) %s differ from this server's on the partner server after provisioning"
                             % ", ".join(differ))
        return "identical to this server's%s (configuration digests %s)" % (
            " but deactivated" if create else "", ", ".join(want[sid] for sid in scopes))

    if new:
        mine, theirs = add_requests(s, name, scopes, laddr, paddr)
        undo_p = (partner, {"cmd": "remove-failover", "name": name, "force": True})
        undo_l = (local, {"cmd": "remove-failover", "name": name, "force": True})
        what = "failover relationship %s" % name
    else:
        mine = {"cmd": "add-failover-scope", "name": name, "scopes": list(scopes)}
        theirs = dict(mine)
        undo_p = (partner, {"cmd": "remove-failover-scope", "name": name, "scopes": list(scopes), "force": True})
        undo_l = (local, {"cmd": "remove-failover-scope", "name": name, "scopes": list(scopes), "force": True})
        what = "scope(s) %s in failover relationship %s" % (listed, name)

    def create_partner():
        r = partner.change(theirs)["relationship"]
        return "done (%s, %s)" % (r["role"], r["mode"])

    def create_local():
        r = local.change(mine)["relationship"]
        return "done (%s, %s)" % (r["role"], r["mode"])

    activated = []  # step 5's undo: deactivate again

    def activate():
        # each scope as active as it is here (an absent key stays absent)
        send_changes(partner, [({"cmd": "set-scope", "scope": sid, "active": configs[sid].get("active")},
                                {"cmd": "set-scope", "scope": sid, "active": False}) for sid in create], activated)
        # identical to this server's now (the digest covers `active` too), and in the relationship
        ours = dict((sid, serverinfo.scope_digest(configs[sid])) for sid in scopes)
        have = dict((x["scope"], x) for x in partner.ask({"cmd": "get-server-info"})["scopes"])
        differ = [x for x in scopes if x not in have or have[x]["digest"] != ours[x]]
        if differ:
            raise StepFailed("scope(s) %s on the partner server differ from this server's" % ", ".join(differ),
                             done=bool(activated))
        off = [x for x in scopes if have[x]["relationship"] != name]
        if off:
            raise StepFailed("scope(s) %s are not in %s on the partner server" % (", ".join(off), name),
                             done=bool(activated))
        deadline = time.monotonic() + connect_wait
        while True:
            up = [_status(side, name) for side in (local, partner)]
            if all(u and u["connected"] for u in up):
                return ("as active as on this server; the pair is connected (this server %s, partner %s)"
                        % (up[0]["state"], up[1]["state"]))
            if time.monotonic() >= deadline:
                raise StepFailed("the two servers did not connect within %g s: check the failover addresses "
                                 "%s and %s, ports and firewalls" % (connect_wait, laddr, paddr),
                                 done=bool(activated))
            time.sleep(0.25)

    return [
        Step("Create the scope(s) %s on the partner server and deactivate them" % listed, create_scopes, created,
             "delete the created scope(s) from the partner server"),
        Step("Provision the scope(s) with identical configuration as this server", provision),
        Step("Create the %s on the partner server" % what, create_partner, undo_p,
             "remove the %s from the partner server" % what),
        Step("Create the %s on this server" % what, create_local, undo_l, "remove the %s from this server" % what),
        Step("Activate the scope(s) on the partner server", activate, activated,
             "deactivate the scope(s) on the partner server"),
    ]


def _status(side, name):
    for r in side.ask({"cmd": "get-failover"})["relationships"]:
        if r["name"] == name:
            return r
    return None


# ---------------------------------------------------------------------------
# Deconfigure


def _partner_of(entry):
    """The partner of a relationship (get-server-info's form) as the node was
    given it: its host name when named so (its address is null until the node
    resolved it), else its address."""
    return entry.get("partner_host") or entry["partner_address"]


def recreate_request(entry, secret):
    """add-failover that brings back relationship `entry` (get-server-info's form)."""
    req = {"cmd": "add-failover", "name": entry["name"], "partner": _partner_of(entry),
           "local_address": entry["local_address"], "local_port": entry["local_port"],
           "partner_port": entry["partner_port"], "role": entry["role"], "mode": entry["mode"],
           "scopes": list(entry["scopes"]), "mclt": entry["mclt"], "force": True}
    if entry["mode"] == "hot-standby":
        req["reserve_percent"] = entry["reserve_percent"]
        req["server_role"] = entry["hot_standby_role"]
    elif entry.get("load_balance_percent") is not None:
        req["load_balance_percent"] = entry["load_balance_percent"]
    if entry.get("auto_state_switchover"):
        req["auto_state_transition"] = True
        req["safe_period"] = entry["auto_state_switchover"]
    if entry.get("authentication"):
        req["shared_secret"] = secret
    return req


class NeedsForce(WizardError):
    """Deconfigure found the pair not in NORMAL: continuing needs --force."""


def deconfigure(local_ep, partner_ep, name, scopes=None, force=False, shared_secret=None, say=print, hook=None,
                partner_wait=30.0):
    """Deconfigure Failover: the seed's steps with rollback. `partner_ep` None:
    the partner's management at its failover address, port 6470."""
    try:
        local = Side("this server", local_ep, local_ep.open())
    except (OSError, mgmtclient.MgmtError) as e:
        raise WizardError("this server (%s) cannot be managed: %s" % (local_ep, e)) from None
    partner = None
    try:
        li = server_info(local)
        entry = _entry(li, name)
        if entry is None:
            raise WizardError("no failover relationship named %s on this server" % name)
        scopes = list(scopes or entry["scopes"])
        for sid in scopes:
            if sid not in entry["scopes"]:
                raise WizardError("Selected scope %s is not part of failover relationship %s" % (sid, name))
        whole = set(scopes) == set(entry["scopes"])
        if whole and entry["authentication"] and not shared_secret:
            raise WizardError("relationship %s authenticates its messages: give its shared secret (--shared-secret)"
                              " so that a rollback can recreate it" % name)
        if partner_ep is None:
            partner_ep = Endpoint(_partner_of(entry), MGMT_PORT, None, local_ep.token, local_ep.timeout)
        # the seed's first step: both servers' state; outside NORMAL only this server is changed
        mine = _status(local, name)
        why = None
        pentry = None
        try:
            partner = Side("the partner server", partner_ep, partner_ep.open())
            theirs = _status(partner, name)
            pentry = _entry(server_info(partner), name)
            if theirs is None or pentry is None:
                why = "the partner server has no relationship %s" % name
            elif mine["state"] != "normal" or theirs["state"] != "normal":
                why = "this server is %s, the partner server %s" % (mine["state"], theirs["state"])
        except (OSError, mgmtclient.MgmtError, WizardError) as e:
            why = "the partner server (%s) cannot be reached: %s" % (partner_ep, e)
            partner = None
        warnings = []
        if why:
            warn = ("Relationship %s is not in the normal state on both servers (%s). Since this server is not in "
                    "communication with its partner server, the deletion will only be performed locally. The "
                    "administrator must perform similar deconfiguration on the partner server." % (name, why))
            say("warning: " + warn)
            if not force:
                raise NeedsForce(warn + " Give --force to continue.")
            warnings.append(warn)
            if partner is not None:
                partner.close()
            partner = None
        say("check: state of both servers: %s" % ("both normal" if not why else "continuing locally only (--force)"))
        saved = {}  # the partner's scopes as they are, for a rollback that brings them back
        if partner is not None:
            for sid in scopes:
                try:
                    saved[sid] = partner.ask({"cmd": "get-scope-config", "scope": sid})["config"]
                except (StepFailed, Lost) as e:
                    raise WizardError("the partner server's scope %s cannot be read: %s" % (sid, e)) from None
        steps = deconfigure_steps(local, partner, entry, pentry, scopes, whole, shared_secret, saved)
        result = run_steps(steps, [x for x in (local, partner) if x is not None], say, hook, partner_wait)
        result["warnings"] = warnings + result["warnings"]
    finally:
        local.close()
        if partner is not None:
            partner.close()
    result["relationship"] = name
    result["scopes"] = scopes
    return result


def deconfigure_steps(local, partner, entry, pentry, scopes, whole, secret, saved):
    """The seed's steps after its state check: deactivate on the partner,
    remove from the relationship here, delete from the partner (done as two
    steps: out of the relationship there, then remove-scope, so that each
    has its own undo). `saved`: the partner's scopes as get-scope-config gave
    them before any step."""
    listed = ", ".join(scopes)
    name = entry["name"]

    def removal(side, e):
        if whole:
            return ({"cmd": "remove-failover", "name": name, "force": True}, (side, recreate_request(e, secret)))
        return ({"cmd": "remove-failover-scope", "name": name, "scopes": list(scopes), "force": True},
                (side, {"cmd": "add-failover-scope", "name": name, "scopes": list(scopes)}))

    steps = []
    deactivated, deleted = [], []
    if partner is not None:
        def deactivate():
            send_changes(partner, [({"cmd": "set-scope", "scope": sid, "active": False},
                                    {"cmd": "set-scope", "scope": sid, "active": saved[sid].get("active")})
                                   for sid in scopes], deactivated)
            return "done: the partner server leases no more addresses from them"
        steps.append(Step("Deactivate the scope(s) %s on the partner server" % listed, deactivate, deactivated,
                          "reactivate the scope(s) on the partner server"))
    req, undo = removal(local, entry)
    steps.append(Step("Remove the scope(s) %s from the failover relationship %s on this server" % (listed, name),
                      lambda: local.change(req) and None, undo,
                      "put the scope(s) back into %s on this server" % name))
    if partner is not None:
        preq, pundo = removal(partner, pentry)
        steps.append(Step("Delete the scope(s) %s from the partner server: out of the failover relationship %s there"
                          % (listed, name), lambda: partner.change(preq) and None, pundo,
                          "put the scope(s) back into %s on the partner server" % name))

        def delete():
            # back in their order (appended), deactivated as step 1 left them
            send_changes(partner, [({"cmd": "remove-scope", "scope": sid, "force": True},
                                    {"cmd": "add-scope", "config": dict(saved[sid], active=False)})
                                   for sid in scopes], deleted)
            return "deleted"
        steps.append(Step("Delete the scope(s) %s from the partner server: remove-scope" % listed, delete, deleted,
                          "re-create the scope(s) on the partner server"))
    return steps


# ---------------------------------------------------------------------------
# The CLI's side (`dhcpfo failover configure|deconfigure`)


def _partner_endpoint(args, token):
    if args.partner_serial:
        return Endpoint(serial=args.partner_serial, token=token)
    if not args.partner:
        return None
    host, port = args.partner, MGMT_PORT
    if host.count(":") == 1:
        host, _, p = host.partition(":")
        try:
            port = int(p)
        except ValueError:
            raise WizardError("--partner wants HOST or HOST:PORT, got %r" % args.partner) from None
    return Endpoint(host, port, None, token)


def main(args, local_kw):
    """Run the wizard for parsed `dhcpfo failover configure|deconfigure`
    arguments. Exit status: 0 done; 1 a check failed or a step failed and
    everything was rolled back; 2 usage or not confirmed; 3 the rollback
    could not be completed (the warning says what is left)."""
    import sys
    from dhcpfo_host import failover_cli

    local_ep = Endpoint(local_kw["host"], local_kw["port"], local_kw["serial"], local_kw["token"])
    token = local_kw["partner_token"]
    say = (lambda line: print(line, file=sys.stderr)) if args.json else (lambda line: print(line, flush=True))
    try:
        partner_ep = _partner_endpoint(args, token)
        if args.action == "configure":
            if partner_ep is None:
                print("dhcpfo: configure needs the partner server: --partner HOST[:PORT] or --partner-serial PORT",
                      file=sys.stderr)
                return 2
            if not failover_cli._confirm_secret(args):
                return 2
            s = Settings(**dict((k, getattr(args, k)) for k in (
                "name", "mode", "mclt", "load_balance_percent", "reserve_percent", "server_role",
                "auto_state_transition", "safe_period", "shared_secret", "secondary", "local_address",
                "partner_address", "local_port", "partner_port")))
            s.reuse = not args.no_reuse
            result = configure(local_ep, partner_ep, args.scope, s, say, None, args.partner_wait, args.connect_wait)
        else:
            result = deconfigure(local_ep, partner_ep, args.name, args.scope, args.force, args.shared_secret, say,
                                 None, args.partner_wait)
    except NeedsForce as e:
        print("dhcpfo: %s" % e, file=sys.stderr)
        return 2
    except WizardError as e:
        print("dhcpfo: %s" % e, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    for w in result["warnings"]:
        print("dhcpfo: warning: %s" % w, file=sys.stderr)
    if result["ok"]:
        if not args.json:
            print("%s %s: done" % ("configured" if args.action == "configure" else "deconfigured",
                                   result["relationship"]))
        return 0
    print("dhcpfo: %s; rolled back" % result["error"], file=sys.stderr)
    return 3 if result["not_rolled_back"] else 1
