"""Lexer and statement parser for ISC dhcpd.conf and dhcpd.leases.

Both files share one grammar: statements end in `;` or carry a `{ ... }`
block, `#` starts a comment, strings are double-quoted with C escapes
(`\\n`, `\\t`, `\\"`, octal `\\001`, hex `\\x01`). The parser does not know
what a statement means; it gives a tree of `Stmt` (head tokens, optional
block, file and line) that the importer interprets. `include "file";` is
followed here, so every statement keeps the file and line it came from.

Bad input raises `IscSyntaxError` whose message starts with `file:line:`.
"""

import os
import re

# A bare word holds names, numbers, addresses, colon hex, dates (2026/12/03)
# and times (08:00:00); punctuation is one of {};,=()!&|+~ or ~= ~~ != !~.
MAX_INCLUDE_DEPTH = 8


class IscSyntaxError(ValueError):
    """A file that is not valid dhcpd syntax; str() is "file:line: message"."""

    def __init__(self, path, line, msg):
        super().__init__("%s:%d: %s" % (path, line, msg))
        self.path = path
        self.line = line
        self.msg = msg


class Token:
    """One token: kind is "word", "string" or "punct"; value is text (a
    string's value is the decoded text, latin-1: one char per octet)."""

    __slots__ = ("kind", "value", "line")

    def __init__(self, kind, value, line):
        self.kind = kind
        self.value = value
        self.line = line

    def __repr__(self):
        return "Token(%s %r @%d)" % (self.kind, self.value, self.line)

    def text(self):
        """As written in a file (strings quoted again)."""
        if self.kind == "string":
            return quote(self.value)
        return self.value


def quote(s):
    """A dhcpd string literal for text s (latin-1 octets)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif 32 <= o < 127:
            out.append(ch)
        else:
            out.append("\\%03o" % o)
    out.append('"')
    return "".join(out)


_TOKEN = re.compile(r"""
    (?P<nl>\n)
  | (?P<space>[ \t\r\f\v]+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<word>[A-Za-z0-9_\-.:/*@$%]+)
  | (?P<punct>[~!][=~]|[{};,=()!&|+~])
""", re.X | re.S)
_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.S)
_SIMPLE = {"n": "\n", "t": "\t", "r": "\r"}


def _unescape(body, path, line):
    def one(m):
        if m.group(1):
            return chr(int(m.group(1), 8) & 255)
        if m.group(2):
            return chr(int(m.group(2), 16))
        c = m.group(3)
        if c == "x":
            raise IscSyntaxError(path, line, "\\x without hex digits in string")
        return _SIMPLE.get(c, c)

    return _ESCAPE.sub(one, body) if "\\" in body else body


def iter_tokens(text, path="<text>"):
    """Tokens of `text` one by one; raises IscSyntaxError on an unterminated
    string or a character dhcpd does not accept."""
    line = 1
    pos = 0
    n = len(text)
    match = _TOKEN.match
    while pos < n:
        m = match(text, pos)
        if m is None:
            if text[pos] == '"':
                raise IscSyntaxError(path, line, "string not terminated")
            raise IscSyntaxError(path, line, "unexpected character %r" % text[pos])
        kind = m.lastgroup
        v = m.group(kind)
        if kind == "nl":
            line += 1
        elif kind == "word" or kind == "punct":
            yield Token(kind, v, line)
        elif kind == "string":
            yield Token("string", _unescape(v[1:-1], path, line), line)
            line += v.count("\n")
        pos = m.end()


def tokenize(text, path="<text>"):
    """All tokens of `text` as a list."""
    return list(iter_tokens(text, path))


class Stmt:
    """One statement: head tokens, block (list of Stmt) or None, origin."""

    __slots__ = ("head", "block", "path", "line")

    def __init__(self, head, block, path, line):
        self.head = head
        self.block = block
        self.path = path
        self.line = line

    @property
    def words(self):
        """Head token values (strings unquoted)."""
        return [t.value for t in self.head]

    @property
    def key(self):
        """The first word, lower-case ("" for an empty head)."""
        return self.head[0].value.lower() if self.head and self.head[0].kind == "word" else ""

    def text(self, limit=80):
        """The head as written, shortened to `limit` characters."""
        s = " ".join(t.text() for t in self.head)
        s = s.replace(" ;", ";").replace(" ,", ",")
        if self.block is not None:
            s += " { ... }"
        if len(s) > limit:
            s = s[:limit - 3] + "..."
        return s

    def where(self):
        return "%s:%d" % (self.path, self.line)

    def __repr__(self):
        return "Stmt(%s @%s)" % (self.text(), self.where())


class _Stream:
    """Tokens with one token of look-ahead."""

    def __init__(self, it):
        self.it = it
        self.ahead = None

    def next(self):
        if self.ahead is not None:
            t = self.ahead
            self.ahead = None
            return t
        return next(self.it, None)

    def peek(self):
        if self.ahead is None:
            self.ahead = next(self.it, None)
        return self.ahead


def _is(t, value):
    return t is not None and t.kind == "punct" and t.value == value


def iter_parse(text, path="<text>", include_depth=0, base_dir=None):
    """Top-level statements of a file's text, one at a time (a large lease
    file is never held as one tree). `include "x";` yields the statements
    of x (relative to base_dir, default the file's directory)."""
    toks = _Stream(iter_tokens(text, path))
    if base_dir is None:
        base_dir = os.path.dirname(os.path.abspath(path)) if path[:1] != "<" else "."

    def statements(depth, open_line):
        head = []
        while True:
            t = toks.next()
            if t is None:
                if depth:
                    raise IscSyntaxError(path, open_line, "'{' is never closed")
                if head:
                    raise IscSyntaxError(path, head[0].line, "statement '%s' has no ';'"
                                         % " ".join(x.text() for x in head[:6]))
                return
            if _is(t, ";"):
                if head:
                    for st in _stmt_or_include(head, None, path, include_depth, base_dir):
                        yield st
                head = []
            elif _is(t, "{") and head and head[-1].value == "=":
                # a record type in `option x code N = { ip-address, text };`
                head.append(t)
                while True:
                    u = toks.next()
                    if u is None:
                        raise IscSyntaxError(path, t.line, "'{' is never closed")
                    head.append(u)
                    if _is(u, "}"):
                        break
            elif _is(t, "{"):
                sub = list(statements(depth + 1, t.line))
                line = head[0].line if head else t.line
                yield Stmt(head, sub, path, line)
                head = []
            elif _is(t, "}"):
                if not depth:
                    raise IscSyntaxError(path, t.line, "'}' without a matching '{'")
                if head:
                    raise IscSyntaxError(path, head[0].line, "statement '%s' has no ';' before '}'"
                                         % " ".join(x.text() for x in head[:6]))
                if _is(toks.peek(), ";"):  # `};` is accepted (dhcpd tolerates it)
                    toks.next()
                return
            else:
                head.append(t)

    return statements(0, 1)


def parse(text, path="<text>", include_depth=0, base_dir=None):
    """The whole statement tree of a file's text (see iter_parse)."""
    return list(iter_parse(text, path, include_depth, base_dir))


def _stmt_or_include(head, blk, path, depth, base_dir):
    if head[0].kind == "word" and head[0].value.lower() == "include":
        if len(head) != 2 or head[1].kind != "string":
            raise IscSyntaxError(path, head[0].line, 'include needs one quoted file name')
        if depth >= MAX_INCLUDE_DEPTH:
            raise IscSyntaxError(path, head[0].line, "includes nested more than %d deep" % MAX_INCLUDE_DEPTH)
        inc = head[1].value
        full = inc if os.path.isabs(inc) else os.path.join(base_dir, inc)
        try:
            with open(full, encoding="latin-1") as f:
                text = f.read()
        except OSError as e:
            raise IscSyntaxError(path, head[0].line, "cannot read include %s: %s" % (inc, e.strerror))
        return iter_parse(text, full, depth + 1, os.path.dirname(os.path.abspath(full)))
    return [Stmt(head, blk, path, head[0].line)]


def parse_file(path, lazy=False):
    """parse() of a file (iter_parse() when lazy); a missing or unreadable
    file is an IscSyntaxError at line 0."""
    try:
        with open(path, encoding="latin-1") as f:
            text = f.read()
    except OSError as e:
        raise IscSyntaxError(path, 0, "cannot read: %s" % e.strerror)
    return iter_parse(text, path) if lazy else parse(text, path)


# -- value helpers shared by importer and exporter -----------------------------------


def colon_hex(s):
    """dhcpd colon hex ("1:0:5e:a" - one or two digits per octet) -> bytes, or None."""
    parts = s.split(":")
    if len(parts) < 1:
        return None
    out = bytearray()
    for p in parts:
        if not p or len(p) > 2:
            return None
        try:
            out.append(int(p, 16))
        except ValueError:
            return None
    return bytes(out)


def hex_colon(b):
    """bytes -> "01:02:0a" (how dhcpd writes hardware addresses and uids)."""
    return ":".join("%02x" % x for x in b)
