# dhcp/scope.py - the runtime view of the configured scopes.
#
# One Scope per configured subnet (never one object per lease). The scope's
# pool is the union of its ranges, sorted by address and laid end to end in
# one offset space 0..size-1; the lease table indexes bindings by offset.
#
# Offsets and addresses convert without ever building a 32-bit int (ints
# >= 2**30 are heap objects on 32-bit boards): an address is handled as two
# 16-bit halves, and a range holds at most 65536 addresses (config enforces
# MAX_POOL per scope), so the high half moves by at most one between the
# start of a range and any address in it.
#
# Options are encoded once at load time; per packet the server only picks,
# orders and (for reservations with their own options) merges dicts.

from dhcpfo.compat import const
from dhcpfo.config import and4, ip_str, or_not4
from dhcpfo.dhcp.policy import Policy, client_attrs
from dhcpfo.wire.dhcp import new_options

OPT_SUBNET_MASK = const(1)
OPT_ROUTERS = const(3)
OPT_PARAM_REQUEST = const(55)
OPT_RELAY_INFO = const(82)
OPT_SUBNET_SELECTION = const(118)
_LINK_SELECTION = const(5)  # RFC 3527 sub-option of option 82

# Sent whenever configured, requested or not (RFC 2131 §4.3.1 leaves the rest
# to the parameter request list).
MANDATORY = (OPT_SUBNET_MASK, OPT_ROUTERS)

_ZERO = b"\x00\x00\x00\x00"


def _hi(a):
    return (a[0] << 8) | a[1]


def _lo(a):
    return (a[2] << 8) | a[3]


def _mark(bits, lo, hi):
    """Set bits lo..hi (inclusive) in a bytearray bitmap, whole bytes where possible."""
    i = lo
    while i <= hi and i & 7:
        bits[i >> 3] |= 1 << (i & 7)
        i += 1
    while i + 7 <= hi:
        bits[i >> 3] = 0xFF
        i += 8
    while i <= hi:
        bits[i >> 3] |= 1 << (i & 7)
        i += 1


class Reservation:
    """A reserved address: offset in the pool (-1 for an address outside
    every range: a *fixed* address, see Scope.fixed_for), client identity,
    own options."""

    __slots__ = ("address", "offset", "mac", "client_id", "name", "options")

    def __init__(self, cfg, offset):
        self.address = cfg.address
        self.offset = offset
        self.mac = cfg.mac
        self.client_id = cfg.client_id
        self.name = cfg.name
        self.options = cfg.options


class Scope:
    """A served subnet: pool offsets, exclusions, reservations, policies, options.

    Built from a validated ScopeConfig (config.load), so no checks repeat here.
    """

    def __init__(self, cfg, server=None, index=0):
        self.config = cfg
        self.index = index  # position in Scopes (lease tables and log records use it)
        self.id = cfg.id
        self.network = cfg.id
        self.mask = cfg.mask
        self.prefix = cfg.prefix
        self.broadcast = or_not4(cfg.id, cfg.mask)
        self.name = cfg.name
        self.description = cfg.description
        self.active = cfg.active
        self.lease_time = cfg.lease_time
        self.min_lease_time = cfg.min_lease_time
        self.max_lease_time = cfg.max_lease_time
        self.t1_permille = cfg.t1_permille
        self.t2_permille = cfg.t2_permille
        self.authoritative = cfg.authoritative
        self.offer_delay_ms = cfg.offer_delay_ms
        self.bootp = cfg.bootp
        self.failover = cfg.failover
        # Ranges in address order: (start, end, first offset, count, start hi16, start lo16).
        spans = []
        base = 0
        for s, e in sorted(cfg.ranges):
            count = ((_hi(e) - _hi(s)) << 16) + (_lo(e) - _lo(s)) + 1
            spans.append((s, e, base, count, _hi(s), _lo(s)))
            base += count
        self._spans = spans
        self.size = base
        # Exclusions, pre-marked so allocation skips them with one bit test.
        self._excl = bytearray((base + 7) >> 3)
        for s, e in cfg.exclusions:
            for lo, hi in self._offset_spans(s, e):
                _mark(self._excl, lo, hi)
        # Reservations by offset and by client identity. One outside every
        # range (a fixed address) has no offset and no binding: it is never
        # in the pool, so neither server of a pair can give it to anybody else
        # and it is not failover-managed (ISC's fixed-address outside a pool).
        self._res_at = {}
        self._res_mac = {}
        self._res_cid = {}
        self._fixed = {}  # address -> Reservation outside the ranges
        for r in cfg.reservations:
            off = self.offset_of(r.address)
            res = Reservation(r, off)
            if off >= 0:
                self._res_at[off] = res
            else:
                self._fixed[r.address] = res
            if r.mac is not None:
                self._res_mac[r.mac] = res
            if r.client_id is not None:
                self._res_cid[r.client_id] = res
        # Options: server < scope, plus the mask; then per policy.
        sopts = server.options if server is not None else {}
        mask_opt = {OPT_SUBNET_MASK: cfg.mask}
        self.options = _merge(sopts, mask_opt, cfg.options)
        policies = []
        owned = []
        for pc in cfg.policies:
            sp = []
            for s, e in pc.ranges:
                sp.extend(self._offset_spans(s, e))
            p = Policy(pc, sp, "scope")
            p.merged = _merge(sopts, mask_opt, cfg.options, pc.options)
            policies.append(p)
            owned.extend(sp)
        for pc in (server.policies if server is not None else ()):
            p = Policy(pc, None, "server")
            p.merged = _merge(sopts, pc.options, mask_opt, cfg.options)
            policies.append(p)
        self.policies = policies
        self._owned = owned  # offsets only clients of a ranged policy may use
        # the longest lease this scope may grant (failover's desired lease
        # time: potential expirations and the amnesia horizon)
        longest = self.lease_time
        for v in [self.max_lease_time] + [p.lease_time for p in policies]:
            if v is not None and v > longest:
                longest = v
        self.longest_lease = longest

    # -- addresses and offsets --

    def _offset_spans(self, s, e):
        """The (first, last) offsets of addresses s..e that lie in the pool."""
        out = []
        for rs, re_, base, count, shi, slo in self._spans:
            a = s if s > rs else rs
            b = e if e < re_ else re_
            if a <= b:
                out.append((self.offset_of(a), self.offset_of(b)))
        return out

    def addr_of(self, offset):
        """The address (4 bytes) at a pool offset, or None outside 0..size-1."""
        if offset < 0:
            return None
        for s, e, base, count, shi, slo in self._spans:
            if offset < base + count:
                lo = slo + (offset - base)
                hi = shi + (lo >> 16)
                lo &= 0xFFFF
                return bytes((hi >> 8, hi & 0xFF, lo >> 8, lo & 0xFF))
        return None

    def offset_of(self, addr):
        """The pool offset of an address (4 bytes), or -1 when not in a range."""
        if len(addr) != 4:
            return -1
        for s, e, base, count, shi, slo in self._spans:
            if s <= addr <= e:
                return base + ((_hi(addr) - shi) << 16) + (_lo(addr) - slo)
        return -1

    def ranges(self):
        """[(first offset, count, start, end)] in address order (per-range balancing)."""
        return [(base, count, s, e) for s, e, base, count, shi, slo in self._spans]

    def in_subnet(self, addr):
        return len(addr) == 4 and and4(addr, self.mask) == self.network

    # -- what may be allocated --

    def is_excluded(self, offset):
        return bool(self._excl[offset >> 3] & (1 << (offset & 7)))

    def excluded_count(self):
        """Offsets never handed out (exclusions and reserved gaps); a scan, so callers count once."""
        n = 0
        for off in range(self.size):
            if self.is_excluded(off):
                n += 1
        return n

    def reserved_count(self):
        """Reservations of this scope (in the pool and fixed outside it)."""
        return len(self._res_at) + len(self._fixed)

    def is_reserved(self, offset):
        return offset in self._res_at

    def reservation_at(self, offset):
        """The Reservation holding this offset, or None."""
        return self._res_at.get(offset)

    def reserved(self, key, mac=None):
        """The Reservation of a client (in the pool or fixed), or None.

        key is Packet.client_key() (option 61, else htype + chaddr); mac the
        6-byte Ethernet address when known. A client_id reservation matches
        the key; a MAC reservation matches `mac`, or a key of type 1 + MAC.
        """
        if not self._res_mac and not self._res_cid:
            return None
        if key is not None:
            res = self._res_cid.get(bytes(key))
            if res is not None:
                return res
        if mac is not None:
            res = self._res_mac.get(bytes(mac))
            if res is not None:
                return res
        if key is not None and len(key) == 7 and key[0] == 1:
            return self._res_mac.get(bytes(key[1:]))
        return None

    def reservation_for(self, key, mac=None):
        """Pool offset reserved for a client, or -1 (also for a fixed address
        outside the ranges: see fixed_for). A Packet may be passed as key."""
        if hasattr(key, "client_key"):
            mac = key.hwaddr() if key.htype == 1 and key.hlen == 6 else None
            key = key.client_key()
        res = self.reserved(key, mac)
        return res.offset if res is not None else -1

    reservation_for_packet = reservation_for

    def fixed_for(self, pkt):
        """The client's reservation of an address outside every range, or None."""
        if not self._fixed:
            return None
        res = self.reserved(pkt.client_key(), pkt.hwaddr() if pkt.htype == 1 and pkt.hlen == 6 else None)
        return res if res is not None and res.offset < 0 else None

    def fixed_at(self, addr):
        """The fixed (outside-the-ranges) reservation of an address, or None."""
        return self._fixed.get(bytes(addr)) if self._fixed and addr is not None else None

    def can_allocate(self, offset, policy=None):
        """Whether a dynamic (non-reserved) lease for a client matched by
        `policy` (None: no policy) may use this offset. Addresses inside a
        policy's ranges go only to that policy's clients."""
        if offset < 0 or offset >= self.size:
            return False
        if self._excl[offset >> 3] & (1 << (offset & 7)) or offset in self._res_at:
            return False
        if policy is not None and policy.spans is not None:
            return policy.allows(offset)
        for lo, hi in self._owned:
            if lo <= offset <= hi:
                return False
        return True

    # -- policies, options, lease time --

    def match_policy(self, pkt, attrs=None):
        """The first enabled policy (scope ones, then server ones) matching pkt."""
        if not self.policies:
            return None
        if attrs is None:
            attrs = client_attrs(pkt)
        for p in self.policies:
            if p.matches(attrs):
                return p
        return None

    policy_for = match_policy

    def lease_time_for(self, policy=None, asked=-1):
        """The lease to grant (before any failover cap): the default in
        effect (the policy's lease_time, else the scope's) when the client
        asks for no time (`asked` < 0), else the time it asked for (option 51)
        held within min_lease_time..max_lease_time, each of which defaults to
        that default (ISC's default-/min-/max-lease-time; Kea's valid-lifetime
        with its min/max)."""
        want = self.lease_time
        if policy is not None and policy.lease_time is not None:
            want = policy.lease_time
        if asked < 0:
            return want
        lo = self.min_lease_time
        hi = self.max_lease_time
        if hi is not None and asked > hi or hi is None and asked > want:
            return want if hi is None else hi
        if lo is not None and asked < lo or lo is None and asked < want:
            return want if lo is None else lo
        return asked

    def options_for(self, pkt, offset=-1, policy=None, res=None):
        return options_for(self, pkt, offset, policy, res)

    def __repr__(self):
        return "<Scope %s/%d size=%d>" % (ip_str(self.network), self.prefix, self.size)


def share(seconds, permille):
    """permille/1000 of `seconds`, rounded down, in pieces that stay small
    ints on 32-bit boards (a year times 999 would not)."""
    k = seconds // 1000
    return k * permille + (seconds - k * 1000) * permille // 1000


def _merge(*levels):
    out = {}
    for d in levels:
        for k in d:
            out[k] = d[k]
    return out


def options_for(scope, pkt, offset=-1, policy=None, res=None):
    """The options to send: {code: bytes} in the order to write them.

    Levels merge server < scope < policy < reservation (a server-level policy
    sits below the scope: server < server policy < scope). With a parameter
    request list (55) only requested options go out, in the client's order,
    followed by the mandatory ones (subnet mask, routers when configured);
    without one (BOOTP, some embedded clients) every configured option goes.
    51, 54 and the other server-set options are the caller's.
    """
    src = policy.merged if policy is not None else scope.options
    if res is None and offset >= 0:
        res = scope._res_at.get(offset)
    if res is not None and res.options:
        src = _merge(src, res.options)
    out = new_options()
    prl = pkt.options.get(OPT_PARAM_REQUEST) if pkt is not None else None
    if prl:
        for c in prl:
            if c in src and c not in out:
                out[c] = src[c]
        for c in MANDATORY:
            if c in src and c not in out:
                out[c] = src[c]
    else:
        for c in MANDATORY:
            if c in src:
                out[c] = src[c]
        for c in sorted(src):
            if c not in out:
                out[c] = src[c]
    return out


# ---------------------------------------------------------------------------
# All scopes, and which one serves a packet.


def _link_selection(rai):
    """RFC 3527 link-selection sub-option (5) of option 82, or None."""
    i = 0
    n = len(rai)
    while i + 1 < n:
        code = rai[i]
        ln = rai[i + 1]
        if i + 2 + ln > n:
            return None
        if code == _LINK_SELECTION and ln == 4:
            return bytes(rai[i + 2:i + 6])
        i += 2 + ln
    return None


class Scopes:
    """The scopes of one node, looked up by network, by address, by packet."""

    def __init__(self, config):
        self.list = [Scope(config.scopes[i], config.server, i) for i in range(len(config.scopes))]
        self._by_net = {}
        masks = []
        for s in self.list:
            self._by_net[s.network] = s
            if s.mask not in masks:
                masks.append(s.mask)
        masks.sort(reverse=True)  # longest prefix first (bytes order = mask order)
        self._masks = masks

    def __iter__(self):
        return iter(self.list)

    def __len__(self):
        return len(self.list)

    def __getitem__(self, index):
        return self.list[index]

    def by_id(self, network):
        return self._by_net.get(bytes(network))

    def by_addr(self, addr):
        """The scope whose subnet holds addr (active or not), or None."""
        if addr is None or len(addr) != 4:
            return None
        for m in self._masks:
            s = self._by_net.get(and4(addr, m))
            if s is not None and s.mask == m:
                return s
        return None

    def select(self, link_addr):
        """The active scope serving the link identified by link_addr (the
        relay's giaddr, or the receiving interface's address), or None."""
        s = self.by_addr(link_addr)
        if s is None or not s.active:
            return None
        return s

    def link_address(self, pkt, local_addr):
        """The address that identifies the client's link: subnet selection
        (118, RFC 3011), then link selection (82/5, RFC 3527), then giaddr,
        then the receiving interface."""
        v = pkt.options.get(OPT_SUBNET_SELECTION)
        if v is not None and len(v) == 4:
            return bytes(v)
        rai = pkt.options.get(OPT_RELAY_INFO)
        if rai is not None:
            v = _link_selection(rai)
            if v is not None:
                return v
        if pkt.giaddr != _ZERO:
            return pkt.giaddr
        return local_addr

    def for_packet(self, pkt, local_addr):
        """select() for the link a DHCP packet came from."""
        return self.select(self.link_address(pkt, local_addr))


def build(config):
    """Scopes for a validated Config."""
    return Scopes(config)
