# wire/options.py - typed DHCP option values (RFC 2132 and friends).
#
# The config gives option values as JSON (strings, numbers, lists); the wire
# wants bytes. This module knows, per option code, how one becomes the other,
# and back again for display. IPv4 addresses go from dotted strings straight
# to 4 bytes, never through an int (ints >= 2**30 are heap objects on boards).

import struct

from dhcpfo.compat import const, ip_str
from dhcpfo.compat import parse_hex as compat_parse_hex
from dhcpfo.config import parse_ip as ip_or_none  # the one strict dotted-quad parser

# Value types.
T_IP = const(1)  # one address
T_IPS = const(2)  # one or more addresses
T_IPPAIRS = const(3)  # pairs of addresses (policy filter, static routes)
T_U8 = const(4)
T_U16 = const(5)
T_U32 = const(6)
T_I32 = const(7)
T_BOOL = const(8)
T_STR = const(9)  # NVT ASCII / UTF-8 text
T_BYTES = const(10)  # opaque octets, given as hex
T_U8S = const(11)
T_U16S = const(12)
T_DOMAINS = const(13)  # RFC 3397 domain search list
T_ROUTES = const(14)  # RFC 3442 classless static routes

TYPE_NAMES = {
    T_IP: "ip", T_IPS: "ip-list", T_IPPAIRS: "ip-pairs", T_U8: "uint8", T_U16: "uint16",
    T_U32: "uint32", T_I32: "int32", T_BOOL: "bool", T_STR: "string", T_BYTES: "hex",
    T_U8S: "uint8-list", T_U16S: "uint16-list", T_DOMAINS: "domain-list",
    T_ROUTES: "route-list",
}

# Longest value accepted from config: more would not fit any 1500-octet reply.
MAX_VALUE = const(1024)

# (code, canonical name, type). Names follow ISC dhcpd where it has one.
OPTIONS = (
    (1, "subnet-mask", T_IP),
    (2, "time-offset", T_I32),
    (3, "routers", T_IPS),
    (4, "time-servers", T_IPS),
    (5, "ien116-name-servers", T_IPS),
    (6, "domain-name-servers", T_IPS),
    (7, "log-servers", T_IPS),
    (8, "cookie-servers", T_IPS),
    (9, "lpr-servers", T_IPS),
    (10, "impress-servers", T_IPS),
    (11, "resource-location-servers", T_IPS),
    (12, "host-name", T_STR),
    (13, "boot-size", T_U16),
    (14, "merit-dump", T_STR),
    (15, "domain-name", T_STR),
    (16, "swap-server", T_IP),
    (17, "root-path", T_STR),
    (18, "extensions-path", T_STR),
    (19, "ip-forwarding", T_BOOL),
    (20, "non-local-source-routing", T_BOOL),
    (21, "policy-filter", T_IPPAIRS),
    (22, "max-dgram-reassembly", T_U16),
    (23, "default-ip-ttl", T_U8),
    (24, "path-mtu-aging-timeout", T_U32),
    (25, "path-mtu-plateau-table", T_U16S),
    (26, "interface-mtu", T_U16),
    (27, "all-subnets-local", T_BOOL),
    (28, "broadcast-address", T_IP),
    (29, "perform-mask-discovery", T_BOOL),
    (30, "mask-supplier", T_BOOL),
    (31, "router-discovery", T_BOOL),
    (32, "router-solicitation-address", T_IP),
    (33, "static-routes", T_IPPAIRS),
    (34, "trailer-encapsulation", T_BOOL),
    (35, "arp-cache-timeout", T_U32),
    (36, "ieee802-3-encapsulation", T_BOOL),
    (37, "default-tcp-ttl", T_U8),
    (38, "tcp-keepalive-interval", T_U32),
    (39, "tcp-keepalive-garbage", T_BOOL),
    (40, "nis-domain", T_STR),
    (41, "nis-servers", T_IPS),
    (42, "ntp-servers", T_IPS),
    (43, "vendor-encapsulated-options", T_BYTES),
    (44, "netbios-name-servers", T_IPS),
    (45, "netbios-dd-server", T_IPS),
    (46, "netbios-node-type", T_U8),
    (47, "netbios-scope", T_STR),
    (48, "font-servers", T_IPS),
    (49, "x-display-manager", T_IPS),
    (50, "dhcp-requested-address", T_IP),
    (51, "dhcp-lease-time", T_U32),
    (53, "dhcp-message-type", T_U8),
    (54, "dhcp-server-identifier", T_IP),
    (55, "dhcp-parameter-request-list", T_U8S),
    (56, "dhcp-message", T_STR),
    (57, "dhcp-max-message-size", T_U16),
    (58, "dhcp-renewal-time", T_U32),
    (59, "dhcp-rebinding-time", T_U32),
    (60, "vendor-class-identifier", T_STR),
    (61, "dhcp-client-identifier", T_BYTES),
    (64, "nisplus-domain", T_STR),
    (65, "nisplus-servers", T_IPS),
    (66, "tftp-server-name", T_STR),
    (67, "bootfile-name", T_STR),
    (69, "smtp-server", T_IPS),
    (70, "pop-server", T_IPS),
    (71, "nntp-server", T_IPS),
    (72, "www-server", T_IPS),
    (73, "finger-server", T_IPS),
    (74, "irc-server", T_IPS),
    (77, "user-class", T_BYTES),
    (82, "relay-agent-information", T_BYTES),
    (100, "pcode", T_STR),  # RFC 4833 POSIX TZ string
    (101, "tcode", T_STR),  # RFC 4833 tz database name
    (114, "captive-portal", T_STR),  # RFC 8910 URI
    (118, "subnet-selection", T_IP),
    (119, "domain-search", T_DOMAINS),
    (121, "classless-static-routes", T_ROUTES),
    (150, "tftp-server-address", T_IPS),
    (249, "ms-classless-static-routes", T_ROUTES),  # Microsoft's pre-RFC 3442 code
    (252, "wpad-url", T_STR),
)

ALIASES = {
    "dns-servers": 6,
    "router": 3,
    "netmask": 1,
    "mtu": 26,
    "lease-time": 51,
    "renewal-time": 58,
    "rebinding-time": 59,
    "server-identifier": 54,
    "client-identifier": 61,
    "vendor-class": 60,
    "message": 56,
    "max-message-size": 57,
    "parameter-request-list": 55,
    "requested-address": 50,
    "tftp-server": 66,
    "bootfile": 67,
    "rfc3442-classless-static-routes": 121,
    "wpad": 252,
    "tz-posix": 100,
    "tz-database": 101,
    "v4-captive-portal": 114,
}

# Codes the packet codec owns: never set from config.
_RESERVED = (0, 52, 53, 255)

# Numeric limits beyond the plain type range: code -> (low, high).
_LIMITS = {
    22: (576, 65535),
    23: (1, 255),
    25: (68, 65535),
    26: (68, 65535),
    37: (1, 255),
    57: (576, 65535),
}
_CHOICES = {46: (1, 2, 4, 8)}  # netbios node type: B, P, M, H

_BY_CODE = {}
_BY_NAME = {}
for _c, _n, _t in OPTIONS:
    _BY_CODE[_c] = (_n, _t)
    _BY_NAME[_n] = _c
for _n in ALIASES:
    _BY_NAME[_n] = ALIASES[_n]
_INFINITE = ("infinite", "infinity")


class OptionValueError(ValueError):
    """A config option value that cannot be encoded; str() explains, .reason is fixed."""

    def __init__(self, reason, message=None):
        super().__init__(message or reason)
        self.reason = reason


def _fail(reason, name, message):
    raise OptionValueError(reason, "%s: %s" % (name, message))


def _norm(name):
    return name.strip().lower().replace("_", "-")


class Definitions:
    """Options a configuration defines for codes the table does not know, so
    their values can be written by type (text, addresses, ...) instead of
    hex: ISC's `option NAME code N = TYPE;`, Kea's option-def."""

    def __init__(self):
        self.types = {}  # code -> T_*
        self.names = {}  # normalised name -> code
        self.display = {}  # code -> name as given

    def add(self, code, name, type_name):
        """Define `code` (not in the table) as `name` of type `type_name`
        (a TYPE_NAMES value); raises OptionValueError."""
        if type(code) is not int or code < 1 or code > 254 or code in _RESERVED:
            raise OptionValueError("bad-code", "option code %r is not 1..254" % (code,))
        if code in _BY_CODE:
            raise OptionValueError("known-option", "option %d is already defined as %s"
                                   % (code, _BY_CODE[code][0]))
        if code in self.types:
            raise OptionValueError("known-option", "option %d is defined twice" % code)
        t = T_STR if type_name == "text" else None  # ISC's word for it
        for k in TYPE_NAMES:
            if TYPE_NAMES[k] == type_name:
                t = k
        if t is None or t == T_ROUTES:
            raise OptionValueError("bad-type", "type %r is not one of %s" % (
                type_name, ", ".join([TYPE_NAMES[k] for k in sorted(TYPE_NAMES) if k != T_ROUTES])))
        if name is not None:
            n = _norm(name)
            if not n or n in _BY_NAME or n in self.names or n.startswith("option-") or _is_digits(n):
                raise OptionValueError("bad-name", "name %r is taken or not a name" % (name,))
            self.names[n] = code
            self.display[code] = name
        self.types[code] = t


def option_code(code_or_name, defs=None):
    """An option code from an int, a known name or alias (any case, '-' or '_'),
    a name `defs` defines, or a number in a string ("200", "option-200")."""
    if type(code_or_name) is int:
        c = code_or_name
    elif type(code_or_name) is str:
        n = _norm(code_or_name)
        c = _BY_NAME.get(n)
        if c is None and defs is not None:
            c = defs.names.get(n)
        if c is None:
            if n.startswith("option-"):
                n = n[7:]
            if not _is_digits(n) or len(n) > 3:
                raise OptionValueError("unknown-option", "unknown DHCP option %r" % code_or_name)
            c = int(n)
    else:
        raise OptionValueError("unknown-option", "option must be a name or code, got %r" % (code_or_name,))
    if c < 1 or c > 254:
        raise OptionValueError("unknown-option", "option code %d is not 1..254" % c)
    return c


def option_name(code, defs=None):
    """The canonical name of a code, or "option-N" for codes not in the table."""
    e = _BY_CODE.get(code)
    if e:
        return e[0]
    if defs is not None and code in defs.display:
        return defs.display[code]
    return "option-%d" % code


def option_type(code, defs=None):
    """The value type of a code (T_*); unknown codes carry hex (T_BYTES)
    unless `defs` defines them."""
    e = _BY_CODE.get(code)
    if e:
        return e[1]
    if defs is not None:
        return defs.types.get(code, T_BYTES)
    return T_BYTES


# ---------------------------------------------------------------------------
# Small parsers shared with the config loader.


def _is_digits(s):
    if not s:
        return False
    for ch in s:
        if ch < "0" or ch > "9":
            return False
    return True


def parse_ip(s, name="address"):
    """Dotted-quad string -> 4 bytes, strictly (no leading zeros, no spaces inside)."""
    if type(s) is not str:
        _fail("bad-ip", name, "expected an IPv4 address string like \"198.18.0.1\", got %r" % (s,))
    b = ip_or_none(s.strip())
    if b is None:
        _fail("bad-ip", name, "%r is not an IPv4 address" % (s,))
    return b


format_ip = ip_str


def parse_hex(s, name="value"):
    """Hex text (compat.parse_hex's syntax) -> bytes, or a bad-hex error."""
    b = compat_parse_hex(s)
    if not b:
        _fail("bad-hex", name, "expected hex like \"0x0104\" or \"01:04\", got %r" % (s,))
    return b


def _is_raw(v):
    return type(v) is str and v[:2] in ("0x", "0X")


def _mask_ok(b):
    """A contiguous netmask (ones then zeros), checked octet by octet."""
    seen_partial = False
    for x in b:
        if seen_partial:
            if x:
                return False
        elif x != 255:
            if x not in (0, 128, 192, 224, 240, 248, 252, 254):
                return False
            seen_partial = True
    return True


def _split_list(v):
    """A JSON list, or one string holding items split on commas/whitespace."""
    if type(v) is str:
        return v.replace(",", " ").split()
    if type(v) in (list, tuple):
        return v
    return None


def _int(v, lo, hi, name):
    if type(v) is not int:
        _fail("bad-type", name, "expected an integer, got %r" % (v,))
    if v < lo or v > hi:
        _fail("out-of-range", name, "%d is outside %d..%d" % (v, lo, hi))
    return v


# ---------------------------------------------------------------------------
# Encoding config values.


def encode_option_value(code_or_name, value, defs=None):
    """(code, wire bytes) for a config value; raises OptionValueError.

    Any option also takes raw hex "0x...". Lists of addresses may be a JSON
    list or one string separated by commas or spaces. `defs` (Definitions)
    gives codes the table does not know a name and a type.
    """
    code = option_code(code_or_name, defs)
    name = option_name(code, defs)
    if code in _RESERVED:
        raise OptionValueError("reserved-option", "%s: option %d is set by the server itself" % (name, code))
    t = option_type(code, defs)
    if _is_raw(value):
        b = parse_hex(value, name)
    else:
        b = _encode_typed(code, t, value, name)
    if len(b) > MAX_VALUE:
        _fail("too-long", name, "%d octets is more than %d" % (len(b), MAX_VALUE))
    return code, b


def _encode_typed(code, t, v, name):
    if t == T_IP:
        b = parse_ip(v, name)
        if code == 1 and not _mask_ok(b):
            _fail("bad-mask", name, "%r is not a contiguous netmask" % (v,))
        return b
    if t == T_IPS:
        items = _split_list(v)
        if items is None:
            _fail("bad-type", name, "expected a list of IPv4 addresses, got %r" % (v,))
        if not items:
            _fail("empty", name, "needs at least one address")
        return b"".join([parse_ip(x, name) for x in items])
    if t == T_IPPAIRS:
        return _encode_pairs(code, v, name)
    if t in (T_U8, T_U16, T_U32, T_I32):
        return _encode_int(code, t, v, name)
    if t == T_BOOL:
        if type(v) is bool:
            return b"\x01" if v else b"\x00"
        if type(v) is int and v in (0, 1):
            return bytes((v,))
        _fail("bad-type", name, "expected true or false, got %r" % (v,))
    if t == T_STR:
        if type(v) is not str:
            _fail("bad-type", name, "expected a string, got %r" % (v,))
        if not v:
            _fail("empty", name, "empty string")
        return v.encode("utf-8")
    if t == T_BYTES:
        if type(v) is str:
            return parse_hex(v, name)
        if type(v) in (list, tuple) and v:
            return bytes([_int(x, 0, 255, name) for x in v])
        _fail("bad-type", name, "expected hex like \"0x0104\" or a list of octets, got %r" % (v,))
    if t == T_U8S or t == T_U16S:
        if type(v) not in (list, tuple) or not v:
            _fail("bad-type", name, "expected a non-empty list of integers, got %r" % (v,))
        if t == T_U8S:
            return bytes([_int(x, 0, 255, name) for x in v])
        lo, hi = _LIMITS.get(code, (0, 65535))
        return b"".join([struct.pack(">H", _int(x, lo, hi, name)) for x in v])
    if t == T_DOMAINS:
        items = _split_list(v)
        if not items:
            _fail("bad-type", name, "expected a non-empty list of domain names, got %r" % (v,))
        return encode_domains(items, name)
    if t == T_ROUTES:
        return _encode_routes(v, name)
    _fail("bad-type", name, "no encoder")  # unreachable with the table above


def _encode_int(code, t, v, name):
    if t == T_U32 and type(v) is str and v.strip().lower() in _INFINITE:
        return b"\xff\xff\xff\xff"
    if t == T_U8:
        lo, hi = 0, 255
    elif t == T_U16:
        lo, hi = 0, 65535
    elif t == T_U32:
        lo, hi = 0, 0xFFFFFFFF
    else:
        lo, hi = -0x80000000, 0x7FFFFFFF
    lo, hi = _LIMITS.get(code, (lo, hi))
    n = _int(v, lo, hi, name)
    ch = _CHOICES.get(code)
    if ch is not None and n not in ch:
        _fail("out-of-range", name, "%d is not one of %s" % (n, ", ".join([str(x) for x in ch])))
    if t == T_U8:
        return bytes((n,))
    if t == T_U16:
        return struct.pack(">H", n)
    if t == T_U32:
        return struct.pack(">I", n)
    return struct.pack(">i", n)


def _pair(x, name):
    if type(x) is str:
        x = x.replace(",", " ").split()
    if type(x) not in (list, tuple) or len(x) != 2:
        _fail("bad-type", name, "expected a pair of addresses, got %r" % (x,))
    return parse_ip(x[0], name), parse_ip(x[1], name)


def _encode_pairs(code, v, name):
    if type(v) not in (list, tuple) or not v:
        _fail("bad-type", name, "expected a non-empty list of address pairs, got %r" % (v,))
    out = []
    for x in v:
        a, b = _pair(x, name)
        if code == 33 and a == b"\x00\x00\x00\x00":
            _fail("bad-route", name, "0.0.0.0 is not a legal destination (use routers)")
        out.append(a)
        out.append(b)
    return b"".join(out)


def encode_domains(names, name="domain-search"):
    """RFC 1035 names with message compression (RFC 3397 §2); offsets count
    from the start of the option value."""
    out = bytearray()
    seen = {}
    for dn in names:
        if type(dn) is not str:
            _fail("bad-domain", name, "expected a domain name string, got %r" % (dn,))
        d = dn.strip()
        if d.endswith("."):
            d = d[:-1]
        if not d:
            _fail("bad-domain", name, "empty domain name")
        labels = d.split(".")
        wire = 1
        for lab in labels:
            if not lab or len(lab) > 63 or not _label_ok(lab):
                _fail("bad-domain", name, "%r has a bad label %r" % (dn, lab))
            wire += len(lab) + 1
        if wire > 255:
            _fail("bad-domain", name, "%r is longer than 255 octets" % (dn,))
        for i in range(len(labels)):
            suffix = ".".join(labels[i:]).lower()
            off = seen.get(suffix)
            if off is not None:
                out += bytes((0xC0 | (off >> 8), off & 0xFF))
                break
            if len(out) < 0x4000:
                seen[suffix] = len(out)
            lab = labels[i].encode()
            out += bytes((len(lab),))
            out += lab
        else:
            out += b"\x00"
    return bytes(out)


def _label_ok(lab):
    for ch in lab:
        if not ("a" <= ch <= "z" or "A" <= ch <= "Z" or "0" <= ch <= "9" or ch == "-" or ch == "_"):
            return False
    return True


def parse_prefix(s, name="route"):
    """"10.1.0.0/16" -> (4 address bytes, prefix length); host bits must be zero."""
    if type(s) is not str or "/" not in s:
        _fail("bad-route", name, "expected a destination like \"10.0.0.0/8\", got %r" % (s,))
    a, p = s.strip().split("/", 1)
    if not _is_digits(p) or len(p) > 2 or int(p) > 32:
        _fail("bad-route", name, "%r has a bad prefix length" % (s,))
    width = int(p)
    b = parse_ip(a, name)
    full = width // 8
    bits = width % 8
    for i in range(full, 4):
        x = b[i]
        if i == full and bits:
            x &= 0xFF >> bits
        if x:
            _fail("bad-route", name, "%r has host bits set beyond /%d" % (s, width))
    return b, width


def _encode_routes(v, name):
    """RFC 3442: width octet, significant destination octets, router."""
    if type(v) not in (list, tuple) or not v:
        _fail("bad-type", name, "expected a list of routes like \"10.0.0.0/8 198.18.0.1\", got %r" % (v,))
    out = []
    for r in v:
        if type(r) is str:
            r = [x for x in r.replace(",", " ").split() if x != "via"]
        if type(r) not in (list, tuple) or len(r) != 2:
            _fail("bad-route", name, "expected \"destination/prefix router\", got %r" % (r,))
        dest, width = parse_prefix(r[0], name)
        gw = parse_ip(r[1], name)
        out.append(bytes((width,)))
        out.append(dest[:(width + 7) // 8])
        out.append(gw)
    return b"".join(out)


# ---------------------------------------------------------------------------
# Decoding wire values for display (JSON-friendly, never raises).


def _hexstr(b):
    return "0x" + "".join(["%02x" % x for x in b])


def _text(b):
    while b and b[-1] == 0:  # some clients NUL-terminate host names
        b = b[:-1]
    try:
        s = b.decode("utf-8")
    except (UnicodeError, ValueError):
        return None
    for ch in s:
        if ch < " " or ch == "\x7f":
            return None
    return s if s else None


def decode_domains(b):
    """RFC 1035 names (with compression pointers) -> list of str, or None."""
    names = []
    i = 0
    n = len(b)
    while i < n:
        labels = []
        j = i
        end = None  # where the next name starts once a pointer was followed
        hops = 0
        while True:
            if j >= n:
                return None
            ln = b[j]
            if ln == 0:
                if end is None:
                    end = j + 1
                break
            if ln & 0xC0 == 0xC0:
                if j + 1 >= n:
                    return None
                ptr = ((ln & 0x3F) << 8) | b[j + 1]
                if end is None:
                    end = j + 2
                hops += 1
                if ptr >= j or hops > 64:  # pointers only go backwards
                    return None
                j = ptr
                continue
            if ln & 0xC0 or j + 1 + ln > n:
                return None
            s = _text(bytes(b[j + 1:j + 1 + ln]))
            if s is None:
                return None
            labels.append(s)
            j += 1 + ln
        names.append(".".join(labels))
        i = end
    return names


def _decode_routes(b):
    out = []
    i = 0
    n = len(b)
    while i < n:
        w = b[i]
        if w > 32:
            return None
        k = (w + 7) // 8
        if i + 1 + k + 4 > n:
            return None
        dest = bytes(b[i + 1:i + 1 + k]) + bytes(4 - k)
        gw = b[i + 1 + k:i + 5 + k]
        out.append("%s/%d %s" % (format_ip(dest), w, format_ip(gw)))
        i += 5 + k
    return out


def decode_option_value(code, value, defs=None):
    """Wire bytes -> a JSON-friendly value by the option's type; values that
    do not match their type come back as "0x..." hex."""
    b = bytes(value)
    t = option_type(code, defs)
    n = len(b)
    r = None
    if t == T_IP:
        if n == 4:
            r = format_ip(b)
    elif t == T_IPS:
        if n and n % 4 == 0:
            r = [format_ip(b[i:i + 4]) for i in range(0, n, 4)]
    elif t == T_IPPAIRS:
        if n and n % 8 == 0:
            r = [[format_ip(b[i:i + 4]), format_ip(b[i + 4:i + 8])] for i in range(0, n, 8)]
    elif t == T_U8:
        if n == 1:
            r = b[0]
    elif t == T_U16:
        if n == 2:
            r = struct.unpack(">H", b)[0]
    elif t == T_U32:
        if n == 4:
            r = struct.unpack(">I", b)[0]
    elif t == T_I32:
        if n == 4:
            r = struct.unpack(">i", b)[0]
    elif t == T_BOOL:
        if n == 1 and b[0] < 2:
            r = b[0] == 1
    elif t == T_STR:
        r = _text(b)
    elif t == T_U8S:
        r = list(b)
    elif t == T_U16S:
        if n and n % 2 == 0:
            r = [struct.unpack(">H", b[i:i + 2])[0] for i in range(0, n, 2)]
    elif t == T_DOMAINS:
        r = decode_domains(b)
    elif t == T_ROUTES:
        r = _decode_routes(b)
    if r is None:
        return _hexstr(b)
    return r
