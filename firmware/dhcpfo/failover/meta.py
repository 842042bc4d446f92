# failover/meta.py - a relationship's durable state as lease-log META records.
#
# Two 20-byte payloads per relationship: the state record (key = the
# relationship's index) and the storage-loss horizons (key + AMNESIA_KEY).
# The driver appends them with the turn's other records, so a state change
# is durable before the partner or a client sees it.

import struct

from dhcpfo.failover import states as S

AMNESIA_KEY = 64  # META key offset of a relationship's second record

# state, previous state, partner state, flags, then stos, partner stos,
# mclt, partner-down stos
_STATE = "!BBBBIIII"
F_PD_SEEN = 0x01  # saw the partner in PARTNER-DOWN while we were shut down
F_NEED_FULL = 0x02  # bindings not trusted (new or lost storage): UPDREQALL before serving
F_POOL_UNSURE = 0x04  # the partner may have allocated from our pool (PARTNER-DOWN) since the last resync


def pack_state(state, previous, partner_state, flags, stos, partner_stos, mclt, pd_stos):
    return struct.pack(_STATE, state, previous or 0, partner_state, flags, max(stos, 0),
                       max(partner_stos, 0), mclt, max(pd_stos, 0))


def unpack_state(payload):
    """(state, previous, partner state, flags, stos, partner stos, mclt, pd stos)."""
    return struct.unpack(_STATE, bytes(payload[:20]))


def pack_amnesia(until, partner_until, since=0, partner_since=0):
    """Each horizon with the time the loss was found (records written
    before the `since` fields existed read them as 0)."""
    return struct.pack("!IIII", max(until, 0), max(partner_until, 0),
                       max(since, 0), max(partner_since, 0)) + bytes(4)


def unpack_amnesia(payload):
    """(until, partner until, since, partner since)."""
    return struct.unpack("!IIII", bytes(payload[:16]))


def state_payload(rel):
    """The state record of relationship `rel`."""
    flags = ((F_PD_SEEN if rel.pd_seen else 0) | (F_NEED_FULL if rel.need_full else 0)
             | (F_POOL_UNSURE if rel.pool_unsure else 0))
    # the state held before PAUSED/SHUTDOWN is what a restart resumes (§9.13.1, §9.14.1)
    prev = rel.saved_previous if rel.state in (S.PAUSED, S.SHUTDOWN) and rel.saved_previous else 0
    st = rel.state if rel.state != S.STARTUP else (rel.previous or S.RECOVER)
    return pack_state(st, prev, rel.partner_state, flags, rel.stos, rel.partner_stos, rel.mclt, rel.pd_stos)


def restore_state(rel, payload):
    """Set `rel`'s durable fields from a replayed state record."""
    st, prev, pst, flags, stos, pstos, mclt, pd_stos = unpack_state(payload)
    if not S.is_state(st):
        rel.events.count("restore.bad-state")
        return
    rel.saved = st
    rel.saved_previous = prev if S.is_state(prev) and prev else None
    rel.stos = stos
    rel.partner_state = pst if S.is_state(pst) else S.UNKNOWN
    rel.partner_stos = pstos
    if mclt > 0:
        rel.mclt = mclt if not rel.primary else rel.rc.mclt
    rel.pd_stos = pd_stos
    rel.pd_seen = bool(flags & F_PD_SEEN)
    rel.need_full = bool(flags & F_NEED_FULL)
    rel.pool_unsure = bool(flags & F_POOL_UNSURE)


def forget(rel):
    """Back to the state of a relationship with nothing restored (its slot's
    records belonged to another relationship)."""
    rel.state = S.STARTUP
    rel.previous = None
    rel.stos = 0
    rel.partner_state = S.UNKNOWN
    rel.partner_stos = 0
    rel.pd_stos = 0
    rel.pd_seen = False
    rel.pool_unsure = False
    rel.saved = None
    rel.saved_previous = None
    rel.need_full = True
    rel.mclt = rel.rc.mclt
    rel.holds.amnesia_until = 0
    rel.holds.partner_amnesia_until = 0
    rel.holds.amnesia_since = 0
    rel.holds.partner_amnesia_since = 0
