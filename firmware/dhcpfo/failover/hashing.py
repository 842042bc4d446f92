# failover/hashing.py - RFC 3074 load balancing, with ISC dhcpd's bucket meaning.
#
# A client's key (the client-identifier option 61 if present, else chaddr
# for hlen bytes, without htype; draft §9.8.2) hashes to a bucket 0..255.
# The 32-byte hash bucket assignment (HBA, failover option 11) says which
# server serves each bucket in NORMAL state.
#
# Bucket meaning follows ISC, not draft §12.11 (interop §6.3): a SET bit
# means the PRIMARY serves the bucket, a clear bit the secondary. Bit order
# is ISC's: bucket b is byte b >> 3, mask 1 << (b & 7) (least significant
# bit first). ISC's `split N` sets buckets 0..N-1, so split 128 is
# ff*16 00*16, which is what ISC's CONNECT carries.

from dhcpfo.compat import const

HBA_LEN = const(32)
BUCKETS = const(256)

# RFC 3074 §6 mixing table: 256 distinct values in pseudo-random order (the
# same numbers are in ISC dhcpd's and Kea's sources).
MIX = bytes((
    251, 175, 119, 215, 81, 14, 79, 191, 103, 49, 181, 143, 186, 157, 0, 232,
    31, 32, 55, 60, 152, 58, 17, 237, 174, 70, 160, 144, 220, 90, 57, 223,
    59, 3, 18, 140, 111, 166, 203, 196, 134, 243, 124, 95, 222, 179, 197, 65,
    180, 48, 36, 15, 107, 46, 233, 130, 165, 30, 123, 161, 209, 23, 97, 16,
    40, 91, 219, 61, 100, 10, 210, 109, 250, 127, 22, 138, 29, 108, 244, 67,
    207, 9, 178, 204, 74, 98, 126, 249, 167, 116, 34, 77, 193, 200, 121, 5,
    20, 113, 71, 35, 128, 13, 182, 94, 25, 226, 227, 199, 75, 27, 41, 245,
    230, 224, 43, 225, 177, 26, 155, 150, 212, 142, 218, 115, 241, 73, 88, 105,
    39, 114, 62, 255, 192, 201, 145, 214, 168, 158, 221, 148, 154, 122, 12, 84,
    82, 163, 44, 139, 228, 236, 205, 242, 217, 11, 187, 146, 159, 64, 86, 239,
    195, 42, 106, 198, 118, 112, 184, 172, 87, 2, 173, 117, 176, 229, 247, 253,
    137, 185, 99, 164, 102, 147, 45, 66, 231, 52, 141, 211, 194, 206, 246, 238,
    56, 110, 78, 248, 63, 240, 189, 93, 92, 51, 53, 183, 19, 171, 72, 50,
    33, 104, 101, 69, 8, 252, 83, 120, 76, 135, 85, 54, 202, 125, 188, 213,
    96, 235, 136, 208, 162, 129, 190, 132, 156, 38, 47, 1, 7, 254, 24, 4,
    216, 131, 89, 21, 28, 133, 37, 153, 149, 80, 170, 68, 6, 169, 234, 151,
))


class HashError(ValueError):
    """Bad HBA or split value; reason is a short fixed string."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def client_hash(key):
    """RFC 3074 Pearson hash of key bytes -> bucket 0..255.

    Starts from the key length (mod 256) and folds the bytes in from last
    to first, as RFC 3074's reference code and ISC's loadb_p_hash do.
    """
    h = len(key) & 0xFF
    i = len(key)
    mix = MIX
    while i > 0:
        i -= 1
        h = mix[h ^ key[i]]
    return h


def hba_split(n):
    """HBA with buckets 0..n-1 set (ISC's `split n`, 0 <= n <= 256)."""
    if type(n) is not int or n < 0 or n > BUCKETS:
        raise HashError("bad-split")
    b = bytearray(HBA_LEN)
    full = n >> 3
    for i in range(full):
        b[i] = 0xFF
    if n & 7:
        b[full] = (1 << (n & 7)) - 1
    return bytes(b)


def hba_for_percent(pct_primary):
    """HBA giving the primary pct_primary % (0..100) of the buckets, rounded.

    50 -> split 128 -> ff*16 00*16, the same bytes as ISC's `split 128`.
    """
    if type(pct_primary) is not int or pct_primary < 0 or pct_primary > 100:
        raise HashError("bad-percent")
    return hba_split((pct_primary * BUCKETS + 50) // 100)


def check_hba(hba):
    """Raise HashError unless hba is a 32-byte assignment."""
    if not isinstance(hba, (bytes, bytearray)) or len(hba) != HBA_LEN:
        raise HashError("bad-hba")
    return hba


def in_buckets(hba, h):
    """True when bucket h is set in hba (i.e. the primary serves it)."""
    return (hba[h >> 3] >> (h & 7)) & 1 == 1


def primary_share(hba):
    """Number of buckets (0..256) the primary serves."""
    n = 0
    for byte in hba:
        while byte:
            n += byte & 1
            byte >>= 1
    return n


def serves(hba, key, primary):
    """NORMAL-state load balancing: does this server answer the client with this key?"""
    hit = in_buckets(hba, client_hash(key))
    return hit if primary else not hit
