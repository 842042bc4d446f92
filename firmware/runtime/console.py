# runtime/console.py - the management protocol on a board's serial console.
#
# A board is managed over the same line protocol as TCP (one JSON request per
# line, one JSON answer per line; see mgmt/session.py), read from the console
# while the node runs. Only the protocol's own lines are consumed:
#
#   * a request is a line that starts with "{" (LF or CR ends it);
#   * its answer is printed as one line starting with ANSWER, so a host tool
#     can pick answers out of the log lines the firmware prints meanwhile;
#   * any other line gets a one-line hint, and a line longer than
#     LINE_MAX is dropped and counted.
#
# Ctrl-C is not read here: MicroPython's console driver turns it into a
# KeyboardInterrupt that stops main.py, so mpremote's Ctrl-C + raw-REPL
# sequence always regains the board, firmware running or not.
#
# Serial is trusted (physical access) unless the configuration sets a console
# password; then the console is locked like a TCP connection until the
# hello/auth handshake succeeds. A "hello" always starts a new session, so a
# host tool that opens the port later cannot ride on an earlier login.

import sys

from dhcpfo.compat import asyncio, json_loads
from dhcpfo.mgmt import session as msession

ANSWER = b"=dfo "
LINE_MAX = 4096
SOURCE = "console"
HINT = (b"=dfo-hint management console: send one JSON request per line "
        b"(dhcpfo call --serial PORT ...), or Ctrl-C for the REPL\n")


def _streams():
    """The console's byte streams (the .buffer objects where the port has them)."""
    inp = getattr(sys.stdin, "buffer", sys.stdin)
    out = getattr(sys.stdout, "buffer", sys.stdout)
    return inp, out


def console_gate(password, events):
    """Trusted (no keys) without a password; an administrator's token with one."""
    return msession.Gate({msession.ADMIN: password} if password else None, events)


class Console:
    """Reads request lines from `inp`, answers through `runner.answer` on `out`."""

    def __init__(self, runner, gate, nonce, inp=None, out=None):
        self.runner = runner
        self.gate = gate
        self.nonce = nonce  # callable() -> fresh nonce bytes (the driver's randomness)
        if inp is None or out is None:
            inp, out = _streams()
        self.inp = inp
        self.out = out
        self.sess = gate.open(SOURCE, nonce())

    def _write(self, data):
        self.out.write(data)
        flush = getattr(self.out, "flush", None)
        if flush is not None:
            flush()

    def handle_line(self, line):
        """One complete line (without its end): answer it, or hint, or ignore."""
        line = line.strip()
        if not line:
            return
        if line[:1] != b"{":
            self._write(HINT)
            return
        try:
            req = json_loads(line)
        except ValueError:
            req = None
        if isinstance(req, dict) and req.get("cmd") == "hello":
            self.sess = self.gate.open(SOURCE, self.nonce())
        ans = self.runner.answer(self.sess, line)
        self._write(ANSWER + ans)
        if self.sess.closed:  # too many unauthenticated requests: start over
            self.sess = self.gate.open(SOURCE, self.nonce())

    async def run(self):
        reader = asyncio.StreamReader(self.inp)
        buf = bytearray()
        dropping = False
        events = self.runner.node.events
        while self.runner.running:
            # one byte per wake-up: a console's read(n) blocks until n bytes
            # (or a whole line) arrived, which would stall the node while an
            # admin types; after poll said readable, read(1) never blocks
            data = await reader.read(1)
            if not data:  # no console any more (a process without a terminal): idle, not a failure
                while self.runner.running:
                    await asyncio.sleep(60)
                return
            for b in data:
                if b == 10 or b == 13:
                    if not dropping:
                        self.handle_line(bytes(buf))
                    buf = bytearray()
                    dropping = False
                elif not dropping:
                    buf.append(b)
                    if len(buf) > LINE_MAX:
                        events.count("mgmt.too-long")
                        buf = bytearray()
                        dropping = True
