# mgmt/serverinfo.py - "get-server-info": what the Configure Failover wizard
# (host_tools/dhcpfo_host/wizard.py) must know about a node before it changes
# anything: version, clock and its permissible difference, how many
# relationships there are and may be, each relationship's settings (never its
# secret) and each scope with a digest of its whole configuration, so two
# nodes' scopes compare as identical or not without sending every field.
# Imported on first use: a board that is never asked keeps it off its heap.

from dhcpfo import ondemand
from dhcpfo import VERSION
from dhcpfo.compat import crc32, ip_str, json_dumps, to_unix
from dhcpfo.config import MAX_RELATIONSHIPS

ondemand.droppable(__name__)

PROTOCOL = "draft-ietf-dhc-failover-12"


def scope_digest(entry):
    """A scope's configuration digest, the same on every node and runtime (the wizard
    compares the two nodes' with it)."""
    # compat.json_dumps is canonical (sorted keys, same bytes on both runtimes)
    return "%08x" % crc32(json_dumps(entry).encode())


def server_info(node, now):
    doc = None
    try:
        doc = node._doc()
    except ValueError:  # a node built without its document: digests unknown
        pass
    docs = dict((d.get("id"), d) for d in (doc or {}).get("scopes", ()))
    owner = {}
    rels = []
    for d in (doc or {}).get("failover", ()):
        r = dict((k, v) for k, v in d.items() if k != "shared_secret")
        r["authentication"] = d.get("shared_secret") is not None
        rels.append(r)
        for sid in d.get("scopes") or ():
            owner[sid] = d.get("name")
    scopes = []
    for sc in node.scopes:
        sid = ip_str(sc.network)
        entry = docs.get(sid)
        scopes.append({"scope": sid, "name": sc.name, "prefix": sc.prefix, "active": sc.active,
                       "bootp": bool(entry.get("bootp")) if entry else None,
                       "relationship": owner.get(sid), "digest": scope_digest(entry) if entry else None})
    s = node.config.server
    return {"name": s.name, "server_id": ip_str(s.server_id) if s.server_id else None, "version": VERSION,
            "failover": PROTOCOL, "time": None if node.time.offset is None else to_unix(node.time.wall(now)), "time_skew_max": s.time_skew_max,
            "serving": node.started, "relationship_count": len(node.relationships),
            "max_relationships": MAX_RELATIONSHIPS, "relationships": rels, "scopes": scopes}
