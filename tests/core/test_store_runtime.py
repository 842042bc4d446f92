"""runtime.store on both runtimes: the same file code a board runs on littlefs
(here MicroPython's in-memory filesystem) keeps every committed binding,
drops a torn tail, and survives a compaction."""

import os

from dhcpfo.lease import log as L
from dhcpfo.lease import table as T
from runtime.store import LeaseStore

_n = [0]


def _dir():
    _n[0] += 1
    base = "/tmp"
    try:
        os.stat(base)
    except OSError:
        os.mkdir(base)
    d = "%s/dfo-store-%d-%d" % (base, id(_n) & 0xFFFF, _n[0])
    try:
        os.mkdir(d)
    except OSError:
        pass
    for f in ("snap", "snap.new", "log"):
        try:
            os.remove(d + "/" + f)
        except OSError:
            pass
    return d


def _clean(d):
    for f in ("snap", "snap.new", "log"):
        try:
            os.remove(d + "/" + f)
        except OSError:
            pass
    try:
        os.rmdir(d)
    except OSError:
        pass


def _mac(i):
    return bytes([2, 0xAB, 0, 0, 0, i])


def _fill(store, t, n, now=1000):
    for i in range(n):
        t.set(i, T.ACTIVE, T.PENDING, _mac(i), None, now + 3600, 0, now)
        store.append(L.encode_binding(0, i, t))
        store.commit()


def _same(a, b):
    for i in range(a.size):
        if a.get(i) != b.get(i):
            return False
    return True


def test_committed_bindings_survive_a_restart():
    d = _dir()
    try:
        t = T.LeaseTable(32)
        s = LeaseStore(d)
        s.load({0: t})
        _fill(s, t, 10)
        s.append(L.encode_meta(3, b"failover-state-here"))
        s.commit()
        s.close()
        t2 = T.LeaseTable(32)
        metas = {}
        info = LeaseStore(d).load({0: t2}, lambda k, p: metas.__setitem__(k, bytes(p)))
        assert _same(t, t2) and t2.count(T.ACTIVE) == 10
        assert metas[3][:19] == b"failover-state-here"
        assert info["ignored"] == 0 and not info["lost"]
    finally:
        _clean(d)


def test_torn_tail_is_ignored_and_nothing_committed_is_lost():
    d = _dir()
    try:
        t = T.LeaseTable(16)
        s = LeaseStore(d)
        s.load({0: t})
        _fill(s, t, 5)
        s.close()
        # a crash in the middle of writing the next record
        t.set(5, T.ACTIVE, 0, _mac(5), None, 5000, 0, 1000)
        rec = L.encode_binding(0, 5, t)
        with open(d + "/log", "ab") as f:
            f.write(rec[: L.RECORD // 2])
        t2 = T.LeaseTable(16)
        info = LeaseStore(d).load({0: t2})
        assert info["ignored"] == L.RECORD // 2
        assert t2.count(T.ACTIVE) == 5 and t2.state(5) == T.FREE
    finally:
        _clean(d)


def test_compaction_keeps_everything_and_shrinks_the_log():
    d = _dir()
    try:
        t = T.LeaseTable(16)
        s = LeaseStore(d)
        s.load({0: t})
        for rnd in range(20):  # many changes of few bindings
            _fill(s, t, 8, 1000 + rnd)
        before = s.log_bytes
        s.compact()
        assert s.compactions == 1 and s.log_bytes < before
        _fill(s, t, 3, 2000)
        s.close()
        t2 = T.LeaseTable(16)
        LeaseStore(d).load({0: t2})
        assert _same(t, t2)
    finally:
        _clean(d)


class _CountingFs:
    """The default filesystem with every call counted (an injected fs)."""

    def __init__(self):
        from runtime.store import OS_FS

        self.real = OS_FS
        self.calls = {}

    def _n(self, k):
        self.calls[k] = self.calls.get(k, 0) + 1

    def open(self, path, mode):
        self._n("open")
        return self.real.open(path, mode)

    def sync(self, f):
        self._n("sync")
        self.real.sync(f)

    def rename(self, a, b):
        self._n("rename")
        self.real.rename(a, b)

    def remove(self, p):
        self._n("remove")
        self.real.remove(p)

    def size(self, p):
        return self.real.size(p)

    def listdir(self, p):
        return self.real.listdir(p)


def test_every_file_operation_goes_through_the_injected_fs():
    d = _dir()
    try:
        fs = _CountingFs()
        t = T.LeaseTable(16)
        s = LeaseStore(d, fs=fs)
        s.load({0: t})
        base = fs.calls.get("sync", 0)
        _fill(s, t, 4)
        assert fs.calls["sync"] - base == 4  # one sync per group commit
        s.compact()
        assert fs.calls["rename"] == 1 and fs.calls["sync"] - base == 6  # snap.new, then the new log
        s.close()
        t2 = T.LeaseTable(16)
        LeaseStore(d, fs=fs).load({0: t2})
        assert _same(t, t2)
    finally:
        _clean(d)
