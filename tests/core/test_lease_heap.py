"""lease.table memory: <= 24 bytes of heap per address for a fully leased /22,
and the hot path (lookups, accessors, scans, updates) allocates nothing."""
import gc
import sys

from dhcpfo.lease import table as T

N = 1024  # a /22
BUDGET = 24


def _fill(t, mac):
    for i in range(N):
        mac[4] = i >> 8
        mac[5] = i & 255
        t.set(i, T.ACTIVE, 0, mac, None, 1000 + i, 2000 + i, 500)


def test_heap_per_address_fully_leased_22():
    mac = bytearray(b"\x02\x42\x00\x00\x00\x00")
    if hasattr(gc, "mem_alloc"):  # MicroPython: what the heap really holds
        gc.collect()
        a0 = gc.mem_alloc()
        t = T.LeaseTable(N)
        _fill(t, mac)
        gc.collect()
        used = gc.mem_alloc() - a0
    else:  # CPython: the buffers the design allocates per address
        t = T.LeaseTable(N)
        _fill(t, mac)
        used = sys.getsizeof(t._buf) + sys.getsizeof(t._ix) + sys.getsizeof(t._counts)
    assert t.count(T.ACTIVE) == N and t.live() == N
    per = used / N
    print("lease table heap: %d B for %d addresses = %.2f B/address" % (used, N, per))
    assert per <= BUDGET, per


def test_hot_path_does_not_allocate():
    t = T.LeaseTable(N)
    mac = bytearray(b"\x02\x42\x00\x00\x00\x00")
    _fill(t, mac)
    miss = bytearray(b"\x02\x43\x00\x00\x00\x00")
    seen = [0]

    def visit(i):
        seen[0] += 1

    n = 0
    if hasattr(gc, "mem_alloc"):
        gc.collect()
        a0 = gc.mem_alloc()
    for i in range(0, N, 4):
        mac[4] = i >> 8
        mac[5] = i & 255
        if t.find_hw(mac) != i:
            n += 1
        miss[5] = i & 255
        if t.find_hw(miss) != -1:
            n += 1
        if t.find_client(None, 1, mac) != i:
            n += 1
        if t.state(i) != T.ACTIVE or t.expiry(i) != 1000 + i or t.flags(i) != T.HAS_HW:
            n += 1
        t.set_expiry(i, 3000)
        t.set_state(i, T.ACTIVE, 600)
        t.set(i, T.ACTIVE, 0, mac, None, 1000 + i, 2000 + i, 500)
    cur = t.expire(1100, visit, 0, N)
    j = t.next_in_state(T.FREE, 0)
    if hasattr(gc, "mem_alloc"):
        grew = gc.mem_alloc() - a0
        assert grew == 0, grew
    assert n == 0
    assert cur == 0 and seen[0] == 101  # expiries 1000..1100
    assert j == -1
