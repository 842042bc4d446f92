"""The human JSON configuration's validator (docs/config.md), run on the host.

load(obj) checks the whole document in one pass and raises ConfigError
listing every problem as "path: message" (with a "did you mean" for a
mistyped key), or returns a dhcpfo.config.Config. pair_errors compares two
nodes' configurations for the relationships they share. None of this runs on
a board: boardconf compiles the validated Config into the compact form the
firmware's loader (dhcpfo.config.load) reads.

Keys starting with "_" are comments and ignored everywhere; any other key
the schema does not know is an error, so a typo never passes silently.
"""

from dhcpfo.compat import json_loads
from dhcpfo.config import (DEFAULT_LEASE_TIME, DEFAULT_MCLT, FAILOVER_PORT, LOG_LEVELS, MAX_NAME,
                           MAX_POOL, MAX_RELATIONSHIPS, MGMT_MAX_CONNECTIONS, MGMT_PORT, Config, ConfigError,
                           FailoverConfig, MatchConfig, PolicyConfig, ReservationConfig,
                           ScopeConfig, ServerConfig, addr_delta, and4, ip_str, mask_of,
                           or_not4, parse_hex, parse_ip, parse_mac, prefix_of)
from dhcpfo.mgmt.failover import is_host_name
from dhcpfo.wire.options import (Definitions, OptionValueError, encode_option_value, option_code,
                                 option_name)

__all__ = ["load", "load_text", "pair_errors", "ConfigError"]

# Option codes the server fills in itself; configuring them is an error.
_SERVER_SET = {
    0: "pad",
    1: "the subnet mask comes from the scope's mask",
    50: "requested address is a client option",
    51: "use lease_time",
    52: "overload is decided by the encoder",
    53: "the message type is set by the server",
    54: "use server.server_id",
    55: "the parameter request list is a client option",
    57: "maximum message size is a client option",
    58: "T1 is a share of the lease: use t1_percent",
    59: "T2 is a share of the lease: use t2_percent",
    61: "the client identifier is a client option",
    82: "relay agent information is echoed, not configured",
    255: "end",
}

_TOP_KEYS = ("server", "scopes", "failover")
_SERVER_KEYS = ("id", "name", "server_id", "listen", "data_dir", "options", "policies", "mgmt",
                "decline_hold", "offer_hold", "time_skew_max", "log_level", "abuse", "authoritative",
                "option_definitions", "syslog")
_SYSLOG_KEYS = ("address", "port", "level", "facility")
SYSLOG_LEVELS = ("info", "warning", "error")
_DEF_KEYS = ("code", "name", "type")
_LISTEN_KEYS = ("address", "port", "interface", "relay_port")
_MGMT_KEYS = ("address", "port", "token", "user_token", "console_password", "max_connections")
_SCOPE_KEYS = ("id", "mask", "name", "description", "active", "lease_time", "offer_delay_ms",
               "ranges", "exclusions", "reservations", "options", "policies", "bootp",
               "min_lease_time", "max_lease_time", "t1_percent", "t2_percent", "authoritative")
_RANGE_KEYS = ("start", "end")
_RES_KEYS = ("address", "mac", "client_id", "name", "description", "options")
_POLICY_KEYS = ("name", "description", "order", "enabled", "conditions", "ranges", "options",
                "lease_time")
_COND_KEYS = ("operator", "vendor_class", "user_class", "mac", "client_id")
_CRITERIA = ("vendor_class", "user_class", "mac", "client_id")
_MATCH_KEYS = ("op", "value", "prefix")
_FO_KEYS = ("name", "role", "mode", "partner", "local", "scopes", "mclt", "load_balance_percent",
            "reserve_percent", "hot_standby_role", "auto_state_switchover", "shared_secret",
            "enable_authentication", "max_unacked", "max_response_delay", "receive_timer",
            "load_balance_max_seconds")
_ENDPOINT_KEYS = ("address", "port")
_PARTNER_KEYS = ("address", "host", "port")



def _suggest(key, allowed):
    """" (did you mean x?)" for a near miss, else ""."""
    best = None
    bestd = 3
    for a in allowed:
        d = _distance(key, a)
        if d < bestd:
            best = a
            bestd = d
    if best is None or bestd > max(1, len(key) // 4):
        return ""
    return " (did you mean %s?)" % best


def _distance(a, b):
    """Edit distance counting a swap of neighbours as one edit."""
    if abs(len(a) - len(b)) > 2:
        return 9
    prev = list(range(len(b) + 1))
    pprev = prev
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], pprev[j - 2] + 1)  # transposition
        pprev = prev
        prev = cur
    return prev[len(b)]


def _sub(path, key):
    return path + "." + key if path else key


def _idx(path, i):
    return "%s[%d]" % (path, i)


def _is_bool(v):
    return v is True or v is False


# ---------------------------------------------------------------------------
# The validator: one pass that collects errors instead of stopping at the first.


class _Check:
    def __init__(self):
        self.errors = []
        self.defs = Definitions()  # server.option_definitions, for every options object

    def err(self, path, msg):
        self.errors.append(path + ": " + msg)

    # -- shapes --

    def obj(self, v, path, keys):
        """v as a dict with only `keys` (plus "_comment" keys), else None."""
        if type(v) is not dict:
            self.err(path or "config", "must be an object")
            return None
        for k in _str_keys(self, v, path):
            if k in keys or k[:1] == "_":
                continue
            self.err(_sub(path, k), "unknown key" + _suggest(k, keys))
        return v

    def items(self, d, key, path):
        """d[key] as a list (missing/null -> []), else None."""
        v = d.get(key)
        if v is None:
            return []
        if type(v) is not list:
            self.err(_sub(path, key), "must be a list")
            return None
        return v

    # -- scalars: each returns the default when absent/null, None when invalid --

    def int(self, d, key, path, default, lo, hi):
        v = d.get(key)
        if v is None:
            return default
        p = _sub(path, key)
        if type(v) is not int:
            self.err(p, "must be an integer")
            return None
        if v < lo or v > hi:
            self.err(p, "must be %d..%d" % (lo, hi))
            return None
        return v

    def bool(self, d, key, path, default):
        v = d.get(key)
        if v is None:
            return default
        if not _is_bool(v):
            self.err(_sub(path, key), "must be true or false")
            return None
        return v

    def str(self, d, key, path, default, maxlen=255, required=False):
        v = d.get(key)
        p = _sub(path, key)
        if v is None:
            if required:
                self.err(p, "required")
            return default
        if type(v) is not str:
            self.err(p, "must be a string")
            return None
        if required and not v:
            self.err(p, "must not be empty")
            return None
        if len(v) > maxlen:
            self.err(p, "longer than %d characters" % maxlen)
            return None
        return v

    def choice(self, d, key, path, default, choices):
        v = d.get(key)
        if v is None:
            return default
        if v not in choices:
            self.err(_sub(path, key), "must be one of " + ", ".join(choices))
            return None
        return v

    def ip(self, d, key, path, default=None, required=False):
        v = d.get(key)
        p = _sub(path, key)
        if v is None:
            if required:
                self.err(p, "required")
            return default
        b = parse_ip(v)
        if b is None:
            self.err(p, "not an IPv4 address: %s" % _show(v))
        return b

    # -- compound values --

    def options(self, d, key, path):
        """An option map {name-or-code: value} -> {code: bytes}, or None."""
        v = d.get(key)
        if v is None:
            return {}
        p = _sub(path, key)
        if type(v) is not dict:
            self.err(p, "must be an object")
            return None
        out = {}
        first = {}
        ok = True
        keys = sorted(k for k in v if type(k) is str)
        keys += sorted(k for k in v if type(k) is int)
        for k in keys:
            if type(k) is str and k[:1] == "_":
                continue
            kp = _sub(p, str(k))
            try:
                code = option_code(k, self.defs)
            except OptionValueError as e:
                self.err(kp, str(e))
                ok = False
                continue
            if code in _SERVER_SET:
                self.err(kp, "option %d cannot be configured (%s)" % (code, _SERVER_SET[code]))
                ok = False
                continue
            if code in out:
                self.err(kp, "option %d is also given as %s" % (code, first[code]))
                ok = False
                continue
            try:
                code, data = encode_option_value(code, v[k], self.defs)
            except OptionValueError as e:
                msg = str(e)
                lead = option_name(code, self.defs) + ": "
                if msg.startswith(lead):
                    msg = msg[len(lead):]
                self.err(kp, msg)
                ok = False
                continue
            out[code] = data
            first[code] = k
        return out if ok else None

    def span(self, v, path):
        """{start, end} -> (start, end) bytes, or None."""
        r = self.obj(v, path, _RANGE_KEYS)
        if r is None:
            return None
        s = self.ip(r, "start", path, required=True)
        e = self.ip(r, "end", path, required=True)
        if s is None or e is None:
            return None
        if e < s:
            self.err(path, "end before start")
            return None
        return (s, e)


def _str_keys(c, v, path):
    """The string keys of v, sorted (one error per non-string key)."""
    out = []
    for k in v:
        if type(k) is str:
            out.append(k)
        else:
            c.err(path or "config", "key %s is not a string" % _show(k))
    out.sort()
    return out


def _show(v):
    if type(v) is str:
        return '"%s"' % v
    return str(v)


def _inside(a, span):
    return span[0] <= a <= span[1]


def _overlap(x, y):
    return x[0] <= y[1] and y[0] <= x[1]


def _span_str(sp):
    return ip_str(sp[0]) + "-" + ip_str(sp[1])


# ---------------------------------------------------------------------------
# Sections.


def _server(c, v):
    s = ServerConfig()
    d = c.obj(v, "server", _SERVER_KEYS)
    if d is None:
        return None
    p = "server"
    if "id" in d and "name" in d:
        c.err("server.id", "give either id or name, not both")
    key = "id" if "id" in d else "name"
    s.name = c.str(d, key, p, "dhcpfo", 64)
    lv = d.get("listen")
    if lv is not None:
        ld = c.obj(lv, "server.listen", _LISTEN_KEYS)
        if ld is not None:
            s.listen_address = c.ip(ld, "address", "server.listen", s.listen_address)
            s.listen_port = c.int(ld, "port", "server.listen", 67, 1, 65535)
            s.interface = c.str(ld, "interface", "server.listen", None, 32)
            s.relay_port = c.int(ld, "relay_port", "server.listen", 67, 1, 65535)
    s.server_id = c.ip(d, "server_id", p)
    if s.server_id is None and d.get("server_id") is None:
        if s.listen_address is not None and s.listen_address != b"\x00\x00\x00\x00":
            s.server_id = s.listen_address
        else:
            c.err("server.server_id", "required (or give a specific server.listen.address)")
    if s.server_id is not None and (s.server_id == b"\x00\x00\x00\x00"
                                    or s.server_id == b"\xff\xff\xff\xff"):
        c.err("server.server_id", "must be a unicast address")
    s.data_dir = c.str(d, "data_dir", p, "data", 200)
    s.authoritative = c.bool(d, "authoritative", p, True)
    s.option_definitions = _definitions(c, d.get("option_definitions"))
    s.options = c.options(d, "options", p)
    s.policies = _policies(c, d, p, None)
    mv = d.get("mgmt")
    if mv is not None:
        md = c.obj(mv, "server.mgmt", _MGMT_KEYS)
        if md is not None:
            s.mgmt_address = c.ip(md, "address", "server.mgmt", s.mgmt_address)
            s.mgmt_port = c.int(md, "port", "server.mgmt", MGMT_PORT, 1, 65535)
            s.mgmt_token = c.str(md, "token", "server.mgmt", None, 128)
            if s.mgmt_token is not None and len(s.mgmt_token) < 8:
                c.err("server.mgmt.token", "too short (at least 8 characters)")
            s.mgmt_user_token = c.str(md, "user_token", "server.mgmt", None, 128)
            if s.mgmt_user_token is not None:
                if len(s.mgmt_user_token) < 8:
                    c.err("server.mgmt.user_token", "too short (at least 8 characters)")
                elif s.mgmt_token is None:
                    c.err("server.mgmt.user_token", "needs a token for the administrator too")
                elif s.mgmt_user_token == s.mgmt_token:
                    c.err("server.mgmt.user_token", "must differ from the administrator's token")
            s.console_password = c.str(md, "console_password", "server.mgmt", None, 128)
            s.mgmt_max_connections = c.int(md, "max_connections", "server.mgmt", MGMT_MAX_CONNECTIONS, 1, 64)
            if s.console_password is not None and len(s.console_password) < 8:
                c.err("server.mgmt.console_password", "too short (at least 8 characters)")
            if (s.mgmt_address is not None and s.mgmt_address[0] != 127
                    and s.mgmt_token is None and md.get("token") is None):
                c.err("server.mgmt.token", "required when mgmt.address is not a loopback address")
    s.decline_hold = c.int(d, "decline_hold", p, 3600, 0, 30 * 86400)
    s.offer_hold = c.int(d, "offer_hold", p, 60, 1, 3600)
    s.time_skew_max = c.int(d, "time_skew_max", p, 60, 1, 3600)
    s.log_level = c.choice(d, "log_level", p, "info", LOG_LEVELS)
    sv = d.get("syslog")
    if sv is not None:
        sd = c.obj(sv, "server.syslog", _SYSLOG_KEYS)
        if sd is not None:
            s.syslog_address = c.ip(sd, "address", "server.syslog", None, required=True)
            s.syslog_port = c.int(sd, "port", "server.syslog", 514, 1, 65535)
            s.syslog_level = c.choice(sd, "level", "server.syslog", "warning", SYSLOG_LEVELS)
            s.syslog_facility = c.int(sd, "facility", "server.syslog", 3, 0, 23)
    s.abuse = _abuse(c, d.get("abuse"))
    return s


def _definitions(c, v):
    """server.option_definitions: names and types for option codes the
    option table does not know (ISC's `option NAME code N = TYPE;`), so
    their values may be given as text, addresses, numbers... They only
    change how values are written here: a board still gets bytes."""
    p = "server.option_definitions"
    out = []
    if v is None:
        return out
    if type(v) is not list:
        c.err(p, "must be a list")
        return out
    for i in range(len(v)):
        ip = _idx(p, i)
        d = c.obj(v[i], ip, _DEF_KEYS)
        if d is None:
            continue
        code = c.int(d, "code", ip, None, 1, 254)
        name = c.str(d, "name", ip, None, 64)
        tname = c.str(d, "type", ip, None, 32, required=True)
        if d.get("code") is None:
            c.err(_sub(ip, "code"), "required")
        if code is None or tname is None:
            continue
        try:
            c.defs.add(code, name, tname)
        except OptionValueError as e:
            c.err(ip, str(e))
            continue
        out.append((code, name, tname))
    return out


def _abuse(c, v):
    """server.abuse: rate limits and the pool alarm (dhcp.server.ABUSE_DEFAULTS)."""
    from dhcpfo.dhcp.server import ABUSE_DEFAULTS
    if v is None:
        return None
    d = c.obj(v, "server.abuse", tuple(ABUSE_DEFAULTS))
    if d is None:
        return None
    out = {}
    for k in ABUSE_DEFAULTS:
        if k in d:
            lo, hi = (1, 100) if k == "pool_alarm_percent" else (0, 1000000)
            out[k] = c.int(d, k, "server.abuse", ABUSE_DEFAULTS[k], lo, hi)
    return out


def _matches(c, lst, path, crit):
    """One criterion's list of condition values -> [MatchConfig]."""
    out = []
    for i in range(len(lst)):
        ip = _idx(path, i)
        item = lst[i]
        if type(item) is str:
            item = {"value": item}
        m = c.obj(item, ip, _MATCH_KEYS)
        if m is None:
            continue
        op = c.choice(m, "op", ip, "eq", ("eq", "ne"))
        prefix = c.bool(m, "prefix", ip, False)
        raw = m.get("value")
        if raw is None:
            c.err(_sub(ip, "value"), "required")
            continue
        if type(raw) is not str:
            c.err(_sub(ip, "value"), "must be a string")
            continue
        if raw.endswith("*"):
            raw = raw[:-1]
            prefix = True
        if crit in ("vendor_class", "user_class"):
            value = raw.encode()
            if not value and not prefix:
                c.err(_sub(ip, "value"), "must not be empty")
                continue
        else:
            value = parse_hex(raw) if raw else b""
            if value is None:
                c.err(_sub(ip, "value"), "not hex bytes: %s" % _show(m.get("value")))
                continue
            if crit == "mac" and (len(value) > 16 or (not prefix and len(value) != 6)):
                c.err(_sub(ip, "value"), "a MAC is 6 bytes (end with * for a prefix)")
                continue
            if not value and not prefix:
                c.err(_sub(ip, "value"), "must not be empty")
                continue
        if op is None or prefix is None:
            continue
        out.append(MatchConfig(op, value, prefix))
    return out


def _policies(c, d, path, range_check):
    """Policies of a scope, or of the server when range_check is None.

    range_check(span, path) -> bool validates a policy range against its scope."""
    lst = c.items(d, "policies", path)
    if lst is None:
        return None
    base = _sub(path, "policies")
    out = []
    names = {}
    orders = {}
    for i in range(len(lst)):
        pp = _idx(base, i)
        pd = c.obj(lst[i], pp, _POLICY_KEYS)
        if pd is None:
            continue
        pol = PolicyConfig()
        pol.name = c.str(pd, "name", pp, None, 64, required=True)
        if pol.name is not None:
            if pol.name in names:
                c.err(_sub(pp, "name"), "duplicate of %s" % names[pol.name])
            names[pol.name] = pp
        pol.description = c.str(pd, "description", pp, "", 255)
        pol.order = c.int(pd, "order", pp, i + 1, 1, 65535)
        if pol.order is not None:
            if pol.order in orders:
                c.err(_sub(pp, "order"), "order %d is also used by %s" % (pol.order,
                                                                          orders[pol.order]))
            orders[pol.order] = pp
        pol.enabled = c.bool(pd, "enabled", pp, True)
        cp = _sub(pp, "conditions")
        cd = pd.get("conditions")
        if cd is None:
            c.err(cp, "required")
        else:
            cd = c.obj(cd, cp, _COND_KEYS)
        if cd is not None:
            pol.operator = c.choice(cd, "operator", cp, "or", ("or", "and"))
            count = 0
            bad = False
            for crit in _CRITERIA:
                items = c.items(cd, crit, cp)
                if items is None:
                    bad = True
                    continue
                ms = _matches(c, items, _sub(cp, crit), crit)
                setattr(pol, crit, ms)
                count += len(items)
            if count == 0 and not bad:
                c.err(cp, "at least one condition is required")
        pol.options = c.options(pd, "options", pp)
        pol.lease_time = c.int(pd, "lease_time", pp, None, 60, 365 * 86400)
        rl = c.items(pd, "ranges", pp)
        if rl is not None and rl and range_check is None:
            c.err(_sub(pp, "ranges"), "server-level policies cannot have ranges")
        elif rl is not None:
            for j in range(len(rl)):
                rp = _idx(_sub(pp, "ranges"), j)
                sp = c.span(rl[j], rp)
                if sp is not None and range_check(sp, rp):
                    pol.ranges.append(sp)
        out.append(pol)
    out.sort(key=lambda x: x.order if x.order is not None else 0)
    return out


def _permille(c, d, key, path, default):
    """A percentage of the lease (a number, 0.1 resolution) -> per mille."""
    v = d.get(key)
    if v is None:
        v = default
    elif type(v) not in (int, float):
        c.err(_sub(path, key), "must be a number")
        return None
    n = int(round(v * 10))
    if n < 1 or n > 999 or abs(v * 10 - n) > 1e-6:
        c.err(_sub(path, key), "must be 0.1..99.9 (in steps of 0.1)")
        return None
    return n


def _scope(c, v, path):
    d = c.obj(v, path, _SCOPE_KEYS)
    if d is None:
        return None
    sc = ScopeConfig()
    sc.id = c.ip(d, "id", path, required=True)
    mv = d.get("mask")
    mp = _sub(path, "mask")
    if mv is None:
        c.err(mp, "required")
    elif type(mv) is int:
        if 8 <= mv <= 30:
            sc.prefix = mv
            sc.mask = mask_of(mv)
        else:
            c.err(mp, "prefix length must be 8..30")
    else:
        m = parse_ip(mv)
        n = prefix_of(m) if m is not None else -1
        if n < 0:
            c.err(mp, "not a subnet mask: %s" % _show(mv))
        elif n < 8 or n > 30:
            c.err(mp, "prefix length must be 8..30")
        else:
            sc.prefix = n
            sc.mask = m
    net = sc.id if sc.mask is not None else None
    if net is not None and and4(net, sc.mask) != net:
        c.err(_sub(path, "id"), "not the network address of its mask (did you mean %s?)"
              % ip_str(and4(net, sc.mask)))
        net = None
    sc.name = c.str(d, "name", path, ip_str(sc.id) if sc.id else "", 64)
    sc.description = c.str(d, "description", path, "", 255)
    sc.active = c.bool(d, "active", path, True)
    sc.lease_time = c.int(d, "lease_time", path, DEFAULT_LEASE_TIME, 60, 365 * 86400)
    sc.min_lease_time = c.int(d, "min_lease_time", path, None, 60, 365 * 86400)
    sc.max_lease_time = c.int(d, "max_lease_time", path, None, 60, 365 * 86400)
    if sc.lease_time is not None:
        if sc.min_lease_time is not None and sc.min_lease_time > sc.lease_time:
            c.err(_sub(path, "min_lease_time"), "%d is more than lease_time %d"
                  % (sc.min_lease_time, sc.lease_time))
        if sc.max_lease_time is not None and sc.max_lease_time < sc.lease_time:
            c.err(_sub(path, "max_lease_time"), "%d is less than lease_time %d"
                  % (sc.max_lease_time, sc.lease_time))
    sc.t1_permille = _permille(c, d, "t1_percent", path, 50)
    sc.t2_permille = _permille(c, d, "t2_percent", path, 87.5)
    if sc.t1_permille is not None and sc.t2_permille is not None \
            and sc.t1_permille >= sc.t2_permille:
        c.err(_sub(path, "t1_percent"), "must be less than t2_percent")
    sc.authoritative = c.bool(d, "authoritative", path, None)  # None: the server's
    sc.offer_delay_ms = c.int(d, "offer_delay_ms", path, 0, 0, 1000)
    sc.bootp = c.bool(d, "bootp", path, False)
    sc.options = c.options(d, "options", path)
    bcast = or_not4(net, sc.mask) if net is not None else None

    def in_net(addr, p):
        if bcast is None or addr is None:
            return False
        if not (net < addr < bcast):
            if addr == net:
                c.err(p, "%s is the network address" % ip_str(addr))
            elif addr == bcast:
                c.err(p, "%s is the broadcast address" % ip_str(addr))
            else:
                c.err(p, "%s is outside %s/%d" % (ip_str(addr), ip_str(net), sc.prefix))
            return False
        return True

    # Ranges: inside the subnet, no overlaps, bounded pool.
    rl = c.items(d, "ranges", path)
    rbase = _sub(path, "ranges")
    total = 0
    placed = []
    if rl is not None:
        if not rl:
            c.err(rbase, "at least one range is required")
        for i in range(len(rl)):
            rp = _idx(rbase, i)
            sp = c.span(rl[i], rp)
            if sp is None:
                continue
            ok_s = in_net(sp[0], _sub(rp, "start"))
            ok_e = in_net(sp[1], _sub(rp, "end"))
            if not (ok_s and ok_e):
                continue
            clash = False
            for (other, op) in placed:
                if _overlap(sp, other):
                    c.err(rp, "overlaps %s" % op)
                    clash = True
                    break
            if clash:
                continue
            total += addr_delta(sp[0], sp[1]) + 1
            placed.append((sp, rp))
        if total > MAX_POOL:
            c.err(rbase, "%d addresses in all, more than the limit of %d per scope"
                  % (total, MAX_POOL))
    ranges = [r[0] for r in placed]
    sc.ranges = ranges

    # Exclusions: inside the subnet and overlapping some range.
    el = c.items(d, "exclusions", path)
    if el is not None:
        eb = _sub(path, "exclusions")
        for i in range(len(el)):
            ep = _idx(eb, i)
            sp = c.span(el[i], ep)
            if sp is None:
                continue
            if not (in_net(sp[0], _sub(ep, "start")) and in_net(sp[1], _sub(ep, "end"))):
                continue
            if ranges and not any(_overlap(sp, r) for r in ranges):
                c.err(ep, "%s does not overlap any range" % _span_str(sp))
                continue
            sc.exclusions.append(sp)

    # Reservations: inside a range, not excluded, unique address and client.
    ll = c.items(d, "reservations", path)
    if ll is not None:
        lb = _sub(path, "reservations")
        seen_addr = {}
        seen_mac = {}
        seen_cid = {}
        for i in range(len(ll)):
            lp = _idx(lb, i)
            rd = c.obj(ll[i], lp, _RES_KEYS)
            if rd is None:
                continue
            r = ReservationConfig()
            r.address = c.ip(rd, "address", lp, required=True)
            a = r.address
            if a is not None and in_net(a, _sub(lp, "address")):
                # outside the ranges is allowed: a fixed address (docs/config.md)
                for k in range(len(sc.exclusions)):
                    if _inside(a, sc.exclusions[k]):
                        c.err(_sub(lp, "address"), "%s is inside exclusions[%d]" % (ip_str(a), k))
                if a in seen_addr:
                    c.err(_sub(lp, "address"), "same address as %s" % seen_addr[a])
                seen_addr[a] = lp
            has_mac = rd.get("mac") is not None
            has_cid = rd.get("client_id") is not None
            if has_mac and has_cid:
                c.err(lp, "give only one of mac and client_id")
            elif not has_mac and not has_cid:
                c.err(lp, "mac or client_id is required")
            elif has_mac:
                r.mac = parse_mac(rd["mac"])
                if r.mac is None:
                    c.err(_sub(lp, "mac"), "not a MAC address: %s" % _show(rd["mac"]))
                elif r.mac in seen_mac:
                    c.err(_sub(lp, "mac"), "same MAC as %s" % seen_mac[r.mac])
                else:
                    seen_mac[r.mac] = lp
            else:
                r.client_id = parse_hex(rd["client_id"])
                if r.client_id is None or len(r.client_id) < 2:
                    c.err(_sub(lp, "client_id"), "not a client identifier (hex, 2+ bytes): %s"
                          % _show(rd["client_id"]))
                    r.client_id = None
                elif r.client_id in seen_cid:
                    c.err(_sub(lp, "client_id"), "same client_id as %s" % seen_cid[r.client_id])
                else:
                    seen_cid[r.client_id] = lp
            r.name = c.str(rd, "name", lp, "", 64)
            r.description = c.str(rd, "description", lp, "", 255)
            r.options = c.options(rd, "options", lp)
            sc.reservations.append(r)

    # Policies, whose ranges lie inside one scope range and do not overlap.
    owned = []

    def range_check(sp, pp):
        if net is None:
            return False
        if not any(_inside(sp[0], r) and _inside(sp[1], r) for r in ranges):
            c.err(pp, "%s is not inside one range of the scope" % _span_str(sp))
            return False
        for o in owned:
            if _overlap(sp, o[0]):
                c.err(pp, "overlaps %s" % o[1])
                return False
        owned.append((sp, pp))
        return True

    sc.policies = _policies(c, d, path, range_check)
    lo, hi = sc.min_lease_time, sc.max_lease_time
    for pol in sc.policies or ():
        lt_ = pol.lease_time
        if lt_ is not None and (lo is not None and lt_ < lo or hi is not None and lt_ > hi):
            c.err(_sub(path, "policies"), "%s: lease_time %d is outside min_lease_time.."
                  "max_lease_time" % (pol.name, lt_))
    return sc


def _scopes(c, doc):
    lst = c.items(doc, "scopes", "")
    if lst is None:
        return None
    out = []
    seen = []
    for i in range(len(lst)):
        p = _idx("scopes", i)
        sc = _scope(c, lst[i], p)
        if sc is None:
            continue
        out.append(sc)
        if sc.id is None or sc.mask is None:
            continue
        for (other, op) in seen:
            if other.id == sc.id:
                c.err(_sub(p, "id"), "duplicate of %s" % op)
                break
            shorter = sc.mask if sc.prefix < other.prefix else other.mask
            if and4(sc.id, shorter) == and4(other.id, shorter):
                c.err(_sub(p, "id"), "%s/%d overlaps %s (%s/%d)" % (
                    ip_str(sc.id), sc.prefix, op, ip_str(other.id), other.prefix))
                break
        seen.append((sc, p))
    return out


def _endpoint(c, d, key, path, default_addr, required):
    v = d.get(key)
    p = _sub(path, key)
    if v is None:
        if required:
            c.err(p, "required")
        return default_addr, FAILOVER_PORT
    e = c.obj(v, p, _ENDPOINT_KEYS)
    if e is None:
        return None, None
    addr = c.ip(e, "address", p, default_addr, required=required)
    port = c.int(e, "port", p, FAILOVER_PORT, 1, 65535)
    return addr, port


def _partner(c, d, path):
    """(address, host name, port) of failover[i].partner: an IPv4 address, or
    a host name the node resolves when it starts (docs/config.md), or both
    (the address is used while the name does not resolve)."""
    v = d.get("partner")
    p = _sub(path, "partner")
    if v is None:
        c.err(p, "required")
        return None, None, FAILOVER_PORT
    e = c.obj(v, p, _PARTNER_KEYS)
    if e is None:
        return None, None, None
    host = e.get("host")
    if host is not None and not is_host_name(host):
        c.err(_sub(p, "host"), "not a DNS host name: %s (letters, digits and hyphens in dot-separated labels; "
              "an IPv4 address goes in address)" % _show(host))
        host = None
    if e.get("address") is None and "host" not in e:
        c.err(_sub(p, "address"), "required (the partner's IPv4 address; or host, its DNS host name)")
    addr = c.ip(e, "address", p, None)
    port = c.int(e, "port", p, FAILOVER_PORT, 1, 65535)
    return addr, host, port


def _relationship(c, v, path, server, scopes, taken):
    d = c.obj(v, path, _FO_KEYS)
    if d is None:
        return None
    f = FailoverConfig()
    f.name = c.str(d, "name", path, None, MAX_NAME, required=True)
    if f.name is not None and len(f.name.encode()) > MAX_NAME:
        c.err(_sub(path, "name"), "longer than %d bytes" % MAX_NAME)
    f.role = c.choice(d, "role", path, None, ("primary", "secondary"))
    if "role" not in d or d.get("role") is None:
        c.err(_sub(path, "role"), "required (primary or secondary)")
    f.mode = c.choice(d, "mode", path, "load-balance", ("load-balance", "hot-standby"))
    f.partner_address, f.partner_host, f.partner_port = _partner(c, d, path)
    # local defaults to server.server_id; when that is missing it is reported there.
    local_default = server.server_id if server is not None else None
    f.local_address, f.local_port = _endpoint(c, d, "local", path, local_default, False)
    if (f.partner_address is not None and f.partner_address == f.local_address
            and f.partner_port == f.local_port):
        c.err(_sub(path, "partner"), "same address and port as local")
    f.mclt = c.int(d, "mclt", path, DEFAULT_MCLT, 1, 30 * 86400)
    if f.mode == "hot-standby":
        if d.get("load_balance_percent") is not None:
            c.err(_sub(path, "load_balance_percent"), "applies to load-balance mode only")
        f.load_balance_percent = None
        f.reserve_percent = c.int(d, "reserve_percent", path, 5, 0, 100)
        default_hs = "active" if f.role == "primary" else "standby"
        f.hot_standby_role = c.choice(d, "hot_standby_role", path, default_hs,
                                      ("active", "standby"))
    else:
        for k in ("reserve_percent", "hot_standby_role"):
            if d.get(k) is not None:
                c.err(_sub(path, k), "applies to hot-standby mode only")
        f.load_balance_percent = c.int(d, "load_balance_percent", path, 50, 0, 100)
    av = d.get("auto_state_switchover")
    if av is not None and av is not False:
        f.auto_state_switchover = c.int(d, "auto_state_switchover", path, None, 1, 30 * 86400)
    secret = c.str(d, "shared_secret", path, None, 1024)
    if secret is not None and not secret:
        c.err(_sub(path, "shared_secret"), "must not be empty")
        secret = None
    f.shared_secret = secret.encode() if secret is not None else None
    f.enable_authentication = c.bool(d, "enable_authentication", path,
                                     f.shared_secret is not None)
    if f.enable_authentication and f.shared_secret is None and d.get("shared_secret") is None:
        c.err(_sub(path, "enable_authentication"), "needs a shared_secret")
    f.max_unacked = c.int(d, "max_unacked", path, 10, 1, 1000)
    if d.get("max_response_delay") is not None and d.get("receive_timer") is not None:
        c.err(_sub(path, "receive_timer"), "give either max_response_delay or receive_timer")
    mkey = "receive_timer" if d.get("receive_timer") is not None else "max_response_delay"
    f.max_response_delay = c.int(d, mkey, path, 30, 3, 3600)
    f.load_balance_max_seconds = c.int(d, "load_balance_max_seconds", path, 3, 0, 3600)
    # Scopes: known, not BOOTP, in at most one relationship.
    sl = c.items(d, "scopes", path)
    sb = _sub(path, "scopes")
    if sl is not None:
        if not sl:
            c.err(sb, "at least one scope is required")
        for i in range(len(sl)):
            sp = _idx(sb, i)
            sid = parse_ip(sl[i])
            if sid is None:
                c.err(sp, "not a scope id (IPv4 network address): %s" % _show(sl[i]))
                continue
            sc = None
            for s in scopes or ():
                if s.id == sid:
                    sc = s
                    break
            if sc is None:
                c.err(sp, "no scope %s is configured" % ip_str(sid))
                continue
            if sid in f.scopes:
                c.err(sp, "listed twice")
                continue
            if sc.bootp:
                c.err(sp, "failover is not supported for BOOTP scopes (scope %s)" % ip_str(sid))
                continue
            if sid in taken:
                c.err(sp, "scope %s is already in relationship %s" % (ip_str(sid), taken[sid]))
                continue
            taken[sid] = f.name
            f.scopes.append(sid)
    return f


def _failover(c, doc, server, scopes):
    lst = c.items(doc, "failover", "")
    if lst is None:
        return None
    if len(lst) > MAX_RELATIONSHIPS:
        c.err("failover", "%d relationships, at most %d are allowed" % (len(lst),
                                                                       MAX_RELATIONSHIPS))
    out = []
    names = {}
    taken = {}
    for i in range(len(lst)):
        p = _idx("failover", i)
        f = _relationship(c, lst[i], p, server, scopes, taken)
        if f is None:
            continue
        if f.name is not None:
            if f.name in names:
                c.err(_sub(p, "name"), "duplicate of %s" % names[f.name])
            names[f.name] = p
        out.append(f)
    if scopes:
        for s in scopes:
            if s.id in taken:
                s.failover = taken[s.id]
    return out


# ---------------------------------------------------------------------------
# Entry points.


def load(obj):
    """Validate a parsed JSON document -> Config; ConfigError lists every problem."""
    c = _Check()
    doc = c.obj(obj, "", _TOP_KEYS)
    if doc is None:
        raise ConfigError(c.errors)
    sv = doc.get("server")
    server = None
    if sv is None:
        c.err("server", "required")
    else:
        server = _server(c, sv)
    scopes = _scopes(c, doc)
    for sc in scopes or ():
        if sc.authoritative is None:
            sc.authoritative = server.authoritative if server is not None else True
    failover = _failover(c, doc, server, scopes)
    if c.errors:
        raise ConfigError(c.errors)
    return Config(server, scopes, failover)


def parse_text(text):
    """JSON text (str or bytes) -> the parsed document; bad JSON is a ConfigError."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode()
        except UnicodeError:
            raise ConfigError(["config: not UTF-8 text"])
    try:
        return json_loads(text)
    except ValueError as e:
        raise ConfigError(["config: not valid JSON (%s)" % e])


def load_text(text):
    """Parse JSON text and validate it; bad JSON is a ConfigError too."""
    return load(parse_text(text))


# ---------------------------------------------------------------------------
# Partner consistency: what both ends of a relationship must agree on.


def _scope_sig(s):
    res = sorted((r.address, r.mac or b"", r.client_id or b"", sorted(r.options.items()))
                 for r in s.reservations)
    pols = [(p.name, p.order, p.enabled, p.operator, p.lease_time, sorted(p.options.items()),
             p.ranges, [[(m.op, m.value, m.prefix) for m in getattr(p, k)] for k in _CRITERIA])
            for p in s.policies]
    return (s.mask, s.ranges, s.exclusions, s.lease_time, s.min_lease_time, s.max_lease_time,
            s.t1_permille, s.t2_permille, s.authoritative, s.bootp, res,
            sorted(s.options.items()), pols)


def pair_errors(mine, theirs):
    """Mismatches between two nodes' Configs for the relationships they share,
    as "failover NAME: message" strings (empty when consistent). Windows only
    replicates scope settings on demand; this is the check that it was done."""
    out = []
    for f in mine.failover:
        g = theirs.relationship(f.name)
        if g is None:
            continue
        p = "failover " + f.name + ": "
        if f.role == g.role:
            out.append(p + "both ends are %s" % f.role)
        if f.mode != g.mode:
            out.append(p + "mode %s here, %s on the partner" % (f.mode, g.mode))
        # a partner given by host name alone is checked by port only (no lookups here)
        if (f.partner_address or g.local_address, f.partner_port) != (g.local_address, g.local_port):
            out.append(p + "partner address here is not the partner's local address")
        if (f.local_address, f.local_port) != (g.partner_address or f.local_address, g.partner_port):
            out.append(p + "local address here is not the partner's partner address")
        if f.mclt != g.mclt:
            out.append(p + "mclt %d here, %d on the partner" % (f.mclt, g.mclt))
        if f.mode == g.mode == "load-balance" and \
                f.load_balance_percent + g.load_balance_percent != 100:
            out.append(p + "load_balance_percent %d + %d is not 100"
                       % (f.load_balance_percent, g.load_balance_percent))
        if f.mode == g.mode == "hot-standby":
            if f.hot_standby_role == g.hot_standby_role:
                out.append(p + "both ends are %s" % f.hot_standby_role)
            if f.reserve_percent != g.reserve_percent:
                out.append(p + "reserve_percent %d here, %d on the partner"
                           % (f.reserve_percent, g.reserve_percent))
        if f.enable_authentication != g.enable_authentication or \
                (f.enable_authentication and f.shared_secret != g.shared_secret):
            out.append(p + "authentication settings differ")
        if sorted(f.scopes) != sorted(g.scopes):
            out.append(p + "scope lists differ")
        for sid in f.scopes:
            a = mine.scope(sid)
            b = theirs.scope(sid)
            if a is not None and b is not None and _scope_sig(a) != _scope_sig(b):
                out.append(p + "scope %s is configured differently" % ip_str(sid))
    return out
