"""Counters of a node as Prometheus text exposition (format 0.0.4).

The board keeps plain numbers; naming, types and help texts live here on the
host, where they cost a board nothing. The seed's ten failover counters
become `dhcpfo_failover_*` series (rates per minute as gauges, transitions as
counters); every other node counter becomes `dhcpfo_events_total{name=...}`.
"""

# seed counter name -> (metric name, type, help)
FAILOVER = {
    "BindingUpdatesSentPerMin": ("dhcpfo_failover_binding_updates_sent_per_minute", "gauge",
                                 "Binding updates sent in the last complete minute"),
    "BindingAcksReceivedPerMin": ("dhcpfo_failover_binding_acks_received_per_minute", "gauge",
                                  "Binding acks received in the last complete minute"),
    "BindingUpdatesReceivedPerMin": ("dhcpfo_failover_binding_updates_received_per_minute", "gauge",
                                     "Binding updates received in the last complete minute"),
    "BindingAcksSentPerMin": ("dhcpfo_failover_binding_acks_sent_per_minute", "gauge",
                              "Binding acks sent in the last complete minute"),
    "PendingOutboundBindingUpdates": ("dhcpfo_failover_pending_outbound_binding_updates", "gauge",
                                      "Outbound binding updates queued or unacknowledged"),
    "TransitionsToCommunicationInterrupted": ("dhcpfo_failover_transitions_comm_interrupted_total", "counter",
                                              "Transitions into COMMUNICATIONS-INTERRUPTED"),
    "TransitionsToPartnerDown": ("dhcpfo_failover_transitions_partner_down_total", "counter",
                                 "Transitions into PARTNER-DOWN"),
    "TransitionsToRecover": ("dhcpfo_failover_transitions_recover_total", "counter",
                             "Transitions into RECOVER"),
    "UpdateQueueAt90Percent": ("dhcpfo_failover_update_queue_90_percent_total", "counter",
                               "Times the binding update queue reached 90 % of its maximum"),
    "BindingUpdatesDropped": ("dhcpfo_failover_binding_updates_dropped_total", "counter",
                              "Binding updates dropped from the full queue (sent later by a table scan)"),
}


def _label(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(node, counters, relationships):
    """Text for one node: `counters` is get-counters' answer, `relationships`
    get-failover's list (each with its own "performance")."""
    lines = []
    node_l = 'node="%s"' % _label(node)
    for key, (metric, kind, text) in FAILOVER.items():
        lines.append("# HELP %s %s" % (metric, text))
        lines.append("# TYPE %s %s" % (metric, kind))
        for rel in relationships:
            perf = rel.get("performance") or {}
            if key in perf:
                lines.append('%s{%s,relationship="%s"} %d' % (metric, node_l, _label(rel.get("name")), perf[key]))
    lines.append("# HELP dhcpfo_events_total Named node counters (packets by type, drops by reason, ...)")
    lines.append("# TYPE dhcpfo_events_total counter")
    for name in sorted(counters):
        lines.append('dhcpfo_events_total{%s,name="%s"} %d' % (node_l, _label(name), counters[name]))
    lines.append("# HELP dhcpfo_failover_state Failover state of each relationship (1 for the current one)")
    lines.append("# TYPE dhcpfo_failover_state gauge")
    for rel in relationships:
        lines.append('dhcpfo_failover_state{%s,relationship="%s",state="%s"} 1'
                     % (node_l, _label(rel.get("name")), _label(rel.get("state"))))
    return "\n".join(lines) + "\n"
