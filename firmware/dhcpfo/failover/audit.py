# failover/audit.py - the seed's configuration audit events.
#
# Every live change to a relationship (node.py's reconfiguration calls) is
# logged at Information level with the seed's opcode and wording, so an
# admin sees who-changed-what the way the Windows operational channel shows
# it: CreateFailover, DeleteFailover, AddFailoverScope, RemoveFailoverScope,
# ChangeFailoverConfig (one event per changed parameter, old and new value).
# A shared secret's value is never logged, only that it changed.
# Loaded only when a change is made.

from dhcpfo import events as ev
from dhcpfo.compat import ip_str


def created(events, now, rc, server_id):
    if rc.mode == "load-balance":
        share = "Load Balance percentage on this server: %d%%" % rc.load_balance_percent
        standby = ""
    else:
        share = "Reserve Address percentage on standby server: %d%%" % (rc.reserve_percent or 0)
        standby = " Standby server: %s" % (
            ip_str(server_id) if rc.hot_standby_role == "standby" else ip_str(rc.partner_address))
    events.emit(now, ev.INFO, ev.EV_CREATE_FAILOVER,
                "CreateFailover: A failover relationship has been created between servers %s and %s with the "
                "following configuration parameters: Name: %s Mode: %s, Maximum Client Lead Time: %d seconds, "
                "%s, Auto state switchover interval %s%s"
                % (ip_str(server_id), ip_str(rc.partner_address), rc.name,
                   "Load Balance" if rc.mode == "load-balance" else "Hot Standby", rc.mclt, share,
                   ("%d seconds" % rc.auto_state_switchover) if rc.auto_state_switchover else "off", standby))


def deleted(events, now, rc, server_id):
    events.emit(now, ev.INFO, ev.EV_DELETE_FAILOVER,
                "DeleteFailover: Failover relationship %s between %s and %s has been deleted"
                % (rc.name, ip_str(server_id), ip_str(rc.partner_address)))


def scopes_changed(events, now, rc, scope_ids, added):
    for sid in scope_ids:
        if added:
            events.emit(now, ev.INFO, ev.EV_ADD_FAILOVER_SCOPE,
                        "AddFailoverScope: Scope %s has been added to the failover relationship %s with server %s"
                        % (ip_str(sid), rc.name, ip_str(rc.partner_address)))
        else:
            events.emit(now, ev.INFO, ev.EV_REMOVE_FAILOVER_SCOPE,
                        "RemoveFailoverScope: Scope %s has been removed from the failover relationship %s "
                        "with server %s" % (ip_str(sid), rc.name, ip_str(rc.partner_address)))


# (attribute, the seed's parameter name, unit)
_PARAMS = (
    ("mode", "Mode", ""),
    ("mclt", "MCLT", " seconds"),
    ("auto_state_switchover", "Auto State switchover interval", " seconds"),
    ("load_balance_percent", "Load Balance percentage", ""),
    ("reserve_percent", "Reserve Address Percentage on standby server", ""),
    ("max_unacked", "Maximum unacknowledged updates", ""),
    ("max_response_delay", "Maximum response delay", " seconds"),
    ("load_balance_max_seconds", "Load balance max seconds", " seconds"),
)


def _text(v, unit):
    if v is None:
        return "off"
    return "%s%s" % (v, unit)


def settings_changed(events, now, old, new):
    """One ChangeFailoverConfig event per parameter that differs between
    relationship configurations `old` and `new`."""
    where = "for failover relationship %s with server %s" % (new.name, ip_str(new.partner_address))
    for attr, label, unit in _PARAMS:
        a, b = getattr(old, attr), getattr(new, attr)
        if a == b:
            continue
        if attr == "load_balance_percent" and new.mode != "load-balance":
            continue
        if attr == "reserve_percent" and new.mode == "load-balance":
            continue
        tail = " on this server" if attr == "load_balance_percent" else ""
        events.emit(now, ev.INFO, ev.EV_CHANGE_FAILOVER_CONFIG,
                    "ChangeFailoverConfig: The failover configuration parameter %s %s has been changed from %s "
                    "to %s%s" % (label, where, _text(a, unit), _text(b, unit), tail))
    if (old.shared_secret, old.enable_authentication) != (new.shared_secret, new.enable_authentication):
        events.emit(now, ev.INFO, ev.EV_CHANGE_FAILOVER_CONFIG,
                    "ChangeFailoverConfig: The failover configuration parameter Message authentication %s has been "
                    "changed from %s to %s (shared secret %s)"
                    % (where, "on" if old.enable_authentication and old.shared_secret else "off",
                       "on" if new.enable_authentication and new.shared_secret else "off",
                       "changed" if old.shared_secret != new.shared_secret else "unchanged"))
