# failover/amnesia.py - storage loss: a relationship's horizons after this
# server or its partner lost its stable storage (draft-12 §9.5.2), and the
# first meeting that tells a new node from one that lost its storage.
#
# The horizons themselves are held in failover/holds.py (Holds.amnesia_*),
# which keeps expired addresses until they pass; this module sets, logs,
# restores and clears them. docs/failover.md, "New node or lost storage".

from dhcpfo.failover import meta
from dhcpfo.failover import states as S


def restore(rel, payload):
    """The horizons from the lease log's second META record."""
    h = rel.holds
    h.amnesia_until, h.partner_amnesia_until, h.amnesia_since, h.partner_amnesia_since = \
        meta.unpack_amnesia(payload)


def first_contact(rel, partner_state, now):
    """The first STATE on a new link. Tell a new node from one that lost
    its storage: both start with no saved state, but only the new one meets
    a partner that has no record of it either (a dhcpfo partner says so
    with FLAG_NEVER_MET; an ISC partner that is itself recovering is new
    too). A new node granted nothing, so nothing is held for it."""
    rel.knew_partner = rel.partner_state != S.UNKNOWN
    if rel.holds.amnesia_until and rel.saved is None and not rel.knew_partner:
        if rel.channel.partner_is_isc:
            new = partner_state in (S.RECOVER, S.RECOVER_WAIT, S.RECOVER_DONE)
        else:
            new = rel.partner_never_met
        if new:
            rel.holds.amnesia_until = 0
            rel.holds.amnesia_since = 0
            log(rel)
            rel.events.count("peer.first-contact")


def lost(rel, now, partner):
    """Leases granted before a storage loss (ours, or the partner's when
    `partner`) end within the longest lease time plus MCLT past the
    potential expiration anyone acknowledged: until then, expired
    addresses are held (failover/holds.py)."""
    horizon = 0
    for v in rel.desired.values():
        if v > horizon:
            horizon = v
    until = now + horizon + 2 * rel.mclt
    if partner:
        rel.holds.partner_amnesia_until = until
        rel.holds.partner_amnesia_since = now
    else:
        rel.holds.amnesia_until = until
        rel.holds.amnesia_since = now
    log(rel)


def log(rel):
    """The horizons as the relationship's second META record (durable with
    the turn's other records)."""
    h = rel.holds
    rel.log_meta(rel.meta_key + meta.AMNESIA_KEY, meta.pack_amnesia(
        h.amnesia_until, h.partner_amnesia_until, h.amnesia_since, h.partner_amnesia_since))
