# failover/pool.py - pool balance between FREE (primary) and BACKUP (secondary)
# addresses (draft-12 §5.4; ISC's primary sends BACKUP leases, a short
# secondary sends POOLREQ).

from dhcpfo.lease import log as ll
from dhcpfo.lease import table as lt

SLACK_DIV = 50  # misbalance tolerated before moving any: 1/50 (2 %) of the pool


def own_status(primary):
    """The binding state of addresses a server may allocate (§5.4)."""
    return lt.FREE if primary else lt.BACKUP


def partner_status(primary):
    return lt.BACKUP if primary else lt.FREE


def shortfall(scopes, tables, primary, backup_share):
    """True when this server holds fewer than half the available addresses
    its share gives it in some scope (a reason for a secondary to send
    POOLREQ; a smaller misbalance the periodic balance settles)."""
    for sc in scopes:
        have, want, total = _have_want(tables[sc.index], primary, backup_share)
        if 2 * have < want and want - have > total // SLACK_DIV:
            return True
    return False


def _have_want(t, primary, backup_share):
    """(addresses this server holds, how many its share gives it, all available) in table t."""
    free = t.count(lt.FREE)
    backup = t.count(lt.BACKUP)
    total = free + backup
    target_backup = total * backup_share // 100
    if primary:
        return free, total - target_backup, total
    return backup, target_backup, total


def balance(scopes, tables, primary, backup_share, is_offered, enqueue, now, out, force=False, limit=-1):
    """Move available addresses towards the configured split. The side
    with too many gives addresses away (it changes its copy first, so no
    address is ever available to both); each moved binding goes to
    `enqueue(si, off)` for the partner. At most `limit` move (-1: no
    limit): the caller moves no more than its update queue takes and goes
    on once it drained. Returns how many moved."""
    moved = 0
    mine = own_status(primary)
    theirs = partner_status(primary)
    for sc in scopes:
        t = tables[sc.index]
        have, want, total = _have_want(t, primary, backup_share)
        excess = have - want
        if excess <= total // SLACK_DIV and not (force and excess > 0):
            continue
        off = t.next_in_state(mine, 0)
        while off >= 0 and excess > 0 and moved != limit:
            nxt = t.next_in_state(mine, (off + 1) % t.size)
            if (not sc.is_excluded(off) and not sc.is_reserved(off) and not t.flags(off) & lt.MARK
                    and not is_offered(sc.index, off, now)):
                t.set_state(off, theirs, now)
                t.set_flags(off, t.flags(off) | lt.PENDING)
                enqueue(sc.index, off)
                out.records.append(ll.encode_binding(sc.index, off, t))
                excess -= 1
                moved += 1
            if nxt <= off:
                break
            off = nxt
    return moved
