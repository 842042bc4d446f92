# lease/table.py - the bindings of one scope, with no Python object per lease.
"""Compact binding table for one scope's address span (draft-12 §5.11, §7.1.5).

One fixed 20-byte record per address offset, all in one preallocated
bytearray; the scope layer maps offset <-> address. Record layout (the same
bytes are the payload of a BINDING log record, see lease/log.py):

    0      state     u8   binding-status, draft-12 §12.3 codes (FREE=1..BACKUP=7) in
                          bits 0-6; bit 7 BY_PARTNER: the partner granted or
                          renewed this binding (set by the failover engine,
                          cleared by every set()/set_state(); logs written
                          before it existed have it clear: read as ours)
    1      flags     u8   CID_IS_HWADDR RESERVED BOOTP PENDING HAS_HW XHW XCID MARK
    2..7   mac       6 B  Ethernet chaddr (htype 1, hlen 6) when HAS_HW, else zero
    8..11  expiry    u32  core time the client's lease ends (lease-expiration-time)
    12..15 ack_pexp  u32  potential expiration the partner acked for our update,
                          or the one it sent us for its update (received-pexp):
                          the base of the MCLT rule (draft-12 §5.2.1, §7.1.5)
    16..19 stamp     u32  client-last-transaction-time while a client is bound
                          (ACTIVE/EXPIRED/RELEASED), else start-time-of-state

Times are core time (compat.EPOCH seconds), big-endian, saturated to
[0, INFINITE]; INFINITE (2**30-1) stays a small int on 32-bit boards.
Not stored: the sent-but-unacked potential expiration (§7.1.5 sent-pexp);
the engine must be able to derive it from the record and its configuration
(e.g. expiry + a fixed extension) while PENDING is set.

Client identity: a client id equal to 0x01+mac (what most clients send) is
only the CID_IS_HWADDR flag. Other client ids and non-Ethernet hardware
addresses are side data (XCID, XHW flags), counted by `side_entries()`:
client ids packed in one bytearray, without their trailing mac when it is
the record's (DUID-LL and DUID-LLT end with it), found by offset through 3-byte
positions and by value through a second u16 index like the hardware one
(made on first use: 6 B per address plus the id, ~20 B of heap per address
for a 19-byte RFC 4361 id); hardware addresses in a small dict with a
per-offset list. The log stores them as EXTRA records (`extra(i)`,
`log_extra(i)`).

Hardware index: open addressing with linear probing over a bytearray of
u16 slots holding offset+1 (0 = empty), 1.5 slots per address, backward-shift
deletion (no tombstones). A fully leased table costs 20 + 3 bytes/address.

The table holds no policy: the server and the failover engine decide states;
the table stores, indexes, counts and scans without allocating on the hot path.
"""

from dhcpfo.compat import const

# binding-status (draft-12 §12.3), re-exported: callers say lt.FREE
from dhcpfo.lease.status import ABANDONED, ACTIVE, BACKUP, EXPIRED, FREE, RELEASED, RESET  # noqa: F401

# flags: caller-owned bits
RESERVED = const(0x02)
BOOTP = const(0x04)
PENDING = const(0x08)  # changed and not yet acked by the partner
MARK = const(0x80)  # free for the engine
USER_FLAGS = const(0x8E)
# flags: derived by the table from the client identity passed to set()
CID_IS_HWADDR = const(0x01)  # client id == 0x01 + mac, not stored separately
HAS_HW = const(0x10)  # record holds an Ethernet mac (indexed)
XHW = const(0x20)  # hardware address in the side dict
XCID = const(0x40)  # client id in the side dict

# state byte: bit 7 says who granted the binding (the low bits are the state)
BY_PARTNER = const(0x80)
_STATE = const(0x7F)

REC = const(20)
INFINITE = const(0x3FFFFFFF)
MAX_SIZE = const(65534)
_EXT_CHUNK = const(20)


class LeaseError(ValueError):
    """Bad argument to the lease table; args[0] is a short fixed reason."""


def _xadd(d, key, i):
    v = d.get(key)
    if v is None:
        d[key] = i
    elif isinstance(v, int):
        d[key] = (v, i)
    else:
        d[key] = v + (i,)


def _xdel(d, key, i):
    v = d.get(key)
    if v is None:
        return
    if isinstance(v, int):
        if v == i:
            del d[key]
        return
    rest = tuple(x for x in v if x != i)
    if not rest:
        del d[key]
    elif len(rest) == 1:
        d[key] = rest[0]
    else:
        d[key] = rest


def _slot(lst, i):
    return lst[i] if lst is not None else None


def _hash(b, p, n, h):
    """A 24-bit hash of b[p:p+n] continued from h (a small int: no allocation)."""
    for k in range(p, p + n):
        h = ((h << 5) - h + b[k]) & 0xFFFFFF
    return h


def _ent(a, p):
    """The side client id entry at a[p] as a small int: header bytes << 9 |
    mac appended << 8 | stored length (see _cid_put for the encoding)."""
    h = a[p]
    if h < 0x80:
        return 0x200 | h
    if h < 0xFF:
        return 0x300 | (h & 0x7F)
    return 0x400 | a[p + 1]


def _blob_records(cid, hw):
    n = 2 + (len(cid) if cid else 0) + (len(hw) if hw else 0)
    return (n + _EXT_CHUNK - 1) // _EXT_CHUNK


class LeaseTable:
    """Bindings of `size` addresses (offsets 0..size-1)."""

    def __init__(self, size):
        if not isinstance(size, int) or size < 1 or size > MAX_SIZE:
            raise LeaseError("size")
        self.size = size
        self._buf = bytearray(size * REC)
        self._ns = size + (size >> 1) + 1
        self._ix = bytearray(self._ns * 2)
        self._counts = [0] * 8
        self._ncid = 0  # side client ids held
        self._cx = None  # u16 slots: offset+1 by side client id hash, made on first use
        self._xhw = {}
        self._xc = None  # 3 bytes per offset: position+1 of its side client id in _xa, 0 none
        self._xh = None  # offset -> its side hardware address (the _xhw key object), likewise
        self._xa = bytearray(0)  # side client ids: length byte + bytes, one after another
        self._xan = 0  # bytes of _xa in use (live ids and holes)
        self._xfree = 0  # bytes of holes left by ids that were dropped
        self._xrecs = 0
        self._xdirty = set()
        self._live = 0
        b = self._buf
        for i in range(size):
            b[i * REC] = FREE
        self._counts[FREE] = size

    # ------------------------------------------------------------------ basics

    def clear(self):
        """Every address back to FREE with no client and zero times."""
        b = self._buf
        for k in range(len(b)):
            b[k] = 0
        ix = self._ix
        for k in range(len(ix)):
            ix[k] = 0
        for i in range(self.size):
            b[i * REC] = FREE
        self._counts = [0] * 8
        self._counts[FREE] = self.size
        self._ncid = 0  # side client ids held
        self._cx = None  # u16 slots: offset+1 by side client id hash, made on first use
        self._xhw = {}
        self._xc = None  # 3 bytes per offset: position+1 of its side client id in _xa, 0 none
        self._xh = None  # offset -> its side hardware address (the _xhw key object), likewise
        self._xa = bytearray(0)  # side client ids: length byte + bytes, one after another
        self._xan = 0  # bytes of _xa in use (live ids and holes)
        self._xfree = 0  # bytes of holes left by ids that were dropped
        self._xrecs = 0
        self._xdirty = set()
        self._live = 0

    def _o(self, i):
        if not isinstance(i, int) or i < 0 or i >= self.size:
            raise LeaseError("offset")
        return i * REC

    def _get32(self, p):
        b = self._buf
        return (b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]

    def _put32(self, p, v):
        if not isinstance(v, int):
            raise LeaseError("time")
        if v < 0:
            v = 0
        elif v > INFINITE:
            v = INFINITE
        b = self._buf
        b[p] = v >> 24
        b[p + 1] = (v >> 16) & 255
        b[p + 2] = (v >> 8) & 255
        b[p + 3] = v & 255

    def _is_def(self, o):
        b = self._buf
        if b[o] != FREE:  # BY_PARTNER set is not the default either
            return False
        for k in range(o + 1, o + REC):
            if b[k]:
                return False
        return True

    def is_default(self, i):
        """True if offset i is FREE with no client, no flags and zero times."""
        return self._is_def(self._o(i))

    # --------------------------------------------------------------- accessors

    def state(self, i):
        return self._buf[self._o(i)] & _STATE

    def by_partner(self, i):
        """Did the failover partner grant or renew this binding (not this server)?"""
        return bool(self._buf[self._o(i)] & BY_PARTNER)

    def mark_by_partner(self, i, yes):
        """Record who granted binding i (the failover engine, after storing a
        partner's update): kept in the state byte, so it is logged with the record."""
        o = self._o(i)
        self._begin(o)
        b = self._buf
        b[o] = (b[o] | BY_PARTNER) if yes else (b[o] & _STATE)
        self._end(o)

    def active_by_partner(self):
        """ACTIVE bindings the partner granted (kept incrementally)."""
        return self._counts[0]

    def flags(self, i):
        return self._buf[self._o(i) + 1]

    def expiry(self, i):
        return self._get32(self._o(i) + 8)

    def ack_pexp(self, i):
        return self._get32(self._o(i) + 12)

    def stamp(self, i):
        return self._get32(self._o(i) + 16)

    def mac(self, i):
        """The Ethernet mac (6 bytes) or None when the record holds none."""
        o = self._o(i)
        if not self._buf[o + 1] & HAS_HW:
            return None
        return bytes(self._buf[o + 2 : o + 8])

    def hwaddr(self, i):
        """(htype, chaddr bytes) of the bound client, or None."""
        o = self._o(i)
        f = self._buf[o + 1]
        if f & HAS_HW:
            return (1, bytes(self._buf[o + 2 : o + 8]))
        if f & XHW:
            k = _slot(self._xh, i)
            if k is not None:
                return (k[0], bytes(k[1:]))
        return None

    def client_id(self, i):
        """The client identifier the client sent, or None if it sent none."""
        o = self._o(i)
        f = self._buf[o + 1]
        if f & CID_IS_HWADDR:
            return b"\x01" + bytes(self._buf[o + 2 : o + 8])
        if f & XCID:
            return self._cid_of(i)
        return None

    def has_client(self, i):
        return bool(self._buf[self._o(i) + 1] & (HAS_HW | XHW | XCID))

    def get(self, i):
        """(state, flags, mac-or-None, expiry, ack_pexp, stamp); allocates."""
        o = self._o(i)
        b = self._buf
        return (
            b[o] & _STATE,
            b[o + 1],
            bytes(b[o + 2 : o + 8]) if b[o + 1] & HAS_HW else None,
            self._get32(o + 8),
            self._get32(o + 12),
            self._get32(o + 16),
        )

    def count(self, state):
        """Number of addresses in `state` (kept incrementally)."""
        if not isinstance(state, int) or state < 1 or state > 7:
            return 0
        return self._counts[state]

    def live(self):
        """Number of records that differ from the FREE default (snapshot size)."""
        return self._live

    def side_entries(self):
        """(client ids, hardware addresses) held in the side dicts."""
        return (self._ncid, len(self._xhw))

    def extra_records(self):
        """Log EXTRA records needed for all side data (snapshot size)."""
        return self._xrecs

    # ------------------------------------------------------------ hw index

    def _home(self, b, p):
        h = (b[p + 3] << 16) | (b[p + 4] << 8) | b[p + 5]
        h = (h * 37) ^ (b[p] << 7) ^ (b[p + 1] << 13) ^ (b[p + 2] << 2)
        h ^= h >> 15
        return h % self._ns

    def _index_add(self, i):
        self._slot_add(self._ix, self._home(self._buf, i * REC + 2), i)

    def _index_del(self, i):
        self._slot_del(self._ix, self._home(self._buf, i * REC + 2), i, False)

    def _slot_add(self, ix, s, i):
        ns = self._ns
        while ix[2 * s] or ix[2 * s + 1]:
            s += 1
            if s == ns:
                s = 0
        v = i + 1
        ix[2 * s] = v >> 8
        ix[2 * s + 1] = v & 255

    def _slot_del(self, ix, s, i, cids):
        # ix: the hardware index (cids False) or the client id one
        ns = self._ns
        b = self._buf
        want = i + 1
        while True:
            v = (ix[2 * s] << 8) | ix[2 * s + 1]
            if v == 0:
                return  # not indexed (cannot happen when flags are consistent)
            if v == want:
                break
            s += 1
            if s == ns:
                s = 0
        # backward-shift deletion keeps every probe chain unbroken
        j = s
        while True:
            j += 1
            if j == ns:
                j = 0
            v = (ix[2 * j] << 8) | ix[2 * j + 1]
            if v == 0:
                break
            k = self._cid_home(v - 1) if cids else self._home(b, (v - 1) * REC + 2)
            if s <= j:
                stay = s < k <= j
            else:
                stay = k > s or k <= j
            if stay:
                continue
            ix[2 * s] = ix[2 * j]
            ix[2 * s + 1] = ix[2 * j + 1]
            s = j
        ix[2 * s] = 0
        ix[2 * s + 1] = 0

    def _mac_eq(self, o, mac):
        b = self._buf
        return (
            b[o + 2] == mac[0]
            and b[o + 3] == mac[1]
            and b[o + 4] == mac[2]
            and b[o + 5] == mac[3]
            and b[o + 6] == mac[4]
            and b[o + 7] == mac[5]
        )

    def _better(self, a, b):
        """Among bindings of one client prefer ACTIVE, then the latest stamp."""
        if b < 0:
            return True
        buf = self._buf
        aa = buf[a * REC] == ACTIVE
        ba = buf[b * REC] == ACTIVE
        if aa != ba:
            return aa
        return self._get32(a * REC + 16) > self._get32(b * REC + 16)

    def _scan_hw(self, mac, want):
        # want: 0 any record, 1 only CID_IS_HWADDR, 2 only records without a client id
        if mac is None or len(mac) != 6:
            return -1
        ix = self._ix
        ns = self._ns
        b = self._buf
        s = self._home(mac, 0)
        best = -1
        while True:
            v = (ix[2 * s] << 8) | ix[2 * s + 1]
            if v == 0:
                return best
            o = (v - 1) * REC
            if self._mac_eq(o, mac):
                f = b[o + 1]
                if want == 0 or (want == 1 and f & CID_IS_HWADDR) or (want == 2 and not f & (CID_IS_HWADDR | XCID)):
                    if self._better(v - 1, best):
                        best = v - 1
            s += 1
            if s == ns:
                s = 0

    def _best_of(self, v, best, want=0):
        if v is None:
            return best
        for i in (v,) if isinstance(v, int) else v:
            if want == 2 and self._buf[i * REC + 1] & XCID:
                continue
            if self._better(i, best):
                best = i
        return best

    def find_hw(self, mac):
        """Offset of the best binding whose Ethernet mac is `mac`, or -1."""
        return self._scan_hw(mac, 0)

    def hw_matches(self, mac):
        """Every offset whose Ethernet mac is `mac` (allocates; not the hot path)."""
        out = []
        if mac is None or len(mac) != 6:
            return out
        ix = self._ix
        s = self._home(mac, 0)
        while True:
            v = (ix[2 * s] << 8) | ix[2 * s + 1]
            if v == 0:
                return out
            if self._mac_eq((v - 1) * REC, mac):
                out.append(v - 1)
            s += 1
            if s == self._ns:
                s = 0

    def find_cid(self, cid):
        """Offset of the best binding whose client id is `cid`, or -1."""
        if not cid:
            return -1
        best = -1
        if len(cid) == 7 and cid[0] == 1:
            best = self._scan_hw(memoryview(cid)[1:], 1)
        cx = self._cx
        if cx is not None:
            ns = self._ns
            s = _hash(cid, 0, len(cid), len(cid)) % ns
            while True:
                v = (cx[2 * s] << 8) | cx[2 * s + 1]
                if v == 0:
                    return best
                if self._cid_eq(v - 1, cid) and self._better(v - 1, best):
                    best = v - 1
                s += 1
                if s == ns:
                    s = 0
        return best

    def find_client(self, cid, htype, mac):
        """Binding of the client identified as RFC 2131 §4.2 says: by client id
        when it sent one, else by (htype, chaddr) among bindings without one."""
        if cid:
            return self.find_cid(cid)
        if mac is None:
            return -1
        if htype == 1 and len(mac) == 6:
            return self._scan_hw(mac, 2)
        if not self._xhw:
            return -1
        return self._best_of(self._xhw.get(bytes([htype & 255]) + bytes(mac)), -1, 2)

    # ---------------------------------------------------------------- updates

    # Side client ids live in one bytearray _xa, one entry after another: a
    # header byte h, then the stored bytes. h < 0x80: the id is the h bytes;
    # 0x80 <= h < 0xFF: the id is the h & 0x7F bytes followed by the record's
    # mac (DUID-LL/LLT ids end with the client's link-layer address); h 0xFF:
    # a length byte follows (ids of 128..255 bytes). Dropped ids leave holes,
    # squeezed out when _xa is full.

    def _xpos(self, i):
        xc = self._xc
        if xc is None:
            return -1
        k = 3 * i
        return ((xc[k] << 16) | (xc[k + 1] << 8) | xc[k + 2]) - 1

    def _set_xpos(self, i, p):
        if self._xc is None:
            self._xc = bytearray(3 * self.size)
        xc = self._xc
        p += 1
        k = 3 * i
        xc[k] = p >> 16
        xc[k + 1] = (p >> 8) & 255
        xc[k + 2] = p & 255

    def _cid_put(self, i, cid):
        n = len(cid)
        o = i * REC
        b = self._buf
        m = n > 6 and n - 6 < 0x7F and b[o + 1] & HAS_HW
        if m:
            for k in range(6):
                if cid[n - 6 + k] != b[o + 2 + k]:
                    m = False
                    break
        if m:
            head = 1
            n -= 6
        else:
            head = 1 if n < 0x80 else 2
        if self._xan + head + n > len(self._xa):
            self._cid_repack(head + n)
        a = self._xa
        p = self._xan
        if m:
            a[p] = 0x80 | n
        elif head == 1:
            a[p] = n
        else:
            a[p] = 0xFF
            a[p + 1] = n
        a[p + head : p + head + n] = cid[:n]
        self._xan = p + head + n
        self._set_xpos(i, p)
        if self._cx is None:
            self._cx = bytearray(self._ns * 2)
        self._slot_add(self._cx, self._cid_home(i), i)
        self._ncid += 1

    def _cid_home(self, i):
        # the client id index's home slot for offset i's side id
        a = self._xa
        p = self._xpos(i)
        e = _ent(a, p)
        n = e & 255
        if e & 0x100:
            h = _hash(a, p + (e >> 9), n, n + 6)
            h = _hash(self._buf, i * REC + 2, 6, h)
        else:
            h = _hash(a, p + (e >> 9), n, n)
        return h % self._ns

    def _cid_drop(self, i):
        self._slot_del(self._cx, self._cid_home(i), i, True)
        p = self._xpos(i)
        e = _ent(self._xa, p)
        self._set_xpos(i, -1)
        self._xfree += (e >> 9) + (e & 255)
        self._ncid -= 1

    def _cid_of(self, i):
        p = self._xpos(i)
        if p < 0:
            return None
        a = self._xa
        e = _ent(a, p)
        s = p + (e >> 9)
        c = bytes(a[s : s + (e & 255)])
        if e & 0x100:
            o = i * REC
            c += bytes(self._buf[o + 2 : o + 8])
        return c

    def _cid_eq(self, i, cid):
        p = self._xpos(i)
        if p < 0:
            return False
        a = self._xa
        e = _ent(a, p)
        n = e & 255
        s = p + (e >> 9)
        if len(cid) != (n + 6 if e & 0x100 else n):
            return False
        for k in range(n):
            if a[s + k] != cid[k]:
                return False
        if e & 0x100:
            b = self._buf
            o = i * REC + 2 - n
            for k in range(n, n + 6):
                if b[o + k] != cid[k]:
                    return False
        return True

    def _cid_repack(self, need):
        """A new _xa with the live ids packed, room for `need` bytes and a quarter more."""
        old = self._xa
        live = self._xan - self._xfree
        a = bytearray(live + need + max(64, (live + need) >> 2))
        q = 0
        if self._xc is not None:
            for i in range(self.size):
                p = self._xpos(i)
                if p >= 0:
                    e = _ent(old, p)
                    m = (e >> 9) + (e & 255)
                    a[q : q + m] = old[p : p + m]
                    self._set_xpos(i, q)
                    q += m
        self._xa = a
        self._xan = q
        self._xfree = 0

    def _side_keys(self, i, f):
        # per-offset lists, not a scan of the dicts: O(1) and no garbage per packet
        c = self._cid_of(i) if f & XCID else None
        h = _slot(self._xh, i) if f & XHW else None
        return c, h

    def _unindex(self, i, o):
        # drops i from every index; returns its old side keys (cid, hw)
        f = self._buf[o + 1]
        if f & HAS_HW:
            self._index_del(i)
        if f & (XCID | XHW):
            c, h = self._side_keys(i, f)
            if c is not None:
                self._cid_drop(i)
            if h is not None:
                _xdel(self._xhw, h, i)
                self._xh[i] = None
            self._xrecs -= _blob_records(c, h)
            return c, h
        return None, None

    def _reindex(self, i, o, cid, hw):
        f = self._buf[o + 1]
        if f & HAS_HW:
            self._index_add(i)
        if cid is not None:
            self._cid_put(i, cid)
        if hw is not None:
            _xadd(self._xhw, hw, i)
            if self._xh is None:
                self._xh = [None] * self.size
            self._xh[i] = hw
        if cid is not None or hw is not None:
            self._xrecs += _blob_records(cid, hw)

    def _begin(self, o):
        # bookkeeping before a record changes: returns the old state
        if not self._is_def(o):
            self._live -= 1
        st = self._buf[o]
        self._counts[st & _STATE] -= 1
        if st == ACTIVE | BY_PARTNER:
            self._counts[0] -= 1  # slot 0 (no state has code 0): ACTIVE granted by the partner
        return st & _STATE

    def _end(self, o):
        st = self._buf[o]
        self._counts[st & _STATE] += 1
        if st == ACTIVE | BY_PARTNER:
            self._counts[0] += 1
        if not self._is_def(o):
            self._live += 1

    def set(self, i, state, flags, mac, cid, expiry, ack_pexp, stamp, htype=1):
        """Replace binding i. mac None/empty = no client; cid None = the client
        sent no client id (0x01+mac is stored as the CID_IS_HWADDR flag)."""
        o = self._o(i)
        if not isinstance(state, int) or state < 1 or state > 7:
            raise LeaseError("state")
        if not isinstance(flags, int):
            raise LeaseError("flags")
        if not (isinstance(expiry, int) and isinstance(ack_pexp, int) and isinstance(stamp, int)):
            raise LeaseError("time")
        hw = None
        eth = False
        if mac is not None and len(mac):
            if not isinstance(htype, int) or htype < 0 or htype > 255 or len(mac) > 16:
                raise LeaseError("hw")
            if htype == 1 and len(mac) == 6:
                eth = True
            else:
                hw = bytes([htype]) + bytes(mac)
        xcid = None
        hwcid = False
        if cid is not None and len(cid):
            if len(cid) > 255:
                raise LeaseError("cid")
            if (
                eth
                and len(cid) == 7
                and cid[0] == 1
                and cid[1] == mac[0]
                and cid[2] == mac[1]
                and cid[3] == mac[2]
                and cid[4] == mac[3]
                and cid[5] == mac[4]
                and cid[6] == mac[5]
            ):
                hwcid = True
            else:
                xcid = bytes(cid)
        b = self._buf
        self._begin(o)
        # the same Ethernet client again (a renewal, a returning client), no
        # side data before or after: its index entries stay as they are
        keep = eth and xcid is None and b[o + 1] & (HAS_HW | XCID | XHW) == HAS_HW and self._mac_eq(o, mac)
        oc = oh = None
        if not keep:
            oc, oh = self._unindex(i, o)
        if xcid is None and hw is None:
            self._xdirty.discard(i)
        elif xcid != oc or hw != oh:
            self._xdirty.add(i)  # the next log record must carry the side data
        f = flags & USER_FLAGS
        if eth:
            f |= HAS_HW
            b[o + 2 : o + 8] = mac
        else:
            for k in range(o + 2, o + 8):
                b[k] = 0
        if hwcid:
            f |= CID_IS_HWADDR
        if xcid is not None:
            f |= XCID
        if hw is not None:
            f |= XHW
        b[o] = state
        b[o + 1] = f
        self._put32(o + 8, expiry)
        self._put32(o + 12, ack_pexp)
        self._put32(o + 16, stamp)
        if not keep:
            self._reindex(i, o, xcid, hw)
        self._end(o)

    def set_state(self, i, state, stamp):
        o = self._o(i)
        if not isinstance(state, int) or state < 1 or state > 7:
            raise LeaseError("state")
        if not isinstance(stamp, int):
            raise LeaseError("time")
        self._begin(o)
        self._buf[o] = state
        self._put32(o + 16, stamp)
        self._end(o)

    def _set_time(self, i, p, t):
        o = self._o(i)
        if not isinstance(t, int):
            raise LeaseError("time")
        self._begin(o)
        self._put32(o + p, t)
        self._end(o)

    def set_expiry(self, i, expiry):
        self._set_time(i, 8, expiry)

    def set_ack_pexp(self, i, t):
        self._set_time(i, 12, t)

    def set_stamp(self, i, t):
        self._set_time(i, 16, t)

    def set_flags(self, i, flags):
        """Replace the caller-owned bits (RESERVED BOOTP PENDING MARK) with
        those in `flags`; derived bits stay, so set_flags(i, flags(i) | X) works."""
        o = self._o(i)
        if not isinstance(flags, int):
            raise LeaseError("flags")
        self._begin(o)
        b = self._buf
        b[o + 1] = (b[o + 1] & ~USER_FLAGS & 255) | (flags & USER_FLAGS)
        self._end(o)

    def clear_flag(self, i, flags):
        """Turn off the caller-owned bits in `flags`."""
        o = self._o(i)
        if not isinstance(flags, int):
            raise LeaseError("flags")
        self._begin(o)
        self._buf[o + 1] &= ~(flags & USER_FLAGS) & 255
        self._end(o)

    clear_flags = clear_flag

    def reset(self, i):
        """Offset i back to the default: FREE, no client, zero times."""
        self.set(i, FREE, 0, None, None, 0, 0, 0)

    # ------------------------------------------------------------ log support

    def record_bytes(self, i):
        """The 20 record bytes (a view: valid until the record changes)."""
        o = self._o(i)
        return memoryview(self._buf)[o : o + REC]

    def extra(self, i):
        """Side data of binding i as bytes for log EXTRA records, or None:
        len(cid) u8, cid, len(hw) u8, htype + chaddr."""
        o = self._o(i)
        f = self._buf[o + 1]
        if not f & (XCID | XHW):
            return None
        c, h = self._side_keys(i, f)
        c = c or b""
        h = h or b""
        return bytes([len(c)]) + c + bytes([len(h)]) + h

    def log_extra(self, i):
        """extra(i) if the side data changed since the last call, else None:
        a BINDING log record without EXTRA keeps the side data it finds."""
        if i not in self._xdirty:
            return None
        self._xdirty.discard(i)
        return self.extra(i)

    def load_record(self, i, rec, extra=None):
        """Install a record read from the log (rec: 20 bytes, extra: see
        extra()). Without extra, side data already held for i is kept when
        the record's flags still call for it."""
        o = self._o(i)
        if rec is None or len(rec) < REC:
            raise LeaseError("record")
        st = rec[0] & _STATE
        f = rec[1]
        if st < 1 or st > 7:
            raise LeaseError("record")
        cid = None
        hw = None
        if extra:
            n = len(extra)
            lc = extra[0]
            if 1 + lc >= n:
                raise LeaseError("extra")
            lh = extra[1 + lc]
            if 2 + lc + lh > n or lh > 17:
                raise LeaseError("extra")
            if lc:
                cid = bytes(extra[1 : 1 + lc])
            if lh > 1:
                hw = bytes(extra[2 + lc : 2 + lc + lh])
        b = self._buf
        self._begin(o)
        oc, oh = self._unindex(i, o)
        if not extra:
            cid = oc
            hw = oh
        if not f & XCID:
            cid = None
        if not f & XHW:
            hw = None
        if cid is None:
            f &= ~XCID & 255
        if hw is None:
            f &= ~XHW & 255
        if not f & HAS_HW:
            f &= ~CID_IS_HWADDR & 255
        self._xdirty.discard(i)
        b[o : o + REC] = rec[:REC]
        b[o + 1] = f
        if not f & HAS_HW:
            for k in range(o + 2, o + 8):
                b[k] = 0
        self._reindex(i, o, cid, hw)
        self._end(o)

    # ------------------------------------------------------------------ scans

    def next_in_state(self, state, start=0):
        """First offset in `state` at or after `start`, circularly; -1 if none."""
        if not isinstance(state, int) or state < 1 or state > 7 or not self._counts[state]:
            return -1
        n = self.size
        if start < 0 or start >= n:
            start = 0
        b = self._buf
        for i in range(start, n):
            if b[i * REC] & _STATE == state:
                return i
        for i in range(start):
            if b[i * REC] & _STATE == state:
                return i
        return -1

    def next_flagged(self, flag, start=0):
        """First offset at or after `start` (circularly) with any bit of `flag`; -1."""
        n = self.size
        if start < 0 or start >= n:
            start = 0
        b = self._buf
        for i in range(start, n):
            if b[i * REC + 1] & flag:
                return i
        for i in range(start):
            if b[i * REC + 1] & flag:
                return i
        return -1

    def non_default(self):
        """Offsets of every non-default record, in order (a generator)."""
        i = self.next_live(0)
        while i >= 0:
            yield i
            i = self.next_live(i + 1)

    def next_live(self, start=0):
        """First non-default offset at or after `start` (not circular); -1."""
        if not self._live:
            return -1
        if start < 0:
            start = 0
        for i in range(start, self.size):
            if not self._is_def(i * REC):
                return i
        return -1

    def expire(self, now, visit, cursor=0, budget=64):
        """Look at `budget` records from `cursor` and call visit(offset) for each
        ACTIVE binding whose expiry <= now. visit may change the record (the
        server decides the next state). Returns the cursor for the next call."""
        n = self.size
        if cursor < 0 or cursor >= n:
            cursor = 0
        if not self._counts[ACTIVE]:
            return cursor
        if budget > n:
            budget = n
        b = self._buf
        i = cursor
        for _ in range(budget):
            o = i * REC
            if b[o] & _STATE == ACTIVE and self._get32(o + 8) <= now:
                visit(i)
            i += 1
            if i == n:
                i = 0
        return i
