# runtime/aio.py - the asyncio driver shared by CPython and MicroPython.
#
# It owns every socket, the lease store and the clock; the Node owns every
# decision. One rule makes it safe: after each input batch, the records the
# core produced are appended and flushed (one commit for the whole batch:
# group commit) before any datagram or stream byte of that batch is sent.

from dhcpfo.compat import IS_MICROPYTHON, asyncio, digest_eq, ip_str, json_dumps, json_loads
from runtime.udp import DRAIN_MAX

BROADCAST = "255.255.255.255"
CONNECT_TIMEOUT = 5  # seconds for a failover TCP connect before retrying


ip_text = ip_str  # re-exported: drivers name it so


def ip_bytes(text):
    parts = text.split(".")
    return bytes([int(p) for p in parts])


class PeerConn:
    """One failover TCP connection; identity for the core is the object itself."""

    _next_id = 1

    def __init__(self, reader, writer, peer_ip, outgoing):
        self.reader = reader
        self.writer = writer
        self.peer_ip = peer_ip
        self.outgoing = outgoing
        self.closed = False
        self.draining = False
        self.id = PeerConn._next_id
        PeerConn._next_id += 1

    def __repr__(self):
        return "<conn %d %s %s>" % (self.id, ip_text(self.peer_ip), "out" if self.outgoing else "in")


class NodeRunner:
    def __init__(self, node, store, clock, udp, local_addr, mgmt=None, log=None, relay_port=67, token=None):
        self.node = node
        self.store = store
        self.clock = clock
        self.udp = udp
        self.local_addr = local_addr  # 4 bytes: the serving interface's address
        self.mgmt = mgmt  # callable(request dict, now) -> response dict
        self.relay_port = relay_port  # where relayed replies go (67; demos on loopback use another)
        self.token = token.encode() if isinstance(token, str) else token  # management secret, if any
        self.log = log or (lambda msg: None)
        self.conns = []
        self.running = True
        self.compact_every = 0  # checked by the store's own policy
        self.stats_turns = 0

    # ------------------------------------------------------------------
    # the one place actions leave the core

    def flush(self):
        out = self.node.out
        if out.lazy:
            self.store.append(out.lazy)  # rides with the next commit (or the tick's)
        if out.records:
            self.store.append(out.records)
            self.store.commit()  # durable before anything below is sent
        for payload, dst, port, delay in out.dhcp:
            ip = ip_text(dst)
            if port == 67:
                port = self.relay_port
            if delay:
                asyncio.create_task(self._send_later(payload, ip, port, delay))
            elif not self.udp.sendto(payload, ip, port):
                self.node.events.count("tx.send-error")
        if out.peer:
            # one write (and one drain) per connection per turn, however many messages
            batches = {}
            order = []
            for conn, payload in out.peer:
                if conn not in batches:
                    batches[conn] = []
                    order.append(conn)
                batches[conn].append(payload)
            for conn in order:
                if not conn.closed:
                    conn.writer.write(b"".join(batches[conn]))
                    if not conn.draining:
                        conn.draining = True
                        asyncio.create_task(self._drain(conn))
        for conn in out.closes:
            self._close(conn)
        for name, host, port in out.connects:
            asyncio.create_task(self._connect(host, port))
        out.clear()
        self.stats_turns += 1

    async def _send_later(self, payload, ip, port, delay_ms):
        await asyncio.sleep(delay_ms / 1000)
        self.udp.sendto(payload, ip, port)

    async def _drain(self, conn):
        try:
            await conn.writer.drain()
        except Exception:
            self._lost(conn)
        conn.draining = False

    def _close(self, conn):
        if conn.closed:
            return
        conn.closed = True
        try:
            conn.writer.close()
        except Exception:
            pass

    def _lost(self, conn):
        if conn in self.conns:
            self.conns.remove(conn)
            self._close(conn)
            self.node.peer_closed(conn, self.clock.now())
            self.flush()

    # ------------------------------------------------------------------
    # tasks

    async def dhcp_task(self):
        node = self.node
        while self.running:
            await self.udp.wait_readable()
            batch = self.udp.drain()
            if not batch:
                continue
            node.handle_dhcp_batch([b[0] for b in batch], self.local_addr, self.clock.now(),
                                   len(batch) >= DRAIN_MAX)
            self.flush()

    async def tick_task(self):
        while self.running:
            now = self.clock.now()
            self.node.tick(now)
            self.flush()
            if self.store.pending():
                self.store.commit()
            if self.store.should_compact():
                self.store.compact()
            await asyncio.sleep(1)

    async def _peer_loop(self, conn):
        self.conns.append(conn)
        self.node.peer_connected(conn, conn.peer_ip, conn.outgoing, self.clock.now())
        self.flush()
        try:
            while self.running and not conn.closed:
                data = await conn.reader.read(4096)
                if not data:
                    break
                self.node.peer_data(conn, data, self.clock.now())
                self.flush()
        except Exception:
            pass
        self._lost(conn)

    async def _accept(self, reader, writer):
        peer = writer.get_extra_info("peername")
        await self._peer_loop(PeerConn(reader, writer, ip_bytes(peer[0]), False))

    async def _connect(self, host, port, local=None):
        try:
            if IS_MICROPYTHON or local is None:
                conn = asyncio.open_connection(host, port)
            else:
                conn = asyncio.open_connection(host, port, local_addr=(local, 0))
            reader, writer = await asyncio.wait_for(conn, CONNECT_TIMEOUT)
        except Exception:
            return False
        asyncio.create_task(self._peer_loop(PeerConn(reader, writer, ip_bytes(host), True)))
        return True

    async def connector_task(self, rel, host, port, local):
        """Keep one outgoing attempt going per relationship while it has no link."""
        delay = 1
        while self.running:
            if rel.link_up():
                delay = 1
                await asyncio.sleep(1)
                continue
            ok = await self._connect(host, port, local)
            await asyncio.sleep(1 if ok else delay)
            delay = delay * 2 if delay < 8 else 10

    async def _mgmt_client(self, reader, writer):
        try:
            while self.running:
                line = await reader.readline()
                if not line:
                    break
                try:
                    req = json_loads(line)
                    if not isinstance(req, dict):
                        raise ValueError("request must be a JSON object")
                    if self.token is not None and not digest_eq(str(req.get("token", "")).encode(), self.token):
                        self.node.events.count("mgmt.bad-token")
                        resp = {"ok": False, "error": "management token missing or wrong"}
                    else:
                        resp = self.mgmt(req, self.clock.now())
                except ValueError as e:
                    resp = {"ok": False, "error": "bad request: %s" % (e,)}
                self.flush()
                writer.write((json_dumps(resp) + "\n").encode())
                await writer.drain()
        except Exception:
            pass
        try:
            writer.close()
        except Exception:
            pass

    async def serve(self, peer_listen=None, connectors=(), mgmt_listen=None):
        """Run until stop(): DHCP, ticks, failover links, management."""
        now = self.clock.now()
        self.node.start(now)
        self.flush()
        servers = []
        seen = []
        for addr in peer_listen or ():
            if addr not in seen:  # relationships may share one listening endpoint
                seen.append(addr)
                servers.append(await asyncio.start_server(self._accept, addr[0], addr[1]))
        if mgmt_listen is not None and self.mgmt is not None:
            servers.append(await asyncio.start_server(self._mgmt_client, mgmt_listen[0], mgmt_listen[1]))
        tasks = [asyncio.create_task(self.dhcp_task()), asyncio.create_task(self.tick_task())]
        for rel, host, port, local in connectors:
            tasks.append(asyncio.create_task(self.connector_task(rel, host, port, local)))
        self._stop = asyncio.Event()
        await self._stop.wait()
        self.running = False
        for t in tasks:
            t.cancel()
        for s in servers:
            s.close()
        for c in list(self.conns):
            self._close(c)
        self.flush()
        if self.store.pending():
            self.store.commit()
        self.store.close()

    def stop(self):
        self.running = False
        if hasattr(self, "_stop"):
            self._stop.set()
