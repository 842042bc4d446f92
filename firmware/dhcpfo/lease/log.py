# lease/log.py - durable lease log records, sans-I/O (bytes in, bytes out).
"""Append-only log of fixed-size records with a CRC, and snapshots.

Every record is 28 bytes, so a torn write after a crash is a short or
CRC-failing tail that replay ignores (draft-12 §5.2.1 / I4 durability: a
DHCPACK or BNDACK leaves only after its record is on flash):

    0      kind     u8   BINDING EXTRA META SNAP_BEGIN SNAP_END LOG_BEGIN
    1      scope    u8   scope id (META: the key)
    2..3   offset   u16  address offset in the scope (META: payload length)
    4..23  payload  20 B BINDING: the table record (lease/table.py layout)
                         EXTRA: 20-byte chunk of table.extra() side data
                         META: small named state of the engine, zero padded
                         markers: generation u32, record count u32, zeros
    24..27 crc32    u32  compat.crc32 of bytes 0..23, big-endian

A binding whose client id is not 0x01+mac (or whose hardware is not
Ethernet) carries that side data in EXTRA records written just before its
BINDING record, in the same append, so they apply together or not at all.
In the log this happens only when the side data changed (a BINDING without
EXTRA keeps what replay already holds); snapshots always include it.

Reading records back (replay, stopping at a torn tail) is boot-only code
in lease/replay.py, loaded on demand.

A snapshot file is SNAP_BEGIN(gen), the metas, every non-default binding,
SNAP_END(gen, records in between); it is whole only if SNAP_END matches.
A log file starts with LOG_BEGIN(gen) naming the snapshot it extends, so a
log left over from before a compaction (older gen) is recognised and skipped.

Flash cost: 28 bytes per binding change, plus compaction: with the log
compacted when it exceeds `factor` x the live snapshot, at most 28/factor
more per change (default factor 10: <= 30.8 bytes per change), plus 28 per
EXTRA record when a client with an odd client id first binds.
"""

from dhcpfo.compat import const, crc32

RECORD = const(28)
PAYLOAD = const(20)

BINDING = const(1)
EXTRA = const(2)
META = const(3)
SNAP_BEGIN = const(4)
SNAP_END = const(5)
LOG_BEGIN = const(6)

# META key of the LAYOUT marker: 4 bytes naming the scope layout the
# bindings after it use (Node.layout_bytes; written when scopes or ranges
# change, rescope.py). Replay clears the tables at a marker naming the
# configuration's layout and skips bindings after one that does not.
LAYOUT_KEY = const(250)

MAX_UNIT = const(16)  # records of the largest binding (14 EXTRA + BINDING) rounded up


class LogError(ValueError):
    """Bad argument to a log encoder; args[0] is a short fixed reason."""


def _seal(buf, p):
    c = crc32(memoryview(buf)[p : p + 24])
    buf[p + 24] = (c >> 24) & 255
    buf[p + 25] = (c >> 16) & 255
    buf[p + 26] = (c >> 8) & 255
    buf[p + 27] = c & 255


def crc_ok(b, p):
    c = crc32(memoryview(b)[p : p + 24])
    return (
        b[p + 24] == (c >> 24) & 255
        and b[p + 25] == (c >> 16) & 255
        and b[p + 26] == (c >> 8) & 255
        and b[p + 27] == c & 255
    )


def _head(buf, p, kind, a, n):
    buf[p] = kind
    buf[p + 1] = a
    buf[p + 2] = n >> 8
    buf[p + 3] = n & 255


def get32(b, p):
    return (b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]


def _put32(b, p, v):
    b[p] = (v >> 24) & 255
    b[p + 1] = (v >> 16) & 255
    b[p + 2] = (v >> 8) & 255
    b[p + 3] = v & 255


def _nrec(ext):
    if not ext:
        return 1
    return 1 + (len(ext) + PAYLOAD - 1) // PAYLOAD


def binding_records(table, offset):
    """Records a full encoding of this binding takes (as in a snapshot)."""
    return _nrec(table.extra(offset))


def _binding_into(buf, pos, scope, offset, table, ext):
    if not isinstance(scope, int) or scope < 0 or scope > 255:
        raise LogError("scope")
    if not isinstance(offset, int) or offset < 0 or offset > 65535:
        raise LogError("offset")
    rec = table.record_bytes(offset)
    p = pos
    if ext:
        n = len(ext)
        for k in range(0, n, PAYLOAD):
            _head(buf, p, EXTRA, scope, offset)
            m = n - k
            if m > PAYLOAD:
                m = PAYLOAD
            buf[p + 4 : p + 4 + m] = ext[k : k + m]
            for z in range(p + 4 + m, p + 24):
                buf[z] = 0
            _seal(buf, p)
            p += RECORD
    _head(buf, p, BINDING, scope, offset)
    buf[p + 4 : p + 24] = rec
    _seal(buf, p)
    return p + RECORD


def encode_binding_into(buf, pos, scope, offset, table):
    """Write the full records of binding `offset` (side data always included)
    at buf[pos:]; returns the new pos."""
    return _binding_into(buf, pos, scope, offset, table, table.extra(offset))


def encode_binding(scope, offset, table, full=False):
    """Log records (bytes) for binding `offset` of `table` in scope `scope`.
    Side data (odd client id, non-Ethernet hardware) goes out as EXTRA records
    only when it changed since the last encoding (table.log_extra), unless
    `full`; so the result must be appended to the log, in order."""
    ext = table.extra(offset) if full else table.log_extra(offset)
    buf = bytearray(RECORD * _nrec(ext))
    _binding_into(buf, 0, scope, offset, table, ext)
    return bytes(buf)


def _meta_into(buf, p, key, payload):
    if not isinstance(key, int) or key < 0 or key > 255:
        raise LogError("key")
    if payload is None or len(payload) > PAYLOAD:
        raise LogError("payload")
    n = len(payload)
    _head(buf, p, META, key, n)
    buf[p + 4 : p + 4 + n] = payload
    for z in range(p + 4 + n, p + 24):
        buf[z] = 0
    _seal(buf, p)
    return p + RECORD


def track_metas(records, metas):
    """Note in `metas` (key -> payload) every META record in a run of
    records, so a store can rewrite the latest ones at compaction."""
    for p in range(0, len(records), RECORD):
        if records[p] == META:
            ln = (records[p + 2] << 8) | records[p + 3]
            if ln <= PAYLOAD:
                metas[records[p + 1]] = bytes(records[p + 4 : p + 4 + ln])


def encode_meta(key, payload):
    """A META record: up to 20 bytes of named engine state under u8 `key`."""
    buf = bytearray(RECORD)
    _meta_into(buf, 0, key, payload)
    return bytes(buf)


def _marker_into(buf, p, kind, gen, count):
    if not isinstance(gen, int) or gen < 0 or gen > 0xFFFFFFFF:
        raise LogError("gen")
    _head(buf, p, kind, 0, 0)
    _put32(buf, p + 4, gen)
    _put32(buf, p + 8, count)
    for z in range(p + 12, p + 24):
        buf[z] = 0
    _seal(buf, p)
    return p + RECORD


def encode_marker(kind, gen, count=0):
    """SNAP_BEGIN / SNAP_END / LOG_BEGIN record for generation `gen`."""
    if kind != SNAP_BEGIN and kind != SNAP_END and kind != LOG_BEGIN:
        raise LogError("kind")
    buf = bytearray(RECORD)
    _marker_into(buf, 0, kind, gen, count)
    return bytes(buf)


def snapshot_size(tables_by_scope, metas):
    """Bytes a snapshot of these tables and metas takes (O(number of scopes))."""
    n = 2 + len(metas)
    for t in tables_by_scope.values():
        n += t.live() + t.extra_records()
    return n * RECORD


def snapshot_chunks(gen, tables_by_scope, metas, chunk=None):
    """Generate a snapshot into `chunk` piece by piece: yields n, and chunk[:n]
    holds the next whole records. Allocation stays at one chunk."""
    if chunk is None:
        chunk = bytearray(RECORD * 32)
    cap = len(chunk)
    if cap < RECORD * MAX_UNIT:
        raise LogError("chunk")
    p = _marker_into(chunk, 0, SNAP_BEGIN, gen, 0)
    count = 0
    for key in sorted(metas):
        if p + RECORD > cap:
            yield p
            p = 0
        p = _meta_into(chunk, p, key, metas[key])
        count += 1
    for scope in sorted(tables_by_scope):
        t = tables_by_scope[scope]
        i = t.next_live(0)
        while i >= 0:
            if p + RECORD * MAX_UNIT > cap:
                yield p
                p = 0
            q = encode_binding_into(chunk, p, scope, i, t)
            count += (q - p) // RECORD
            p = q
            i = t.next_live(i + 1)
    if p + RECORD > cap:
        yield p
        p = 0
    p = _marker_into(chunk, p, SNAP_END, gen, count)
    yield p


class Compactor:
    """When to rewrite: the log has grown past `factor` x the live snapshot
    (and past `min_bytes`, so small pools do not compact constantly)."""

    def __init__(self, factor=10, min_bytes=8192):
        self.factor = factor
        self.min_bytes = min_bytes

    def due(self, log_bytes, snap_bytes):
        return log_bytes >= self.min_bytes and log_bytes > self.factor * snap_bytes

    def per_change_bound(self):
        """Upper bound of flash bytes per binding change, compaction included."""
        return RECORD + RECORD / self.factor
