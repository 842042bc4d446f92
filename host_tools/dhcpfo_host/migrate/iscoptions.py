"""DHCP option values between dhcpd syntax, wire bytes and our JSON config.

dhcpd writes a value by the option's type (`option routers 198.18.0.1,
198.18.0.2;`, `option domain-name "lab";`, `option x 1:2:3;`). Import turns
those tokens into wire bytes (by our option table's type, or by the type an
`option NAME code N = TYPE;` declaration gave), and the JSON value is then
`wire.options.decode_option_value` of the bytes, so config.load encodes it
back to the same bytes. Export goes from bytes to dhcpd syntax.
"""

import struct

from dhcpfo.wire import options as wo

from dhcpfo_host.migrate.iscsyntax import colon_hex, hex_colon, quote

# dhcpd type names of a declaration -> our value types (scalars; "array of"
# wraps them). Records ({ a, b }) and encapsulations are not supported.
_DECL_TYPES = {
    ("ip-address",): wo.T_IP, ("text",): wo.T_STR, ("string",): wo.T_BYTES,
    ("unsigned", "integer", "8"): wo.T_U8, ("unsigned", "integer", "16"): wo.T_U16,
    ("unsigned", "integer", "32"): wo.T_U32, ("signed", "integer", "32"): wo.T_I32,
    ("boolean",): wo.T_BOOL, ("domain-list",): wo.T_DOMAINS,
    ("domain-list", "compressed"): wo.T_DOMAINS,
}
_ARRAY_OF = {wo.T_IP: wo.T_IPS, wo.T_U8: wo.T_U8S, wo.T_U16: wo.T_U16S}


class OptionImportError(ValueError):
    """A value or declaration that cannot be mapped; str() says why."""


def parse_declaration(words):
    """The type of `option NAME code N = <words>` -> our T_* constant."""
    w = [x.lower() for x in words]
    if w and w[0] == "{":
        raise OptionImportError("record types ({ ... }) are not supported")
    array = False
    if w[:2] == ["array", "of"]:
        array = True
        w = w[2:]
    t = _DECL_TYPES.get(tuple(w))
    if t is None:
        raise OptionImportError("type '%s' is not supported" % " ".join(words))
    if array:
        if t not in _ARRAY_OF:
            raise OptionImportError("type 'array of %s' is not supported" % " ".join(words[2:]))
        t = _ARRAY_OF[t]
    return t


def _items(toks):
    """Value tokens split on commas -> list of lists of tokens."""
    out = [[]]
    for t in toks:
        if t.kind == "punct" and t.value == ",":
            out.append([])
        else:
            out[-1].append(t)
    if any(not x for x in out):
        raise OptionImportError("empty item in a comma-separated value")
    return out


def _one(toks, what):
    if len(toks) != 1:
        raise OptionImportError("expected one %s, got '%s'" % (what, " ".join(t.text() for t in toks)))
    return toks[0]


def _ip(t):
    b = wo.ip_or_none(t.value) if t.kind == "word" else None
    if b is None:
        raise OptionImportError("'%s' is not an IPv4 address (host names are not resolved)" % t.text())
    return b


def _int(t, lo, hi):
    try:
        v = int(t.value, 0) if t.kind == "word" else None
    except ValueError:
        v = None
    if v is None or v < lo or v > hi:
        raise OptionImportError("'%s' is not an integer in %d..%d" % (t.text(), lo, hi))
    return v


def _octets(t):
    """A string token's octets, or colon hex."""
    if t.kind == "string":
        return t.value.encode("latin-1")
    b = colon_hex(t.value)
    if b is None:
        raise OptionImportError("'%s' is neither a string nor colon hex" % t.text())
    return b


def encode_tokens(t, toks):
    """Wire bytes for dhcpd value tokens of an option of our type `t`."""
    if not toks:
        raise OptionImportError("no value")
    if t == wo.T_IP:
        return _ip(_one(toks, "address"))
    if t == wo.T_IPS:
        return b"".join(_ip(_one(i, "address")) for i in _items(toks))
    if t == wo.T_IPPAIRS:
        out = b""
        for i in _items(toks):
            if len(i) != 2:
                raise OptionImportError("expected address pairs")
            out += _ip(i[0]) + _ip(i[1])
        return out
    if t == wo.T_U8:
        return bytes([_int(_one(toks, "integer"), 0, 255)])
    if t == wo.T_U16:
        return struct.pack(">H", _int(_one(toks, "integer"), 0, 65535))
    if t == wo.T_U32:
        tok = _one(toks, "integer")
        if tok.value.lower() == "infinite":
            return b"\xff\xff\xff\xff"
        return struct.pack(">I", _int(tok, 0, 0xFFFFFFFF))
    if t == wo.T_I32:
        return struct.pack(">i", _int(_one(toks, "integer"), -(1 << 31), (1 << 31) - 1))
    if t == wo.T_BOOL:
        v = _one(toks, "boolean").value.lower()
        if v in ("true", "on"):
            return b"\x01"
        if v in ("false", "off"):
            return b"\x00"
        raise OptionImportError("'%s' is not true/false" % v)
    if t == wo.T_STR:
        tok = _one(toks, "string")
        return tok.value.encode("latin-1")
    if t == wo.T_U8S:
        return bytes(_int(_one(i, "integer"), 0, 255) for i in _items(toks))
    if t == wo.T_U16S:
        return b"".join(struct.pack(">H", _int(_one(i, "integer"), 0, 65535)) for i in _items(toks))
    if t == wo.T_DOMAINS:
        names = [_one(i, "domain").value for i in _items(toks)]
        try:
            return wo.encode_domains(names)
        except wo.OptionValueError as e:
            raise OptionImportError(str(e))
    if t == wo.T_ROUTES:
        # dhcpd has no route type: routers declare 121/249 as an array of
        # unsigned integer 8 (the RFC 3442 octets) - accept that form
        return bytes(_int(_one(i, "integer"), 0, 255) for i in _items(toks))
    # T_BYTES: colon hex or a string
    return _octets(_one(toks, "value"))


def json_value(code, data, defs=None):
    """(config key, JSON value) for wire bytes of option `code`; `defs`
    (wire.options.Definitions) names and types codes our table lacks."""
    name = wo.option_name(code, defs)
    key = name if not name.startswith("option-") else str(code)
    return key, wo.decode_option_value(code, data, defs)


# -- export ---------------------------------------------------------------------------


# our value types -> dhcpd declaration types (for `option NAME code N = TYPE;`)
ISC_DECL = {wo.T_IP: "ip-address", wo.T_IPS: "array of ip-address", wo.T_STR: "text",
            wo.T_BYTES: "string", wo.T_U8: "unsigned integer 8", wo.T_U16: "unsigned integer 16",
            wo.T_U32: "unsigned integer 32", wo.T_I32: "signed integer 32", wo.T_BOOL: "boolean",
            wo.T_U8S: "array of unsigned integer 8", wo.T_U16S: "array of unsigned integer 16",
            wo.T_DOMAINS: "domain-list compressed"}


def isc_value(code, data, defs=None):
    """dhcpd syntax for wire bytes of an option we know by name (or that
    `defs` defines), or None when the bytes should go out as colon hex
    under a declaration."""
    t = wo.option_type(code, defs)
    n = len(data)
    fmt = wo.format_ip
    if t == wo.T_IP and n == 4:
        return fmt(data)
    if t == wo.T_IPS and n and n % 4 == 0:
        return ", ".join(fmt(data[i:i + 4]) for i in range(0, n, 4))
    if t == wo.T_IPPAIRS and n and n % 8 == 0:
        return ", ".join("%s %s" % (fmt(data[i:i + 4]), fmt(data[i + 4:i + 8])) for i in range(0, n, 8))
    if t == wo.T_U8 and n == 1:
        return str(data[0])
    if t == wo.T_U16 and n == 2:
        return str(struct.unpack(">H", data)[0])
    if t == wo.T_U32 and n == 4:
        return str(struct.unpack(">I", data)[0])
    if t == wo.T_I32 and n == 4:
        return str(struct.unpack(">i", data)[0])
    if t == wo.T_BOOL and n == 1 and data[0] < 2:
        return "true" if data[0] else "false"
    if t == wo.T_STR:
        return quote(data.decode("latin-1"))
    if t == wo.T_U8S and n:
        return ", ".join(str(x) for x in data)
    if t == wo.T_U16S and n and n % 2 == 0:
        return ", ".join(str(struct.unpack(">H", data[i:i + 2])[0]) for i in range(0, n, 2))
    if t == wo.T_DOMAINS:
        names = wo.decode_domains(data)
        if names:
            return ", ".join(quote(x) for x in names)
    if t == wo.T_BYTES and n:
        return hex_colon(data)
    return None
