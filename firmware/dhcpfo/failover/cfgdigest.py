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

from dhcpfo import events as ev
from dhcpfo.compat import hexlify, json_dumps, sha256
from dhcpfo.config import parse_ip
from dhcpfo.wire import failover as fw

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
    """This server's digest for `rel` (cached in rel.cfgd until the node's
    configuration changes: Node.config_changed), or None when the document
    cannot be read."""
    d = rel.cfgd
    if d[1] is None:
        try:
            d[1] = of(d[0](), rel.rc.scopes)
        except ValueError:  # no document to read (ReconfigError)
            return None
    return d[1]


def stamp(rel, m):
    """Our digest into a STATE to a dhcpfo partner: option 29, sub-option
    CFG_DIGEST_TAG (wire/failover.py)."""
    d = own(rel)
    if d is not None:
        m.set_bytes(fw.OPT_VENDOR_OPTIONS, bytes([fw.CFG_DIGEST_TAG]) + d)


def status(rel):
    """(ours, the partner's, drift) for get-failover: hex, hex, True/False,
    each None while unknown."""
    theirs = rel.cfgd[2]
    mine = own(rel) if theirs is not None or rel.cfgd[1] is not None else None
    return (hex_of(mine), hex_of(theirs), (theirs != mine) if theirs is not None and mine is not None else None)


def partner_said(rel, m, first, now):
    """The partner's STATE carried option 29: if it is its digest, a
    Warning event (and a count) when it differs from ours, at the first
    STATE of a connection or when the partner's digest changed since."""
    v = m.get_bytes(fw.OPT_VENDOR_OPTIONS)
    if len(v) < 2 or v[0] != fw.CFG_DIGEST_TAG:
        return
    theirs = bytes(v[1:])
    mine = own(rel)
    was = rel.cfgd[2]
    rel.cfgd[2] = theirs
    if mine is None or theirs == mine or not (first or was != theirs):
        return
    rel.events.count("failover.config-drift")
    rel.events.emit(now, ev.WARN, ev.EV_CONFIG_DRIFT,
                    "The scope configuration of failover relationship %s differs from the partner server's "
                    "(digest %s here, %s there): replicate it (dhcpfo failover replicate --name %s)."
                    % (rel.name, hexlify(mine), hexlify(theirs), rel.name))
