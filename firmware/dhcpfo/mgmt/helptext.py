# mgmt/helptext.py - what `help` says of each command (mgmt/commands.py).
#
# Kept apart from the command table so the descriptions are on a board's
# heap only while `help` is answered (droppable, dhcpfo/ondemand.py).

from dhcpfo import ondemand

ondemand.droppable(__name__)

TEXT = {
    "help": "list commands",
    "status": "node summary: scopes, relationships, counters",
    "get-leases": "bindings of a scope, one page: {scope, state?, offset?, limit?} -> next",
    "get-scope-statistics": "Get-DhcpServerv4ScopeStatistics: {scope?, failover?}",
    "get-failover": "relationships (Get-DhcpServerv4Failover): {name? | scope?}",
    "set-failover-state": "{name, state: partner-down|shutdown|pause|resume}",
    "get-counters": "performance counters",
    "get-events": "recent events, newest first: {offset?, limit?, level?}",
    "add-failover": "new relationship (Add-DhcpServerv4Failover)",
    "remove-failover": "delete relationships (Remove-DhcpServerv4Failover)",
    "add-failover-scope": "Add-DhcpServerv4FailoverScope",
    "remove-failover-scope": "Remove-DhcpServerv4FailoverScope",
    "set-failover": "change a relationship (Set-DhcpServerv4Failover)",
    "get-server-info": "what the failover wizard checks",
    "help-scopes": "scopes, leases, configuration: commands and arguments",
}
