# mgmt/session.py - who may talk to the management surface, and as what.
#
# Every management connection (TCP, or the serial console when a console
# password is set) starts locked. The only request answered before
# authentication is "hello", which hands out a fresh nonce. The client then
# proves it knows a role's token with HMAC-SHA256 over that nonce and a nonce
# of its own; a proof is bound to one connection's nonce, so a recorded
# handshake replayed on another connection fails. The node proves itself back
# with the same token (mutual), so a client never sends commands to an
# impostor. Failed proofs back a source off exponentially, in a fixed-size
# table (a board never grows it).
#
# Roles follow the seed's two security groups: "administrator" (DHCP
# Administrators) changes anything, "user" (DHCP Users) only reads.
#
# Sans-I/O: the driver supplies the nonce bytes (its randomness) and `now`.

from dhcpfo import events as ev
from dhcpfo.compat import hmac_sha256, digest_eq, hexlify, const, parse_hex

PROTO = const(1)
ADMIN = "administrator"
USER = "user"
ROLES = (ADMIN, USER)

NONCE_BYTES = const(16)
MAX_UNAUTH_REQUESTS = const(4)  # requests before auth on one connection, then it is closed
BACKOFF_MAX = const(300)        # seconds: the longest lock-out after repeated failures
SOURCES = const(16)             # sources remembered for back-off (oldest forgotten first)

_CLIENT_TAG = b"dhcpfo-mgmt-1 client|"
_SERVER_TAG = b"dhcpfo-mgmt-1 server|"


def client_proof(token, nonce, cnonce, role):
    """What a client sends to prove it holds `token` for `role` (bytes in, hex out)."""
    return hexlify(hmac_sha256(token, _CLIENT_TAG + nonce + b"|" + cnonce + b"|" + role.encode()))


def server_proof(token, nonce, cnonce, role):
    """What the node answers to prove it holds the same token."""
    return hexlify(hmac_sha256(token, _SERVER_TAG + cnonce + b"|" + nonce + b"|" + role.encode()))


def unhex(text):
    """Bytes from hex text (compat.parse_hex, the one hex syntax); ValueError on anything else."""
    b = parse_hex(text)
    if not b:
        raise ValueError("hex text expected")
    return b


class Gate:
    """The node's authentication state: role tokens and per-source back-off.

    `keys` maps a role to its token (bytes). With no keys at all every
    connection is trusted as administrator: the configuration only allows
    that for a loopback-only management address or a console without a
    password (physical access).
    """

    def __init__(self, keys=None, events=None):
        self.keys = {}
        for role, token in (keys or {}).items():
            if role not in ROLES:
                raise ValueError("unknown management role %r" % (role,))
            if token:
                self.keys[role] = token if isinstance(token, bytes) else token.encode()
        self.events = events
        # source -> [failures, locked_until]; a plain dict capped at SOURCES
        self._fails = {}

    def open(self, source, nonce, trusted=False):
        """A new connection from `source` (text); `nonce` is fresh randomness from the driver."""
        if trusted or not self.keys:
            return Session(self, source, nonce, ADMIN)
        return Session(self, source, nonce, None)

    def locked_for(self, source, now):
        ent = self._fails.get(source)
        if ent is None or ent[1] <= now:
            return 0
        return ent[1] - now

    def failed(self, source, now):
        ent = self._fails.get(source)
        if ent is None:
            if len(self._fails) >= SOURCES:
                oldest = None
                for k, v in self._fails.items():
                    if oldest is None or v[1] < self._fails[oldest][1]:
                        oldest = k
                del self._fails[oldest]
            ent = [0, now]
            self._fails[source] = ent
        ent[0] += 1
        wait = 1 << min(ent[0] - 1, 9)
        ent[1] = now + (wait if wait < BACKOFF_MAX else BACKOFF_MAX)
        self._count("mgmt.auth-fail")
        if self.events is not None:
            self.events.emit(now, ev.WARN, ev.EV_MGMT_AUTH_FAIL,
                             "management authentication from %s refused (%d in a row; next attempt in %d s)"
                             % (source, ent[0], ent[1] - now))
        return ent[1] - now

    def succeeded(self, source):
        if source in self._fails:
            del self._fails[source]

    def _count(self, name):
        if self.events is not None:
            self.events.count(name)


class Session:
    """One connection's authentication: locked until a valid proof, then a role."""

    def __init__(self, gate, source, nonce, role):
        self.gate = gate
        self.source = source
        self.nonce = nonce
        self.role = role        # None until authenticated
        self.hello = False
        self.unauth = 0
        self.closed = False

    def may_change(self):
        return self.role == ADMIN

    def handle(self, req, now):
        """(answer or None, request to run or None). Closes itself on abuse."""
        cmd = req.get("cmd")
        if cmd == "hello":
            self.hello = True
            ans = {"ok": True, "proto": PROTO, "nonce": hexlify(self.nonce),
                   "auth": "hmac-sha256" if self.role is None else "none"}
            if self.role is not None:
                ans["role"] = self.role
            return ans, None
        if cmd == "auth":
            return self._auth(req, now), None
        if self.role is None:
            self.unauth += 1
            self.gate._count("mgmt.unauthenticated")
            if self.unauth >= MAX_UNAUTH_REQUESTS:
                self.closed = True
            return {"ok": False, "error": "not authenticated: send hello, then auth"}, None
        return None, req

    def _auth(self, req, now):
        gate = self.gate
        if not self.hello:
            self.unauth += 1
            if self.unauth >= MAX_UNAUTH_REQUESTS:
                self.closed = True
            return {"ok": False, "error": "send hello first (it carries the nonce to sign)"}
        if not self.nonce:
            return {"ok": False, "error": "already authenticated on this connection"}
        wait = gate.locked_for(self.source, now)
        if wait:
            gate._count("mgmt.auth-locked")
            return {"ok": False, "error": "too many failed attempts from %s; retry in %d s" % (self.source, wait)}
        role = req.get("role", ADMIN)
        token = gate.keys.get(role) if isinstance(role, str) else None
        try:
            cnonce = unhex(req.get("cnonce"))
            proof = req.get("proof")
            if not isinstance(proof, str) or len(cnonce) < 8:
                raise ValueError("short client nonce")
        except (ValueError, TypeError):
            return self._refuse(now, "auth needs cnonce (hex, >= 8 bytes) and proof (hex)")
        if token is None:
            return self._refuse(now, "wrong role or token")
        want = client_proof(token, self.nonce, cnonce, role)
        if not digest_eq(proof.lower().encode(), want.encode()):
            return self._refuse(now, "wrong role or token")
        signed = self.nonce
        self.nonce = b""  # one proof per connection: the nonce is spent
        self.role = role
        gate.succeeded(self.source)
        gate._count("mgmt.auth-ok")
        return {"ok": True, "role": role, "proof": server_proof(token, signed, cnonce, role)}

    def _refuse(self, now, why):
        wait = self.gate.failed(self.source, now)
        self.closed = self.unauth + 1 >= MAX_UNAUTH_REQUESTS
        self.unauth += 1
        return {"ok": False, "error": "%s; next attempt allowed in %d s" % (why, wait)}
