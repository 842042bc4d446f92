# config.py - the board's configuration: the validated Config and its loader.
#
# The human JSON configuration (docs/config.md) is validated and compiled on
# the host (dhcpfo_host.boardconf.compile_config): every error by path, option
# names and typed values, pairing checks. What reaches a board is a compact,
# already-valid document: options as (code, hex) pairs, addresses as dotted
# strings, defaults filled in. load(doc) turns it into a Config of plain
# attributes (addresses as 4-byte bytes, option values as wire bytes) and
# re-checks only what keeps the node safe: the types of the fields it reads,
# sizes, and that every range lies inside its subnet (dhcpfo.cfgload). A
# malformed document is refused with a ConfigError naming the path; nothing
# is half-applied. The loader is needed once, at boot: it is unloaded again
# so its code does not stay on the heap (dhcpfo/ondemand.py).

from dhcpfo import ondemand
from dhcpfo.compat import const, ip_str, parse_hex

FORMAT = "dhcpfo-compiled-1"  # the "format" key of a compiled document
MAX_RELATIONSHIPS = const(31)  # Windows' limit per server (seed, wizard checks)
MAX_POOL = const(65536)  # addresses per scope: offsets stay small ints
MAX_NAME = const(126)  # failover relationship name, as Windows
MAX_HOST = const(253)  # a DNS host name (RFC 1035: 253 characters written out)
# the partner address of a relationship given by host name that has not
# resolved yet: matches no connection; the driver resolves and tells the node
UNRESOLVED = b"\x00\x00\x00\x00"
MGMT_MAX_CONNECTIONS = const(4)  # concurrent TCP management sessions by default (a board's heap)
MAX_VALUE = const(1024)  # longest option value: more fits no 1500-octet reply
DEFAULT_LEASE_TIME = const(86400)
DEFAULT_MCLT = const(3600)
T1_PERMILLE = const(500)  # RFC 2131 §4.4.5: T1 = 0.5 of the lease
T2_PERMILLE = const(875)  # T2 = 0.875 of the lease
FAILOVER_PORT = const(647)
MGMT_PORT = const(6470)

LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(ValueError):
    """An invalid configuration; .errors lists every problem as "path: message"."""

    def __init__(self, errors):
        super().__init__("\n".join(errors))
        self.errors = errors
        self.reason = "invalid-config"


# ---------------------------------------------------------------------------
# The validated configuration: plain attributes, filled-in defaults.


class Config:
    """A whole validated document: .server, .scopes, .failover."""

    def __init__(self, server, scopes, failover):
        self.server = server
        self.scopes = scopes
        self.failover = failover

    def scope(self, network):
        """The ScopeConfig whose id is `network` (4 bytes), or None."""
        for s in self.scopes:
            if s.id == network:
                return s
        return None

    def relationship(self, name):
        for r in self.failover:
            if r.name == name:
                return r
        return None


class ServerConfig:
    """Node-wide settings. listen_* and mgmt_* are the flattened sub-objects."""

    def __init__(self):
        self.name = "dhcpfo"
        self.server_id = None
        self.listen_address = b"\x00\x00\x00\x00"
        self.listen_port = 67
        self.relay_port = 67  # UDP port relayed replies go to (67; loopback demos use another)
        self.interface = None
        self.data_dir = "data"
        self.options = {}
        self.policies = []
        self.mgmt_address = b"\x7f\x00\x00\x01"
        self.mgmt_port = MGMT_PORT
        self.mgmt_token = None
        self.mgmt_user_token = None  # read-only role (mgmt/session.py)
        self.mgmt_max_connections = MGMT_MAX_CONNECTIONS  # TCP management sessions at once (runtime/aio.py)
        self.console_password = None  # locks the serial console's management (runtime/console.py)
        self.decline_hold = 3600
        self.offer_hold = 60
        self.abuse = None  # the "abuse" object (dict) or None: dhcp.server.ABUSE_DEFAULTS apply
        self.authoritative = True  # default of the scopes' own setting
        self.option_definitions = []  # host only: [(code, name, type name)], not compiled
        self.time_skew_max = 60
        self.log_level = "info"
        self.syslog_address = None  # RFC 5424 over UDP (runtime/syslog.py) when set
        self.syslog_port = 514
        self.syslog_level = "warning"
        self.syslog_facility = 3  # daemon


class ScopeConfig:
    """One IPv4 subnet served. id == network; ranges/exclusions are (start, end) bytes pairs."""

    def __init__(self):
        self.id = None
        self.mask = None
        self.prefix = 0
        self.name = ""
        self.description = ""
        self.active = True
        self.lease_time = DEFAULT_LEASE_TIME  # granted when the client asks for no time (51)
        self.min_lease_time = None  # bounds of a time the client asks for; None: the
        self.max_lease_time = None  # default in effect (scope's or policy's lease_time)
        self.t1_permille = T1_PERMILLE  # renewal (58) and rebinding (59) times, per mille
        self.t2_permille = T2_PERMILLE  # of the lease granted
        self.authoritative = True  # NAK what is wrong for this network (ISC's meaning)
        self.offer_delay_ms = 0
        self.ranges = []
        self.exclusions = []
        self.reservations = []
        self.options = {}
        self.policies = []
        self.bootp = False
        self.failover = None  # name of the relationship serving it, if any

    @property
    def network(self):
        return self.id


class ReservationConfig:
    def __init__(self):
        self.address = None
        self.mac = None
        self.client_id = None
        self.name = ""
        self.description = ""
        self.options = {}


class PolicyConfig:
    """Policy-based assignment. Criteria are lists of MatchConfig."""

    def __init__(self):
        self.name = ""
        self.description = ""
        self.order = 0
        self.enabled = True
        self.operator = "or"
        self.vendor_class = []
        self.user_class = []
        self.mac = []
        self.client_id = []
        self.ranges = []
        self.options = {}
        self.lease_time = None


class MatchConfig:
    """One condition value: op "eq"/"ne", value bytes, prefix match or exact."""

    def __init__(self, op, value, prefix):
        self.op = op
        self.value = value
        self.prefix = prefix


class FailoverConfig:
    """One failover relationship as seen from this node.

    Mode-specific settings that do not apply are None: load_balance_percent in
    hot-standby, reserve_percent and hot_standby_role in load-balance.
    """

    def __init__(self):
        self.name = ""
        self.role = "primary"
        self.mode = "load-balance"
        self.partner_address = None
        self.partner_host = None  # the host name the partner was given by, if any (address resolved from it)
        self.partner_port = FAILOVER_PORT
        self.local_address = None
        self.local_port = FAILOVER_PORT
        self.scopes = []
        self.mclt = DEFAULT_MCLT
        self.load_balance_percent = 50
        self.reserve_percent = None
        self.hot_standby_role = None
        self.auto_state_switchover = None
        self.shared_secret = None
        self.enable_authentication = False
        self.max_unacked = 10
        self.max_response_delay = 30
        self.load_balance_max_seconds = 3

    @property
    def is_primary(self):
        return self.role == "primary"

    @property
    def hot_standby(self):
        return self.mode == "hot-standby"


# ---------------------------------------------------------------------------
# Small parsers shared with the rest of the firmware.


def parse_ip(s):
    """Dotted-quad string -> 4 bytes, or None. Strict: no leading zeros (some
    tools read them as octal), no spaces, no int >= 2**30 on the way."""
    if type(s) is not str:
        return None
    parts = s.split(".")
    if len(parts) != 4:
        return None
    out = bytearray(4)
    for i in range(4):
        p = parts[i]
        if not p or len(p) > 3 or (len(p) > 1 and p[0] == "0"):
            return None
        for ch in p:
            if ch < "0" or ch > "9":
                return None
        n = int(p)
        if n > 255:
            return None
        out[i] = n
    return bytes(out)


def parse_mac(s):
    """"aa:bb:cc:dd:ee:ff" (also '-', '.', or bare hex) -> 6 bytes, or None."""
    b = parse_hex(s)
    if b is None or len(b) != 6:
        return None
    return b


def mac_str(b):
    return ":".join("%02x" % x for x in b)


def mask_of(prefix):
    """Prefix length 0..32 -> 4-byte mask."""
    out = bytearray(4)
    for i in range(4):
        bits = prefix - 8 * i
        if bits >= 8:
            out[i] = 255
        elif bits > 0:
            out[i] = (0xFF00 >> bits) & 0xFF
    return bytes(out)


def prefix_of(mask):
    """4-byte mask -> prefix length, or -1 if the ones are not contiguous."""
    n = 0
    seen_zero = False
    for x in mask:
        for bit in (128, 64, 32, 16, 8, 4, 2, 1):
            if x & bit:
                if seen_zero:
                    return -1
                n += 1
            else:
                seen_zero = True
    return n


def and4(a, m):
    return bytes((a[0] & m[0], a[1] & m[1], a[2] & m[2], a[3] & m[3]))


def or_not4(a, m):
    """a | ~m: the broadcast address of a's subnet."""
    return bytes((a[0] | (~m[0] & 255), a[1] | (~m[1] & 255), a[2] | (~m[2] & 255),
                  a[3] | (~m[3] & 255)))


_BIG = const(1 << 25)


def addr_delta(a, b):
    """b - a for two 4-byte addresses, computed on 16-bit halves so no value
    reaches 2**30; differences beyond +-2**24 are clamped to +-2**25."""
    hi = ((b[0] - a[0]) << 8) + (b[1] - a[1])
    if hi > 255:
        return _BIG
    if hi < -255:
        return -_BIG
    return (hi << 16) + ((b[2] - a[2]) << 8) + (b[3] - a[3])


# ---------------------------------------------------------------------------
# Entry points: the loader module is imported for the call and dropped after
# (dhcpfo/ondemand.py).


def _loader_call(name, arg):
    from dhcpfo import cfgload

    return getattr(cfgload, name)(arg)


def load(doc):
    """A compiled document (dict) -> Config; a malformed one -> ConfigError(path)."""
    return ondemand.call(_loader_call, "load", doc)


def load_text(text):
    """Compiled JSON text (str or bytes) -> Config; bad JSON is a ConfigError too."""
    return ondemand.call(_loader_call, "load_text", text)
