"""`dhcpfo export isc`: our config + lease store -> dhcpd.conf and dhcpd.leases.

The dhcpd.conf is a complete file for ISC dhcpd 4.4 (`dhcpd -t` accepts
it): options (declared as `string` where dhcpd has no name for the code),
one subnet per scope with its pools (ranges minus exclusions and reserved
addresses), a class plus an `allow members of` pool per policy with ranges,
host blocks for reservations, and a failover peer per relationship whose
pools name it. The lease file holds every binding of the store with a
client, so a dhcpd started on both keeps each client's address.
"""

from dhcpfo_host import boardconf
import time

from dhcpfo import config as cfgmod
from dhcpfo.lease import table as lt
from dhcpfo.wire import options as wo

from dhcpfo_host.migrate import iscoptions as io
from dhcpfo_host.migrate.iscsyntax import hex_colon, quote
from dhcpfo_host.migrate.leasestore import STATE_NAMES, read_store, store_warnings
from dhcpfo_host.migrate.report import Report
from dhcpfo_host.migrate.scopeview import class_names, option_definitions, scope_pools

# names in our option table that ISC dhcpd 4.4 does not know (checked with dhcpd -t)
ISC_UNKNOWN = {114, 121, 249, 252}

_DATA = {"vendor_class": "option vendor-class-identifier", "user_class": "option user-class",
         "client_id": "option dhcp-client-identifier", "mac": "hardware"}
_CRITERIA = ("vendor_class", "user_class", "mac", "client_id")


def _ip(b):
    return cfgmod.ip_str(b)


def isc_time(unix):
    """`4 2026/12/03 08:00:00` (UTC) or `never` for None."""
    if unix is None:
        return "never"
    g = time.gmtime(unix)
    return "%d %s" % ((g.tm_wday + 1) % 7, time.strftime("%Y/%m/%d %H:%M:%S", g))


class IscWriter:
    def __init__(self, cfg, report=None, source="config", defs=None):
        self.cfg = cfg
        self.report = report if report is not None else Report()
        self.source = source
        self.decls = {}  # code -> (declared name, dhcpd type)
        self.defs = defs if defs is not None else wo.Definitions()  # server.option_definitions
        self.names = class_names(cfg)
        self.host_names = set()

    def _opt_lines(self, opts, indent):
        out = []
        for code in sorted(opts):
            data = opts[code]
            known = code not in ISC_UNKNOWN and not wo.option_name(code).startswith("option-")
            v = io.isc_value(code, data) if known else None
            if v is not None:
                out.append("%soption %s %s;" % (indent, wo.option_name(code), v))
                continue
            if not data:
                self._note("option %d" % code, "an empty value cannot be written for dhcpd")
                continue
            t = self.defs.types.get(code)
            v = io.isc_value(code, data, self.defs) if t in io.ISC_DECL else None
            if v is not None:  # defined in our configuration: declared with its type
                name = self.defs.display.get(code, "dhcpfo-opt-%d" % code)
                self.decls.setdefault(code, (name, io.ISC_DECL[t]))
            else:
                name = self.decls.setdefault(code, ("dhcpfo-opt-%d" % code, "string"))[0]
                v = hex_colon(data)
            out.append("%soption %s %s;" % (indent, name, v))
        return out

    def _note(self, construct, reason, kind="unmapped"):
        self.report.add(kind, None, construct, reason)

    def _condition(self, p):
        groups = []
        flat_or = p.operator == "or" and all(m.op == "eq" for c in _CRITERIA for m in getattr(p, c))
        atoms_by_crit = []
        for c in _CRITERIA:
            ms = getattr(p, c)
            if ms:
                atoms_by_crit.append((c, [self._atom(c, m) for m in ms], ms))
        if flat_or:
            return " or ".join(a for _, atoms, _ in atoms_by_crit for a in atoms)
        flat_and = p.operator == "and" and all(sum(1 for m in ms if m.op == "eq") <= 1
                                               for _, _, ms in atoms_by_crit)
        if flat_and:
            return " and ".join(a for _, atoms, _ in atoms_by_crit for a in atoms)
        for c, atoms, ms in atoms_by_crit:
            eq = [a for a, m in zip(atoms, ms) if m.op == "eq"]
            ne = [a for a, m in zip(atoms, ms) if m.op == "ne"]
            parts = []
            if eq:
                parts.append("(" + " or ".join(eq) + ")" if len(eq) > 1 else eq[0])
            parts.extend(ne)
            groups.append("(" + " and ".join(parts) + ")" if len(parts) > 1 else parts[0])
        j = " and " if p.operator == "and" else " or "
        return j.join("(%s)" % g if len(groups) > 1 and " " in g and not g.startswith("(") else g
                      for g in groups)

    def _atom(self, crit, m):
        data = _DATA[crit]
        if crit in ("vendor_class", "user_class"):
            val = quote(m.value.decode("latin-1"))
        else:
            val = hex_colon(m.value)
        op = "=" if m.op == "eq" else "!="
        if crit == "mac":
            if m.prefix:
                return "substring(hardware, 1, %d) %s %s" % (len(m.value), op, val)
            return "hardware %s 01:%s" % (op, val)
        if m.prefix:
            return "substring(%s, 0, %d) %s %s" % (data, len(m.value), op, val)
        return "%s %s %s" % (data, op, val)

    def _class(self, key, p, lines):
        name = self.names[key]
        body = ["class %s {" % quote(name), "  match if %s;" % self._condition(p)]
        body += self._opt_lines(p.options, "  ")
        if p.lease_time is not None and not p.ranges:
            body.append("  default-lease-time %d;" % p.lease_time)
            body.append("  max-lease-time %d;" % p.lease_time)
        if any(m.op == "ne" for c in _CRITERIA for m in getattr(p, c)):
            self._note("policy %s" % p.name, "a `!=` condition is false in dhcpd when the client sends "
                                             "no such option (dhcpfo: true)", "note")
        if not p.enabled:
            self._note("policy %s" % p.name, "disabled policy not exported")
            return
        body.append("}")
        lines.extend(body)
        lines.append("")

    def conf(self):
        cfg = self.cfg
        out = ["# dhcpd.conf written by dhcpfo export isc from %s" % self.source,
               "# (ISC dhcpd 4.4; every dhcpfo setting without a dhcpd equivalent is listed in the",
               "# export report)", "",
               "authoritative;", "ddns-update-style none;", "ping-check false;", ""]
        body = ["# the address clients see as the server (dhcpfo server.server_id)",
                "server-identifier %s;" % _ip(cfg.server.server_id), ""]
        body += self._opt_lines(cfg.server.options, "")
        if cfg.server.options:
            body.append("")
        for rc in cfg.failover:
            body += self._peer(rc)
        for p in cfg.server.policies:
            self._class((None, p.name), p, body)
        for sc in cfg.scopes:
            for p in sc.policies:
                self._class((sc.id, p.name), p, body)
        hosts = []
        for sc in cfg.scopes:
            body += self._subnet(sc)
            hosts += self._hosts(sc)
        body += hosts
        decl = ["option %s code %d = %s;" % (n, c, t) for c, (n, t) in sorted(self.decls.items())]
        if decl:
            decl.append("")
        if cfg.server.decline_hold != 3600:
            self._note("server.decline_hold", "dhcpd abandons declined addresses for its own time")
        return "\n".join(out + decl + body) + "\n"

    def _peer(self, rc):
        L = ["failover peer %s {" % quote(rc.name), "  %s;" % rc.role,
             "  address %s;" % _ip(rc.local_address), "  port %d;" % rc.local_port,
             "  peer address %s;" % _ip(rc.partner_address), "  peer port %d;" % rc.partner_port,
             "  max-response-delay %d;" % rc.max_response_delay,
             "  max-unacked-updates %d;" % rc.max_unacked,
             "  load balance max seconds %d;" % rc.load_balance_max_seconds]
        if rc.is_primary:
            L.append("  mclt %d;" % rc.mclt)
            if rc.hot_standby:
                active_primary = rc.hot_standby_role == "active"
                L.append("  split %d;" % (256 if active_primary else 0))
                self._note("failover %s" % rc.name, "dhcpd has no hot standby: exported as a split of "
                                                    "%d with no reserve" % (256 if active_primary else 0))
            else:
                L.append("  split %d;" % ((rc.load_balance_percent * 256 + 50) // 100))
        if rc.auto_state_switchover:
            L.append("  auto-partner-down %d;" % rc.auto_state_switchover)
        if rc.shared_secret is not None:
            self._note("failover %s" % rc.name, "dhcpd 4.4 has no message authentication: "
                                                "shared_secret not exported")
        L += ["}", ""]
        return L

    def _subnet(self, sc):
        net = "%s/%d" % (_ip(sc.id), sc.prefix)
        if not sc.active:
            self._note("scope %s" % net, "inactive scope: exported as a commented-out subnet", "note")
        if sc.offer_delay_ms:
            self._note("scope %s offer_delay_ms" % net, "dhcpd has no offer delay")
        L = ["subnet %s netmask %s {" % (_ip(sc.id), _ip(sc.mask))]
        L += self._opt_lines(sc.options, "  ")
        # our bounds default to the lease time: a client's asked-for time changes nothing
        L += ["  default-lease-time %d;" % sc.lease_time,
              "  min-lease-time %d;" % (sc.min_lease_time or sc.lease_time),
              "  max-lease-time %d;" % (sc.max_lease_time or sc.lease_time)]
        if not sc.authoritative:
            L.append("  not authoritative;")
        if (sc.t1_permille, sc.t2_permille) != (cfgmod.T1_PERMILLE, cfgmod.T2_PERMILLE):
            self._note("scope %s t1_percent/t2_percent" % net, "dhcpd has no T1/T2 as shares of the "
                       "lease: it sends 1/2 and 7/8")
        peer = sc.failover
        for pol, spans in scope_pools(sc):
            L.append("  pool {")
            if peer:
                L.append("    failover peer %s;" % quote(peer))
                L.append("    deny dynamic bootp clients;")
            if pol is not None:
                L.append("    allow members of %s;" % quote(self.names[(sc.id, pol.name)]))
                if pol.lease_time is not None:
                    L.append("    default-lease-time %d;" % pol.lease_time)
                    L.append("    min-lease-time %d;" % (sc.min_lease_time or pol.lease_time))
                    L.append("    max-lease-time %d;" % (sc.max_lease_time or pol.lease_time))
            else:
                for p in sc.policies:
                    if p.ranges and p.enabled:
                        L.append("    deny members of %s;" % quote(self.names[(sc.id, p.name)]))
            kw = "range dynamic-bootp" if sc.bootp else "range"
            for a, b in spans:
                L.append("    %s %s %s;" % (kw, _ip(a), _ip(b)))
            L.append("  }")
        for p in sc.policies:
            if not p.ranges and (p.options or p.lease_time):
                self._note("scope %s policy %s" % (net, p.name), "dhcpd classes are global: the "
                           "policy's options apply to its members in every subnet", "note")
        L += ["}", ""]
        if not sc.active:
            L = ["# " + x if x else x for x in L]
        return L

    def _host_name(self, r):
        """dhcpd wants a bare name: letters, digits, '-', '_' and dots, unique."""
        base = r.name or "res-%s" % _ip(r.address).replace(".", "-")
        name = "".join(ch if ch.isalnum() and ord(ch) < 128 or ch in "-_" else "-" for ch in base)
        name = name.strip("-") or "res"
        if not name[0].isalpha():
            name = "h-" + name
        if name != base:
            self._note("reservation %s" % base, "host name written as %s" % name, "note")
        n = name
        k = 2
        while n in self.host_names:
            n = "%s-%d" % (name, k)
            k += 1
        self.host_names.add(n)
        return n

    def _hosts(self, sc):
        L = []
        for r in sc.reservations:
            name = self._host_name(r)
            L.append("host %s {" % name)
            if r.mac is not None:
                L.append("  hardware ethernet %s;" % hex_colon(r.mac))
            else:
                L.append("  option dhcp-client-identifier %s;" % hex_colon(r.client_id))
            L.append("  fixed-address %s;" % _ip(r.address))
            L += self._opt_lines(r.options, "  ")
            L += ["}", ""]
        return L

    # ------------------------------------------------------------------ leases

    def leases(self, rows):
        out = ["# dhcpd.leases written by dhcpfo export isc (dhcpd.leases(5) format)",
               "authoring-byte-order little-endian;", ""]
        for sc, b in rows:
            text = self._lease(sc, b)
            if text:
                out.append(text)
        return "\n".join(out) + "\n"

    def _lease(self, sc, b):
        a = _ip(b.address)
        if any(r.address == b.address for r in sc.reservations):
            self.report.count("lease of a reserved address not written (dhcpd serves fixed-address)")
            return None
        if any(s <= b.address <= e for s, e in sc.exclusions):
            self.report.count("lease of an excluded address not written")
            return None
        state = b.state
        if state == lt.BACKUP and not sc.failover:
            state = lt.FREE
        if state == lt.RESET:
            state = lt.FREE
        if state == lt.FREE and b.mac is None:
            return None  # dhcpd makes free leases from its ranges
        if b.htype != 1 or (b.mac is not None and len(b.mac) != 6):
            self.report.count("non-Ethernet hardware address not written")
        L = ["lease %s {" % a]
        stamp = b.stamp or None
        if stamp:
            L.append("  starts %s;" % isc_time(stamp))
        if state in (lt.ACTIVE, lt.EXPIRED, lt.RELEASED, lt.ABANDONED):
            L.append("  ends %s;" % isc_time(b.expiry))
        if sc.failover and b.ack_pexp:
            L.append("  tsfp %s;" % isc_time(b.ack_pexp))
        if stamp and state in (lt.ACTIVE, lt.EXPIRED, lt.RELEASED):
            L.append("  cltt %s;" % isc_time(stamp))
        L.append("  binding state %s;" % STATE_NAMES[state])
        if state == lt.ACTIVE:
            L.append("  next binding state %s;" % ("expired" if sc.failover else "free"))
        if b.mac is not None and b.htype == 1 and len(b.mac) == 6:
            L.append("  hardware ethernet %s;" % hex_colon(b.mac))
        if b.client_id is not None:
            L.append("  uid %s;" % quote(b.client_id.decode("latin-1")))
        L.append("}")
        return "\n".join(L)


def run_export(config_path, leases_dir, out_dir):
    """Write dhcpd.conf and dhcpd.leases into out_dir; returns (Report, summary)."""
    import os
    with open(config_path) as f:
        text = f.read()
    cfg = boardconf.load_text(text)
    report = Report()
    w = IscWriter(cfg, report, os.path.basename(config_path), option_definitions(text)[0])
    conf = w.conf()
    rows = []
    stats = None
    if leases_dir:
        rows, stats = read_store(cfg, leases_dir)
        store_warnings(stats, report)
    leases = w.leases(rows)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "dhcpd.conf"), "w") as f:
        f.write(conf)
    with open(os.path.join(out_dir, "dhcpd.leases"), "w") as f:
        f.write(leases)
    summary = {"scopes": len(cfg.scopes), "bindings_read": len(rows),
               "leases_written": leases.count("\nlease "),
               "store_skipped": stats["skipped"] if stats else 0}
    return report, summary
