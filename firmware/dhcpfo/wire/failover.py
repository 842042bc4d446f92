# wire/failover.py - draft-ietf-dhc-failover-12 messages, as ISC dhcpd 4.4 speaks them.
#
# Pure codec: bytes in, Message objects out, and back. No sockets, no clock:
# every builder takes `now` (core time, see compat) and converts it to the
# Unix seconds the wire carries. The interop notes this follows are
# shared/specs/isc-dhcpd-failover-interop.md ("interop" below).
#
# Frame (draft §6.1, interop §2): length u16 (whole message), type u8,
# payload offset u8 (always 12; ISC rejects the draft's 8), time u32 (Unix),
# xid u32, then options: code u16, length u16, data (draft §6.2).
#
# Message digest (draft §11.1, §12.17), dhcpfo<->dhcpfo only: ISC never
# sends option 17 and skips it on receipt (interop §12), so a shared secret
# must only be configured when both partners are dhcpfo. We keep the draft's
# layout and coverage and swap the algorithm:
#   * option 17 is the FIRST option (§11.1, §12.17);
#   * its data is one type byte, DIGEST_HMAC_SHA256 (2; the draft assigns
#     only 1 = HMAC-MD5, so 2 is a private value), then the 32-byte
#     HMAC-SHA256 (key = the shared secret);
#   * the HMAC covers the entire message as sent - header with the final
#     length, every option, and option 17's own code, length and type byte -
#     with the 32 digest bytes set to zero while computing (§11.1's recipe).
# A receiver with a key closes on a missing or wrong digest (§11.1: reject
# reasons 21 / 20); one without a key closes on any digest (reason 13).
#
# Replay (docs/failover.md, "Authentication"): a digest proves who sent a
# message, not when. With a key, each connection gets a key of its own:
#   * each side draws a nonce for the connection (NONCE_LEN random bytes,
#     from its driver: the core has no randomness) and sends it in its
#     CONNECT (primary) or CONNECTACK (secondary) as a vendor-specific
#     option (29, draft §12.29; sub-option NONCE_TAG);
#   * the CONNECT is signed with the shared secret; the CONNECTACK and every
#     later message in either direction with connection_key(secret,
#     primary nonce, secondary nonce).
# A message recorded on one connection fails the digest on any other (the
# receiver's fresh nonce is in the key), without a clock: boards have no
# RTC. Within a connection the decoder also refuses (reason "replayed") a
# message whose TIME is older than the last one it accepted. What is left
# replayable is a CONNECT alone: it gets a CONNECTACK and nothing it sends
# after it can verify.

import struct

from dhcpfo import VERSION
from dhcpfo.compat import const, digest_eq, from_unix, hmac_sha256, to_unix

# ---------------------------------------------------------------------------
# Message types (draft §6.1, interop §5: 7 = UPDREQALL, 9 = UPDREQ).
POOLREQ = const(1)
POOLRESP = const(2)
BNDUPD = const(3)
BNDACK = const(4)
CONNECT = const(5)
CONNECTACK = const(6)
UPDREQALL = const(7)
UPDDONE = const(8)
UPDREQ = const(9)
STATE = const(10)
CONTACT = const(11)
DISCONNECT = const(12)

MSG_NAMES = {
    POOLREQ: "POOLREQ", POOLRESP: "POOLRESP", BNDUPD: "BNDUPD", BNDACK: "BNDACK",
    CONNECT: "CONNECT", CONNECTACK: "CONNECTACK", UPDREQALL: "UPDREQALL",
    UPDDONE: "UPDDONE", UPDREQ: "UPDREQ", STATE: "STATE", CONTACT: "CONTACT",
    DISCONNECT: "DISCONNECT",
}

# ---------------------------------------------------------------------------
# Option codes (draft §12, interop §3).
OPT_ADDRESSES_TRANSFERRED = const(1)
OPT_ASSIGNED_IP = const(2)
OPT_BINDING_STATUS = const(3)
OPT_CLIENT_ID = const(4)
OPT_CHADDR = const(5)  # htype byte + hardware address
OPT_CLTT = const(6)
OPT_CLIENT_REPLY_OPTIONS = const(7)
OPT_CLIENT_REQUEST_OPTIONS = const(8)
OPT_DDNS = const(9)  # never sent: ISC drops the link on it (interop §3 rule 5)
OPT_DELAYED_SERVICE = const(10)
OPT_HBA = const(11)
OPT_IP_FLAGS = const(12)  # 2 bytes on the wire, as ISC
OPT_LEASE_EXPIRATION = const(13)
OPT_MAX_UNACKED = const(14)
OPT_MCLT = const(15)
OPT_MESSAGE = const(16)
OPT_DIGEST = const(17)
OPT_POTENTIAL_EXPIRATION = const(18)
OPT_RECEIVE_TIMER = const(19)
OPT_PROTOCOL_VERSION = const(20)
OPT_REJECT_REASON = const(21)
OPT_RELATIONSHIP_NAME = const(22)
OPT_SERVER_FLAGS = const(23)
OPT_SERVER_STATE = const(24)
OPT_STOS = const(25)
OPT_TLS_REPLY = const(26)
OPT_TLS_REQUEST = const(27)
OPT_VENDOR_CLASS = const(28)
OPT_VENDOR_OPTIONS = const(29)
MAX_OPTION = const(29)

# Fixed data sizes; a known option with another length closes the link, as
# in ISC (interop §3 rule 4). Options not listed are variable length.
FIXED_SIZE = {
    1: 4, 2: 4, 3: 1, 6: 4, 10: 1, 11: 32, 12: 2, 13: 4, 14: 4, 15: 4,
    18: 4, 19: 4, 20: 1, 21: 1, 23: 1, 24: 1, 25: 4, 26: 1, 27: 1,
}

# Longest data of variable-length options that describe a DHCP client: a
# client id is one DHCP option (255 octets; RFC 3396 longer ones are refused
# by the DHCP server) and chaddr is htype + the 16-octet chaddr field. Longer
# describes no client: refused like a wrong fixed size (closes the link).
MAX_SIZE = {OPT_CLIENT_ID: 255, OPT_CHADDR: 17}

# Options kept per message type: ISC's fto_allowed table (interop §5 "stored
# on receipt"), minus DDNS (9), which we do not implement and so ignore
# instead of closing on it as ISC does. Anything else is skipped silently
# before any size or duplicate check (interop §3 rule 2).
_BND_OPTS = b"\x02\x03\x04\x05\x0c\x0d\x12\x19\x06\x08\x07"
ALLOWED = {
    POOLREQ: b"",
    POOLRESP: b"\x01",
    BNDUPD: _BND_OPTS,
    BNDACK: _BND_OPTS + b"\x15\x10",
    CONNECT: b"\x16\x0e\x13\x1c\x14\x1b\x0f\x0b\x1d",  # + 29: our connection nonce
    CONNECTACK: b"\x16\x0e\x13\x1c\x14\x1a\x15\x10\x1d",
    UPDREQALL: b"",
    UPDDONE: b"",
    UPDREQ: b"",
    STATE: b"\x18\x17\x19\x1d",  # + 29: our configuration digest (dhcpfo partners only)
    CONTACT: b"",
    DISCONNECT: b"\x15\x10",
}

# Order in which ISC writes options (interop §5); the encoder follows it,
# then writes any other option in ascending code order.
ORDER = {
    POOLRESP: (1,),
    BNDUPD: (2, 3, 4, 5, 13, 18, 25, 6, 12),
    BNDACK: (2, 21, 16),
    CONNECT: (22, 14, 19, 28, 20, 27, 15, 11),
    CONNECTACK: (22, 14, 19, 28, 20, 26, 21, 16),
    STATE: (24, 23, 25),
    DISCONNECT: (21, 16),
}

# ---------------------------------------------------------------------------
# Server states on option 24 (draft §12.24; ISC's enum, interop §6.1).
# RECOVER-WAIT has no draft number; ISC uses 254. STARTUP is never sent:
# a starting server sends its saved state with FLAG_STARTUP.
S_UNKNOWN = const(0)
S_STARTUP = const(1)
S_NORMAL = const(2)
S_COMM_INTERRUPTED = const(3)
S_PARTNER_DOWN = const(4)
S_POTENTIAL_CONFLICT = const(5)
S_RECOVER = const(6)
S_PAUSED = const(7)
S_SHUTDOWN = const(8)
S_RECOVER_DONE = const(9)
S_RESOLUTION_INTERRUPTED = const(10)
S_CONFLICT_DONE = const(11)
S_RECOVER_WAIT = const(254)

FLAG_STARTUP = const(0x01)  # server-flags (option 23), draft §12.23

IPF_RESERVED = const(0x0001)  # IP-flags (option 12), draft §12.12
IPF_BOOTP = const(0x0002)

# Binding status (option 3), draft §12.3 / interop §6.5.
from dhcpfo.lease.status import ABANDONED as B_ABANDONED, ACTIVE as B_ACTIVE, BACKUP as B_BACKUP  # noqa: E402
from dhcpfo.lease.status import EXPIRED as B_EXPIRED, FREE as B_FREE, RELEASED as B_RELEASED  # noqa: E402
from dhcpfo.lease.status import RESET as B_RESET  # noqa: E402

# Reject reasons (option 21), draft §12.21 (ISC uses the same numbers).
REJ_ILLEGAL_ADDRESS = const(1)
REJ_FATAL_CONFLICT = const(2)
REJ_MISSING_BINDING = const(3)
REJ_TIME_MISMATCH = const(4)
REJ_INVALID_MCLT = const(5)
REJ_UNKNOWN_CONN = const(6)
REJ_DUP_CONNECTION = const(7)
REJ_INVALID_PARTNER = const(8)
REJ_TLS_UNSUPPORTED = const(9)
REJ_TLS_UNCONFIGURED = const(10)
REJ_TLS_REQUIRED = const(11)
REJ_DIGEST_UNSUPPORTED = const(12)
REJ_DIGEST_UNCONFIGURED = const(13)
REJ_VERSION_MISMATCH = const(14)
REJ_OUTDATED_INFO = const(15)
REJ_LESS_CRITICAL = const(16)
REJ_NO_TRAFFIC = const(17)
REJ_HBA_CONFLICT = const(18)
REJ_NOT_RESERVED = const(19)
REJ_DIGEST_FAILED = const(20)
REJ_MISSING_DIGEST = const(21)
REJ_UNKNOWN = const(254)

# ---------------------------------------------------------------------------
HEADER_LEN = const(12)
MIN_LEN = const(12)
MAX_LEN = const(2048)  # draft §6.1, ISC failover.h
PROTOCOL_VERSION = const(1)
DIGEST_HMAC_SHA256 = const(2)  # private digest type, see the header comment
_DIGEST_LEN = const(32)
_DIGEST_OPT_LEN = const(37)  # 4 (code, length) + 1 (type) + 32
MAX_SKEW = const(60)  # ISC rejects CONNECT/CONNECTACK beyond this (interop §2)
NONCE_LEN = const(16)  # a connection nonce (see the header comment)
NONCE_TAG = const(1)  # its sub-option number inside option 29
CFG_DIGEST_TAG = const(2)  # sub-option of option 29 in STATE: the configuration digest (failover/cfgdigest.py)
_KEY_LABEL = b"dhcpfo failover connection"
VENDOR = ("dhcpfo-" + VERSION).encode()


class FailoverError(ValueError):
    """Bad failover bytes or values.

    reason: short fixed string (a counter key). close: the connection must be
    dropped. reject: draft reject-reason code to report, if one fits.
    messages: messages decoded from the same feed() before the error.
    """

    def __init__(self, reason, close=True, reject=None):
        super().__init__(reason)
        self.reason = reason
        self.close = close
        self.reject = reject
        self.messages = []


def _check_uint(v, bits):
    if type(v) is not int or v < 0 or v >> bits:
        raise FailoverError("bad-value", False)
    return v


class Message:
    """One failover message. options maps code -> raw bytes (as on the wire)."""

    __slots__ = ("mtype", "time", "xid", "options")

    def __init__(self, mtype, time=0, xid=0, options=None):
        self.mtype = mtype
        self.time = time  # Unix seconds, as on the wire
        self.xid = xid
        self.options = {} if options is None else options

    def __eq__(self, other):
        return (isinstance(other, Message) and self.mtype == other.mtype and self.time == other.time
                and self.xid == other.xid and self.options == other.options)

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        return "Message(%s, time=%d, xid=%d, options=%r)" % (
            MSG_NAMES.get(self.mtype, str(self.mtype)), self.time, self.xid, self.options)

    # --- reading ---------------------------------------------------------
    def has(self, code):
        return code in self.options

    def get_bytes(self, code, default=None):
        return self.options.get(code, default)

    def _get_int(self, code, size, default):
        v = self.options.get(code)
        if v is None:
            return default
        if len(v) != size:
            raise FailoverError("bad-option-size", False)
        n = 0
        for b in v:
            n = (n << 8) | b
        return n

    def get_u8(self, code, default=None):
        return self._get_int(code, 1, default)

    def get_u16(self, code, default=None):
        return self._get_int(code, 2, default)

    def get_u32(self, code, default=None):
        return self._get_int(code, 4, default)

    def get_time(self, code):
        """A time option as core time; None when absent or 0 ("not set")."""
        u = self._get_int(code, 4, 0)
        return from_unix(u) if u else None

    def require(self, *codes):
        """Raise FailoverError("missing-option", close=False) unless all codes are present."""
        for c in codes:
            if c not in self.options:
                raise FailoverError("missing-option", False)

    # --- writing ---------------------------------------------------------
    def set_bytes(self, code, data):
        if isinstance(data, str):
            data = data.encode()
        self.options[code] = bytes(data)
        return self

    def set_u8(self, code, v):
        self.options[code] = bytes((_check_uint(v, 8),))
        return self

    def set_u16(self, code, v):
        self.options[code] = struct.pack(">H", _check_uint(v, 16))
        return self

    def set_u32(self, code, v):
        self.options[code] = struct.pack(">I", _check_uint(v, 32))
        return self

    def set_time(self, code, t):
        """Store core time t (None -> 0, "not set") as Unix seconds."""
        return self.set_u32(code, 0 if t is None else to_unix(t))


# ---------------------------------------------------------------------------
# Builders, one per message type, options in ISC's order (interop §5).
# xid: the caller's link counter, or the request's xid for a reply.


def _new(mtype, xid, now):
    return Message(mtype, _check_uint(to_unix(now), 32), _check_uint(xid, 32))


def make_poolreq(xid, now):
    return _new(POOLREQ, xid, now)


def make_poolresp(xid, now, count):
    return _new(POOLRESP, xid, now).set_u32(OPT_ADDRESSES_TRANSFERRED, count)


def make_bndupd(xid, now, addr, status, lease_end=None, potential_end=None, stos=None,
                client_id=None, chaddr=None, cltt=None, ip_flags=0):
    """BNDUPD: 2, 3, [4], [5], 13, 18, 25, [6], [12] (ISC always sends 13/18/25, 0 if unset).

    addr: 4 bytes. chaddr: htype byte + hardware address. Times are core
    times, None for "not set".
    """
    if len(addr) != 4:
        raise FailoverError("bad-value", False)
    m = _new(BNDUPD, xid, now)
    m.set_bytes(OPT_ASSIGNED_IP, addr)
    m.set_u8(OPT_BINDING_STATUS, status)
    if client_id is not None:
        m.set_bytes(OPT_CLIENT_ID, client_id)
    if chaddr is not None:
        m.set_bytes(OPT_CHADDR, chaddr)
    m.set_time(OPT_LEASE_EXPIRATION, lease_end)
    m.set_time(OPT_POTENTIAL_EXPIRATION, potential_end)
    m.set_time(OPT_STOS, stos)
    if cltt is not None:
        m.set_time(OPT_CLTT, cltt)
    if ip_flags:
        m.set_u16(OPT_IP_FLAGS, ip_flags)
    return m


def make_bndack(xid, now, addr, reject=None, message=None):
    """BNDACK: option 2 only (interop §7 quirk), plus 21 and 16 when rejecting."""
    if len(addr) != 4:
        raise FailoverError("bad-value", False)
    m = _new(BNDACK, xid, now).set_bytes(OPT_ASSIGNED_IP, addr)
    if reject is not None:
        m.set_u8(OPT_REJECT_REASON, reject)
        if message:
            m.set_bytes(OPT_MESSAGE, message)
    return m


def make_connect(xid, now, name, max_unacked, receive_timer, mclt, hba=None,
                 vendor=VENDOR, tls_request=0):
    """CONNECT: 22, 14, 19, 28, 20, 27, 15, [11]. An ISC secondary needs 11 (32 bytes)."""
    m = _new(CONNECT, xid, now)
    m.set_bytes(OPT_RELATIONSHIP_NAME, name)
    m.set_u32(OPT_MAX_UNACKED, max_unacked)
    m.set_u32(OPT_RECEIVE_TIMER, receive_timer)
    m.set_bytes(OPT_VENDOR_CLASS, vendor)
    m.set_u8(OPT_PROTOCOL_VERSION, PROTOCOL_VERSION)
    m.set_u8(OPT_TLS_REQUEST, tls_request)
    m.set_u32(OPT_MCLT, mclt)
    if hba is not None:
        if len(hba) != 32:
            raise FailoverError("bad-value", False)
        m.set_bytes(OPT_HBA, hba)
    return m


def make_connectack(xid, now, name, max_unacked=None, receive_timer=None, vendor=VENDOR,
                    tls_reply=None, reject=None, message=None):
    """CONNECTACK: 22, [14], [19], 28, 20, [26], [21, 16].

    ISC leaves 14 and 19 out only when rejecting an unknown name; send them
    otherwise (interop §8: without them ISC never sends a BNDUPD and floods
    CONTACT). tls_reply: 0 when the CONNECT carried TLS-request, else None.
    """
    m = _new(CONNECTACK, xid, now)
    m.set_bytes(OPT_RELATIONSHIP_NAME, name)
    if max_unacked is not None:
        m.set_u32(OPT_MAX_UNACKED, max_unacked)
    if receive_timer is not None:
        m.set_u32(OPT_RECEIVE_TIMER, receive_timer)
    m.set_bytes(OPT_VENDOR_CLASS, vendor)
    m.set_u8(OPT_PROTOCOL_VERSION, PROTOCOL_VERSION)
    if tls_reply is not None:
        m.set_u8(OPT_TLS_REPLY, tls_reply)
    if reject is not None:
        m.set_u8(OPT_REJECT_REASON, reject)
        if message:
            m.set_bytes(OPT_MESSAGE, message)
    return m


def make_state(xid, now, server_state, flags=0, stos=None):
    """STATE: 24, 23, 25. Never send S_STARTUP: send the saved state with FLAG_STARTUP."""
    m = _new(STATE, xid, now)
    m.set_u8(OPT_SERVER_STATE, server_state)
    m.set_u8(OPT_SERVER_FLAGS, flags)
    m.set_time(OPT_STOS, stos)
    return m


def make_updreq(xid, now):
    return _new(UPDREQ, xid, now)


def make_updreqall(xid, now):
    return _new(UPDREQALL, xid, now)


def make_upddone(xid, now):
    """UPDDONE carries the xid of the UPDREQ/UPDREQALL it completes."""
    return _new(UPDDONE, xid, now)


def make_contact(xid, now):
    return _new(CONTACT, xid, now)


def make_disconnect(xid, now, reason, message=None):
    m = _new(DISCONNECT, xid, now).set_u8(OPT_REJECT_REASON, reason)
    if message:
        m.set_bytes(OPT_MESSAGE, message)
    return m


TIME_OPTIONS = (OPT_CLTT, OPT_LEASE_EXPIRATION, OPT_POTENTIAL_EXPIRATION, OPT_STOS)


def shift_times(msg, delta):
    """Move the message time and every time option by `delta` seconds (a
    node's local time to its wall time on the way out); 0 ("not set") stays."""
    msg.time = _check_uint(msg.time + delta, 32)
    for code in TIME_OPTIONS:
        v = msg.options.get(code)
        if v is not None and len(v) == 4:
            u = (v[0] << 24) | (v[1] << 16) | (v[2] << 8) | v[3]
            if u:
                msg.set_u32(code, u + delta)


def time_skew(msg, now):
    """Partner clock minus ours, in seconds (positive: partner ahead)."""
    return msg.time - to_unix(now)


# ---------------------------------------------------------------------------
# Encoding.


def _ordered_codes(msg):
    opts = msg.options
    first = ORDER.get(msg.mtype, ())
    codes = [c for c in first if c in opts]
    rest = sorted([c for c in opts if c not in first])
    return codes + rest


def encode(msg, key=None):
    """Message -> bytes. With key (shared secret bytes) the digest option comes first.

    Raises FailoverError (close=False) for values that cannot go on the wire:
    option 9 or 17 in msg.options, a fixed-size option of the wrong length,
    a field out of range, or a message over 2048 bytes.
    """
    codes = _ordered_codes(msg)
    opts = msg.options
    total = HEADER_LEN + (_DIGEST_OPT_LEN if key is not None else 0)
    for c in codes:
        data = opts[c]
        if c == OPT_DDNS or c == OPT_DIGEST or type(c) is not int or c <= 0 or c > 0xFFFF:
            raise FailoverError("bad-option", False)
        size = FIXED_SIZE.get(c)
        if (size is not None and len(data) != size) or len(data) > MAX_SIZE.get(c, MAX_LEN):
            raise FailoverError("bad-option-size", False)
        total += 4 + len(data)
    if total > MAX_LEN:
        raise FailoverError("too-long", False)
    _check_uint(msg.mtype, 8)
    _check_uint(msg.time, 32)
    _check_uint(msg.xid, 32)
    buf = bytearray(total)
    struct.pack_into(">HBBII", buf, 0, total, msg.mtype, HEADER_LEN, msg.time, msg.xid)
    p = HEADER_LEN
    if key is not None:
        struct.pack_into(">HHB", buf, p, OPT_DIGEST, 1 + _DIGEST_LEN, DIGEST_HMAC_SHA256)
        p += _DIGEST_OPT_LEN  # digest bytes stay zero until computed
    for c in codes:
        data = opts[c]
        n = len(data)
        struct.pack_into(">HH", buf, p, c, n)
        buf[p + 4:p + 4 + n] = data
        p += 4 + n
    if key is not None:
        d0 = HEADER_LEN + 5
        buf[d0:d0 + _DIGEST_LEN] = hmac_sha256(key, buf)
    return bytes(buf)


# ---------------------------------------------------------------------------
# Decoding.


def _check_digest(frame, off, key):
    """Verify the leading digest option; return the offset after it."""
    n = len(frame)
    if off + 4 > n or frame[off] != 0 or frame[off + 1] != OPT_DIGEST:
        raise FailoverError("bad-digest", True, REJ_MISSING_DIGEST)
    olen = (frame[off + 2] << 8) | frame[off + 3]
    if olen != 1 + _DIGEST_LEN or off + 4 + olen > n or frame[off + 4] != DIGEST_HMAC_SHA256:
        raise FailoverError("bad-digest", True, REJ_DIGEST_FAILED)
    d0 = off + 5
    got = frame[d0:d0 + _DIGEST_LEN]
    zeroed = bytearray(frame)
    zeroed[d0:d0 + _DIGEST_LEN] = bytes(_DIGEST_LEN)
    if not digest_eq(hmac_sha256(key, zeroed), got):
        raise FailoverError("bad-digest", True, REJ_DIGEST_FAILED)
    return off + _DIGEST_OPT_LEN


def decode_frame(frame, key=None):
    """One complete frame (length already checked) -> Message, or None to ignore.

    None is returned for an unknown message type without options (ISC ignores
    those; with options ISC drops the link, and so do we).
    """
    n = len(frame)
    mtype = frame[2]
    off = frame[3]
    if off < HEADER_LEN or off > n:
        raise FailoverError("bad-offset")
    time, xid = struct.unpack_from(">II", frame, 4)
    p = off
    if key is not None:
        p = _check_digest(frame, off, key)
    allowed = ALLOWED.get(mtype)
    opts = {}
    while p < n:
        if p + 4 > n:
            raise FailoverError("option-overrun")
        code, olen = struct.unpack_from(">HH", frame, p)
        p += 4
        end = p + olen
        if end > n:
            raise FailoverError("option-overrun")
        if allowed is None:
            raise FailoverError("bad-type")
        if code == OPT_DIGEST:
            # With a key the digest was consumed above; another is a duplicate.
            if key is None:
                raise FailoverError("digest-unconfigured", True, REJ_DIGEST_UNCONFIGURED)
            raise FailoverError("duplicate-option")
        if code <= MAX_OPTION and code in allowed:
            if code in opts:
                raise FailoverError("duplicate-option")
            size = FIXED_SIZE.get(code)
            if size is not None and olen != size:
                raise FailoverError("bad-option-size")
            if olen > MAX_SIZE.get(code, MAX_LEN):
                raise FailoverError("bad-option-size")
            opts[code] = bytes(frame[p:end])
        p = end
    if allowed is None:
        return None
    return Message(mtype, time, xid, opts)


def with_nonce(msg, nonce):
    """Put our connection nonce into a CONNECT or CONNECTACK (option 29)."""
    msg.set_bytes(OPT_VENDOR_OPTIONS, bytes([NONCE_TAG]) + bytes(nonce))
    return msg


def nonce_of(msg):
    """The partner's connection nonce from its CONNECT/CONNECTACK, or None."""
    v = msg.get_bytes(OPT_VENDOR_OPTIONS)
    if v is None or len(v) != 1 + NONCE_LEN or v[0] != NONCE_TAG:
        return None
    return bytes(v[1:])


def connection_key(secret, primary_nonce, secondary_nonce):
    """The digest key of one connection: bound to both sides' nonces."""
    return hmac_sha256(secret, _KEY_LABEL + bytes(primary_nonce) + bytes(secondary_nonce))


def _peek_nonce(frame):
    """The nonce option of a frame not verified yet (the primary needs it to
    derive the key it verifies the CONNECTACK with), or None."""
    p = frame[3]
    n = len(frame)
    while p + 4 <= n:
        code = (frame[p] << 8) | frame[p + 1]
        olen = (frame[p + 2] << 8) | frame[p + 3]
        if code == OPT_VENDOR_OPTIONS and olen == 1 + NONCE_LEN and p + 4 + olen <= n and frame[p + 4] == NONCE_TAG:
            return bytes(frame[p + 5:p + 4 + olen])
        p += 4 + olen
    return None


class StreamDecoder:
    """Reassembles messages from TCP stream bytes (sans-I/O).

    feed() returns the complete messages so far. Any violation raises
    FailoverError with close=True; the decoder then stays failed. Nothing
    else escapes, whatever the bytes. A partner claiming a frame longer than
    max_len is a violation ("bad-length") before anything is buffered, so a
    decoder never holds more than one frame's worth.

    With a key every message must carry a valid digest, and its TIME must
    not go back on this connection ("replayed" otherwise). With a key and
    `nonce` (ours for this connection) the key is bound to the connection:
    the partner's first message must be its CONNECT (we are the secondary)
    or CONNECTACK (`primary`) carrying its nonce ("unbound" otherwise), and
    from there on `key` is connection_key(...): what we send on this
    connection must be signed with `key` too.
    """

    def __init__(self, key=None, max_len=MAX_LEN, nonce=None, primary=False):
        self.key = key  # verifies the next frame; after the handshake, the connection's key
        self.max_len = max_len
        self.nonce = nonce if key is not None else None
        self.primary = primary
        self.ignored = 0  # unknown message types without options, skipped
        self.last_time = -1  # TIME of the last message accepted (with a key), -1 = none yet
        self._buf = b""
        self._err = None

    def _fresh(self, t):
        """Refuse a signed message older than what this connection already accepted."""
        if t < self.last_time:
            raise FailoverError("replayed", True, REJ_DIGEST_FAILED)
        self.last_time = t

    def _bind(self, frame):
        """The partner's first frame on a connection whose key is bound to
        the nonces: verify it and switch to the connection's key."""
        secret = self.key
        if self.primary:
            theirs = _peek_nonce(frame)
            if theirs is None:
                raise FailoverError("unbound", True, REJ_DIGEST_FAILED)
            key = connection_key(secret, self.nonce, theirs)
            msg = decode_frame(frame, key)
            want = CONNECTACK
        else:
            msg = decode_frame(frame, secret)
            theirs = nonce_of(msg) if msg is not None else None
            key = connection_key(secret, theirs, self.nonce) if theirs is not None else None
            want = CONNECT
        if msg is None or msg.mtype != want or key is None:
            raise FailoverError("unbound", True, REJ_DIGEST_FAILED)
        self.key = key
        self.nonce = None  # bound: every later frame uses self.key
        return msg

    def pending(self):
        """Bytes held waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data):
        if self._err is not None:
            raise FailoverError(self._err.reason, True, self._err.reject)
        buf = self._buf + bytes(data) if self._buf else bytes(data)
        out = []
        p = 0
        n = len(buf)
        try:
            while n - p >= 2:
                length = (buf[p] << 8) | buf[p + 1]
                if length < MIN_LEN or length > self.max_len:
                    raise FailoverError("bad-length")
                if n - p < length:
                    break
                frame = buf[p:p + length]
                msg = self._bind(frame) if self.nonce is not None else decode_frame(frame, self.key)
                p += length
                if msg is None:
                    self.ignored += 1
                else:
                    if self.key is not None:
                        self._fresh(msg.time)
                    out.append(msg)
        except FailoverError as e:
            e.close = True
            e.messages = out
            self._err = e
            self._buf = b""
            raise
        self._buf = buf[p:]
        return out
