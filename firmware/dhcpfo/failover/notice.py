# failover/notice.py - a relationship's state and contact events, worded as
# the seed's "Failover Event Logging" words them (event 20252, CommUp,
# CommDown). Resident: every transition and lost link emits one.

from dhcpfo import events as ev
from dhcpfo.compat import ip_str
from dhcpfo.failover import states as S


def state_event(rel, now, server, old, new, why):
    """Event 20252 for our own or the partner's transition (`server`: the
    address of the server whose state changed), at the seed's level: Error
    on leaving NORMAL or entering PARTNER-DOWN, Information on entering
    NORMAL, Warning otherwise. An unknown previous state (a new relationship,
    or the partner after a lost link) leaves out "from"."""
    if old == S.NORMAL or new == S.PARTNER_DOWN:
        level = ev.ERROR
    elif new == S.NORMAL:
        level = ev.INFO
    else:
        level = ev.WARN
    since = "" if old is None or old == S.UNKNOWN else " from " + S.name(old)
    rel.events.emit(now, level, ev.EV_STATE_CHANGE,
                    "The failover state of server %s for failover relationship %s changed%s to %s (%s)."
                    % (ip_str(server), rel.name, since, S.name(new), why))


def comm_event(rel, now, up, why=None):
    """CommUp (Information) / CommDown (Error), with the partner's address."""
    if up:
        rel.events.emit(now, ev.INFO, ev.EV_COMM_UP,
                        "Server has established contact with failover partner server %s for relationship %s."
                        % (ip_str(rel.partner_address), rel.name))
    else:
        rel.events.emit(now, ev.ERROR, ev.EV_COMM_DOWN,
                        "Server has lost contact with failover partner server %s for relationship %s (%s)."
                        % (ip_str(rel.partner_address), rel.name, why))
