"""Our scopes as address spans and class names, as both exporters need them.

ISC and Kea have pools but no exclusions, and a fixed address inside a pool
only draws warnings, so the exporters write each pool as the scope's (or a
policy's) ranges minus the exclusions and the reserved addresses.
"""

from dhcpfo import config as cfgmod


def _int(b):
    return int.from_bytes(bytes(b), "big")


def _addr(v):
    return v.to_bytes(4, "big")


def subtract(spans, holes):
    """Address spans (start, end bytes) minus the holes (start, end bytes)."""
    out = []
    hs = sorted((_int(a), _int(b)) for a, b in holes)
    for a, b in sorted(spans):
        lo, hi = _int(a), _int(b)
        for ha, hb in hs:
            if hb < lo or ha > hi:
                continue
            if ha > lo:
                out.append((_addr(lo), _addr(ha - 1)))
            lo = hb + 1
            if lo > hi:
                break
        if lo <= hi:
            out.append((_addr(lo), _addr(hi)))
    return out


def scope_pools(sc):
    """[(policy or None, [(start, end)])] for a ScopeConfig: one entry per
    range-owning policy, then the rest of the scope (policy None); spans
    without excluded or reserved addresses. An empty span list is left out."""
    holes = list(sc.exclusions) + [(r.address, r.address) for r in sc.reservations]
    owned = []
    out = []
    for p in sc.policies:
        if p.ranges:
            owned.extend(p.ranges)
            spans = subtract(p.ranges, holes)
            if spans:
                out.append((p, spans))
    rest = subtract(sc.ranges, holes + owned)
    if rest:
        out.append((None, rest))
    return out


def class_names(cfg):
    """{(scope id or None, policy name): class name}, unique across the
    server: a scope policy keeps its name unless another scope (or the
    server) has a different policy of that name, then the scope id is added."""
    seen = {}
    for p in cfg.server.policies:
        seen.setdefault(p.name, []).append(None)
    for sc in cfg.scopes:
        for p in sc.policies:
            seen.setdefault(p.name, []).append(sc.id)
    out = {}
    for name, owners in seen.items():
        for sid in owners:
            if len(owners) == 1:
                out[(sid, name)] = name
            else:
                out[(sid, name)] = name if sid is None else "%s-%s" % (cfgmod.ip_str(sid), name)
    return out



def option_definitions(text):
    """server.option_definitions of a human configuration's JSON text, as
    (wire.options.Definitions, [(code, name, type name)]); empty for a
    compiled document (definitions stay on the host, a board gets bytes)."""
    from dhcpfo.wire import options as wo
    from dhcpfo_host import confcheck

    doc = confcheck.parse_text(text)
    items = []
    if type(doc) is dict and doc.get("format") != cfgmod.FORMAT:
        items = confcheck.load(doc).server.option_definitions
    defs = wo.Definitions()
    for code, name, tname in items:
        defs.add(code, name, tname)
    return defs, items
