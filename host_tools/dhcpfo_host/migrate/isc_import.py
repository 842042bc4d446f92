"""`dhcpfo import isc`: a router's dhcpd.conf (+ dhcpd.leases) -> our config and store.

Covers what pfSense/OPNsense-style dhcpd.conf files use: subnets (also in
shared-network and group), ranges and pools, host blocks with hardware
ethernet / dhcp-client-identifier and fixed-address, options (with
`option NAME code N = TYPE;` declarations), lease times, failover peers and
the pools that name them, and classes whose match expressions our policies
can express. Everything else is listed in a `Report` with file and line.

Mapping choices worth knowing (docs/migration.md has the full table):
* a subnet becomes a scope; the ranges of all its pools become its ranges
  (adjacent ones joined); a pool that allows members of a class gives that
  class's policy its ranges (ours: those addresses are for members only,
  which is what `allow`/`deny members of` pools usually say);
* a fixed-address outside every range is a reservation outside the ranges
  (served by either server of a pair, not failover-managed, as in dhcpd);
* the lease time of a scope is the nearest `default-lease-time` (dhcpd's
  built-in 43200 s when none is given); the nearest min-/max-lease-time
  become min_lease_time/max_lease_time (only when stated: without them a
  client's asked-for time changes nothing here);
* `authoritative;` / `not authoritative;` become server.authoritative and,
  where a subnet differs, the scope's; no statement means dhcpd's default,
  not authoritative;
* `option NAME code N = TYPE;` for a code our table lacks becomes a
  server.option_definitions entry, so its values import by type.
"""

from dhcpfo_host import boardconf, confcheck
import json
import os

from dhcpfo import config as cfgmod
from dhcpfo.wire import options as wo

from dhcpfo_host.migrate import iscoptions as io
from dhcpfo_host.migrate.iscexpr import Condition, NotExpressible
from dhcpfo_host.migrate.isc_leases import import_leases, lease_time
from dhcpfo_host.migrate.iscsyntax import IscSyntaxError, colon_hex, hex_colon, parse_file
from dhcpfo_host.migrate.leasestore import write_store
from dhcpfo_host.migrate.report import Report

ISC_DEFAULT_LEASE_TIME = 43200
MIN_LEASE, MAX_LEASE = 60, 365 * 86400

# Statements that have no equivalent, with the reason given in the report.
_NO_EQUIVALENT = {
    "not": "only `not authoritative;` is mapped",
    "ddns-update-style": "no dynamic DNS updates",
    "ddns-updates": "no dynamic DNS updates",
    "ddns-domainname": "no dynamic DNS updates",
    "ddns-hostname": "no dynamic DNS updates",
    "ddns-rev-domainname": "no dynamic DNS updates",
    "update-static-leases": "no dynamic DNS updates",
    "update-conflict-detection": "no dynamic DNS updates",
    "update-optimization": "no dynamic DNS updates",
    "do-forward-updates": "no dynamic DNS updates",
    "key": "no dynamic DNS updates / OMAPI keys",
    "zone": "no dynamic DNS updates",
    "log-facility": "events go to the node's output and the management port",
    "ping-check": "no ping before offering (DECLINE handling covers conflicts)",
    "ping-timeout": "no ping before offering",
    "one-lease-per-client": "a client has one binding per scope anyway",
    "deny": "access control beyond class pools is not supported",
    "allow": "access control beyond class pools is not supported",
    "ignore": "access control beyond class pools is not supported",
    "use-host-decl-names": "host names are not sent automatically (give option host-name)",
    "get-lease-hostnames": "no reverse DNS lookups",
    "local-address": "set server.listen.address",
    "local-port": "set server.listen.port",
    "omapi-port": "management is the JSON port (server.mgmt)",
    "omapi-key": "management is the JSON port (server.mgmt)",
    "lease-file-name": "the lease store lives in server.data_dir",
    "pid-file-name": "no pid file",
    "next-server": "the BOOTP siaddr field is not configurable (use option tftp-server-name)",
    "filename": "the BOOTP file field is not configurable (use option bootfile-name)",
    "server-name": "the BOOTP sname field is not configurable",
    "dynamic-bootp-lease-length": "BOOTP leases are not time-limited here",
    "dynamic-bootp-lease-cutoff": "BOOTP leases are not time-limited here",
    "stash-agent-options": "relay agent options are echoed, not stored",
    "always-reply-rfc1048": "options are always sent in RFC 1048 format",
    "always-broadcast": "replies follow the client's broadcast flag",
    "boot-unknown-clients": "unknown clients are always served",
    "if": "conditional statements are not supported",
    "elsif": "conditional statements are not supported",
    "else": "conditional statements are not supported",
    "on": "event hooks (on commit/release/expiry) are not supported",
    "execute": "event hooks are not supported",
    "log": "log statements are not supported",
    "set": "variables are not supported",
    "unset": "variables are not supported",
    "spawn": "spawning classes are not supported",
    "lease": "lease limits are not supported",
    "abandon-lease-time": "use server.decline_hold",
    "db-time-format": "lease times are converted, not configured",
    "vendor-option-space": "option spaces are not supported",
    "site-option-space": "option spaces are not supported",
    "adaptive-lease-time-threshold": "adaptive lease times are not supported",
    "delayed-ack": "acknowledgements are sent when the lease is durable",
    "max-ack-delay": "acknowledgements are sent when the lease is durable",
    "ping-cltt-secs": "no ping before offering",
    "ignore-client-uids": "client identifiers are always used",
    "dhcp-cache-threshold": "no lease cache threshold",
    "persist-eui-64-leases": "DHCPv6 only",
    "authoring-byte-order": "lease files are converted, byte order does not apply",
}

_PEER_UNMAPPED = {
    "max-lease-misbalance": "pool balancing thresholds are fixed in dhcpfo (failover/pool.py)",
    "max-lease-ownership": "pool balancing thresholds are fixed in dhcpfo (failover/pool.py)",
    "min-balance": "pool balancing runs on a fixed interval in dhcpfo",
    "max-balance": "pool balancing runs on a fixed interval in dhcpfo",
}


class IscImportError(ValueError):
    """Input that cannot be imported at all (no scope can be built, no
    server id); str() says what to do."""


class _Ctx:
    """A declaration scope of dhcpd.conf: options and lease time, inherited."""

    def __init__(self, kind, parent=None, stmt=None):
        self.kind = kind
        self.parent = parent
        self.stmt = stmt
        self.options = {}  # code -> bytes
        self.lease_time = None
        self.lease_stmt = None
        self.min_lease = None  # (seconds, statement)
        self.max_lease = None
        self.auth = None  # authoritative: True / False / None (not said here)

    def inherited(self, attr, upto="global"):
        """The nearest value of `attr` from here up (stopping below `upto`), or None."""
        c = self
        while c is not None and c.kind != upto:
            v = getattr(c, attr)
            if v is not None:
                return v
            c = c.parent
        return None

    def chain(self):
        out = []
        c = self
        while c is not None:
            out.append(c)
            c = c.parent
        return list(reversed(out))

    def inherited_lease(self):
        c = self
        while c is not None:
            if c.lease_time is not None:
                return c.lease_time
            c = c.parent
        return None


class _Pool:
    def __init__(self, stmt, ctx):
        self.stmt = stmt
        self.ctx = ctx
        self.ranges = []
        self.peer = None
        self.peer_stmt = None
        self.allow = []
        self.deny = []


class _Subnet:
    def __init__(self, stmt, net, mask, ctx, shared):
        self.stmt = stmt
        self.net = net
        self.mask = mask
        self.ctx = ctx
        self.shared = shared
        self.ranges = []  # (start, end) outside pools
        self.pools = []
        self.hosts = []


class _Host:
    def __init__(self, stmt, name, ctx):
        self.stmt = stmt
        self.name = name
        self.ctx = ctx
        self.mac = None
        self.client_id = None
        self.addresses = []


class _Class:
    def __init__(self, stmt, name, ctx):
        self.stmt = stmt
        self.name = name
        self.ctx = ctx
        self.operator = "or"
        self.conditions = {}  # criterion -> [match dicts]
        self.match_key = None  # for `match <data>;` + subclasses
        self.ok = True
        self.why = None
        self.order = 0

    def add(self, crit, op, value, prefix):
        self.conditions.setdefault(crit, []).append({"op": op, "value": value, "prefix": prefix})


def _ip(tok):
    return wo.ip_or_none(tok.value) if tok is not None and tok.kind == "word" else None


def _ip_text(b):
    return cfgmod.ip_str(b)


class IscImporter:
    """Interprets a parsed dhcpd.conf; build_config() gives the JSON dict."""

    def __init__(self, report=None, server_id=None, name=None, failover=True):
        self.report = report if report is not None else Report()
        self.server_id = server_id
        self.name = name
        self.keep_failover = failover
        self.decls = {}  # option name -> (code, type)
        self.defs = wo.Definitions()  # declared codes our table lacks -> server.option_definitions
        self.def_list = []
        self.peers = {}
        self.peer_order = []
        self.classes = {}
        self.subnets = []
        self.hosts = []
        self.top = _Ctx("global")
        self.server_identifier = None
        self._shared_pools = {}  # shared-network name -> pools declared outside a subnet

    # ------------------------------------------------------------------ walking

    def load_conf(self, stmts):
        self._walk(stmts, self.top, None, None)
        # a pool directly in a shared-network belongs to the subnet holding its ranges
        for shared, pools in self._shared_pools.items():
            for p in pools:
                home = None
                for sn in self.subnets:
                    if sn.shared == shared and p.ranges and \
                            cfgmod.and4(p.ranges[0][0], sn.mask) == sn.net:
                        home = sn
                        break
                if home is None:
                    self.report.unmapped(p.stmt, "pool in shared-network %s whose range lies in none "
                                                 "of its subnets" % shared)
                else:
                    home.pools.append(p)

    def _walk(self, stmts, ctx, subnet, pool, shared=None):
        for st in stmts:
            self._stmt(st, ctx, subnet, pool, shared)

    def _stmt(self, st, ctx, subnet, pool, shared):
        k = st.key
        w = st.words
        r = self.report
        if k == "option":
            self._option(st, ctx)
        elif k == "default-lease-time":
            v = self._int_arg(st)
            if v is not None:
                ctx.lease_time = v
                ctx.lease_stmt = st
        elif k in ("min-lease-time", "max-lease-time"):
            v = self._int_arg(st)
            if v is not None:
                setattr(ctx, "min_lease" if k[1] == "i" else "max_lease", (v, st))
        elif k == "authoritative" and len(w) == 1:
            ctx.auth = True
        elif k == "not" and [x.lower() for x in w[1:]] == ["authoritative"]:
            ctx.auth = False
        elif k == "subnet" and st.block is not None:
            self._subnet(st, ctx, shared)
        elif k == "shared-network" and st.block is not None:
            sctx = _Ctx("shared", ctx, st)
            name = w[1] if len(w) > 1 else "?"
            self._walk(st.block, sctx, None, None, name)
        elif k == "group" and st.block is not None:
            self._walk(st.block, _Ctx("group", ctx, st), subnet, pool, shared)
        elif k == "pool" and st.block is not None:
            if subnet is None and shared is None:
                r.unmapped(st, "a pool outside a subnet")
                return
            p = _Pool(st, _Ctx("pool", ctx, st))
            self._walk(st.block, p.ctx, subnet, p, shared)
            if subnet is not None:
                subnet.pools.append(p)
            else:
                self._shared_pools.setdefault(shared, []).append(p)
        elif k == "range":
            self._range(st, subnet, pool, shared)
        elif k == "host" and st.block is not None:
            self._host(st, ctx)
        elif k == "class" and st.block is not None:
            self._class(st, ctx)
        elif k == "subclass":
            self._subclass(st)
        elif k == "failover" and len(w) >= 3 and w[1].lower() == "peer":
            if st.block is not None:
                self._peer(st)
            elif pool is not None:
                pool.peer = w[2]
                pool.peer_stmt = st
            else:
                r.unmapped(st, "`failover peer` is only mapped inside a pool")
        elif k in ("allow", "deny") and len(w) >= 4 and w[1].lower() == "members" and w[2].lower() == "of":
            if pool is None:
                r.unmapped(st, "members-of access control is only mapped in pools")
            else:
                (pool.allow if k == "allow" else pool.deny).append((w[3], st))
        elif k == "deny" and [x.lower() for x in w[1:]] == ["dynamic", "bootp", "clients"]:
            pass  # what a failover pool requires; our scopes serve no BOOTP unless asked
        elif k == "server-identifier":
            b = _ip(st.head[1]) if len(st.head) == 2 else None
            if b is None:
                r.unmapped(st, "server-identifier must be an IPv4 address to be mapped")
            else:
                self.server_identifier = b
        elif k in _NO_EQUIVALENT:
            r.unmapped(st, _NO_EQUIVALENT[k])
        else:
            r.unmapped(st, "unknown or unsupported statement")

    def _int_arg(self, st, lo=0, hi=0xFFFFFFFF):
        w = st.words
        try:
            v = int(w[-1])
        except ValueError:
            v = None
        if v is None or v < lo or v > hi:
            self.report.unmapped(st, "expected an integer in %d..%d" % (lo, hi))
            return None
        return v

    # ----------------------------------------------------------------- options

    def _option(self, st, ctx):
        h = st.head
        w = st.words
        r = self.report
        if len(w) < 2:
            r.unmapped(st, "option without a name")
            return
        name = w[1].lower()
        if len(w) >= 4 and w[2].lower() == "code":
            if ctx.kind != "global":
                r.note(st, "option declared inside a block; treated as global")
            try:
                code = int(w[3])
            except ValueError:
                code = -1
            if not 1 <= code <= 254 or len(w) < 6 or w[4] != "=":
                r.unmapped(st, "declaration must read `option NAME code N = TYPE;` with N in 1..254")
                return
            try:
                t = io.parse_declaration(w[5:])
            except io.OptionImportError as e:
                r.unmapped(st, "option declaration not mapped: %s" % e)
                self.decls[name] = (code, None)
                return
            self.decls[name] = (code, t)
            if wo.option_name(code).startswith("option-") and t in wo.TYPE_NAMES and code not in self.defs.types:
                try:
                    self.defs.add(code, name, wo.TYPE_NAMES[t])
                    self.def_list.append({"code": code, "name": name, "type": wo.TYPE_NAMES[t]})
                except wo.OptionValueError as e:
                    r.note(st, "declaration kept as hex values only: %s" % e)
            return
        if name == "space" or "." in name:
            r.unmapped(st, "option spaces / encapsulated options are not supported")
            return
        if name in self.decls:
            code, t = self.decls[name]
            if t is None:
                r.unmapped(st, "its declaration could not be mapped")
                return
        else:
            try:
                code = wo.option_code(name)
            except wo.OptionValueError:
                r.unmapped(st, "unknown option name (declare it with `option %s code N = TYPE;`)" % name)
                return
            t = wo.option_type(code)
        if code in confcheck._SERVER_SET:
            r.unmapped(st, "option %d is set by dhcpfo itself (%s)" % (code, confcheck._SERVER_SET[code]))
            return
        try:
            data = io.encode_tokens(t, h[2:])
        except io.OptionImportError as e:
            r.unmapped(st, "value not mapped: %s" % e)
            return
        try:
            key, value = io.json_value(code, data, self.defs)
            wo.encode_option_value(key, value, self.defs)
        except wo.OptionValueError as e:
            r.unmapped(st, "value not accepted by dhcpfo: %s" % e)
            return
        ctx.options[code] = data

    # ---------------------------------------------------------------- subnets

    def _subnet(self, st, ctx, shared):
        w = st.words
        r = self.report
        net = _ip(st.head[1]) if len(st.head) >= 4 else None
        mask = _ip(st.head[3]) if len(st.head) >= 4 and w[2].lower() == "netmask" else None
        if net is None or mask is None or len(st.head) != 4:
            r.unmapped(st, "expected `subnet ADDRESS netmask MASK { ... }`")
            return
        sctx = _Ctx("subnet", ctx, st)
        sn = _Subnet(st, net, mask, sctx, shared)
        self.subnets.append(sn)
        self._walk(st.block, sctx, sn, None, shared)

    def _range(self, st, subnet, pool, shared):
        h = st.head[1:]
        if h and h[0].value.lower() == "dynamic-bootp":
            self.report.note(st, "dynamic-bootp: BOOTP clients are served only from a scope with bootp: true")
            h = h[1:]
        if len(h) == 1:
            h = [h[0], h[0]]
        a = _ip(h[0]) if len(h) == 2 else None
        b = _ip(h[1]) if len(h) == 2 else None
        if a is None or b is None:
            self.report.unmapped(st, "expected `range START [END];` with IPv4 addresses")
            return
        if b < a:
            a, b = b, a
        if pool is not None:
            pool.ranges.append((a, b, st))
        elif subnet is not None:
            subnet.ranges.append((a, b, st))
        else:
            self.report.unmapped(st, "a range outside a subnet")

    # ------------------------------------------------------------------ hosts

    def _host(self, st, ctx):
        r = self.report
        name = st.words[1] if len(st.words) > 1 else ""
        h = _Host(st, name, _Ctx("host", ctx, st))
        for s in st.block:
            k = s.key
            w = s.words
            if k == "hardware":
                if len(w) == 3 and w[1].lower() == "ethernet":
                    m = colon_hex(w[2])
                    if m is not None and len(m) == 6:
                        h.mac = m
                        continue
                r.unmapped(s, "only `hardware ethernet` with a 6-byte address is mapped")
            elif k == "fixed-address":
                for t in s.head[1:]:
                    if t.kind == "punct":
                        continue
                    b = _ip(t)
                    if b is None:
                        r.unmapped(s, "fixed-address %s: host names are not resolved" % t.value)
                    else:
                        h.addresses.append((b, s))
            elif k == "option" and len(w) >= 3 and w[1].lower() == "dhcp-client-identifier":
                t = s.head[2]
                cid = t.value.encode("latin-1") if t.kind == "string" else colon_hex(t.value)
                if cid is None or len(cid) < 2:
                    r.unmapped(s, "client identifier must be a string or colon hex of 2+ bytes")
                else:
                    h.client_id = cid
            elif k == "host-identifier":
                r.unmapped(s, "host-identifier (DHCPv6) is not supported")
            elif k == "default-lease-time":
                r.unmapped(s, "per-reservation lease times are not supported")
            else:
                self._stmt(s, h.ctx, None, None, None)
        self.hosts.append(h)

    # ---------------------------------------------------------------- classes

    def _class(self, st, ctx):
        r = self.report
        name = st.words[1] if len(st.words) > 1 else ""
        c = _Class(st, name, _Ctx("class", ctx, st))
        c.order = len(self.classes) + 1
        self.classes[name] = c
        for s in st.block:
            k = s.key
            w = s.words
            if k == "match" and len(w) >= 2 and w[1].lower() == "if":
                try:
                    self._match_if(c, s.head[2:])
                except NotExpressible as e:
                    c.ok = False
                    c.why = str(e)
                    r.unmapped(s, "class %s: %s" % (name, e))
            elif k == "match":
                key = " ".join(x.lower() for x in w[1:])
                if key in ("option vendor-class-identifier", "option user-class", "hardware",
                           "option dhcp-client-identifier",
                           "pick-first-value ( option dhcp-client-identifier , hardware )"):
                    c.match_key = key
                else:
                    c.ok = False
                    c.why = "match on '%s' is not supported" % key
                    r.unmapped(s, "class %s: %s" % (name, c.why))
            else:
                self._stmt(s, c.ctx, None, None, None)

    def _subclass(self, st):
        r = self.report
        w = st.words
        if len(st.head) != 3:
            r.unmapped(st, "expected `subclass \"CLASS\" VALUE;`")
            return
        c = self.classes.get(w[1])
        if c is None:
            r.unmapped(st, "subclass of an undeclared class")
            return
        if st.block is not None:
            r.unmapped(st, "per-subclass statements are not supported (only membership is mapped)")
        t = st.head[2]
        raw = t.value.encode("latin-1") if t.kind == "string" else colon_hex(t.value)
        if raw is None:
            r.unmapped(st, "subclass value must be a string or colon hex")
            return
        key = c.match_key
        if key in ("option vendor-class-identifier", "option user-class") and \
                not all(32 <= x < 127 for x in raw):
            r.unmapped(st, "class text with non-printable or non-ASCII octets")
        elif key == "option vendor-class-identifier":
            c.add("vendor_class", "eq", raw.decode("ascii"), False)
        elif key == "option user-class":
            c.add("user_class", "eq", raw.decode("ascii"), False)
        elif key == "option dhcp-client-identifier":
            c.add("client_id", "eq", hex_colon(raw), False)
        elif key == "hardware":
            if len(raw) == 7 and raw[0] == 1:
                c.add("mac", "eq", hex_colon(raw[1:]), False)
            else:
                r.unmapped(st, "only Ethernet (1:mac) hardware subclasses are mapped")
        elif key and key.startswith("pick-first-value"):
            c.add("client_id", "eq", hex_colon(raw), False)
            if len(raw) == 7 and raw[0] == 1:
                c.add("mac", "eq", hex_colon(raw[1:]), False)
            r.note(st, "class %s: matched as client_id %s or mac (pick-first-value)" % (w[1], hex_colon(raw)))
        else:
            r.unmapped(st, "class %s has no `match` statement to give the subclass meaning" % w[1])

    def _match_if(self, c, toks):
        atoms, op = Condition(toks).parse()
        c.operator = op
        for crit, cop, value, prefix in atoms:
            c.add(crit, cop, value, prefix)

    # ---------------------------------------------------------------- failover

    def _peer(self, st):
        r = self.report
        name = st.words[2]
        p = {"name": name, "stmt": st, "ok": True}
        for s in st.block:
            w = [x.lower() for x in s.words]
            t = s.head
            if w in (["primary"], ["secondary"]):
                p["role"] = w[0]
            elif w[:1] == ["address"] and len(t) == 2:
                p["address"] = _ip(t[1]) or self._bad_peer(p, s, "address must be IPv4")
            elif w[:1] == ["port"] and len(t) == 2:
                p["port"] = self._int_arg(s, 1, 65535)
            elif w[:2] == ["peer", "address"] and len(t) == 3:
                p["peer_address"] = _ip(t[2]) or self._bad_peer(p, s, "peer address must be IPv4")
            elif w[:2] == ["peer", "port"] and len(t) == 3:
                p["peer_port"] = self._int_arg(s, 1, 65535)
            elif w[:1] == ["max-response-delay"]:
                p["mrd"] = (self._int_arg(s), s)
            elif w[:1] == ["max-unacked-updates"]:
                p["unacked"] = (self._int_arg(s), s)
            elif w[:1] == ["mclt"]:
                p["mclt"] = (self._int_arg(s), s)
            elif w[:1] == ["split"]:
                p["split"] = (self._int_arg(s, 0, 256), s)
            elif w[:1] == ["hba"]:
                b = colon_hex(s.words[1]) if len(t) == 2 else None
                if b is None or len(b) != 32:
                    r.unmapped(s, "hba must be 32 colon-hex octets")
                else:
                    p["split"] = (sum(bin(x).count("1") for x in b), s)
                    r.note(s, "hba mapped to its share of buckets (%d of 256); dhcpfo assigns "
                              "buckets by percentage" % p["split"][0])
            elif w[:4] == ["load", "balance", "max", "seconds"]:
                p["lbms"] = (self._int_arg(s), s)
            elif w[:1] == ["auto-partner-down"]:
                p["apd"] = (self._int_arg(s), s)
            elif w[:1] and w[0] in _PEER_UNMAPPED:
                r.unmapped(s, _PEER_UNMAPPED[w[0]])
            else:
                r.unmapped(s, "unknown failover peer statement")
        for need in ("role", "address", "peer_address"):
            if p.get(need) is None and p["ok"]:
                self._bad_peer(p, st, "missing %s" % need.replace("_", " "))
        self.peers[name] = p
        self.peer_order.append(name)

    def _bad_peer(self, p, s, why):
        p["ok"] = False
        self.report.unmapped(s, "failover peer %s not mapped: %s" % (p["name"], why))
        return None

    # ---------------------------------------------------------------- building

    def build_config(self, data_dir="data"):
        r = self.report
        server = {"name": self.name or "dhcpfo"}
        sid = self.server_id or self.server_identifier
        if sid is None:
            for n in self.peer_order:
                if self.peers[n].get("address"):
                    sid = self.peers[n]["address"]
                    r.note(self.peers[n]["stmt"], "server.server_id taken from this peer's `address`",
                           "server.server_id")
                    break
        if sid is None:
            for sn in self.subnets:
                rt = sn.ctx.options.get(3)
                if rt:
                    sid = bytes(rt[:4])
                    r.note(sn.stmt, "server.server_id guessed as the subnet's first router "
                                    "(the router usually runs dhcpd); give --server-id to change it",
                           "server.server_id")
                    break
        if sid is None:
            raise IscImportError("cannot tell this server's address: give --server-id")
        server["server_id"] = _ip_text(sid)
        server["data_dir"] = data_dir
        if self.top.options:
            server["options"] = _json_opts(self.top.options, self.defs)
        if self.def_list:
            server["option_definitions"] = self.def_list
        server["authoritative"] = bool(self.top.auth)
        if self.top.auth is None:
            r.add("note", None, "authoritative", "no `authoritative;` at the top of dhcpd.conf: imported as "
                                                 "not authoritative (dhcpd's default), so no DHCPNAK for "
                                                 "clients on the wrong network")
        scopes = []
        failover = {}
        class_scopes = {}
        for sn in self.subnets:
            sc = self._scope(sn, failover, class_scopes)
            if sc is not None:
                scopes.append(sc)
        server_policies = []
        for c in sorted(self.classes.values(), key=lambda x: x.order):
            if not c.ok:
                continue
            if not c.conditions:
                r.unmapped(c.stmt, "class %s has no conditions dhcpfo can express" % c.name)
                continue
            if c.name in class_scopes:
                if len(self.subnets) > len(class_scopes[c.name]):
                    r.note(c.stmt, "class %s: a policy in the scope(s) of its pools (%s) only; in "
                                   "other subnets its members get no class options"
                           % (c.name, ", ".join(class_scopes[c.name])))
                continue
            pol = self._policy(c, None)
            if pol.get("options") or pol.get("lease_time"):
                server_policies.append(pol)
            else:
                r.note(c.stmt, "class %s is used by no pool and sets nothing: no policy made" % c.name)
        for h in self.hosts:
            if not h.addresses:
                r.unmapped(h.stmt, "host %s has no fixed-address: per-client options and access "
                                   "control without a reservation are not supported" % h.name)
            for addr, ast in h.addresses:
                if not any(cfgmod.and4(addr, sn.mask) == sn.net for sn in self.subnets):
                    r.unmapped(ast, "host %s: %s lies in no declared subnet" % (h.name, _ip_text(addr)))
        if server_policies:
            server["policies"] = server_policies
        rels = []
        for n in self.peer_order:
            if n not in failover:
                if self.peers[n]["ok"]:
                    r.note(self.peers[n]["stmt"], "failover peer %s is named by no pool: "
                                                  "no relationship made" % n)
                continue
            rel = self._relationship(self.peers[n], failover[n])
            if rel is not None:
                rels.append(rel)
        return {"_comment": "imported from ISC dhcpd by dhcpfo import isc", "server": server,
                "scopes": scopes, "failover": rels}

    def _scope(self, sn, failover, class_scopes):
        r = self.report
        prefix = cfgmod.prefix_of(sn.mask)
        net = cfgmod.and4(sn.net, sn.mask)
        if prefix < 8 or prefix > 30 or net != sn.net:
            r.unmapped(sn.stmt, "subnet must be a network address with a prefix of 8..30")
            return None
        bcast = cfgmod.or_not4(net, sn.mask)
        sc = {"id": _ip_text(net), "mask": prefix}
        if sn.shared:
            sc["description"] = "shared-network %s" % sn.shared
            if sum(1 for x in self.subnets if x.shared == sn.shared) > 1:
                r.note(sn.stmt, "shared-network %s: its subnets become separate scopes (a link with "
                                "several subnets is not supported)" % sn.shared)
        lt_ = sn.ctx.inherited_lease()
        if lt_ is None:
            lt_ = ISC_DEFAULT_LEASE_TIME
        sc["lease_time"] = _clamp_lease(lt_, sn.ctx, r)
        for key, attr in (("min_lease_time", "min_lease"), ("max_lease_time", "max_lease")):
            v = sn.ctx.inherited(attr, None)
            if v is not None:
                sc[key] = _clamp_lease(v[0], None, r, v[1])
        auth = sn.ctx.inherited("auth")
        if auth is not None and auth != bool(self.top.auth):
            sc["authoritative"] = auth
        # options: shared-network / group levels below the subnet, then the subnet
        opts = {}
        for c in sn.ctx.chain()[1:]:
            opts.update(c.options)
        ranges = [(a, b, st) for a, b, st in sn.ranges]
        policies = {}
        peer = None
        plain_pool_opts = {}
        for p in sn.pools:
            if p.peer is not None:
                if peer is not None and p.peer != peer:
                    r.unmapped(p.peer_stmt, "a second failover peer in one subnet: a scope has one "
                                            "relationship (kept %s)" % peer)
                else:
                    peer = p.peer
            for a, b, st in p.ranges:
                ranges.append((a, b, st))
            allow = [x for x in p.allow]
            if allow:
                cname, ast = allow[0]
                for extra, est in allow[1:]:
                    r.unmapped(est, "a pool for several classes: its ranges go to %s only" % cname)
                c = self.classes.get(cname)
                if c is None:
                    r.unmapped(ast, "class %s is not declared" % cname)
                    continue
                if not c.ok or not c.conditions:
                    r.unmapped(ast, "class %s could not be mapped: its pool is open to every client"
                               % cname)
                    continue
                pol = policies.get(cname)
                if pol is None:
                    pol = self._policy(c, p)
                    pol["ranges"] = []
                    policies[cname] = pol
                    class_scopes.setdefault(cname, []).append(sc["id"])
                for a, b, st in p.ranges:
                    pol["ranges"].append({"start": _ip_text(a), "end": _ip_text(b)})
            else:
                if p.ctx.lease_time is not None:
                    r.unmapped(p.ctx.lease_stmt, "pool-level lease time for a pool without a class "
                                                 "(the scope's lease time applies)")
                for code, data in p.ctx.options.items():
                    if code in plain_pool_opts and plain_pool_opts[code] != data:
                        r.unmapped(p.stmt, "pools of one subnet give option %d different values "
                                           "(the first is kept)" % code)
                        continue
                    plain_pool_opts[code] = data
        for p in sn.pools:
            for cname, dst in p.deny:
                if cname not in policies:
                    r.unmapped(dst, "deny members of %s: the class has no pool of its own in this "
                                    "subnet, so its members are not kept out" % cname)
        opts.update(plain_pool_opts)
        opts.update(sn.ctx.options)
        if opts:
            sc["options"] = _json_opts(opts, self.defs)
        # reservations: hosts whose fixed-address lies in this subnet
        res = []
        seen = set()
        clients = set()
        for h in self.hosts:
            placed = False
            for addr, ast in h.addresses:
                if not (net < addr < bcast):
                    continue
                if placed:
                    r.unmapped(ast, "host %s: a second fixed address in subnet %s (%s; dhcpd, too, "
                                    "uses the first)" % (h.name, sc["id"], _ip_text(addr)))
                    continue
                if addr in seen:
                    r.unmapped(ast, "a second host for %s" % _ip_text(addr))
                    continue
                if h.mac is None and h.client_id is None:
                    r.unmapped(h.stmt, "host %s has neither hardware ethernet nor client identifier"
                               % h.name)
                    continue
                who = ("mac", h.mac) if h.mac is not None else ("cid", h.client_id)
                if who in clients:
                    r.unmapped(h.stmt, "host %s: the same client already has a reservation in "
                                       "subnet %s" % (h.name, sc["id"]))
                    continue
                clients.add(who)
                placed = True
                seen.add(addr)
                item = {"address": _ip_text(addr)}
                if h.mac is not None:
                    item["mac"] = cfgmod.mac_str(h.mac)
                    if h.client_id is not None:
                        r.note(h.stmt, "host %s: both hardware and client identifier given; the "
                                       "reservation matches the hardware address" % h.name)
                else:
                    item["client_id"] = cfgmod.mac_str(h.client_id)
                if h.name:
                    item["name"] = h.name[:64]
                hopts = {}
                for c in h.ctx.chain():
                    if c.kind in ("host", "group") and c.kind != "global":
                        hopts.update(c.options)
                if hopts:
                    item["options"] = _json_opts(hopts, self.defs)
                res.append(item)
        if not ranges and res:
            # a scope needs a range: a subnet of hosts only gets one per host
            # (a reserved address is never leased to anybody else)
            r.note(sn.stmt, "subnet %s/%d has hosts but no range: each fixed address is its own "
                            "one-address range" % (sc["id"], prefix))
            ranges = [(wo.ip_or_none(x["address"]),) * 2 + (sn.stmt,) for x in res]
        if not ranges:
            r.unmapped(sn.stmt, "subnet %s/%d has no range and no host: not served" % (sc["id"], prefix))
            return None
        good = []
        for a, b, st in ranges:
            if not (net < a and b < bcast):
                r.unmapped(st, "range outside subnet %s/%d" % (sc["id"], prefix))
                continue
            good.append((a, b))
        sc["ranges"] = [{"start": _ip_text(a), "end": _ip_text(b)} for a, b in _merge(good)]
        if res:
            sc["reservations"] = res
        if policies:
            sc["policies"] = list(policies.values())
        _widen_bounds(sc, r, sn.stmt)
        if peer is not None:
            pp = self.peers.get(peer)
            if pp is None:
                r.unmapped(sn.pools[0].stmt, "failover peer %s is not declared" % peer)
            elif not self.keep_failover:
                r.note(pp["stmt"], "failover left out (--no-failover): scope %s is served alone"
                       % sc["id"])
            elif pp["ok"]:
                failover.setdefault(peer, []).append(sc["id"])
            for p in sn.pools:
                if p.peer is None and pp is not None and self.keep_failover:
                    r.note(p.stmt, "pool without `failover peer` in a subnet under failover: its "
                                   "addresses are shared with the partner too")
        return sc

    def _policy(self, c, pool):
        pol = {"name": c.name[:64], "order": c.order}
        cond = {"operator": c.operator}
        cond.update(c.conditions)
        pol["conditions"] = cond
        opts = dict(c.ctx.options)
        if pool is not None:
            opts.update(pool.ctx.options)
        if opts:
            pol["options"] = _json_opts(opts, self.defs)
        lt_ = pool.ctx.lease_time if pool is not None and pool.ctx.lease_time is not None \
            else c.ctx.lease_time
        if lt_ is not None:
            pol["lease_time"] = _clamp_lease(lt_, pool.ctx if pool else c.ctx, self.report)
        return pol

    def _relationship(self, p, scope_ids):
        r = self.report
        st = p["stmt"]
        rel = {"name": p["name"], "role": p["role"], "mode": "load-balance",
               "local": {"address": _ip_text(p["address"]), "port": p.get("port") or 647},
               "partner": {"address": _ip_text(p["peer_address"]), "port": p.get("peer_port") or 647},
               "scopes": scope_ids}

        def ranged(key, out, lo, hi):
            v = p.get(key)
            if v is None or v[0] is None:
                return
            n, s = v
            if n < lo or n > hi:
                r.note(s, "%d is outside dhcpfo's %d..%d: %s" % (n, lo, hi, "clamped"))
                n = lo if n < lo else hi
            rel[out] = n

        ranged("mclt", "mclt", 1, 30 * 86400)
        ranged("mrd", "max_response_delay", 3, 3600)
        ranged("unacked", "max_unacked", 1, 1000)
        ranged("lbms", "load_balance_max_seconds", 0, 3600)
        if p.get("lbms") and p["lbms"][0] == 0:
            r.note(p["lbms"][1], "dhcpd reads 0 as 'load balancing off'; dhcpfo reads it as "
                                 "'always obey the hash'")
        apd = p.get("apd")
        if apd and apd[0]:
            rel["auto_state_switchover"] = min(max(apd[0], 1), 30 * 86400)
        sp = p.get("split")
        if p["role"] == "primary":
            split = sp[0] if sp and sp[0] is not None else 128
            pct = (split * 100 + 128) // 256
            rel["load_balance_percent"] = pct
            if (pct * 256 + 50) // 100 != split:
                r.note(sp[1] if sp else st, "split %d of 256 rounded to %d%%" % (split, pct))
        else:
            if sp:
                r.unmapped(sp[1], "split/hba is the primary's setting; dhcpd ignores it here")
            if "mclt" in rel:
                r.note(p["mclt"][1], "mclt on a secondary: dhcpfo uses the primary's value")
            rel["load_balance_percent"] = 50
            r.note(st, "secondary: load_balance_percent set to 50; make it 100 minus the "
                       "primary's share")
        return rel


def _merge(spans):
    """Sorted ranges with overlapping and adjacent ones joined."""
    out = []
    for a, b in sorted(spans):
        if out:
            pa, pb = out[-1]
            if a <= pb or _succ(pb) == a:
                if b > pb:
                    out[-1] = (pa, b)
                continue
        out.append((a, b))
    return out


def _succ(b):
    v = int.from_bytes(b, "big") + 1
    return (v & 0xFFFFFFFF).to_bytes(4, "big")


def _widen_bounds(sc, report, stmt):
    """min/max_lease_time around every default lease time of the scope (its
    own and its policies'): dhcpd lets a class's default lie outside the
    subnet's bounds, our configuration does not."""
    lts = [sc["lease_time"]] + [p["lease_time"] for p in sc.get("policies", ()) if "lease_time" in p]
    if "min_lease_time" in sc and min(lts) < sc["min_lease_time"]:
        report.note(stmt, "min-lease-time %d lowered to %d, the shortest default lease time in the subnet"
                    % (sc["min_lease_time"], min(lts)))
        sc["min_lease_time"] = min(lts)
    if "max_lease_time" in sc and max(lts) > sc["max_lease_time"]:
        report.note(stmt, "max-lease-time %d raised to %d, the longest default lease time in the subnet"
                    % (sc["max_lease_time"], max(lts)))
        sc["max_lease_time"] = max(lts)


def _clamp_lease(v, ctx, report, st=None):
    if MIN_LEASE <= v <= MAX_LEASE:
        return v
    n = MIN_LEASE if v < MIN_LEASE else MAX_LEASE
    if st is None:
        st = ctx.lease_stmt if ctx is not None and ctx.lease_stmt is not None else None
    if st is not None:
        report.note(st, "lease time %d outside dhcpfo's %d..%d: set to %d" % (v, MIN_LEASE, MAX_LEASE, n))
    return n


def _json_opts(opts, defs=None):
    out = {}
    for code in sorted(opts):
        k, v = io.json_value(code, opts[code], defs)
        out[k] = v
    return out


# ----------------------------------------------------------------------- driver


def run_import(conf_path, leases_path, out_dir, server_id=None, name=None, failover=True):
    """Import into out_dir: dhcpfo.json, data/ (the lease store), report.json.
    Returns (config dict, Report, store summary). Raises IscSyntaxError,
    IscImportError or cfgmod.ConfigError."""
    report = Report()
    imp = IscImporter(report, server_id, name, failover)
    imp.load_conf(parse_file(conf_path))
    data_dir = os.path.abspath(os.path.join(out_dir, "data"))
    doc = imp.build_config(data_dir)
    cfg = boardconf.load(json.loads(json.dumps(doc)))
    summary = {"scopes": len(cfg.scopes), "relationships": len(cfg.failover),
               "reservations": sum(len(s.reservations) for s in cfg.scopes),
               "policies": sum(len(s.policies) for s in cfg.scopes) + len(cfg.server.policies),
               "leases": 0, "leases_outside_scopes": 0}
    bindings = []
    if leases_path:
        pairs = import_leases(parse_file(leases_path, lazy=True), report, failover)
        bindings = [b for b, _ in pairs]
        where = dict((id(b), st) for b, st in pairs)
    os.makedirs(out_dir, exist_ok=True)
    written, unplaced = write_store(cfg, bindings, data_dir)
    for b in unplaced:
        report.dropped(where[id(b)], "address is in no range of the imported scopes")
    summary["leases"] = written
    summary["leases_outside_scopes"] = len(unplaced)
    hostnames = sum(1 for b in bindings if b.hostname)
    if hostnames:
        report.add("dropped", None, "client-hostname",
                   "%d lease(s) carry a client-hostname: the lease store has no room for names" % hostnames)
    with open(os.path.join(out_dir, "dhcpfo.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        f.write(report.as_json())
    return doc, report, summary


__all__ = ["run_import", "IscImporter", "import_leases", "lease_time", "IscSyntaxError", "IscImportError"]
