# failover/meta.py - a relationship's durable state as lease-log META records.
#
# Two 20-byte payloads per relationship: the state record (key = the
# relationship's index) and the storage-loss horizons (key + AMNESIA_KEY).
# The driver appends them with the turn's other records, so a state change
# is durable before the partner or a client sees it.

import struct

AMNESIA_KEY = 64  # META key offset of a relationship's second record

# state, previous state, partner state, flags, then stos, partner stos,
# mclt, partner-down stos
_STATE = "!BBBBIIII"
F_PD_SEEN = 0x01  # saw the partner in PARTNER-DOWN while we were shut down
F_NEED_FULL = 0x02  # bindings not trusted (new or lost storage): UPDREQALL before serving
F_MET = 0x04  # we have talked to this partner at least once (a first contact is not a storage loss)


def pack_state(state, previous, partner_state, flags, stos, partner_stos, mclt, pd_stos):
    return struct.pack(_STATE, state, previous or 0, partner_state, flags, max(stos, 0),
                       max(partner_stos, 0), mclt, max(pd_stos, 0))


def unpack_state(payload):
    """(state, previous, partner state, flags, stos, partner stos, mclt, pd stos)."""
    return struct.unpack(_STATE, bytes(payload[:20]))


def pack_amnesia(until, partner_until):
    return struct.pack("!II", max(until, 0), max(partner_until, 0)) + bytes(12)


def unpack_amnesia(payload):
    return struct.unpack("!II", bytes(payload[:8]))
