# failover/report.py - what a relationship reports of itself: the status
# row of management's `status` and `get-failover` (the seed's
# Get-DhcpServerv4Failover fields). Loaded for a management request and
# dropped after it (dhcpfo/ondemand.py), apart from failover/admin.py so a
# status read does not load the operator's state requests.

from dhcpfo import ondemand
from dhcpfo.compat import ip_str
from dhcpfo.config import UNRESOLVED
from dhcpfo.failover import hashing
from dhcpfo.failover import perf
from dhcpfo.failover import states as S

ondemand.droppable(__name__)


def summary(rel):
    """What `status` shows of a relationship: a line of it (the node's
    `status` with 31 relationships in full was ~37 KB, more than a board's
    heap can build and encode; get-failover has the rest, by name)."""
    return {
        "name": rel.name,
        "state": S.name(rel.state),
        "partner_state": S.name(rel.partner_state),
        # a partner named by host name has no address until the driver resolved it
        "partner": None if rel.partner_address == UNRESOLVED else ip_str(rel.partner_address),
        "partner_server": getattr(rel.rc, "partner_host", None) or ip_str(rel.partner_address),
        "connected": rel.channel.link is not None,
    }


def status(rel, now):
    share = (hashing.primary_share(rel.hba) * 100 + 128) // 256  # rounded, as hba_for_percent rounds
    drift = (None, None, None)
    if rel.cfgd is not None:
        from dhcpfo.failover import cfgdigest
        drift = cfgdigest.status(rel)
    st = summary(rel)
    st.update({
        "role": "primary" if rel.primary else "secondary",
        "mode": rel.rc.mode,
        "state_since": rel.stos,
        "mclt": rel.mclt,
        "load_balance_percent": share if rel.primary else 100 - share,
        "reserve_percent": rel.rc.reserve_percent,
        "auto_state_switchover": rel.safe_period or None,
        "authentication": rel.channel.key is not None,
        # the seed's TimeOutOfSync: the partner's clock is off by more than permitted
        "time_out_of_sync": rel.clockdiff.out, "clock_difference": rel.clockdiff.last,
        "time_skew_max": rel.clockdiff.skew_max,
        "pending_updates": len(rel.updates.inflight),
        "scopes": [ip_str(sc.network) for sc in rel.scopes],
        # configuration drift (failover/cfgdigest.py): None when not compared
        # (no dhcpfo partner has sent its digest, or no document to digest)
        "config_digest": drift[0],
        "partner_config_digest": drift[1],
        "config_drift": drift[2],
        "counters": dict(rel.stats),
        "performance": perf.counters([rel]),
    })
    return st
