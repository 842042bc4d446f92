# failover/admin.py - what an operator may ask of a relationship (its
# status report is failover/report.py).
#
# The requests are the draft's administrative events (partner-down §9.8.4,
# §9.9.3, §9.11.3; shutdown §9.14; pause §9.13) fed to states.py, with the
# checks that keep an operator from causing duplicate addresses. Operator
# paths only: loaded for a management request and dropped after it
# (dhcpfo/ondemand.py); the relationship's events are in notice.py.

from dhcpfo import ondemand
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
