# wire/dhcp.py - DHCPv4 packets on the wire.
#
# RFC 2131 (format, table 3, reply addressing), RFC 2132 (options, overload),
# RFC 3396 (long options split into instances and concatenated again),
# RFC 3046 (relay agent information echoed last), RFC 6842 (client id echoed).
#
# decode() takes untrusted bytes and raises only DecodeError. encode() writes
# the packets this server builds itself and never exceeds the client's limit.

import struct

from dhcpfo.compat import IS_MICROPYTHON, const, ip_str

try:
    from collections import OrderedDict as _OrderedDict
except ImportError:  # a port without collections.OrderedDict
    _OrderedDict = dict

# BOOTP op codes.
BOOTREQUEST = const(1)
BOOTREPLY = const(2)

# DHCP message types (option 53).
DISCOVER = const(1)
OFFER = const(2)
REQUEST = const(3)
DECLINE = const(4)
ACK = const(5)
NAK = const(6)
RELEASE = const(7)
INFORM = const(8)

# Option codes the server itself reads or writes. Admin-facing options live
# in wire.options.
OPT_PAD = const(0)
OPT_SUBNET_MASK = const(1)
OPT_ROUTERS = const(3)
OPT_DNS_SERVERS = const(6)
OPT_HOST_NAME = const(12)
OPT_DOMAIN_NAME = const(15)
OPT_BROADCAST = const(28)
OPT_VENDOR_SPECIFIC = const(43)
OPT_REQUESTED_IP = const(50)
OPT_LEASE_TIME = const(51)
OPT_OVERLOAD = const(52)
OPT_MSG_TYPE = const(53)
OPT_SERVER_ID = const(54)
OPT_PARAM_REQUEST = const(55)
OPT_MESSAGE = const(56)
OPT_MAX_SIZE = const(57)
OPT_RENEWAL_TIME = const(58)
OPT_REBINDING_TIME = const(59)
OPT_VENDOR_CLASS = const(60)
OPT_CLIENT_ID = const(61)
OPT_TFTP_SERVER = const(66)
OPT_BOOTFILE = const(67)
OPT_USER_CLASS = const(77)
OPT_FQDN = const(81)
OPT_RELAY_INFO = const(82)
OPT_SUBNET_SELECTION = const(118)
OPT_END = const(255)

SERVER_PORT = const(67)
CLIENT_PORT = const(68)
BROADCAST_FLAG = const(0x8000)

# RFC 2131 §2: every client accepts 576-octet IP datagrams, i.e. 548 octets of
# DHCP message (312 octets of options) after 20 bytes IP and 8 bytes UDP.
MIN_MAX_SIZE = const(576)
IP_UDP_OVERHEAD = const(28)
BOOTP_MIN_LEN = const(300)  # RFC 1542 §2.1: pad BOOTP replies to 300 octets
_FIXED = const(236)  # op .. file
_OPTS_AT = const(240)  # after the magic cookie
_SNAME_AT = const(44)
_FILE_AT = const(108)

ZERO4 = b"\x00\x00\x00\x00"
BROADCAST_IP = b"\xff\xff\xff\xff"
MAGIC = b"\x63\x82\x53\x63"
_Z16 = bytes(16)
_Z64 = bytes(64)
_Z128 = bytes(128)
_END = b"\xff"

# op htype hlen hops xid secs flags ciaddr yiaddr siaddr giaddr chaddr sname file magic
_HDR = ">BBBBIHH4s4s4s4s16s64s128s4s"
_unpack_from = struct.unpack_from
_pack_into = struct.pack_into
_pack = struct.pack
_new = object.__new__
_StructError = getattr(struct, "error", ValueError)  # CPython's is not a ValueError

# Kept when options must be dropped to fit (RFC 2131 table 3 MUSTs first).
_KEEP = (OPT_MSG_TYPE, OPT_SERVER_ID, OPT_LEASE_TIME, OPT_SUBNET_MASK, OPT_ROUTERS, OPT_RELAY_INFO)
# Options that stay in the 'options' field even when sname/file are overloaded:
# the message type and server id for clients that never look further, and the
# relay information which RFC 3046 §2.2 forbids in overloaded fields.
_MAIN_ONLY = (OPT_MSG_TYPE, OPT_SERVER_ID, OPT_RELAY_INFO)


class DecodeError(ValueError):
    """A datagram that is not a usable BOOTP/DHCP packet; .reason is a counter key."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class EncodeError(ValueError):
    """A Packet that cannot be written (bad field or option); .reason is fixed."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def new_options():
    """An options dict that keeps insertion order on both runtimes.

    MicroPython's plain dict iterates in hash order; encode() writes options
    in iteration order, so replies are built on an OrderedDict there.
    """
    if IS_MICROPYTHON:
        return _OrderedDict()
    return {}


class Packet:
    """One BOOTP/DHCP message.

    Addresses are 4-byte bytes, chaddr the 16-octet wire field. options maps
    code -> value bytes: repeated instances arrive concatenated (RFC 3396),
    options carried in an overloaded 'file'/'sname' are merged in, option 52
    is removed and the overloaded field reads as zeros. encode() writes
    options in iteration order (53 first, 82 last); on MicroPython only an
    OrderedDict (new_options(), make_reply) keeps insertion order, and such a
    map never compares equal to a dict there: use same_options().
    """

    __slots__ = (
        "op", "htype", "hlen", "hops", "xid", "secs", "flags",
        "ciaddr", "yiaddr", "siaddr", "giaddr", "chaddr", "sname", "file", "options",
    )

    def __init__(self, op=BOOTREQUEST, htype=1, hlen=6, hops=0, xid=0, secs=0, flags=0,
                 ciaddr=ZERO4, yiaddr=ZERO4, siaddr=ZERO4, giaddr=ZERO4,
                 chaddr=_Z16, sname=_Z64, file=_Z128, options=None):
        self.op = op
        self.htype = htype
        self.hlen = hlen
        self.hops = hops
        self.xid = xid
        self.secs = secs
        self.flags = flags
        self.ciaddr = ciaddr
        self.yiaddr = yiaddr
        self.siaddr = siaddr
        self.giaddr = giaddr
        if len(chaddr) < 16:  # accept a bare MAC; the wire field is 16 octets
            chaddr = bytes(chaddr) + bytes(16 - len(chaddr))
        self.chaddr = chaddr
        self.sname = sname
        self.file = file
        self.options = new_options() if options is None else options

    @property
    def msg_type(self):
        """Option 53 as an int, 0 for BOOTP (no option 53)."""
        v = self.options.get(OPT_MSG_TYPE)
        return v[0] if v else 0

    @property
    def broadcast(self):
        return bool(self.flags & BROADCAST_FLAG)

    def get(self, code, default=None):
        return self.options.get(code, default)

    def hwaddr(self):
        return self.chaddr[:self.hlen]

    def client_key(self):
        """Client identity for lease lookup: option 61, else htype + hardware address."""
        cid = self.options.get(OPT_CLIENT_ID)
        if cid:
            return cid
        return bytes((self.htype,)) + self.chaddr[:self.hlen]

    def max_message_size(self):
        """The client's option 57 (clamped to >= 576), or 576; pass it to encode()."""
        v = self.options.get(OPT_MAX_SIZE)
        if v is None or len(v) != 2:
            return MIN_MAX_SIZE
        n = (v[0] << 8) | v[1]
        return n if n > MIN_MAX_SIZE else MIN_MAX_SIZE

    def __eq__(self, other):
        if not isinstance(other, Packet):
            return NotImplemented
        return (
            self.op == other.op and self.htype == other.htype and self.hlen == other.hlen
            and self.hops == other.hops and self.xid == other.xid and self.secs == other.secs
            and self.flags == other.flags and self.ciaddr == other.ciaddr
            and self.yiaddr == other.yiaddr and self.siaddr == other.siaddr
            and self.giaddr == other.giaddr and self.chaddr == other.chaddr
            and self.sname == other.sname and self.file == other.file
            and same_options(self.options, other.options)
        )

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    __hash__ = None

    def __repr__(self):
        return "<Packet op=%d type=%d xid=%08x hw=%s ci=%s yi=%s gi=%s opts=%s>" % (
            self.op, self.msg_type, self.xid, _hex(self.hwaddr()), ip_str(self.ciaddr),
            ip_str(self.yiaddr), ip_str(self.giaddr), sorted(self.options),
        )


def same_options(a, b):
    """Order-insensitive equality of two option maps (MicroPython's OrderedDict
    never equals a dict)."""
    if len(a) != len(b):
        return False
    for k in a:
        if k not in b or a[k] != b[k]:
            return False
    return True


def _hex(b):
    return ":".join("%02x" % x for x in b)


# ---------------------------------------------------------------------------
# Decoding.


def _parse_options(src, i, end, opts, copy):
    """TLVs of src[i:end] into opts; instances of one code are concatenated
    (RFC 3396). Stops at END; an area that just runs out is accepted."""
    while i < end:
        c = src[i]
        if c == 0:  # pad
            i += 1
            continue
        if c == 255:
            return
        if i + 1 >= end:
            raise DecodeError("option-overrun")
        j = i + 2 + src[i + 1]
        if j > end:
            raise DecodeError("option-overrun")
        v = src[i + 2:j]
        if copy:
            v = bytes(v)
        old = opts.get(c)
        opts[c] = v if old is None else old + v
        i = j


def decode(buf, dhcp_only=False):
    """Parse one datagram (bytes, bytearray or memoryview) into a Packet.

    Raises DecodeError and nothing else. With dhcp_only, a packet without
    option 53 (plain BOOTP) is refused as "no-msg-type".
    """
    if type(buf) is bytes:
        src = buf  # slicing bytes copies once, which is all we need
        copy = False
    else:
        try:
            src = memoryview(buf)
        except TypeError:
            raise DecodeError("not-bytes")
        copy = True
    n = len(src)
    if n < _OPTS_AT:
        raise DecodeError("short")
    try:
        (op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr,
         chaddr, sname, file, magic) = _unpack_from(_HDR, src, 0)
    except (ValueError, TypeError, _StructError):  # odd buffer formats
        raise DecodeError("not-bytes")
    if op != BOOTREQUEST and op != BOOTREPLY:
        raise DecodeError("bad-op")
    if hlen > 16:
        raise DecodeError("bad-hlen")
    if magic != MAGIC:
        raise DecodeError("bad-magic")
    opts = {}
    _parse_options(src, _OPTS_AT, n, opts, copy)
    ov = opts.get(OPT_OVERLOAD)
    if ov is not None:
        del opts[OPT_OVERLOAD]
        if len(ov) != 1 or ov[0] < 1 or ov[0] > 3:
            raise DecodeError("bad-overload")
        # RFC 2131 §4.1: 'file' is interpreted before 'sname'.
        if ov[0] & 1:
            _parse_options(src, _FILE_AT, _FIXED, opts, copy)
            file = _Z128
        if ov[0] & 2:
            _parse_options(src, _SNAME_AT, _FILE_AT, opts, copy)
            sname = _Z64
        opts.pop(OPT_OVERLOAD, None)  # a stray 52 inside an overloaded field
    mt = opts.get(OPT_MSG_TYPE)
    if mt is None:
        if dhcp_only:
            raise DecodeError("no-msg-type")
    elif len(mt) != 1 or mt[0] == 0:
        raise DecodeError("bad-msg-type")
    p = _new(Packet)  # skips __init__'s defaults, which are slow on MicroPython
    p.op = op
    p.htype = htype
    p.hlen = hlen
    p.hops = hops
    p.xid = xid
    p.secs = secs
    p.flags = flags
    p.ciaddr = ciaddr
    p.yiaddr = yiaddr
    p.siaddr = siaddr
    p.giaddr = giaddr
    p.chaddr = chaddr
    p.sname = sname
    p.file = file
    p.options = opts
    return p


# ---------------------------------------------------------------------------
# Encoding.


def _order(opts):
    """Write order: 53 first, the rest as iterated, 82 last (RFC 3046 §2.2)."""
    order = []
    if OPT_MSG_TYPE in opts:
        order.append(OPT_MSG_TYPE)
    for c in opts:
        if c != OPT_MSG_TYPE and c != OPT_RELAY_INFO:
            order.append(c)
    if OPT_RELAY_INFO in opts:
        order.append(OPT_RELAY_INFO)
    return order


def _value(c, v):
    if type(c) is not int or c <= 0 or c >= 255 or c == OPT_OVERLOAD:
        raise EncodeError("bad-option")
    if type(v) is not bytes:
        if isinstance(v, (bytearray, memoryview)):
            return bytes(v)
        raise EncodeError("bad-option")
    return v


def _instances(c, v):
    """Pieces of one option, each at most 255 octets (RFC 3396 §5)."""
    n = len(v)
    if n <= 255:
        return [bytes((c, n)) + v]
    out = []
    for i in range(0, n, 255):
        p = v[i:i + 255]
        out.append(bytes((c, len(p))) + p)
    return out


def _check_header(pkt, sname, file):
    """Field sizes and ranges; struct would silently pad or (on MicroPython) wrap."""
    try:
        if (len(pkt.ciaddr) != 4 or len(pkt.yiaddr) != 4 or len(pkt.siaddr) != 4
                or len(pkt.giaddr) != 4 or len(pkt.chaddr) > 16 or len(sname) > 64
                or len(file) > 128 or pkt.hlen > 16 or pkt.hlen < 0 or pkt.xid >> 32
                or (pkt.secs | pkt.flags) >> 16 or (pkt.op | pkt.htype | pkt.hops) >> 8):
            raise EncodeError("bad-field")
    except TypeError:
        raise EncodeError("bad-field")


def _put_header(out, pkt, sname, file):
    _check_header(pkt, sname, file)
    try:
        _pack_into(_HDR, out, 0, pkt.op, pkt.htype, pkt.hlen, pkt.hops, pkt.xid, pkt.secs,
                   pkt.flags, pkt.ciaddr, pkt.yiaddr, pkt.siaddr, pkt.giaddr, pkt.chaddr,
                   sname, file, MAGIC)
    except (TypeError, ValueError, _StructError):  # e.g. a str where bytes belong
        raise EncodeError("bad-field")


def _put(out, i, c, v):
    """Write option c at out[i:], split into 255-octet instances; returns the end."""
    n = len(v)
    if n <= 255:
        out[i] = c
        out[i + 1] = n
        out[i + 2:i + 2 + n] = v
        return i + 2 + n
    for k in range(0, n, 255):
        p = v[k:k + 255]
        out[i] = c
        out[i + 1] = len(p)
        out[i + 2:i + 2 + len(p)] = p
        i += 2 + len(p)
    return i


def encode(pkt, max_size=MIN_MAX_SIZE, dropped=None):
    """Serialize pkt; the datagram never exceeds max_size - 28 octets.

    max_size is the client's maximum DHCP message size (option 57, see
    Packet.max_message_size) and, as ISC dhcpd reads it, counts the IP and
    UDP headers; values below 576 count as 576. Options over 255 octets are
    split (RFC 3396). When the options field is too small, options spill
    into 'file' then 'sname' (option 52) if those fields are empty and the
    message is not a NAK; what still does not fit is dropped, later options
    first, keeping 53, 54, 51, 1, 3 and 82. Codes of dropped options are
    appended to the `dropped` list when one is given.
    """
    opts = pkt.options
    if max_size is None or max_size < MIN_MAX_SIZE:
        max_size = MIN_MAX_SIZE
    elif max_size > 65535:
        max_size = 65535
    # Pass 1: validate and measure.
    size = 0
    for c in opts:
        v = opts[c]
        if type(v) is not bytes or type(c) is not int or c <= 0 or c >= 255 or c == OPT_OVERLOAD:
            _value(c, v)  # raises unless v is a bytearray/memoryview, which _put copies
        n = len(v)
        if n > 255:
            size += n + 2 * ((n + 254) // 255)
        else:
            size += n + 2
    if size > max_size - IP_UDP_OVERHEAD - _OPTS_AT - 1:
        return _encode_tight(pkt, _order(opts), max_size - IP_UDP_OVERHEAD - _OPTS_AT - 1, dropped)
    # Pass 2: write into one zeroed buffer (the zeros are the padding).
    total = _OPTS_AT + size + 1
    out = bytearray(total if total > BOOTP_MIN_LEN else BOOTP_MIN_LEN)
    _put_header(out, pkt, pkt.sname, pkt.file)
    i = _OPTS_AT
    v = opts.get(OPT_MSG_TYPE)
    if v is not None:
        i = _put(out, i, OPT_MSG_TYPE, v)
    for c in opts:
        if c != OPT_MSG_TYPE and c != OPT_RELAY_INFO:
            v = opts[c]
            n = len(v)
            if n > 255:
                i = _put(out, i, c, v)
            else:  # _put inlined for the common short option
                out[i] = c
                out[i + 1] = n
                j = i + 2 + n
                out[i + 2:j] = v
                i = j
    v = opts.get(OPT_RELAY_INFO)
    if v is not None:
        i = _put(out, i, OPT_RELAY_INFO, v)
    out[i] = OPT_END
    return bytes(out)


def _encode_tight(pkt, order, room, dropped):
    """The slow path: overload 'file'/'sname', then drop options."""
    opts = pkt.options
    is_nak = pkt.msg_type == NAK  # RFC 2131 table 3: a NAK MUST NOT use file/sname
    file_free = not is_nak and not any(pkt.file)
    sname_free = not is_nak and not any(pkt.sname)
    # Octets free per area: options field, file, sname (each keeps one for END).
    if file_free or sname_free:
        caps = [room - 3, 127 if file_free else -1, 63 if sname_free else -1]
    else:
        caps = [room, -1, -1]
    inst = {}
    for c in order:
        inst[c] = _instances(c, _value(c, opts[c]))
    prio = [c for c in _KEEP if c in inst]
    for c in order:
        if c not in _KEEP:
            prio.append(c)
    where = {}
    for c in prio:
        hi = 1 if c in _MAIN_ONLY else 3
        trial = list(caps)
        areas = []
        a = 0
        for p in inst[c]:
            need = len(p)
            while a < hi and trial[a] < need:
                a += 1  # never move back: RFC 3396 concatenates options, file, sname in order
            if a >= hi:
                areas = None
                break
            trial[a] -= need
            areas.append(a)
        if areas is None:
            if dropped is not None:
                dropped.append(c)
            continue
        caps = trial
        where[c] = areas
    fields = ([], [], [])
    for c in order:
        areas = where.get(c)
        if areas is not None:
            pieces = inst[c]
            for k in range(len(pieces)):
                fields[areas[k]].append(pieces[k])
    over = (1 if fields[1] else 0) | (2 if fields[2] else 0)
    main = fields[0]
    if over:
        at = 1 if (main and main[0][0] == OPT_MSG_TYPE) else 0
        main.insert(at, bytes((OPT_OVERLOAD, 1, over)))
    file = pkt.file
    sname = pkt.sname
    if over & 1:
        file = _field(fields[1], 128)
    if over & 2:
        sname = _field(fields[2], 64)
    body = b"".join(main) + _END
    total = _OPTS_AT + len(body)
    out = bytearray(total if total > BOOTP_MIN_LEN else BOOTP_MIN_LEN)
    _put_header(out, pkt, sname, file)
    out[_OPTS_AT:total] = body
    return bytes(out)


def _field(pieces, size):
    b = b"".join(pieces) + _END
    return b + bytes(size - len(b))


# ---------------------------------------------------------------------------
# Replies.


def make_reply(request, msg_type, yiaddr=ZERO4, server_id=None):
    """The skeleton of a reply to `request`, per RFC 2131 table 3.

    Sets op, xid, htype/hlen/chaddr, flags and giaddr from the request; secs
    and hops 0; ciaddr copied only for DHCPACK (renewals, INFORM); yiaddr
    left 0 for a NAK and for an ACK to INFORM; options 53, 54, the client
    identifier (61, RFC 6842) and relay agent information (82, RFC 3046 §2.2:
    echoed in all replies) are filled in. The caller adds 51 and the rest.
    A NAK through a relay gets the broadcast bit (RFC 2131 §4.3.2).
    """
    if msg_type == NAK:
        yiaddr = ZERO4
        ciaddr = ZERO4
    elif msg_type == ACK:
        ciaddr = request.ciaddr
        if request.msg_type == INFORM:
            yiaddr = ZERO4
    else:
        ciaddr = ZERO4
    if len(yiaddr) != 4 or (server_id is not None and len(server_id) != 4):
        raise EncodeError("bad-field")
    flags = request.flags
    if msg_type == NAK and request.giaddr != ZERO4:
        flags |= BROADCAST_FLAG
    opts = new_options()
    opts[OPT_MSG_TYPE] = bytes((msg_type,))
    if server_id is not None:
        opts[OPT_SERVER_ID] = server_id
    ropts = request.options
    cid = ropts.get(OPT_CLIENT_ID)
    if cid is not None:
        opts[OPT_CLIENT_ID] = cid
    rai = ropts.get(OPT_RELAY_INFO)
    if rai is not None:
        opts[OPT_RELAY_INFO] = rai
    return Packet(BOOTREPLY, request.htype, request.hlen, 0, request.xid, 0, flags,
                  ciaddr, yiaddr, ZERO4, request.giaddr, request.chaddr, _Z64, _Z128, opts)


def encode_reply(request, msg_type, yiaddr, server_id, extra, max_size=MIN_MAX_SIZE):
    """encode(reply) for the reply make_reply(request, msg_type, yiaddr,
    server_id) would start, with `extra` ({code: bytes}, in write order)
    added where make_reply left no value: the same bytes, in one pass and
    without building the reply Packet (the server's per-packet path). None
    when the options need more than the plain layout (an option over 255
    octets, or more than fits in max_size): the caller takes the general
    path, which splits, overloads or drops them."""
    if msg_type == NAK:
        return None  # rare, and its flags/fields differ: the general path
    if max_size is None or max_size < MIN_MAX_SIZE:
        max_size = MIN_MAX_SIZE
    elif max_size > 65535:
        max_size = 65535
    ropts = request.options
    ciaddr = ZERO4
    if msg_type == ACK:
        ciaddr = request.ciaddr
        mt = ropts.get(OPT_MSG_TYPE)
        if mt and mt[0] == INFORM:
            yiaddr = ZERO4
    if len(yiaddr) != 4 or (server_id is not None and len(server_id) != 4):
        raise EncodeError("bad-field")
    parts = [bytes((OPT_MSG_TYPE, 1, msg_type))]
    if server_id is not None:
        parts.append(b"\x36\x04")
        parts.append(server_id)
    cid = ropts.get(OPT_CLIENT_ID)
    if cid is not None:
        if type(cid) is not bytes or len(cid) > 255:
            return None
        parts.append(bytes((OPT_CLIENT_ID, len(cid))))
        parts.append(cid)
    for c in extra:
        if c == OPT_MSG_TYPE or c == OPT_SERVER_ID and server_id is not None or c == OPT_RELAY_INFO:
            continue  # make_reply's own (82 is the request's, or none)
        if c == OPT_CLIENT_ID and cid is not None:
            continue
        v = extra[c]
        if type(v) is not bytes or type(c) is not int or c <= 0 or c >= 255 or c == OPT_OVERLOAD:
            v = _value(c, v)
        if len(v) > 255:
            return None
        parts.append(bytes((c, len(v))))
        parts.append(v)
    rai = ropts.get(OPT_RELAY_INFO)
    if rai is None:
        rai = extra.get(OPT_RELAY_INFO)  # as make_reply + the caller's options would have it
    if rai is not None:
        if type(rai) is not bytes or len(rai) > 255:
            return None
        parts.append(bytes((OPT_RELAY_INFO, len(rai))))
        parts.append(rai)
    parts.append(_END)
    body = b"".join(parts)
    if len(body) > max_size - IP_UDP_OVERHEAD - _OPTS_AT:
        return None
    if request.hlen > 16 or request.hlen < 0 or len(request.giaddr) != 4 or len(request.chaddr) > 16:
        raise EncodeError("bad-field")
    try:
        head = _pack(_HDR, BOOTREPLY, request.htype, request.hlen, 0, request.xid, 0, request.flags,
                     ciaddr, yiaddr, ZERO4, request.giaddr, request.chaddr, _Z64, _Z128, MAGIC)
    except (TypeError, ValueError, _StructError):
        raise EncodeError("bad-field")
    pad = BOOTP_MIN_LEN - _OPTS_AT - len(body)
    return head + body + bytes(pad) if pad > 0 else head + body


def reply_destination(request, reply_type, yiaddr=None):
    """Where a reply goes (RFC 2131 §4.1): (ip 4 bytes, udp port).

    giaddr set -> relay, port 67. Else a NAK -> broadcast. Else ciaddr set ->
    ciaddr. Else broadcast flag -> broadcast. Else the client gets a unicast
    to `yiaddr` at its chaddr, which the client cannot answer ARP for yet:
    only a driver that can address the frame to chaddr (or install an ARP
    entry) should pass yiaddr; with yiaddr None the answer is broadcast,
    which every client accepts.
    """
    if request.giaddr != ZERO4:
        return request.giaddr, SERVER_PORT
    if reply_type == NAK:
        return BROADCAST_IP, CLIENT_PORT
    if request.ciaddr != ZERO4:
        return request.ciaddr, CLIENT_PORT
    if request.flags & BROADCAST_FLAG:
        return BROADCAST_IP, CLIENT_PORT
    if yiaddr is not None and yiaddr != ZERO4:
        return yiaddr, CLIENT_PORT
    return BROADCAST_IP, CLIENT_PORT
