# rescope.py - replace the scope part of a running node's configuration in
# one step: options, exclusions, reservations, policies, lease times, ranges,
# scopes added or removed (apply; the commands are mgmt/scopes.py).
#
# Everything is checked and built on the side first; only then is the node
# switched over, so a refused change leaves it exactly as it was.
#
# Lease tables are indexed by pool offset and log records carry (scope
# index, offset), so a change of ranges or of the scope list (the *layout*)
# moves addresses to new offsets. Bindings are carried over by address into
# new tables (an address with an ACTIVE binding that would leave every range
# refuses the change), and the turn's records start with a LAYOUT meta and a
# full dump of every binding in the new layout. Replay (runtime/store.py)
# clears the tables at a LAYOUT marker equal to the configuration's layout
# and skips bindings after one that is not, so whichever of the records and
# the configuration file a crash leaves behind, the bindings read back are
# in the layout of the file that was read.

from dhcpfo import ondemand
from dhcpfo.compat import ip_str
from dhcpfo.config import ConfigError, load
from dhcpfo.dhcp.scope import Scopes
from dhcpfo.lease import log as ll
from dhcpfo.lease import table as lt
from dhcpfo.lease.table import LeaseTable

ondemand.droppable(__name__)


class ScopeChangeError(ValueError):
    """A refused scope change; `errors` lists why. Nothing was changed."""

    def __init__(self, errors):
        super().__init__("; ".join(errors))
        self.errors = errors


def _spans(sc):
    return [(s, e) for b, c, s, e in sc.ranges()]


def _carry(old_sc, old_t, new_sc, errors):
    """A new table for new_sc holding old_t's bindings by address."""
    t = LeaseTable(new_sc.size)
    off = old_t.next_live(0)
    while off >= 0:
        addr = old_sc.addr_of(off)
        noff = new_sc.offset_of(addr)
        if noff >= 0:
            t.load_record(noff, bytes(old_t.record_bytes(off)), old_t.extra(off))
        elif old_t.state(off) == lt.ACTIVE:
            errors.append("scope %s: %s has an active lease and would be outside every range"
                          % (ip_str(new_sc.id), ip_str(addr)))
        off = old_t.next_live(off + 1)
    return t


def _owner(node, sid):
    for rel in node.relationships:
        if sid in rel.rc.scopes:
            return rel
    return None


def apply(node, doc, now, force=False):
    """Make `doc` (a whole compiled configuration document whose failover
    part is the node's own) the node's scope configuration; returns the ids
    (text) of scopes whose addresses moved (ranges, added, re-indexed).
    ScopeChangeError if refused."""
    try:
        cfg = load(doc)
    except ConfigError as e:
        raise ScopeChangeError(e.errors)
    new = Scopes(cfg)
    errors = []
    old_scopes = node.scopes
    for sc in old_scopes:
        if new.by_id(sc.id) is not None:
            continue
        rel = _owner(node, sc.id)
        if rel is not None:
            errors.append("scope %s is in failover relationship %s: remove it from the relationship first"
                          % (ip_str(sc.id), rel.name))
        elif node.tables[sc.index].count(lt.ACTIVE) and not force:
            errors.append("scope %s has %d active leases (force to remove it anyway)"
                          % (ip_str(sc.id), node.tables[sc.index].count(lt.ACTIVE)))
    tables = []
    moved = []  # ids of scopes whose offsets or index changed
    for sc in new:
        old = old_scopes.by_id(sc.id)
        if old is not None and old.index == sc.index and _spans(old) == _spans(sc):
            tables.append(node.tables[old.index])
            continue
        moved.append(sc.id)
        if old is None:
            tables.append(LeaseTable(sc.size))
        else:
            tables.append(_carry(old, node.tables[old.index], sc, errors))
    if errors:
        raise ScopeChangeError(errors)
    # -- switch over: nothing below refuses --
    out = node.out
    relaid = node.layout_bytes(cfg) != node.layout_bytes()
    hit = []  # relationships whose scopes moved: they resend what is in use
    for rel in node.relationships:
        if any(sid in moved for sid in rel.rc.scopes):
            from dhcpfo.failover import reconfig as rc
            for sc in list(rel.scopes):
                rc.remove_scope(rel, sc)
            for lk in list(rel.channel.links):  # in-flight updates name old offsets
                rel.drop(lk, now, out, "scope ranges changed: reconnecting to resend bindings")
            # what the updates queue and the holds list name by (scope index,
            # offset) is found again by table scans
            rel.updates.link_lost()
            rel.updates._queue = []
            rel.holds._held = []
            rel.holds.rescan()
            hit.append(rel)
    node.config.scopes = cfg.scopes
    node.config.server = cfg.server
    auth = dict((sc.id, node.server.authorities[sc.index]) for sc in old_scopes)
    old_scopes.list = new.list
    old_scopes._by_net = new._by_net
    old_scopes._masks = new._masks
    node.tables[:] = tables
    _server_rescoped(node.server, [auth.get(sc.id, node._standalone()) for sc in new])
    if node._by_index is not None:  # the lease store's map of log scope ids
        node._by_index.clear()
        for i in range(len(tables)):
            node._by_index[i] = tables[i]
    if relaid:
        out.records.append(layout_dump(node))
    for rel in node.relationships:
        scs = [old_scopes.by_id(sid) for sid in rel.rc.scopes]
        if rel in hit:
            from dhcpfo.failover import reconfig as rc
            for sc in scs:
                rc.add_scope(rel, sc, now, out)
        else:
            rel.scopes[:] = scs
            for sc in scs:
                rel.desired[sc.index] = sc.longest_lease
    node.doc = doc
    out.config = doc
    _digests_changed(node, now)
    return [ip_str(x) for x in moved]


def _server_rescoped(srv, authorities):
    """The DHCP server's per-scope state starts over for the new scope list
    (dhcp/server.py's lists by scope index); offers made so far are
    forgotten (a client whose offer is lost asks again)."""
    n = len(srv.tables)
    srv.authorities = authorities
    srv._offers = {}
    srv._offered = {}
    srv._cursor = [0] * n
    srv._expire_cursor = [0] * n
    srv._alarm = [0] * n
    srv._full = [False] * n
    srv._used = [0] * n
    srv._usable = [sc.size - sc.excluded_count() for sc in srv.scopes]


def _digests_changed(node, now):
    """Configuration digests are computed again, and a dhcpfo partner that
    is connected hears the new one in a STATE (failover/cfgdigest.py)."""
    for rel in node.relationships:
        if getattr(rel, "cfgd", None) is not None:
            rel.cfgd[1] = None
            if rel.channel.link is not None and rel.channel.partner_is_dhcpfo and node.started:
                rel.send_state(now, node.out)


def layout_dump(node):
    """The LAYOUT meta of the node's current layout, then every binding in
    it: what replay needs to rebuild the tables from here on."""
    buf = bytearray(ll.encode_meta(ll.LAYOUT_KEY, node.layout_bytes()))
    for si in range(len(node.tables)):
        t = node.tables[si]
        off = t.next_live(0)
        while off >= 0:
            buf += ll.encode_binding(si, off, t, True)
            off = t.next_live(off + 1)
    return bytes(buf)
