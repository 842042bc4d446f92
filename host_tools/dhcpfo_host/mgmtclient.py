"""Talk to a node's management port: one JSON object per line each way.

With a token, the client authenticates first (firmware/dhcpfo/mgmt/session.py):
hello -> the node's nonce; auth with an HMAC proof over both nonces; the
node's own proof is checked before any command is sent, so a command never
goes to a node that does not know the token.
"""
import json
import os
import socket

from dhcpfo.mgmt import session


class MgmtError(Exception):
    pass


class Connection:
    """One management connection (authenticated when a token is given)."""

    def __init__(self, host, port, token=None, role=session.ADMIN, timeout=5.0):
        self.where = "%s:%d" % (host, port)
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise MgmtError("cannot reach the management port %s: %s" % (self.where, e)) from None
        self.buf = b""
        if token:
            self._login(token.encode() if isinstance(token, str) else token, role)

    def _exchange(self, request):
        self.sock.sendall((json.dumps(request) + "\n").encode())
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise MgmtError("the node at %s closed the connection" % self.where)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def _login(self, token, role):
        hello = self._exchange({"cmd": "hello"})
        if not hello.get("ok") or "nonce" not in hello:
            raise MgmtError("the node at %s did not answer hello: %s" % (self.where, hello.get("error")))
        if hello.get("auth") == "none":
            return  # a trusted endpoint (no tokens configured)
        nonce = bytes.fromhex(hello["nonce"])
        cnonce = os.urandom(session.NONCE_BYTES)
        ans = self._exchange({"cmd": "auth", "role": role, "cnonce": cnonce.hex(),
                              "proof": session.client_proof(token, nonce, cnonce, role)})
        if not ans.get("ok"):
            raise MgmtError("authentication refused by %s: %s" % (self.where, ans.get("error")))
        if ans.get("proof") != session.server_proof(token, nonce, cnonce, role):
            raise MgmtError("the node at %s could not prove it knows the token; not sending commands" % self.where)

    def request(self, request):
        return self._exchange(request)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def call(host, port, request, timeout=5.0, token=None, role=session.ADMIN):
    """Send one request, return the decoded answer; raise MgmtError when the node says no."""
    with Connection(host, port, token, role, timeout) as c:
        resp = c.request(request)
    if not resp.get("ok"):
        raise MgmtError(resp.get("error", "request failed"))
    return resp
