# failover/pool.py - pool balance between FREE (primary) and BACKUP (secondary)
# addresses (draft-12 §5.4; ISC's primary sends BACKUP leases, a short
# secondary sends POOLREQ).

from dhcpfo.failover import states as S
from dhcpfo.lease import log as ll
from dhcpfo.lease import table as lt
from dhcpfo.wire import failover as fw

SLACK_DIV = 50  # misbalance tolerated before moving any: 1/50 (2 %) of the pool


def balance(rel, now, out, force=False):
    """Move available addresses towards the configured split. The side
    with too many gives addresses away (it changes its copy first, so no
    address is ever available to both). Returns how many moved."""
    if rel.state != S.NORMAL or rel.link is None:
        return 0
    moved = 0
    short = False
    mine = rel._own_status()
    theirs = rel._partner_status()
    for sc in rel.scopes:
        t = rel.tables[sc.index]
        free = t.count(lt.FREE)
        backup = t.count(lt.BACKUP)
        total = free + backup
        target_backup = total * rel.backup_share // 100
        have = free if rel.primary else backup
        want = (total - target_backup) if rel.primary else target_backup
        excess = have - want
        if -excess > total // SLACK_DIV:
            short = True
        if excess <= total // SLACK_DIV and not (force and excess > 0):
            continue
        off = t.next_in_state(mine, 0)
        while off >= 0 and excess > 0:
            nxt = t.next_in_state(mine, (off + 1) % t.size)
            if (not sc.is_excluded(off) and not sc.is_reserved(off) and not t.flags(off) & lt.MARK
                    and not rel.is_offered(sc.index, off, now)):
                t.set_state(off, theirs, now)
                t.set_flags(off, t.flags(off) | lt.PENDING)
                rel._enqueue(sc.index, off)
                out.records.append(ll.encode_binding(sc.index, off, t))
                excess -= 1
                moved += 1
            if nxt <= off:
                break
            off = nxt
    if moved:
        rel.stats["pool_moved"] += moved
    if short and not rel.primary and not force:
        # ask the primary to rebalance now (draft-12 §7.4; ISC answers POOLREQ at once)
        rel._send(rel.link, fw.make_poolreq(rel._next_xid(), now), now, out)
        rel.events.count("peer.poolreq-sent")
    return moved
