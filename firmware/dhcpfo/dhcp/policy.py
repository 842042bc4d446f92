# dhcp/policy.py - policy-based assignment (Windows Server 2012 style).
#
# A policy groups clients by vendor class (60), user class (77), MAC address
# or client identifier (61) and gives the group its own address ranges,
# options and lease time. Policies are tried in processing order (scope
# policies before server policies); the first enabled one that matches wins.
#
# Within one criterion, "eq" values are ORed and "ne" values are ANDed (the
# client must differ from every one of them); the policy's operator then
# combines the criteria that have values: "or" needs one, "and" needs all.
# A missing client attribute never equals anything, so it fails "eq" and
# passes "ne".

from dhcpfo.compat import const

OPT_VENDOR_CLASS = const(60)
OPT_CLIENT_ID = const(61)
OPT_USER_CLASS = const(77)


class Match:
    """One condition value: equal (eq=True) or not equal, exact or prefix."""

    __slots__ = ("eq", "value", "prefix")

    def __init__(self, eq, value, prefix):
        self.eq = eq
        self.value = value
        self.prefix = prefix

    def hit(self, data):
        """Whether one client value equals (or starts with) this value."""
        if data is None:
            return False
        if self.prefix:
            n = len(self.value)
            return len(data) >= n and data[:n] == self.value
        return data == self.value


def _criterion(matches):
    """(eq list, ne list) from MatchConfig-like objects with op/value/prefix."""
    eq = []
    ne = []
    for m in matches:
        (eq if m.op == "eq" else ne).append(Match(m.op == "eq", m.value, m.prefix))
    return (eq, ne)


def _any_hit(m, values):
    for v in values:
        if m.hit(v):
            return True
    return False


def _holds(crit, values):
    """One criterion against the client's candidate values (a list)."""
    eq, ne = crit
    if eq:
        ok = False
        for m in eq:
            if _any_hit(m, values):
                ok = True
                break
        if not ok:
            return False
    for m in ne:
        if _any_hit(m, values):
            return False
    return True


class Policy:
    """A policy ready for matching.

    spans: the policy's own address ranges as inclusive (first, last) offsets
    in its scope's pool, or None when it has none (then it draws from the
    scope's general pool). options: its own encoded options; the scope fills
    in `merged` (all levels up to this policy) when it builds its options.
    """

    def __init__(self, cfg, spans=None, level="scope"):
        self.name = cfg.name
        self.description = cfg.description
        self.order = cfg.order
        self.enabled = cfg.enabled
        self.level = level
        self.all = cfg.operator == "and"
        self.lease_time = cfg.lease_time
        self.options = cfg.options
        self.merged = cfg.options
        self.spans = spans if spans else None
        # (index into client attributes, eq list, ne list) for criteria in use
        crit = []
        for i, ms in ((0, cfg.vendor_class), (1, cfg.user_class), (2, cfg.mac),
                      (3, cfg.client_id)):
            if ms:
                eq, ne = _criterion(ms)
                crit.append((i, (eq, ne)))
        self._crit = crit

    @property
    def has_ranges(self):
        return self.spans is not None

    def matches(self, attrs):
        """attrs from client_attrs(); True when this policy claims the client."""
        if not self.enabled or not self._crit:
            return False
        for i, crit in self._crit:
            ok = _holds(crit, attrs[i])
            if ok and not self.all:
                return True
            if not ok and self.all:
                return False
        return self.all

    def allows(self, offset):
        """Whether a client of this policy may get the address at offset."""
        if self.spans is None:
            return True
        for lo, hi in self.spans:
            if lo <= offset <= hi:
                return True
        return False

    def __repr__(self):
        return "<Policy %s order=%d>" % (self.name, self.order)


def user_classes(data):
    """Candidate values of option 77: the raw option, plus each RFC 3004
    instance when it parses as length-prefixed items (Windows clients send a
    bare string, RFC 3004 clients a list)."""
    if data is None:
        return []
    out = [data]
    items = []
    i = 0
    n = len(data)
    while i < n:
        ln = data[i]
        if ln == 0 or i + 1 + ln > n:
            return out
        items.append(data[i + 1:i + 1 + ln])
        i += 1 + ln
    return out + items


def client_attrs(pkt):
    """The four things policies look at, each as a list of candidate values:
    (vendor class, user classes, hardware address, client id)."""
    opts = pkt.options
    vc = opts.get(OPT_VENDOR_CLASS)
    cid = opts.get(OPT_CLIENT_ID)
    return (
        [vc] if vc is not None else [],
        user_classes(opts.get(OPT_USER_CLASS)),
        [pkt.hwaddr()],
        [cid] if cid is not None else [],
    )


def select(policies, pkt, attrs=None):
    """The first enabled policy (in the given order) that matches pkt, or None."""
    if not policies:
        return None
    if attrs is None:
        attrs = client_attrs(pkt)
    for p in policies:
        if p.matches(attrs):
            return p
    return None
