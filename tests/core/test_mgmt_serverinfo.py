"""get-server-info (mgmt/serverinfo.py): what the Configure Failover wizard
compares between two nodes. Read-only (the user role may ask), never the
shared secret, and a scope digest that is equal for the same configuration
on both nodes and changes with any field of it."""

from dhcpfo import config
from dhcpfo.compat import to_unix
from dhcpfo.mgmt.commands import Commands
from dhcpfo.node import Node
from pairlink import Pair, pair_doc


def _info(node, now=1000, role="user"):
    ans = Commands(node).handle({"cmd": "get-server-info"}, now, role)
    assert ans["ok"], ans
    return ans


def test_server_info_of_a_pair():
    p = Pair(secret="s3cret-s3cret")
    a, b = _info(p.a.node, p.now), _info(p.b.node, p.now)
    assert a["time"] == to_unix(p.now) and a["time_skew_max"] == 60
    assert a["relationship_count"] == 1 and a["max_relationships"] == 31
    assert a["serving"] == p.a.node.started
    ra, rb = a["relationships"][0], b["relationships"][0]
    assert "shared_secret" not in ra and ra["authentication"] and rb["authentication"]
    assert (ra["role"], rb["role"]) == ("primary", "secondary")
    assert ra["local_address"] == rb["partner_address"] and ra["partner_address"] == rb["local_address"]
    sa, sb = a["scopes"][0], b["scopes"][0]
    assert sa["relationship"] == ra["name"] and sa["active"] and sa["bootp"] is False
    assert len(sa["digest"]) == 8 and sa["digest"] == sb["digest"]


def test_the_scope_digest_follows_the_configuration():
    one = _info(Node(config.load(pair_doc("primary")), doc=pair_doc("primary")))["scopes"][0]["digest"]
    doc = pair_doc("primary", lease=900)
    other = _info(Node(config.load(doc), doc=doc))["scopes"][0]["digest"]
    assert one != other
    doc = pair_doc("primary")
    bare = _info(Node(config.load(doc)))  # no document kept: digests unknown, the rest answered
    assert bare["scopes"][0]["digest"] is None and bare["relationships"] == []
