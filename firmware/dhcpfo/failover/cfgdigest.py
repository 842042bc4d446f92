# failover/cfgdigest.py - the digest of a relationship's replicated scope
# configuration, compared when a dhcpfo pair connects (docs/operations.md,
# "Configuration drift"). Two servers of a relationship are meant to hold
# the same scopes (the seed: replication copies scope properties, ranges,
# exclusions, options, reservations, policies); equal digests say they do.
#
# The digest is SHA-256 over the scopes in address order, each as compact
# JSON with sorted keys (compat.json_dumps), and inside the sections whose
# order means nothing (ranges, exclusions, options, reservations) the items
# sorted too: the same configuration gives the same digest whatever the key
# or item order of either file. Policies keep their order (it is theirs).

from dhcpfo.compat import hexlify, json_dumps, sha256
from dhcpfo.config import parse_ip

UNORDERED = ("ranges", "exclusions", "options", "reservations")
LEN = 8  # bytes of the digest carried and compared: drift, not an attack, is what it finds


def _canon(scope):
    parts = []
    for k in sorted(scope):
        v = scope[k]
        if k in UNORDERED and isinstance(v, list):
            v = sorted([json_dumps(x) for x in v])
        parts.append(json_dumps(k) + ":" + json_dumps(v))
    return "{" + ",".join(parts) + "}"


def of(doc, scope_ids):
    """LEN bytes naming the configuration of the scopes `scope_ids` (4-byte
    ids) in the compiled document `doc`; a scope the document lacks counts
    as absent."""
    want = sorted(bytes(s) for s in scope_ids)
    found = {}
    for sc in doc.get("scopes") or ():
        sid = parse_ip(sc.get("id"))
        if sid in want:
            found[sid] = sc
    h = []
    for sid in want:
        sc = found.get(sid)
        h.append(_canon(sc) if sc is not None else "null")
    return sha256(("[" + ",".join(h) + "]").encode())[:LEN]


def hex_of(d):
    return hexlify(d) if d is not None else None


def own(rel):
    """This server's digest for `rel` (cached until the node's configuration
    changes: Node.config_changed), or None when it cannot be computed."""
    if rel.cfg_digest is None and rel.digest_source is not None:
        rel.cfg_digest = rel.digest_source(rel)
    return rel.cfg_digest


def partner_said(rel, theirs, first, now):
    """The partner's digest arrived in its STATE: a Warning event (and a
    count) when it differs from ours, at the first STATE of a connection or
    when the partner's digest changed since."""
    from dhcpfo import events as ev
    mine = own(rel)
    was = rel.partner_digest
    rel.partner_digest = theirs
    if mine is None or theirs == mine or not (first or was != theirs):
        return
    rel.events.count("failover.config-drift")
    rel.events.emit(now, ev.WARN, ev.EV_CONFIG_DRIFT,
                    "The scope configuration of failover relationship %s differs from the partner server's "
                    "(digest %s here, %s there): replicate it (dhcpfo failover replicate --name %s)."
                    % (rel.name, hexlify(mine), hexlify(theirs), rel.name))
