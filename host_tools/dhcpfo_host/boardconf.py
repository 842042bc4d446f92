"""Compile a human JSON configuration into the compact form a board loads.

A board has ~100 KB of heap; the validator, the option name/type tables and
the pairing checks would take a third of it. So the host does that work once:
compile_config(obj) validates the document (dhcpfo_host.confcheck: every error
by path) and returns the compact, already-valid form that the firmware's
small loader (dhcpfo.config.load) reads: defaults filled in, options as
[code, hex] pairs, addresses as dotted strings, byte strings as hex, names
resolved, comments and descriptions dropped. The CPython node takes the same
route, so both runtimes load exactly the same thing.

`dhcpfo build` calls compile_config and write_compiled; keep both names.
"""

from dhcpfo import config as fw
from dhcpfo.compat import hexlify, json_dumps
from dhcpfo.config import ip_str

from dhcpfo_host import confcheck


def _ip(b):
    return ip_str(b) if b is not None else None


def _hex(b):
    return hexlify(b) if b is not None else None


def _options(d):
    return [[code, hexlify(d[code])] for code in sorted(d)]


def _spans(lst):
    return [[ip_str(s), ip_str(e)] for (s, e) in lst]


def _policy(p):
    out = {"name": p.name, "order": p.order, "enabled": p.enabled, "operator": p.operator,
           "options": _options(p.options), "lease_time": p.lease_time,
           "ranges": _spans(p.ranges)}
    for crit in ("vendor_class", "user_class", "mac", "client_id"):
        out[crit] = [[m.op, hexlify(m.value), m.prefix] for m in getattr(p, crit)]
    return out


def _server(s):
    server = {"name": s.name, "server_id": _ip(s.server_id),
                "listen_address": _ip(s.listen_address), "listen_port": s.listen_port,
                "interface": s.interface, "relay_port": s.relay_port, "data_dir": s.data_dir,
                "options": _options(s.options), "policies": [_policy(p) for p in s.policies],
                "mgmt_address": _ip(s.mgmt_address), "mgmt_port": s.mgmt_port,
                "mgmt_token": s.mgmt_token, "mgmt_user_token": s.mgmt_user_token,
                "mgmt_max_connections": s.mgmt_max_connections,
                "console_password": s.console_password, "decline_hold": s.decline_hold,
                "offer_hold": s.offer_hold, "time_skew_max": s.time_skew_max,
                "log_level": s.log_level, "abuse": s.abuse}
    if s.syslog_address is not None:
        server.update({"syslog_address": _ip(s.syslog_address), "syslog_port": s.syslog_port,
                       "syslog_level": s.syslog_level, "syslog_facility": s.syslog_facility})
    return server


def _reservation(r):
    return {"address": ip_str(r.address), "mac": _hex(r.mac), "client_id": _hex(r.client_id),
            "name": r.name, "options": _options(r.options)}


def _scope(s):
    return {"id": ip_str(s.id), "prefix": s.prefix, "name": s.name, "active": s.active,
            "lease_time": s.lease_time, "min_lease_time": s.min_lease_time,
            "max_lease_time": s.max_lease_time, "t1_permille": s.t1_permille,
            "t2_permille": s.t2_permille, "authoritative": s.authoritative,
            "offer_delay_ms": s.offer_delay_ms, "bootp": s.bootp,
            "options": _options(s.options), "ranges": _spans(s.ranges),
            "exclusions": _spans(s.exclusions),
            "reservations": [_reservation(r) for r in s.reservations],
            "policies": [_policy(p) for p in s.policies]}


def _relationship(f):
    out = {"name": f.name, "role": f.role, "mode": f.mode,
            "partner_address": _ip(f.partner_address), "partner_port": f.partner_port,
            "local_address": _ip(f.local_address), "local_port": f.local_port,
            "scopes": [ip_str(s) for s in f.scopes], "mclt": f.mclt,
            "load_balance_percent": f.load_balance_percent,
            "reserve_percent": f.reserve_percent, "hot_standby_role": f.hot_standby_role,
            "auto_state_switchover": f.auto_state_switchover,
            "shared_secret": _hex(f.shared_secret),
            "enable_authentication": f.enable_authentication, "max_unacked": f.max_unacked,
            "max_response_delay": f.max_response_delay,
            "load_balance_max_seconds": f.load_balance_max_seconds}
    if f.partner_host is not None:  # given by host name: the node resolves it when it starts
        out["partner_host"] = f.partner_host
    return out


def compile_validated(cfg):
    """A Config from confcheck.load -> the compiled document (a JSON-ready dict)."""
    return {"format": fw.FORMAT, "server": _server(cfg.server),
            "scopes": [_scope(s) for s in cfg.scopes],
            "failover": [_relationship(f) for f in cfg.failover]}


def compile_config(obj):
    """Validate a parsed human JSON document and compile it; ConfigError lists
    every problem by path (nothing is compiled from an invalid document). The
    result is loaded once with the board's loader, so anything a board would
    refuse is refused here, on the host."""
    doc = compile_validated(confcheck.load(obj))
    fw.load(doc)
    return doc


def compiled_text(obj):
    """The compiled document as compact JSON text (sorted keys: same bytes every run)."""
    return json_dumps(compile_config(obj))


def write_compiled(obj, path):
    """Compile obj and write it to path (what a board's flash gets); returns the size."""
    text = compiled_text(obj)
    with open(path, "w") as f:
        f.write(text)
    return len(text)


def load(obj):
    """Human document -> the firmware's Config, by the board's route (compile, then
    dhcpfo.config.load); an already compiled document goes straight to the
    board's loader. What the CPython node and the tests use."""
    if type(obj) is dict and obj.get("format") == fw.FORMAT:
        return fw.load(obj)
    return fw.load(compile_config(obj))


def load_text(text):
    """Human JSON text -> Config; bad JSON is a ConfigError, as on the board."""
    return load(confcheck.parse_text(text))


def load_file(path):
    """A config file, human or already compiled -> Config."""
    return load_document_file(path)[1]


def load_document_file(path):
    """A config file, human or already compiled -> (compiled document, Config):
    what a node keeps to change its configuration while it runs."""
    with open(path) as f:
        text = f.read()
    obj = confcheck.parse_text(text)
    if type(obj) is dict and obj.get("format") == fw.FORMAT:
        return obj, fw.load(obj)
    doc = compile_config(obj)
    return doc, fw.load(doc)
