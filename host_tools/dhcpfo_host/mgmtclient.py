"""Talk to a node's management surface: one JSON object per line each way,
over TCP or over a board's serial console.

With a token, the client authenticates first (firmware/dhcpfo/mgmt/session.py):
hello -> the node's nonce; auth with an HMAC proof over both nonces; the
node's own proof is checked before any command is sent, so a command never
goes to a node that does not know the token.
"""
import json
import os
import socket
import time

from dhcpfo.mgmt import session


class MgmtError(Exception):
    pass


class _Protocol:
    """One management connection (authenticated when a token is given).

    The protocol is the same on every transport; a subclass supplies
    `_send(bytes)` and `_recv_line() -> bytes` (TCP in Connection, the serial console
    in SerialConnection)."""

    where = "?"

    def _exchange(self, request):
        self._send((json.dumps(request) + "\n").encode())
        line = self._recv_line()
        try:
            return json.loads(line)
        except ValueError:
            raise MgmtError("the node at %s answered something that is not JSON: %r"
                            % (self.where, line[:80])) from None

    def _login(self, token, role):
        hello = self._exchange({"cmd": "hello"})
        if not hello.get("ok") or "nonce" not in hello:
            raise MgmtError("the node at %s did not answer hello: %s" % (self.where, hello.get("error")))
        if hello.get("auth") == "none":
            return  # a trusted endpoint (no tokens configured, or a console without a password)
        if not token:
            raise MgmtError("the node at %s wants a token: give --token, --token-file or $DHCPFO_TOKEN"
                            % self.where)
        token = token.encode() if isinstance(token, str) else token
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
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Connection(_Protocol):
    """The management port over TCP."""

    def __init__(self, host, port, token=None, role=session.ADMIN, timeout=5.0):
        self.where = "%s:%d" % (host, port)
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise MgmtError("cannot reach the management port %s: %s" % (self.where, e)) from None
        self.buf = b""
        if token:
            self._login(token, role)

    def _send(self, data):
        self.sock.sendall(data)

    def _recv_line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise MgmtError("the node at %s closed the connection" % self.where)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def close(self):
        self.sock.close()


class SerialConnection(_Protocol):
    """The management protocol on a board's serial console (runtime/console.py).

    The firmware keeps printing its log on the same line, so only lines that
    start with the answer marker are answers; the others are kept in `log`
    (the last LOG_KEEP of them) for whoever wants to show them. The console
    is trusted unless the board has a console password: then the same
    hello/auth handshake as TCP runs first, with the password as token."""

    ANSWER = b"=dfo "
    LOG_KEEP = 200

    def __init__(self, port, token=None, role=session.ADMIN, timeout=10.0, baud=115200, login=True):
        import serial  # pyserial: only the serial transport needs it

        self.where = port
        self.timeout = timeout
        self.log = []
        try:
            self.ser = serial.serial_for_url(port, baudrate=baud, timeout=0.2)
        except (serial.SerialException, ValueError) as e:
            raise MgmtError("cannot open the serial port %s: %s" % (port, e)) from None
        self.serial = serial
        self.buf = b""
        if login:  # (tests send their own handshake)
            self._login(token, role)

    def _send(self, data):
        try:
            self.ser.write(data)
            self.ser.flush()
        except self.serial.SerialException as e:
            raise MgmtError("cannot write to %s: %s" % (self.where, e)) from None

    def _recv_line(self):
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                line = line.rstrip(b"\r")
                if line.startswith(self.ANSWER):
                    return line[len(self.ANSWER):]
                if line:
                    self.log.append(line.decode("utf-8", "replace"))
                    del self.log[:-self.LOG_KEEP]
            if time.monotonic() > deadline:
                hint = ""
                if any(">>>" in x or "raw REPL" in x for x in self.log[-5:]) or self.buf.endswith(b">>> "):
                    hint = " (the board is at the REPL: the firmware is not running; reset it)"
                raise MgmtError("no answer from the firmware on %s within %.0f s%s"
                                % (self.where, self.timeout, hint))
            try:
                self.buf += self.ser.read(4096)
            except self.serial.SerialException as e:
                raise MgmtError("cannot read from %s: %s" % (self.where, e)) from None

    def close(self):
        self.ser.close()


def read_token(token, token_file, what="token"):
    """The token given inline, or the first line of `token_file` when one is named;
    MgmtError saying which file could not be read."""
    if not token_file:
        return token
    try:
        with open(token_file) as f:
            return f.read().strip()
    except OSError as e:
        raise MgmtError("cannot read the %s file: %s" % (what, e))


def connect(host=None, port=None, serial=None, token=None, role=session.ADMIN, timeout=None):
    """A connection over the serial console when `serial` is given, else TCP."""
    if serial:
        return SerialConnection(serial, token, role, timeout or 10.0)
    return Connection(host, port, token, role, timeout or 5.0)


def call(host, port, request, timeout=None, token=None, role=session.ADMIN, serial=None):
    """Send one request, return the decoded answer; raise MgmtError when the node says no."""
    with connect(host, port, serial, token, role, timeout) as c:
        resp = c.request(request)
    if not resp.get("ok"):
        raise MgmtError(resp.get("error", "request failed"))
    return resp
