# runtime/udp.py - the DHCP socket, awaitable on both runtimes.
#
# asyncio on MicroPython has no datagram endpoint, so both runtimes use one
# non-blocking socket: CPython parks on loop.add_reader, MicroPython on the
# asyncio I/O queue (runtime/udp_mp.py). Every wake-up drains the socket:
# a Pico W queues only 4 datagrams.

import socket

from dhcpfo.compat import IS_MICROPYTHON, asyncio

DRAIN_MAX = 128  # datagrams handled per wake-up before the turn's group commit
RX_MAX = 2048  # receive buffer: a longer datagram is truncated (and fails to decode)
ADDR_CACHE_MAX = 32  # resolved destinations kept (broadcast, relays, a few unicast clients)


def sockaddr(ip, port):
    """The address form every port's sendto/bind accepts: getaddrinfo's own
    (the unix port wants a raw sockaddr, esp32/rp2/CPython a tuple)."""
    return socket.getaddrinfo(ip, port)[0][-1]


class UdpEndpoint:
    def __init__(self, address="0.0.0.0", port=67, interface=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if interface and hasattr(socket, "SO_BINDTODEVICE"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode() + b"\0")
        s.bind(sockaddr(address, port))
        s.setblocking(False)
        self.sock = s
        self._addrs = {}
        self.port = s.getsockname()[1] if hasattr(s, "getsockname") else port
        self.rx_dropped = 0
        self.last_error = None  # the OSError of the last refused sendto
        if IS_MICROPYTHON:
            from runtime.udp_mp import wait_readable

            self._wait = wait_readable
        else:
            self._wait = None

    async def wait_readable(self):
        if self.sock is None:
            raise OSError(9)  # closed by a fail-stop
        if self._wait is not None:
            await self._wait(self.sock)
            return
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        fd = self.sock.fileno()

        def ready():
            if not fut.done():
                fut.set_result(None)

        loop.add_reader(fd, ready)
        try:
            await fut
        finally:
            loop.remove_reader(fd)

    def drain(self, limit=DRAIN_MAX):
        """Up to `limit` datagram payloads (bytes) waiting on the socket."""
        # recv, not readinto: MicroPython's stream readinto keeps reading until
        # the buffer is full, which on a datagram socket glues datagrams together
        got = []
        while self.sock is not None and len(got) < limit:
            try:
                data = self.sock.recv(RX_MAX)
            except OSError:  # EAGAIN: nothing more waiting
                break
            if data is None:  # a MicroPython non-blocking read with nothing waiting
                break
            got.append(data)
        return got

    def sendto(self, payload, ip, port):
        key = (ip, port)
        addrs = self._addrs
        try:
            addr = addrs.get(key)
            if addr is None:
                if len(addrs) >= ADDR_CACHE_MAX:
                    addrs.clear()
                addr = addrs[key] = sockaddr(ip, port)
            self.sock.sendto(payload, addr)
            return True
        except OSError as e:  # no route, no interface, link down: the caller logs the cause
            self.last_error = e
            return False

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
