# failover/reconfig.py - live changes to the failover part of a node's
# configuration: the rules for what may change when, checked on a copy of
# the configuration document before anything is applied.
#
# The rules follow the Windows failover cmdlets (seed: Add-/Remove-
# DhcpServerv4Failover[Scope], Set-DhcpServerv4Failover): at most 31
# relationships, a scope in at most one relationship, at least one scope
# per relationship (config.load checks these on the edited copy); a
# relationship or a scope leaves only in NORMAL unless forced; the
# percentage that applies is the one of the relationship's mode; MCLT,
# percentages, safe period and secret may change at any time. Mode and
# hot-standby role may change too: allocation follows pool ownership
# (FREE/BACKUP), which moves only through the balancer, so a new split is
# safe at any moment.

from dhcpfo import config as cfg
from dhcpfo.compat import hexlify, json_dumps, json_loads
from dhcpfo.failover import states as S
from dhcpfo.lease import log as ll
from dhcpfo.lease import table as lt
from dhcpfo import ondemand

ondemand.droppable(__name__)  # live reconfiguration: only while a command runs

SETTABLE = ("mode", "load_balance_percent", "reserve_percent", "hot_standby_role", "mclt",
            "auto_state_switchover", "shared_secret", "enable_authentication")
# what the partner learns only from a new CONNECT (draft-12 §7.2: HBA, MCLT)
# or a new digest key: a change of one of these re-establishes the link
RECONNECT = ("mode", "load_balance_percent", "reserve_percent", "hot_standby_role", "mclt",
             "shared_secret", "enable_authentication")


class ReconfigError(ValueError):
    """A refused change; `errors` lists why. Nothing was changed."""

    def __init__(self, errors):
        super().__init__("; ".join(errors))
        self.errors = errors


def copy(doc):
    return json_loads(json_dumps(doc))


def _rel(doc, name):
    for d in doc.get("failover") or ():
        if d.get("name") == name:
            return d
    raise ReconfigError(["no failover relationship named %r" % (name,)])


def _load(doc):
    try:
        return cfg.load(doc)
    except cfg.ConfigError as e:
        raise ReconfigError(e.errors)


def _needs_normal(rel, force, what):
    if rel is not None and rel.state != S.NORMAL and not force:
        raise ReconfigError(["%s: relationship %s is %s, not normal (force to do it anyway)"
                             % (what, rel.name, S.name(rel.state))])


# The node's document is the compiled configuration (dhcpfo_host.boardconf):
# relationship endpoints flattened, every setting present, the secret as hex.
# A relationship spec or a change may come in the configuration's own terms
# (docs/config.md); these turn it into the compiled terms before the loader
# re-checks the whole document.

def _secret_hex(v):
    # an administrator types the secret as text; the compiled document holds hex
    return hexlify(v.encode()) if isinstance(v, str) else v


def compiled_spec(spec):
    """A relationship spec in configuration terms -> the compiled form, defaults filled."""
    d = cfg.FailoverConfig()
    out = {"name": spec.get("name"), "role": spec.get("role", d.role), "mode": spec.get("mode", d.mode),
           "scopes": list(spec.get("scopes") or []), "mclt": spec.get("mclt", d.mclt),
           "max_unacked": spec.get("max_unacked", d.max_unacked),
           "max_response_delay": spec.get("max_response_delay", d.max_response_delay),
           "load_balance_max_seconds": spec.get("load_balance_max_seconds", d.load_balance_max_seconds),
           "auto_state_switchover": spec.get("auto_state_switchover")}
    for side in ("local", "partner"):
        ep = spec.get(side)
        ep = ep if isinstance(ep, dict) else {}
        out[side + "_address"] = spec.get(side + "_address", ep.get("address"))
        out[side + "_port"] = spec.get(side + "_port", ep.get("port", cfg.FAILOVER_PORT))
    pe = spec.get("partner")
    host = spec.get("partner_host", pe.get("host") if isinstance(pe, dict) else None)
    if host is not None:
        out["partner_host"] = host  # the name it was given by (the address was resolved from it)
    hs = out["mode"] == "hot-standby"
    out["load_balance_percent"] = None if hs else spec.get("load_balance_percent", d.load_balance_percent)
    out["reserve_percent"] = spec.get("reserve_percent", 5) if hs else None
    out["hot_standby_role"] = spec.get("hot_standby_role", "active") if hs else None
    secret = _secret_hex(spec.get("shared_secret"))
    out["shared_secret"] = secret
    out["enable_authentication"] = spec.get("enable_authentication", secret is not None)
    return out


def create(doc, spec):
    """A copy of `doc` with relationship `spec` added, and its Config."""
    new = copy(doc)
    lst = new.get("failover")
    if lst is None:
        lst = new["failover"] = []
    lst.append(compiled_spec(spec))
    return new, _load(new)


def delete(doc, name, rel, force):
    _needs_normal(rel, force, "delete")
    new = copy(doc)
    _rel(new, name)
    new["failover"] = [d for d in new["failover"] if d.get("name") != name]
    return new, _load(new)


def add_scopes(doc, name, ids):
    new = copy(doc)
    d = _rel(new, name)
    d["scopes"] = list(d.get("scopes") or []) + list(ids)
    return new, _load(new)


def remove_scopes(doc, name, ids, rel, force):
    _needs_normal(rel, force, "remove scopes")
    new = copy(doc)
    d = _rel(new, name)
    have = list(d.get("scopes") or [])
    missing = [i for i in ids if i not in have]
    if missing:
        raise ReconfigError(["scope %s is not in relationship %s" % (i, name) for i in missing])
    d["scopes"] = [i for i in have if i not in ids]
    return new, _load(new)


def set_options(doc, name, changes):
    """Change settings of relationship `name`: keys of SETTABLE; a value of
    None removes the setting (its default applies)."""
    errors = []
    for k in changes:
        if k not in SETTABLE:
            errors.append("%s cannot be changed on a running relationship (settable: %s)"
                          % (k, ", ".join(SETTABLE)))
    if errors:
        raise ReconfigError(errors)
    new = copy(doc)
    d = _rel(new, name)
    mode = changes.get("mode", d.get("mode", "load-balance"))
    # the percentage that applies is the one of the relationship's mode (seed:
    # Set-DhcpServerv4Failover); naming the other mode's is a terminating error
    other = ("reserve_percent", "hot_standby_role") if mode != "hot-standby" else ("load_balance_percent",)
    for k in other:
        if changes.get(k) is not None:
            errors.append("%s does not apply to a %s relationship" % (k, mode))
    if errors:
        raise ReconfigError(errors)
    if "mode" in changes and mode != d.get("mode"):
        # the other mode's settings do not apply any more; this mode's take defaults
        hs = mode == "hot-standby"
        d["load_balance_percent"] = None if hs else 50
        d["reserve_percent"] = 5 if hs else None
        d["hot_standby_role"] = "active" if hs else None
    for k in changes:
        v = changes[k]
        if k == "shared_secret":
            v = _secret_hex(v)
        d[k] = v
    if "shared_secret" in changes and "enable_authentication" not in changes:
        # a secret turns authentication on, no secret turns it off (seed)
        d["enable_authentication"] = d.get("shared_secret") is not None
    return new, _load(new)


def needs_reconnect(changes):
    for k in changes:
        if k in RECONNECT:
            return True
    return False


def apply_settings(rel, rc, changes, now, out):
    """Carry a validated settings change into running relationship `rel`."""
    old_mclt = rel.mclt
    rel.rc = rc
    hba = rel.hba
    rel.configure_split()
    if not rel.primary:
        rel.hba = hba  # the primary's, from its CONNECT
    if rel.primary:
        rel.mclt = rc.mclt  # a secondary keeps the primary's until its next CONNECT (I15)
    rel.safe_period = rc.auto_state_switchover or 0
    rel.lb_max_secs = rc.load_balance_max_seconds
    ch = rel.channel
    ch.key = bytes(rc.shared_secret) if rc.shared_secret and rc.enable_authentication else None
    ch.max_unacked = rc.max_unacked
    ch.receive_timer = rc.max_response_delay
    if rel.mclt != old_mclt:
        rel.persist()
    if needs_reconnect(changes) and ch.link is not None:
        # the partner learns HBA and MCLT from CONNECT, and a new key needs a new link
        rel.drop(ch.link, now, out, "reconfigured: reconnecting so the partner learns the change")
    for lk in list(ch.links):  # a handshake under way used the old settings
        if not lk.up:
            rel.drop(lk, now, out, "reconfigured")


def send_in_use(rel, sc, out):
    """Every binding in use in scope `sc` is owed to the partner: marked
    PENDING and recorded (a restart still sends it). Until the partner
    acknowledges, a pending binding wins a duel against the partner's copy
    (failover/receive.py), so a relationship created or extended on a node
    that was serving alone never trades its clients' leases for the
    partner's FREE, even while it resynchronises in RECOVER."""
    t = rel.tables[sc.index]
    for off in range(t.size):
        if t.state(off) not in (lt.FREE, lt.BACKUP) and not t.flags(off) & lt.PENDING:
            t.set_flags(off, t.flags(off) | lt.PENDING)
            out.records.append(ll.encode_binding(sc.index, off, t))
    rel.updates.rescan()


def add_scope(rel, sc, now, out):
    """Scope `sc` joins running relationship `rel`: every binding in use is
    sent to the partner (send_in_use)."""
    rel.scopes.append(sc)
    rel.desired[sc.index] = sc.longest_lease
    send_in_use(rel, sc, out)
    rel.balance(now, out)  # in NORMAL the primary gives the secondary its share at once


def remove_scope(rel, sc):
    """Scope `sc` leaves `rel`: it serves alone from now on (its former
    BACKUP addresses included, see dhcp.server.Standalone)."""
    if sc in rel.scopes:
        rel.scopes.remove(sc)
    rel.desired.pop(sc.index, None)
