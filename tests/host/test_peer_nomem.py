"""runtime/aio.py: partner reads that fail for memory end in a fail-stop
unless the links recover (every relationship NORMAL again).

Measured on the emulated board at a 352 KB heap (docs/faults.md
"memory-a"): each new failover link read once, then failed to find a 4 KB
block; the read that worked reset the count, so both boards sat in RECOVER
(serving nothing) for good while they looked alive. These tests drive the
real NodeRunner._peer_loop with streams that do just that.
"""

import asyncio

from dhcpfo.failover import states as S
from runtime import aio

NOMEM = object()  # a read that raises MemoryError


class Reader:
    def __init__(self, script):
        self.script = list(script)

    async def read(self, n):
        item = self.script.pop(0) if self.script else b""
        if item is NOMEM:
            raise MemoryError("memory allocation failed, allocating 4097 bytes")
        return item


class Writer:
    def close(self):
        pass


class Out:
    """An outbox that never has anything to send (flush() has nothing to do)."""

    def __init__(self):
        self.clear()

    def clear(self):
        self.lazy, self.records, self.dhcp, self.peer, self.closes, self.connects = [], [], [], [], [], []
        self.config = None


class Events:
    def __init__(self):
        self.counts = {}

    def count(self, name, n=1):
        self.counts[name] = self.counts.get(name, 0) + n


class Rel:
    def __init__(self, state):
        self.state = state


class FakeNode:
    """The core's side of a partner link, reduced to what the driver calls."""

    def __init__(self, state):
        self.out = Out()
        self.events = Events()
        self.relationships = [Rel(state)]
        self.seen = 0

    def peer_connected(self, conn, ip, outgoing, now, port, nonce):
        pass

    def peer_data(self, conn, data, now):
        self.seen += len(data)

    def peer_closed(self, conn, now):
        pass


class Udp:
    def close(self):
        pass


class Clock:
    def now(self):
        return 1000


def _runner(state):
    node = FakeNode(state)
    runner = aio.NodeRunner(node, store=None, clock=Clock(), udp=Udp(), local_addr=b"\x7f\x00\x00\x01")
    stops = []
    runner.on_fail_stop = stops.append
    return runner, node, stops


def _tick(runner):
    """What the tick task does about the links each second."""
    check = getattr(runner, "links_recovered", None)  # absent before the fix: the test shows the zombie
    if check is not None:
        check()


async def _link(runner, script):
    conn = aio.PeerConn(Reader(script), Writer(), b"\x7f\x00\x00\x02", False)
    await runner._guard("peer", runner._peer_loop(conn), False)


def test_links_that_read_once_then_fail_for_memory_fail_stop():
    runner, node, stops = _runner(S.RECOVER)

    async def main():
        for _ in range(aio.NOMEM_LIMIT * 2):  # bounded: twice the limit
            if runner.failed is not None:
                break
            await _link(runner, [b"CONNECT", NOMEM])
            _tick(runner)  # still RECOVER

    asyncio.run(main())
    assert node.seen > 0  # every link did read once
    assert node.events.counts["peer.nomem"] == aio.NOMEM_LIMIT
    assert runner.failed is not None and "MemoryError" in runner.failed
    assert stops == [runner.failed]


def test_links_that_recover_in_between_keep_the_node():
    runner, node, stops = _runner(S.NORMAL)

    async def main():
        for _ in range(aio.NOMEM_LIMIT * 2):
            await _link(runner, [b"CONNECT", NOMEM])
            _tick(runner)  # NORMAL again: the count starts over

    asyncio.run(main())
    assert node.events.counts["peer.nomem"] == aio.NOMEM_LIMIT * 2
    assert runner.failed is None and stops == []
