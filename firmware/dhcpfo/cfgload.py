# cfgload.py - the loader of the compiled configuration (see config.py).
#
# It stops at the first problem: the host already reported every error by
# path, so a bad file here is damage or a hand edit, and one clear path is
# enough to find it. Imported only through config.load/load_text, which drop
# it again once the Config is built (dhcpfo/ondemand.py).

from dhcpfo import ondemand
from dhcpfo.compat import json_loads
from dhcpfo.config import (FORMAT, LOG_LEVELS, MAX_HOST, MAX_NAME, MAX_POOL, MAX_RELATIONSHIPS, MAX_VALUE,
                           T1_PERMILLE, T2_PERMILLE, Config, ConfigError, FailoverConfig,
                           MatchConfig, PolicyConfig, ReservationConfig, ScopeConfig,
                           ServerConfig, UNRESOLVED, addr_delta, and4, mask_of, or_not4, parse_hex, parse_ip)

ondemand.droppable(__name__)


def _fail(path, msg):
    raise ConfigError([(path or "config") + ": " + msg])


def _at(path, i):
    return "%s[%d]" % (path, i)


_KIND = {str: "a string", int: "an integer", bool: "true or false", list: "a list",
         dict: "an object"}


class _Reader:
    """Typed access to one object of the document; failures name the path."""

    def __init__(self, d, path):
        if type(d) is not dict:
            _fail(path, "must be an object")
        self.d = d
        self.path = path

    def at(self, key):
        return self.path + "." + key if self.path else key

    def get(self, key, kind, optional=False):
        v = self.d.get(key)
        if v is None:
            if optional:
                return None
            _fail(self.at(key), "required")
        if type(v) is not kind:
            _fail(self.at(key), "must be " + _KIND[kind])
        return v

    def int(self, key, lo, hi, optional=False):
        v = self.get(key, int, optional)
        if v is not None and (v < lo or v > hi):
            _fail(self.at(key), "must be %d..%d" % (lo, hi))
        return v

    def str(self, key, maxlen, optional=False):
        v = self.get(key, str, optional)
        if v is not None and len(v) > maxlen:
            _fail(self.at(key), "longer than %d characters" % maxlen)
        return v

    def choice(self, key, choices, optional=False):
        v = self.get(key, str, optional)
        if v is not None and v not in choices:
            _fail(self.at(key), "must be one of " + ", ".join(choices))
        return v

    def ip(self, key, optional=False):
        v = self.get(key, str, optional)
        if v is None:
            return None
        b = parse_ip(v)
        if b is None:
            _fail(self.at(key), "not an IPv4 address")
        return b

    def hex(self, key, lo, hi, optional=False):
        return _hex(self.get(key, str, optional), self.at(key), lo, hi)

    def list(self, key):
        return self.get(key, list)

    def obj(self, key):
        return _Reader(self.get(key, dict), self.at(key))


def _hex(v, path, lo, hi):
    if v is None:
        return None
    if type(v) is not str:
        _fail(path, "must be a string")
    b = parse_hex(v) if v else b""
    if b is None or len(b) < lo or len(b) > hi:
        _fail(path, "must be %d..%d bytes as hex" % (lo, hi))
    return b


def _options(r, key):
    """[[code, hex], ...] -> {code: bytes}."""
    out = {}
    lst = r.list(key)
    base = r.at(key)
    for i in range(len(lst)):
        p = _at(base, i)
        item = lst[i]
        if type(item) is not list or len(item) != 2 or type(item[0]) is not int:
            _fail(p, "must be [code, hex]")
        code = item[0]
        if code < 1 or code > 254 or code in out:
            _fail(p, "bad or repeated option code %d" % code)
        out[code] = _hex(item[1], p, 0, MAX_VALUE)
    return out


def _span(v, path, net, bcast):
    """["start", "end"] inside net..bcast (exclusive) -> (start, end) bytes."""
    if type(v) is not list or len(v) != 2:
        _fail(path, "must be [start, end]")
    s = parse_ip(v[0])
    e = parse_ip(v[1])
    if s is None or e is None:
        _fail(path, "not IPv4 addresses")
    if e < s:
        _fail(path, "end before start")
    if not (net < s and e < bcast):
        _fail(path, "not inside the subnet")
    return (s, e)


def _inside(a, span):
    return span[0] <= a <= span[1]


def _overlap(x, y):
    return x[0] <= y[1] and y[0] <= x[1]


_CRITERIA = ("vendor_class", "user_class", "mac", "client_id")


def _policies(r, ranges, net, bcast):
    """Policies in order; ranges is None at server level (no ranges allowed)."""
    lst = r.list("policies")
    out = []
    for i in range(len(lst)):
        pr = _Reader(lst[i], _at(r.at("policies"), i))
        pol = PolicyConfig()
        pol.name = pr.str("name", 64)
        pol.order = pr.int("order", 1, 65535)
        pol.enabled = pr.get("enabled", bool)
        pol.operator = pr.choice("operator", ("or", "and"))
        for crit in _CRITERIA:
            ms = pr.list(crit)
            base = pr.at(crit)
            for j in range(len(ms)):
                m = ms[j]
                p = _at(base, j)
                if type(m) is not list or len(m) != 3 or m[0] not in ("eq", "ne") \
                        or type(m[2]) is not bool:
                    _fail(p, "must be [op, hex, prefix]")
                getattr(pol, crit).append(MatchConfig(m[0], _hex(m[1], p, 0, 255), m[2]))
        pol.options = _options(pr, "options")
        pol.lease_time = pr.int("lease_time", 60, 365 * 86400, True)
        rl = pr.list("ranges")
        if rl and ranges is None:
            _fail(pr.at("ranges"), "server-level policies cannot have ranges")
        for j in range(len(rl)):
            p = _at(pr.at("ranges"), j)
            sp = _span(rl[j], p, net, bcast)
            if not any(_inside(sp[0], x) and _inside(sp[1], x) for x in ranges):
                _fail(p, "not inside one range of the scope")
            pol.ranges.append(sp)
        out.append(pol)
    return out


def _server(r):
    s = ServerConfig()
    s.name = r.str("name", 64)
    s.server_id = r.ip("server_id")
    if s.server_id in (b"\x00\x00\x00\x00", b"\xff\xff\xff\xff"):
        _fail(r.at("server_id"), "must be a unicast address")
    s.listen_address = r.ip("listen_address")
    s.listen_port = r.int("listen_port", 1, 65535)
    s.interface = r.str("interface", 32, True)
    s.relay_port = r.int("relay_port", 1, 65535)
    s.data_dir = r.str("data_dir", 200)
    s.options = _options(r, "options")
    s.policies = _policies(r, None, None, None)
    s.mgmt_address = r.ip("mgmt_address")
    s.mgmt_port = r.int("mgmt_port", 1, 65535)
    s.mgmt_token = r.str("mgmt_token", 128, True)
    s.mgmt_user_token = r.str("mgmt_user_token", 128, True)
    v = r.int("mgmt_max_connections", 1, 64, True)  # absent in documents compiled before it existed
    if v is not None:
        s.mgmt_max_connections = v
    s.console_password = r.str("console_password", 128, True)
    s.decline_hold = r.int("decline_hold", 0, 30 * 86400)
    s.offer_hold = r.int("offer_hold", 1, 3600)
    s.time_skew_max = r.int("time_skew_max", 1, 3600)
    s.log_level = r.choice("log_level", LOG_LEVELS)
    s.syslog_address = r.ip("syslog_address", True)
    if s.syslog_address is not None:
        s.syslog_port = r.int("syslog_port", 1, 65535)
        s.syslog_level = r.choice("syslog_level", ("info", "warning", "error"))
        s.syslog_facility = r.int("syslog_facility", 0, 23)
    ab = r.get("abuse", dict, True)
    if ab is not None:
        for k in ab:
            if type(ab[k]) is not int or ab[k] < 0:
                _fail(r.at("abuse") + "." + k, "must be an integer >= 0")
    s.abuse = ab
    return s


def _scope(r):
    sc = ScopeConfig()
    sc.id = r.ip("id")
    sc.prefix = r.int("prefix", 8, 30)
    sc.mask = mask_of(sc.prefix)
    net = sc.id
    if and4(net, sc.mask) != net:
        _fail(r.at("id"), "not the network address of /%d" % sc.prefix)
    bcast = or_not4(net, sc.mask)
    sc.name = r.str("name", 64)
    sc.active = r.get("active", bool)
    sc.lease_time = r.int("lease_time", 60, 365 * 86400)
    sc.min_lease_time = r.int("min_lease_time", 60, 365 * 86400, True)
    sc.max_lease_time = r.int("max_lease_time", 60, 365 * 86400, True)
    if sc.min_lease_time is not None and sc.max_lease_time is not None \
            and sc.min_lease_time > sc.max_lease_time:
        _fail(r.at("min_lease_time"), "more than max_lease_time")
    # optional: a file compiled before these keys existed still loads
    sc.t1_permille = r.int("t1_permille", 1, 998, True) or T1_PERMILLE
    sc.t2_permille = r.int("t2_permille", 2, 999, True) or T2_PERMILLE
    if sc.t1_permille >= sc.t2_permille:
        _fail(r.at("t1_permille"), "not below t2_permille")
    sc.authoritative = r.get("authoritative", bool, True) is not False
    sc.offer_delay_ms = r.int("offer_delay_ms", 0, 1000)
    sc.bootp = r.get("bootp", bool)
    sc.options = _options(r, "options")
    rl = r.list("ranges")
    if not rl:
        _fail(r.at("ranges"), "at least one range is required")
    total = 0
    for i in range(len(rl)):
        p = _at(r.at("ranges"), i)
        sp = _span(rl[i], p, net, bcast)
        for other in sc.ranges:
            if _overlap(sp, other):
                _fail(p, "overlaps another range")
        total += addr_delta(sp[0], sp[1]) + 1
        if total > MAX_POOL:
            _fail(p, "more than %d addresses in the scope" % MAX_POOL)
        sc.ranges.append(sp)
    el = r.list("exclusions")
    for i in range(len(el)):
        sc.exclusions.append(_span(el[i], _at(r.at("exclusions"), i), net, bcast))
    ll = r.list("reservations")
    for i in range(len(ll)):
        rr = _Reader(ll[i], _at(r.at("reservations"), i))
        res = ReservationConfig()
        res.address = rr.ip("address")
        if not (net < res.address < bcast):
            _fail(rr.at("address"), "not inside the subnet")  # a range is not needed
        res.mac = rr.hex("mac", 6, 6, True)
        res.client_id = rr.hex("client_id", 2, 255, True)
        if (res.mac is None) == (res.client_id is None):
            _fail(rr.path, "needs exactly one of mac and client_id")
        res.name = rr.str("name", 64)
        res.options = _options(rr, "options")
        sc.reservations.append(res)
    sc.policies = _policies(r, sc.ranges, net, bcast)
    return sc


def _relationship(r, scopes):
    f = FailoverConfig()
    f.name = r.str("name", MAX_NAME)
    if not f.name:
        _fail(r.at("name"), "must not be empty")
    f.role = r.choice("role", ("primary", "secondary"))
    f.mode = r.choice("mode", ("load-balance", "hot-standby"))
    f.partner_host = r.str("partner_host", MAX_HOST, True)
    # a partner given by host name alone: the driver resolves it (runtime/aio.py)
    f.partner_address = r.ip("partner_address", f.partner_host is not None) or UNRESOLVED
    f.partner_port = r.int("partner_port", 1, 65535)
    f.local_address = r.ip("local_address")
    f.local_port = r.int("local_port", 1, 65535)
    f.mclt = r.int("mclt", 1, 30 * 86400)
    hs = f.mode == "hot-standby"
    f.load_balance_percent = r.int("load_balance_percent", 0, 100, hs)
    f.reserve_percent = r.int("reserve_percent", 0, 100, not hs)
    f.hot_standby_role = r.choice("hot_standby_role", ("active", "standby"), not hs)
    f.auto_state_switchover = r.int("auto_state_switchover", 1, 30 * 86400, True)
    f.shared_secret = r.hex("shared_secret", 1, 1024, True)
    f.enable_authentication = r.get("enable_authentication", bool)
    if f.enable_authentication and f.shared_secret is None:
        _fail(r.at("enable_authentication"), "needs a shared_secret")
    f.max_unacked = r.int("max_unacked", 1, 1000)
    f.max_response_delay = r.int("max_response_delay", 3, 3600)
    f.load_balance_max_seconds = r.int("load_balance_max_seconds", 0, 3600)
    sl = r.list("scopes")
    if not sl:
        _fail(r.at("scopes"), "at least one scope is required")
    for i in range(len(sl)):
        p = _at(r.at("scopes"), i)
        sid = parse_ip(sl[i])
        sc = None
        for s in scopes:
            if s.id == sid:
                sc = s
        if sc is None or sc.bootp or sc.failover is not None:
            _fail(p, "not a configured, non-BOOTP scope outside other relationships")
        sc.failover = f.name
        f.scopes.append(sid)
    return f


def load(doc):
    """A compiled document (dict) -> Config; a malformed one -> ConfigError(path)."""
    r = _Reader(doc, "")
    if doc.get("format") != FORMAT:
        _fail("format", "not a compiled dhcpfo configuration (%s); compile the JSON "
              "configuration on the host (dhcpfo build)" % FORMAT)
    server = _server(r.obj("server"))
    scopes = []
    sl = r.list("scopes")
    for i in range(len(sl)):
        sc = _scope(_Reader(sl[i], _at("scopes", i)))
        for other in scopes:
            shorter = sc.mask if sc.prefix < other.prefix else other.mask
            if and4(sc.id, shorter) == and4(other.id, shorter):
                _fail(_at("scopes", i), "overlaps another scope")
        scopes.append(sc)
    failover = []
    fl = r.list("failover")
    if len(fl) > MAX_RELATIONSHIPS:
        _fail("failover", "more than %d relationships" % MAX_RELATIONSHIPS)
    for i in range(len(fl)):
        f = _relationship(_Reader(fl[i], _at("failover", i)), scopes)
        for g in failover:
            if g.name == f.name:
                _fail(_at("failover", i) + ".name", "duplicate name")
        failover.append(f)
    return Config(server, scopes, failover)


def load_text(text):
    """Compiled JSON text (str or bytes) -> Config; bad JSON is a ConfigError too."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode()
        except UnicodeError:
            _fail("config", "not UTF-8 text")
    try:
        doc = json_loads(text)
    except ValueError:
        _fail("config", "not valid JSON")
    return load(doc)
