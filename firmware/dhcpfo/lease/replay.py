# lease/replay.py - reading the lease log back (lease/log.py has the format).
#
# Boot-only code: the store replays its files once at start (and the sim's
# flash in tests). Loaded for that and dropped after (dhcpfo/ondemand.py).

from dhcpfo import ondemand
from dhcpfo.lease.log import (BINDING, EXTRA, LOG_BEGIN, MAX_UNIT, META, PAYLOAD, RECORD,
                              SNAP_BEGIN, SNAP_END, crc_ok, get32)

ondemand.droppable(__name__)


class Replay:
    """Incremental replay: feed() bytes in any pieces, in order.

    Calls on_binding(scope, offset, rec, extra) with rec a 20-byte view valid
    during the call and extra the side-data bytes or None; on_meta(key,
    payload); on_mark(kind, gen, count) when given. Stops for good at the
    first short, corrupt or unknown record. `good` is the length of the prefix
    that was applied (a dangling EXTRA run is not part of it), `records` the
    records in it; snapshot and log markers are tracked in snap_gen,
    snap_whole and log_gen (-1 when absent).
    """

    def __init__(self, on_binding, on_meta, on_mark=None):
        self.on_binding = on_binding
        self.on_meta = on_meta
        self.on_mark = on_mark
        self.records = 0
        self.good = 0
        self.seen = 0
        self.stopped = False
        self.snap_gen = -1
        self.snap_whole = False
        self.log_gen = -1
        self._snap_at = 0
        self._carry = bytearray(RECORD)
        self._cn = 0
        self._ext = None
        self._ext_key = -1
        self._ext_n = 0

    def ignored(self):
        """Bytes fed that are not part of the applied prefix."""
        return self.seen - self.good

    def feed(self, data):
        """Process `data`; returns False once replay has stopped."""
        n = len(data)
        base = self.seen
        self.seen += n
        if self.stopped:
            return False
        p = 0
        if self._cn:
            take = RECORD - self._cn
            if take > n:
                take = n
            self._carry[self._cn : self._cn + take] = data[:take]
            self._cn += take
            p = take
            if self._cn < RECORD:
                return True
            self._cn = 0
            if not self._one(self._carry, 0, base + take):
                self.stopped = True
                return False
        while p + RECORD <= n:
            if not self._one(data, p, base + p + RECORD):
                self.stopped = True
                return False
            p += RECORD
        if p < n:
            self._carry[0 : n - p] = data[p:n]
            self._cn = n - p
        return True

    def _one(self, b, p, end):
        if not crc_ok(b, p):
            return False
        kind = b[p]
        a = b[p + 1]
        off = (b[p + 2] << 8) | b[p + 3]
        key = (a << 16) | off
        if kind == EXTRA:
            if self._ext is None or key != self._ext_key:
                self._ext = bytearray()
                self._ext_key = key
                self._ext_n = 0
            elif self._ext_n >= MAX_UNIT - 1:
                return False  # longer than any binding's side data: corrupt, stop (bounded memory)
            self._ext.extend(b[p + 4 : p + 24])
            self._ext_n += 1
            return True
        ext = None
        if self._ext is not None:
            if kind == BINDING and key == self._ext_key:
                ext = bytes(self._ext)
            self._ext = None
        if kind == BINDING:
            self.on_binding(a, off, memoryview(b)[p + 4 : p + 24], ext)
        elif kind == META:
            if off > PAYLOAD:
                return False
            self.on_meta(a, bytes(b[p + 4 : p + 4 + off]))
        elif kind == SNAP_BEGIN or kind == SNAP_END or kind == LOG_BEGIN:
            gen = get32(b, p + 4)
            count = get32(b, p + 8)
            if kind == SNAP_BEGIN:
                self.snap_gen = gen
                self.snap_whole = False
                self._snap_at = self.records + self._ext_n + 1
            elif kind == SNAP_END:
                self.snap_whole = gen == self.snap_gen and count == self.records + self._ext_n - self._snap_at
            elif self.records == 0 and self._ext_n == 0:
                self.log_gen = gen
            if self.on_mark is not None:
                self.on_mark(kind, gen, count)
        else:
            return False
        self.records += self._ext_n + 1
        self._ext_n = 0
        self.good = end
        return True


def replay(buf, on_binding, on_meta, on_mark=None):
    """Replay a whole buffer; returns (records_ok, bytes_ignored)."""
    r = Replay(on_binding, on_meta, on_mark)
    r.feed(buf)
    return r.records, r.ignored()
