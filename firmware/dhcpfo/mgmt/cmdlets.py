# mgmt/cmdlets.py - the read commands with the seed's parameter sets:
# Get-DhcpServerv4ScopeStatistics [-ScopeId] [-Failover] and
# Get-DhcpServerv4Failover [-Name] | -ScopeId. Imported for the request
# (mgmt/commands.py Commands._run) and dropped after it: a board's heap.
# Unknown names and scopes are non-terminating errors: listed under
# "errors" while the others are answered.

from dhcpfo import ondemand
from dhcpfo.lease import table as lt
from dhcpfo.mgmt.commands import CommandError, _scope_id

ondemand.droppable(__name__)


def _id_list(v):
    """A request argument that is one id or a list of them -> list, [] when absent."""
    if v is None:
        return []
    if type(v) is str:
        return [x for x in v.split(",") if x]
    if isinstance(v, list):
        return v
    raise CommandError("give one value or a list")


def get_scope_statistics(cmds, req, now):
    """Get-DhcpServerv4ScopeStatistics [-ScopeId] [-Failover]: the seed's
    fields (its names); the failover ones are 0 unless `failover` is true
    and the scope is in a relationship. An unknown scope id is a
    non-terminating error. The snake_case keys are the older form."""
    fo = req.get("failover", False)
    if type(fo) is not bool:
        raise CommandError("failover must be true or false")
    errors = []
    scopes = []
    for sid in _id_list(req.get("scope")):
        sc = cmds._scope({"scope": sid}, errors)
        if sc is not None and sc not in scopes:
            scopes.append(sc)
    if not scopes and not errors:
        scopes = list(cmds.node.scopes)
    out = []
    for sc in scopes:
        t = cmds.node.tables[sc.index]
        usable = sc.size - sc.excluded_count()
        in_use = t.count(lt.ACTIVE)
        row = {"ScopeId": _scope_id(sc), "SuperscopeName": "", "AddressesFree": usable - in_use,
               "AddressesInUse": in_use, "PendingOffers": cmds.node.server.pending_offers(sc.index, now),
               "ReservedAddresses": sc.reserved_count(),
               "PercentageInUse": (10000 * in_use // usable) / 100 if usable else 0.0,
               "AddressesFreeOnThisServer": 0, "AddressesFreeOnPartnerServer": 0,
               "AddressesInUseOnThisServer": 0, "AddressesInUseOnPartnerServer": 0,
               "scope": _scope_id(sc), "name": sc.name, "addresses": usable, "in_use": in_use,
               "free": usable - in_use, "percent_in_use": (100 * in_use // usable) if usable else 0,
               "free_primary": t.count(lt.FREE), "free_backup": t.count(lt.BACKUP)}
        auth = cmds.node.server.authorities[sc.index]
        if getattr(auth, "failover", False):
            st = auth.scope_statistics(sc, now)
            row.update(st)
            if fo:
                row["AddressesFreeOnThisServer"] = st["free_this_server"]
                row["AddressesFreeOnPartnerServer"] = st["free_partner_server"]
                row["AddressesInUseOnThisServer"] = st["in_use_this_server"]
                row["AddressesInUseOnPartnerServer"] = st["in_use_partner_server"]
        out.append(row)
    return {"scopes": out, "errors": errors}

def get_failover(cmds, req, now):
    """Get-DhcpServerv4Failover [-Name] | -ScopeId: every relationship, or
    those named (an unknown name is a non-terminating error: the others
    are still returned), or those serving the scopes given (a scope in
    none is a non-terminating error)."""
    names = _id_list(req.get("name"))
    sids = _id_list(req.get("scope"))
    if names and sids:
        raise CommandError("give name or scope, not both (two parameter sets)")
    rels = cmds.node.relationships
    errors = []
    if names:
        rels = []
        for n in names:
            r = cmds.node.relationship(n) if type(n) is str else None
            if r is None:
                errors.append("no failover relationship named %s" % (n,))
            elif r not in rels:
                rels.append(r)
    elif sids:
        rels = []
        for sid in sids:
            sc = cmds._scope({"scope": sid}, errors)
            if sc is None:
                continue
            r = cmds.node.server.authorities[sc.index]
            r = getattr(r, "rel", None)
            if r is None:
                errors.append("scope %s is not part of any failover relationship" % _scope_id(sc))
            elif r not in rels:
                rels.append(r)
    return {"relationships": [r.status(now) for r in rels], "errors": errors}
