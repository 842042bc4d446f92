"""Our lease store as rows, in and out, through the real firmware classes.

Importers hand `write_store` one `Binding` per address; it fills the same
`LeaseTable`s a node builds (`dhcp.scope.Scopes` gives the offsets and the
u8 scope numbers) and writes them with `runtime.store.LeaseStore.compact`,
so the node replays exactly what a running node would have written.
`read_store` is the reverse for exporters: it loads a copy of the store
directory (loading may start a fresh log; the original stays untouched).
"""

import os
import shutil
import tempfile

from dhcpfo.compat import EPOCH
from dhcpfo.dhcp.scope import Scopes
from dhcpfo.lease import status
from dhcpfo.lease import table as lt
from runtime.store import LeaseStore

STATE_NAMES = dict((i, status.NAMES[i]) for i in range(1, len(status.NAMES)))  # lease/status.py's names
STATE_CODES = dict((v, k) for k, v in STATE_NAMES.items())
# states in which the table keeps the client (stamp = client-last-transaction-time)
BOUND_STATES = (lt.ACTIVE, lt.EXPIRED, lt.RELEASED)
NEVER = None  # a time that never comes (ISC "never")


class Binding:
    """One address's binding with Unix times (None = never / not known)."""

    __slots__ = ("address", "state", "mac", "client_id", "htype", "expiry", "ack_pexp", "stamp",
                 "flags", "hostname")

    def __init__(self, address, state, mac=None, client_id=None, expiry=0, ack_pexp=0, stamp=0,
                 flags=0, htype=1, hostname=None):
        self.address = address
        self.state = state
        self.mac = mac
        self.client_id = client_id
        self.htype = htype
        self.expiry = expiry
        self.ack_pexp = ack_pexp
        self.stamp = stamp
        self.flags = flags
        self.hostname = hostname

    def __repr__(self):
        return "Binding(%s %s mac=%s exp=%s)" % (".".join(str(x) for x in self.address),
                                                  STATE_NAMES.get(self.state), self.mac, self.expiry)


def to_core(unix):
    """Unix seconds (None = never) -> table time, saturated like the table does."""
    if unix is None:
        return lt.INFINITE
    v = unix - EPOCH
    if v < 0:
        return 0
    return v if v < lt.INFINITE else lt.INFINITE


def to_unix(core):
    """Table time -> Unix seconds (None for INFINITE, 0 stays 0 = unset)."""
    if core >= lt.INFINITE:
        return None
    if core == 0:
        return 0
    return core + EPOCH


def write_store(cfg, bindings, data_dir):
    """Write `bindings` (list of Binding) for validated Config `cfg` into a new
    store in `data_dir`. Returns (written, unplaced): bindings whose address is
    in no scope range come back in `unplaced` (the caller reports them)."""
    scopes = Scopes(cfg)
    tables = dict((sc.index, lt.LeaseTable(sc.size)) for sc in scopes)
    written = 0
    unplaced = []
    for b in bindings:
        sc = scopes.by_addr(b.address)
        off = sc.offset_of(b.address) if sc is not None else -1
        if off < 0:
            unplaced.append(b)
            continue
        mac = b.mac if b.state in BOUND_STATES else None
        cid = b.client_id if b.state in BOUND_STATES else None
        tables[sc.index].set(off, b.state, b.flags & lt.USER_FLAGS, mac, cid, to_core(b.expiry),
                             to_core(b.ack_pexp) if b.ack_pexp else 0,
                             to_core(b.stamp) if b.stamp else 0, b.htype)
        written += 1
    os.makedirs(data_dir, exist_ok=True)
    for name in ("snap", "snap.new", "log"):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            os.remove(p)
    store = LeaseStore(data_dir)
    store.compact(tables, {})
    store.close()
    return written, unplaced


def read_store(cfg, data_dir):
    """Every non-default binding of the store in `data_dir` as a list of
    (ScopeConfig, Binding), plus the store's load statistics."""
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(2, "no lease store directory", data_dir)
    scopes = Scopes(cfg)
    tables = dict((sc.index, lt.LeaseTable(sc.size)) for sc in scopes)
    tmp = tempfile.mkdtemp(prefix="dhcpfo-export.")
    try:
        for name in ("snap", "snap.new", "log"):
            p = os.path.join(data_dir, name)
            if os.path.exists(p):
                shutil.copyfile(p, os.path.join(tmp, name))
        store = LeaseStore(tmp)
        stats = store.load(tables)
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for sc in scopes:
        t = tables[sc.index]
        i = t.next_live(0)
        while i >= 0:
            state, flags, mac, expiry, ack_pexp, stamp = t.get(i)
            hw = t.hwaddr(i)
            b = Binding(sc.addr_of(i), state, hw[1] if hw else None, t.client_id(i),
                        to_unix(expiry), to_unix(ack_pexp) if ack_pexp else 0,
                        to_unix(stamp) if stamp else 0, flags, hw[0] if hw else 1)
            rows.append((cfg.scopes[sc.index], b))
            i = t.next_live(i + 1)
    return rows, stats


def store_warnings(stats, report):
    """Report a damaged or partly unreadable store (read_store's statistics)."""
    if not stats:
        return
    if stats["lost"]:
        report.add("dropped", None, "lease store", "the store was found damaged: what could be "
                   "read is exported, a failover partner may know more")
    if stats["ignored"]:
        report.add("dropped", None, "lease store", "%d bytes of a torn log tail ignored" % stats["ignored"])
    if stats["skipped"]:
        report.add("dropped", None, "lease store", "%d bindings for scopes or addresses the "
                   "configuration does not have" % stats["skipped"])
