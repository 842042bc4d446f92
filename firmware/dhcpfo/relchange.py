# relchange.py - live changes to a running node's failover relationships:
# create, delete, add or remove scopes, change settings (the commands are
# mgmt/failover.py; failover/reconfig.py has the rules). Each call validates
# an edited copy of the configuration document first and raises
# ReconfigError, changing nothing, when a rule forbids it; else it applies
# the change and puts the new document in out.config (the driver writes it
# atomically after this turn's records), so a node built from that document
# and the records resumes as changed. Node's methods of the same names call
# these; the module is droppable (dhcpfo/ondemand.py): a board that is never
# reconfigured keeps this code off its heap.

from dhcpfo import ondemand
from dhcpfo.node import AMNESIA, SLOT_OWNER, SLOTS, _free_slot

ondemand.droppable(__name__)


def create_relationship(node, spec, now):
    from dhcpfo.failover import reconfig as rc
    new, cfg = rc.create(node._doc(), spec)
    rcf = cfg.relationship(spec.get("name"))
    used = [r.meta_key for r in node.relationships]
    if len(used) >= SLOTS:
        raise rc.ReconfigError(["at most %d relationships" % SLOTS])
    rel = node._add(rcf, _free_slot(used))
    _commit(node, new, cfg)
    node._claim(rel)
    # fresh records in the slot, whatever an earlier owner left there
    from dhcpfo.failover import meta
    rel.persist()
    node._log_meta(rel.meta_key + AMNESIA, meta.pack_amnesia(0, 0))
    for sc in rel.scopes:
        rc.send_in_use(rel, sc, node.out)  # what this node granted alone, the partner learns
    if node.started:
        rel.start(now, node.out)  # new: no saved state, learns everything from the partner
    from dhcpfo.failover import audit
    audit.created(node.events, now, rcf, node.config.server.server_id)
    return rel


def delete_relationship(node, name, now, force=False):
    from dhcpfo.failover import reconfig as rc
    rel = node.relationship(name)
    new, cfg = rc.delete(node._doc(), name, rel, force)
    for lk in list(rel.channel.links):
        node.out.close(lk.conn)
    for conn in [c for c in node._conns if node._conns[c] is rel]:
        del node._conns[conn]
    _unregister(node, rel)
    node._log_meta(SLOT_OWNER + rel.meta_key, bytes(20))  # the slot is free
    _commit(node, new, cfg)
    from dhcpfo.failover import audit
    audit.deleted(node.events, now, rel.rc, node.config.server.server_id)


def add_failover_scopes(node, name, scope_ids, now):
    from dhcpfo.failover import reconfig as rc
    rel = _existing(node, name)
    new, cfg = rc.add_scopes(node._doc(), name, scope_ids)
    _commit(node, new, cfg)
    rel.rc = cfg.relationship(name)
    added = []
    for sid in rel.rc.scopes:
        sc = node.scopes.by_id(sid)
        if sc is not None and sc not in rel.scopes:
            rc.add_scope(rel, sc, now, node.out)
            node.server.authorities[sc.index] = rel.authority
            added.append(sc.id)
    from dhcpfo.failover import audit
    audit.scopes_changed(node.events, now, rel.rc, added, True)


def remove_failover_scopes(node, name, scope_ids, now, force=False):
    from dhcpfo.failover import reconfig as rc
    rel = _existing(node, name)
    new, cfg = rc.remove_scopes(node._doc(), name, scope_ids, rel, force)
    _commit(node, new, cfg)
    rel.rc = cfg.relationship(name)
    removed = []
    for sc in list(rel.scopes):
        if sc.id not in rel.rc.scopes:
            rc.remove_scope(rel, sc)
            node.server.authorities[sc.index] = node._standalone()
            removed.append(sc.id)
    from dhcpfo.failover import audit
    audit.scopes_changed(node.events, now, rel.rc, removed, False)


def set_relationship(node, name, changes, now):
    from dhcpfo.failover import reconfig as rc
    rel = _existing(node, name)
    new, cfg = rc.set_options(node._doc(), name, changes)
    _commit(node, new, cfg)
    old = rel.rc
    rc.apply_settings(rel, cfg.relationship(name), changes, now, node.out)
    from dhcpfo.failover import audit
    audit.settings_changed(node.events, now, old, rel.rc)


def _existing(node, name):
    rel = node.relationship(name)
    if rel is None:
        from dhcpfo.failover.reconfig import ReconfigError
        raise ReconfigError(["no failover relationship named %r" % (name,)])
    return rel


def _commit(node, doc, cfg):
    node.doc = doc
    node.config.failover = cfg.failover
    node.out.config = doc
    for rel in node.relationships:
        if getattr(rel, "cfgd", None) is not None:
            rel.cfgd[1] = None  # its scopes may have changed


def _unregister(node, rel):
    if rel in node.relationships:
        node.relationships.remove(rel)
    for sc in rel.scopes:
        if node.server.authorities[sc.index] is rel.authority:
            node.server.authorities[sc.index] = node._standalone()
