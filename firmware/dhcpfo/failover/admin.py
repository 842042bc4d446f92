# failover/admin.py - what an operator may ask of a relationship, and its status.
#
# The requests are the draft's administrative events (partner-down §9.8.4,
# §9.9.3, §9.11.3; shutdown §9.14; pause §9.13) fed to states.py, with the
# checks that keep an operator from causing duplicate addresses. Operator
# paths only: loaded for a management request and dropped after it
# (dhcpfo/ondemand.py); the relationship's events are in notice.py.

from dhcpfo import ondemand
from dhcpfo.compat import ip_str
from dhcpfo.config import UNRESOLVED
from dhcpfo.failover import hashing
from dhcpfo.failover import perf
from dhcpfo.failover import states as S

ondemand.droppable(__name__)


def request(rel, what, now, out):
    if what == "partner-down":
        if rel.state not in (S.COMM_INTERRUPTED, S.RESOLUTION_INTERRUPTED, S.NORMAL):
            raise ValueError("partner-down is only possible from communication-interrupted "
                             "or resolution-interrupted (now %s)" % S.name(rel.state))
        if rel.channel.link is not None:
            raise ValueError("the partner is connected; partner-down would risk duplicate addresses")
        rel.event(S.EV_ADMIN_PARTNER_DOWN, now, out, "administrator")
    elif what == "shutdown":
        rel.event(S.EV_SHUTDOWN, now, out, "administrator: planned shutdown, partner takes over")
    elif what == "pause":
        rel.event(S.EV_PAUSE, now, out, "administrator")
    elif what == "resume":
        if rel.state not in (S.PAUSED, S.SHUTDOWN):
            raise ValueError("resume applies to paused or shutdown (now %s)" % S.name(rel.state))
        prev = rel.saved_previous
        rel.previous = S.startup_previous(prev, rel.pd_seen)
        rel.pd_seen = False
        rel.set_state(S.STARTUP, now, out, "administrator: resume")
        rel.started_at = now
        if rel.channel.link is not None and rel.partner_state != S.UNKNOWN:
            rel.event(S.EV_COMM_UP, now, out, "resume with partner %s" % S.name(rel.partner_state),
                  partner_state=rel.partner_state,
                  partner_down_newer=rel.partner_state == S.PARTNER_DOWN)
    else:
        raise ValueError("unknown state request %r: use partner-down, shutdown, pause or resume" % (what,))


def summary(rel):
    """What `status` shows of a relationship: a line of it (the node's
    `status` with 31 relationships in full was ~37 KB, more than a board's
    heap can build and encode; get-failover has the rest, by name)."""
    return {
        "name": rel.name,
        "state": S.name(rel.state),
        "partner_state": S.name(rel.partner_state),
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
