"""`dhcpfo export kea`: our config + lease store -> kea-dhcp4 JSON + memfile CSV.

The configuration is a whole `{"Dhcp4": ...}` document for Kea 2.x: one
subnet4 per scope (ids 1..n in scope order), pools of the ranges minus
exclusions and reserved addresses, reservations, option-data as raw hex
(Kea accepts any code that way, so no option definitions are needed),
and a client class per policy: `test` expressions for the conditions,
the class's option-data and valid-lifetime, and pools restricted to it.
A scope with policy ranges also gets a class `dhcpfo-rest-N` for clients
of no range-owning policy, so policy addresses stay for members (as ours).

The lease file is Kea's memfile lease4 CSV (schema 2.1, Kea 2.0-2.4):
address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,
fqdn_rev,hostname,state,user_context.
Failover relationships are not exported: Kea's HA hook speaks its own
protocol and needs the control agent; the report says so.
"""

from dhcpfo_host import boardconf
import json
import os

from dhcpfo import config as cfgmod
from dhcpfo.lease import table as lt
from dhcpfo.wire import options as wo

from dhcpfo_host.migrate.iscsyntax import hex_colon
from dhcpfo_host.migrate.leasestore import read_store, store_warnings
from dhcpfo_host.migrate.report import Report
from dhcpfo_host.migrate.scopeview import class_names, option_definitions, scope_pools

CSV_HEADER = ("address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,"
              "hostname,state,user_context")
KEA_DEFAULT, KEA_DECLINED, KEA_RECLAIMED = 0, 1, 2
_CRITERIA = ("vendor_class", "user_class", "mac", "client_id")
_FIELD = {"vendor_class": "option[60].hex", "user_class": "option[77].hex",
          "client_id": "option[61].hex", "mac": "pkt4.mac"}


def _ip(b):
    return cfgmod.ip_str(b)


def _hex(b):
    return "".join("%02X" % x for x in b)


def _literal(crit, value):
    """A Kea expression constant: '...' for printable text, else 0x hex."""
    if crit in ("vendor_class", "user_class"):
        try:
            s = value.decode("ascii")
        except UnicodeError:
            s = None
        if s is not None and "'" not in s and all(32 <= ord(c) < 127 for c in s):
            return "'%s'" % s
    return "0x" + _hex(value) if value else "''"


def kea_test(p):
    """The Kea `test` expression for a policy's conditions (our semantics:
    eq values ORed, ne values ANDed, criteria joined by the operator)."""
    groups = []
    for crit in _CRITERIA:
        ms = getattr(p, crit)
        if not ms:
            continue
        eq = []
        ne = []
        for m in ms:
            f = _FIELD[crit]
            if m.prefix:
                f = "substring(%s,0,%d)" % (f, len(m.value))
            atom = "%s == %s" % (f, _literal(crit, m.value))
            (eq if m.op == "eq" else ne).append(atom if m.op == "eq" else "not (%s)" % atom)
        parts = []
        if eq:
            parts.append("(" + " or ".join(eq) + ")" if len(eq) > 1 else eq[0])
        parts += ne
        g = " and ".join(parts)
        groups.append("(%s)" % g if len(parts) > 1 else g)
    j = " and " if p.operator == "and" else " or "
    return j.join("(%s)" % g if len(groups) > 1 else g for g in groups)


# our option value type names -> Kea option-def (type, array)
_KEA_TYPES = {"ip": ("ipv4-address", False), "ip-list": ("ipv4-address", True), "string": ("string", False),
              "text": ("string", False), "hex": ("binary", False), "uint8": ("uint8", False),
              "uint16": ("uint16", False), "uint32": ("uint32", False), "int32": ("int32", False),
              "bool": ("boolean", False), "uint8-list": ("uint8", True), "uint16-list": ("uint16", True),
              "domain-list": ("fqdn", True)}


def option_data(opts, report=None, where=""):
    """Kea option-data items as raw hex. Kea checks the bytes against its own
    definition of a standard option, so a value that is not valid for its type
    (as pfSense's domain-search declared as text) is left out and reported."""
    out = []
    for code in sorted(opts):
        data = opts[code]
        t = wo.option_type(code)
        shown = wo.decode_option_value(code, data)
        if t != wo.T_BYTES and isinstance(shown, str) and shown.startswith("0x") \
                and not wo.option_name(code).startswith("option-"):
            if report is not None:
                report.add("unmapped", None, "%s option %s" % (where, wo.option_name(code)),
                           "value is not a valid %s; Kea refuses it" % wo.TYPE_NAMES.get(t, "value"))
            continue
        out.append({"code": code, "space": "dhcp4", "csv-format": False, "data": _hex(data)})
    return out


class KeaWriter:
    def __init__(self, cfg, report=None, lease_file="kea-leases4.csv", interfaces=("*",), defs=()):
        self.cfg = cfg
        self.defs = list(defs)  # server.option_definitions: (code, name, type name)
        self.report = report if report is not None else Report()
        self.lease_file = lease_file
        self.interfaces = list(interfaces)
        self.names = class_names(cfg)
        self.subnet_ids = dict((sc.id, i + 1) for i, sc in enumerate(cfg.scopes))

    def _note(self, construct, reason, kind="unmapped"):
        self.report.add(kind, None, construct, reason)

    def _class(self, key, p):
        c = {"name": self.names[key], "test": kea_test(p)}
        if p.options:
            c["option-data"] = option_data(p.options, self.report, "policy %s" % p.name)
        if p.lease_time is not None:
            c["valid-lifetime"] = p.lease_time
        return c

    def config(self):
        cfg = self.cfg
        classes = []
        for p in cfg.server.policies:
            if p.enabled:
                classes.append(self._class((None, p.name), p))
        subnets = []
        for sc in cfg.scopes:
            for p in sc.policies:
                if p.enabled:
                    classes.append(self._class((sc.id, p.name), p))
            subnets.append(self._subnet(sc, classes))
        if len(cfg.server.policies) + sum(len(s.policies) for s in cfg.scopes) > 1:
            self._note("policies", "Kea applies every class a client matches; dhcpfo only the first "
                                   "by order (clients matching two policies may differ)", "note")
        for rc in cfg.failover:
            self._note("failover %s" % rc.name, "not exported: Kea's High Availability hook has its "
                       "own protocol and setup (control agent, peers); configure it separately")
        d4 = {"interfaces-config": {"interfaces": self.interfaces},
              "lease-database": {"type": "memfile", "persist": True, "name": self.lease_file,
                                 "lfc-interval": 3600},
              "valid-lifetime": cfg.scopes[0].lease_time if cfg.scopes else 86400,
              "server-tag": cfg.server.name}
        if cfg.server.options:
            d4["option-data"] = option_data(cfg.server.options, self.report, "server")
        odefs = []
        for code, name, tname in self.defs:
            kt = _KEA_TYPES.get(tname)
            if kt is None or not name:
                self._note("option definition %d" % code, "no Kea type or no name: its values go as hex")
                continue
            odefs.append({"name": name, "code": code, "space": "dhcp4", "type": kt[0], "array": kt[1]})
        if odefs:
            d4["option-def"] = odefs
        if classes:
            d4["client-classes"] = classes
        d4["subnet4"] = subnets
        if cfg.server.decline_hold != 86400:
            d4["decline-probation-period"] = cfg.server.decline_hold
        return {"Dhcp4": d4}

    def _subnet(self, sc, classes):
        net = "%s/%d" % (_ip(sc.id), sc.prefix)
        # our bounds default to the lease time, as Kea's; T1/T2 are shares of the lease
        s = {"id": self.subnet_ids[sc.id], "subnet": net, "valid-lifetime": sc.lease_time,
             "min-valid-lifetime": sc.min_lease_time or sc.lease_time,
             "max-valid-lifetime": sc.max_lease_time or sc.lease_time,
             "calculate-tee-times": True, "t1-percent": sc.t1_permille / 1000.0,
             "t2-percent": sc.t2_permille / 1000.0, "authoritative": sc.authoritative}
        if sc.name and sc.name != _ip(sc.id):
            s["user-context"] = {"name": sc.name}
        if sc.offer_delay_ms:
            self._note("scope %s offer_delay_ms" % net, "Kea has no offer delay")
        if sc.bootp:
            self._note("scope %s bootp" % net, "BOOTP in Kea needs the bootp hook library")
        owning = [p for p in sc.policies if p.ranges and p.enabled]
        rest_class = None
        if owning:
            rest_class = "dhcpfo-rest-%d" % self.subnet_ids[sc.id]
            classes.append({"name": rest_class, "test": " and ".join(
                "not member('%s')" % self.names[(sc.id, p.name)] for p in owning)})
        pools = []
        for pol, spans in scope_pools(sc):
            for a, b in spans:
                item = {"pool": "%s - %s" % (_ip(a), _ip(b))}
                if pol is not None:
                    item["client-class"] = self.names[(sc.id, pol.name)]
                elif rest_class:
                    item["client-class"] = rest_class
                pools.append(item)
        s["pools"] = pools
        if sc.options:
            s["option-data"] = option_data(sc.options, self.report, "scope %s" % net)
        res = []
        for r in sc.reservations:
            item = {"ip-address": _ip(r.address)}
            if r.mac is not None:
                item["hw-address"] = hex_colon(r.mac)
            else:
                item["client-id"] = hex_colon(r.client_id)
            if r.options:
                item["option-data"] = option_data(r.options, self.report, "reservation %s" % _ip(r.address))
            if r.name:
                item["user-context"] = {"name": r.name}
            res.append(item)
        if res:
            s["reservations"] = res
        if not sc.active:
            self._note("scope %s" % net, "inactive scope exported as an active subnet")
        return s

    def leases(self, rows):
        out = [CSV_HEADER]
        for sc, b in rows:
            line = self._lease(sc, b)
            if line:
                out.append(line)
        return "\n".join(out) + "\n"

    def _lease(self, sc, b):
        if b.state == lt.ACTIVE:
            st = KEA_DEFAULT
        elif b.state in (lt.EXPIRED, lt.RELEASED):
            st = KEA_RECLAIMED
        elif b.state == lt.ABANDONED:
            st = KEA_DECLINED
        else:
            return None  # free/backup: Kea keeps no row for free addresses
        if b.mac is None and b.client_id is None and st != KEA_DECLINED:
            return None
        if b.mac is not None and b.htype != 1:
            self.report.count("non-Ethernet hardware address written as its bytes")
        expire = b.expiry
        if expire is None:
            self.report.count("infinite lease written with the scope's lease time")
            expire = (b.stamp or 0) + sc.lease_time
        cltt = b.stamp or (expire - sc.lease_time)
        valid = max(expire - cltt, 1)
        return ",".join([_ip(b.address), hex_colon(b.mac) if b.mac else "",
                         hex_colon(b.client_id) if b.client_id else "", str(valid), str(expire),
                         str(self.subnet_ids[sc.id]), "0", "0", "", str(st), ""])


def run_export(config_path, leases_dir, out_dir, interfaces=("*",)):
    """Write kea-dhcp4.json and kea-leases4.csv into out_dir; returns (Report, summary)."""
    with open(config_path) as f:
        text = f.read()
    cfg = boardconf.load_text(text)
    report = Report()
    lease_path = os.path.abspath(os.path.join(out_dir, "kea-leases4.csv"))
    w = KeaWriter(cfg, report, lease_path, interfaces, option_definitions(text)[1])
    doc = w.config()
    rows, stats = read_store(cfg, leases_dir) if leases_dir else ([], None)
    store_warnings(stats, report)
    csv = w.leases(rows)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "kea-dhcp4.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    with open(lease_path, "w") as f:
        f.write(csv)
    summary = {"scopes": len(cfg.scopes), "bindings_read": len(rows),
               "leases_written": csv.count("\n") - 1}
    return report, summary
