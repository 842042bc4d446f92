"""runtime.cfgfile on both runtimes: a changed configuration document
replaces the file whole (temporary file, sync, rename), and a write that
fails leaves the old file as it was."""

import os

from dhcpfo.compat import json_loads
from runtime.cfgfile import ConfigFile
from runtime.store import OsFs

_n = [0]


def _path():
    _n[0] += 1
    base = "/tmp"
    try:
        os.stat(base)
    except OSError:
        os.mkdir(base)
    p = "%s/dfo-cfg-%d-%d.json" % (base, id(_n) & 0xFFFF, _n[0])
    for f in (p, p + ".new"):
        try:
            os.remove(f)
        except OSError:
            pass
    return p


def _read(p):
    with open(p) as f:
        return json_loads(f.read())


def _gone(p):
    try:
        os.stat(p)
        return False
    except OSError:
        return True


def test_write_replaces_the_file_whole():
    p = _path()
    with open(p, "w") as f:
        f.write('{"old": 1}')
    cf = ConfigFile(p)
    doc = {"format": "x", "failover": [{"name": "pair", "mclt": 120, "scopes": ["198.18.0.0"]}]}
    cf.write(doc)
    assert _read(p) == doc and cf.writes == 1
    assert _gone(p + ".new")
    doc["failover"] = []
    cf.write(doc)
    assert _read(p) == doc
    os.remove(p)


class _FailingSync(OsFs):
    """The real filesystem, except that making the new file durable fails (a full or worn flash)."""

    def sync(self, f):
        raise OSError(28, "no space left")


class _SilentRename(OsFs):
    """A rename that reports success and does nothing (MicroPython's VfsPosix
    with two absolute paths inside a mount at "/")."""

    def rename(self, src, dst):
        pass


def test_a_rename_that_did_not_happen_is_a_failure():
    p = _path()
    with open(p, "w") as f:
        f.write('{"old": 1}')
    try:
        ConfigFile(p, _SilentRename()).write({"new": 2})
    except OSError as e:
        assert "did not take place" in str(e)
    else:
        raise AssertionError("a rename that did nothing was taken for a write")
    assert _read(p) == {"old": 1}
    for f in (p, p + ".new"):
        os.remove(f)


def test_a_failed_write_leaves_the_old_file():
    p = _path()
    with open(p, "w") as f:
        f.write('{"old": 1}')
    try:
        ConfigFile(p, _FailingSync()).write({"new": 2})
    except OSError:
        pass
    else:
        raise AssertionError("the failed write was not reported")
    assert _read(p) == {"old": 1}
    try:
        ConfigFile(p + "/no-such-dir/c.json").write({"new": 2})
    except OSError:
        pass
    else:
        raise AssertionError("a write into a missing directory was not reported")
    for f in (p, p + ".new"):
        try:
            os.remove(f)
        except OSError:
            pass
