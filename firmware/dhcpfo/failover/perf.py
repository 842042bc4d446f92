# failover/perf.py - the seed's ten failover performance counters.
#
# Windows publishes these per server; we keep them per relationship (a node
# may have several) and the management surface sums them. Four are rates
# "per minute": the count over the last complete minute, so a reading does
# not depend on when in the minute it is taken. The others are running
# totals since start, or a gauge read when asked.
#
#   binding updates sent / acks received / updates received / acks sent, per minute
#   pending outbound binding updates (gauge: queued + in flight)
#   transitions into COMMUNICATIONS-INTERRUPTED, PARTNER-DOWN, RECOVER
#   times the update queue ran at 90 % of its maximum
#   binding updates dropped from the queue (they are still sent: a table
#   scan finds every PENDING binding; the count says the queue overflowed)

RATE_KEYS = ("bndupd_sent", "bndack_received", "bndupd_received", "bndack_sent")
MINUTE = 60


class PerMinute:
    """Per-minute rates of four running totals, from samples at tick time."""

    def __init__(self, stats, now=0):
        self.stats = stats  # the relationship's running totals (dict)
        self.start = now
        self.base = [0, 0, 0, 0]
        self.rates = [0, 0, 0, 0]

    def sample(self, now):
        """Called every tick: closes the minute when it is over."""
        if now < self.start:  # the caller's time went back: start a new minute
            self.start = now
        if now - self.start < MINUTE:
            return
        stale = now - self.start >= 2 * MINUTE  # no tick for a whole minute: nothing known for it
        st = self.stats
        for i in range(4):
            total = st[RATE_KEYS[i]]
            self.rates[i] = 0 if stale else total - self.base[i]
            self.base[i] = total
        self.start = now


NAMES = ("BindingUpdatesSentPerMin", "BindingAcksReceivedPerMin", "BindingUpdatesReceivedPerMin",
         "BindingAcksSentPerMin", "PendingOutboundBindingUpdates", "TransitionsToCommunicationInterrupted",
         "TransitionsToPartnerDown", "TransitionsToRecover", "UpdateQueueAt90Percent", "BindingUpdatesDropped")


def values(rel):
    """The ten counters of one relationship, in NAMES order."""
    st = rel.stats
    r = rel.perf.rates
    return [r[0], r[1], r[2], r[3], rel.updates.pending(), st["transitions_ci"], st["transitions_pd"],
            st["transitions_recover"], st["queue_90"], st["queue_dropped"]]


def counters(rels):
    """The ten counters under the seed's names, summed over `rels` (the
    seed's per-server view; pass one relationship in a list for its own)."""
    sums = [0] * len(NAMES)
    for rel in rels:
        v = values(rel)
        for i in range(len(NAMES)):
            sums[i] += v[i]
    return dict(zip(NAMES, sums))
