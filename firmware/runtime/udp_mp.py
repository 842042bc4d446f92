# runtime/udp_mp.py - MicroPython only: park a task until a socket is readable.
#
# MicroPython's asyncio has no datagram endpoint; its stream classes park on
# the loop's poll-based I/O queue, and so can we (the pattern of
# micropython-lib's aioespnow). This relies on asyncio.core internals, which
# is why the board firmware version is pinned. Never imported on CPython,
# where an `async def` with `yield` would be an async generator.

import asyncio


async def wait_readable(sock):
    yield asyncio.core._io_queue.queue_read(sock)
