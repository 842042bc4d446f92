"""dhcpd class `match if` expressions -> our policy conditions.

Only the part of dhcpd's expression language that a policy can express is
accepted: comparisons of option 60 / 77 / 61 or the hardware address (whole,
or a leading substring) with a constant, joined by one of and/or, each
optionally negated. `Condition(tokens).parse()` returns ([(criterion, op,
value, prefix)], operator) or raises NotExpressible saying why.
"""

from dhcpfo_host.migrate.iscsyntax import colon_hex, hex_colon


class NotExpressible(ValueError):
    pass


class Condition:
    """A recursive-descent reader of one `match if` expression."""

    def __init__(self, toks):
        self.t = toks
        self.i = 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, want=None):
        tok = self.peek()
        if tok is None:
            raise NotExpressible("expression ends early")
        if want is not None and tok.value.lower() != want:
            raise NotExpressible("expected '%s' at '%s'" % (want, tok.text()))
        self.i += 1
        return tok

    def parse(self):
        atoms, op = self.expr()
        if self.peek() is not None:
            raise NotExpressible("unsupported expression at '%s'" % self.peek().text())
        return atoms, op or "or"

    def expr(self):
        atoms = self.term()
        op = None
        while self.peek() is not None and self.peek().value.lower() in ("and", "or"):
            o = self.take().value.lower()
            if op is not None and o != op:
                raise NotExpressible("'and' and 'or' mixed in one expression")
            op = o
            atoms = atoms + self.term()
        return atoms, op

    def term(self):
        tok = self.peek()
        if tok is None:
            raise NotExpressible("expression ends early")
        v = tok.value.lower()
        if v in ("not", "!"):
            self.take()
            inner = self.term()
            if len(inner) != 1:
                raise NotExpressible("'not' of a compound expression")
            c, op, val, pre = inner[0]
            return [(c, "ne" if op == "eq" else "eq", val, pre)]
        if v == "(":
            self.take()
            atoms, op = self.expr()
            self.take(")")
            if len(atoms) > 1 and op is not None:
                raise NotExpressible("nested and/or groups")
            return atoms
        return [self.compare()]

    def data(self):
        """-> (criterion, offset, length or None)."""
        tok = self.take()
        v = tok.value.lower()
        if v == "substring":
            self.take("(")
            crit, off, ln = self.data()
            if ln is not None:
                raise NotExpressible("nested substring")
            self.take(",")
            o = self.num()
            self.take(",")
            n = self.num()
            self.take(")")
            return crit, o, n
        if v == "option":
            name = self.take().value.lower()
            crit = {"vendor-class-identifier": "vendor_class", "user-class": "user_class",
                    "dhcp-client-identifier": "client_id"}.get(name)
            if crit is None:
                raise NotExpressible("conditions on option %s are not supported" % name)
            return crit, 0, None
        if v == "hardware":
            return "hardware", 0, None
        raise NotExpressible("'%s' is not supported in a condition" % tok.text())

    def num(self):
        tok = self.take()
        try:
            return int(tok.value)
        except ValueError:
            raise NotExpressible("'%s' is not a number" % tok.text())

    def compare(self):
        crit, off, ln = self.data()
        optok = self.take()
        if optok.value not in ("=", "!="):
            raise NotExpressible("operator '%s' is not supported" % optok.value)
        op = "eq" if optok.value == "=" else "ne"
        ctok = self.take()
        raw = ctok.value.encode("latin-1") if ctok.kind == "string" else colon_hex(ctok.value)
        if raw is None:
            raise NotExpressible("'%s' is not a constant" % ctok.text())
        prefix = False
        if ln is not None:
            if ln != len(raw):
                raise NotExpressible("substring length %d differs from the constant's %d" % (ln, len(raw)))
            prefix = True
        if crit == "hardware":
            # dhcpd's hardware is htype + chaddr
            if off == 1:
                value = raw
            elif off == 0 and raw[:1] == b"\x01":
                value = raw[1:]
            else:
                raise NotExpressible("hardware conditions must skip the type byte (offset 1) or start with 1")
            if len(value) == 6 and (ln is None or ln - (1 - off) >= 6):
                prefix = False
            elif not prefix:
                raise NotExpressible("a hardware address must be 6 bytes")
            return ("mac", op, hex_colon(value), prefix)
        if off != 0:
            raise NotExpressible("substrings must start at offset 0")
        if crit in ("vendor_class", "user_class"):
            try:
                text = raw.decode("ascii")
            except UnicodeError:
                raise NotExpressible("non-ASCII class text")
            return (crit, op, text, prefix)
        return (crit, op, hex_colon(raw), prefix)
