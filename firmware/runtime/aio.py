# runtime/aio.py - the asyncio driver shared by CPython and MicroPython.
#
# It owns every socket, the lease store and the clock; the Node owns every
# decision. One rule makes it safe: after each input batch, the records the
# core produced are appended and flushed (one commit for the whole batch:
# group commit) before any datagram or stream byte of that batch is sent.
#
# Fail-stop: a task that dies, a commit that fails, or a MemoryError inside
# the core turns DHCP off, closes every failover link (so the partner takes
# over) and hands the reason to `on_fail_stop` (a board records it and
# resets). A node never goes on half-working. A changed configuration
# document (live reconfiguration, Outbox.config) is written atomically after
# the turn's records and before anything of the turn is sent; a failed write
# is a commit failure like the lease store's. A refused, reset or stalled
# partner connection is not a failure: it is an ordinary lost link, which
# the core's connect action retries.

import gc

from dhcpfo import events as ev
from dhcpfo.compat import IS_MICROPYTHON, asyncio, ip_str, json_dumps, json_loads
from dhcpfo.config import FAILOVER_PORT, MGMT_MAX_CONNECTIONS, UNRESOLVED, parse_ip
from dhcpfo.failover import states as fstates
from dhcpfo.mgmt import session as msession
from dhcpfo.wire import dhcp as wire
from dhcpfo.wire import failover as fw
from runtime.udp import DRAIN_MAX

BROADCAST = "255.255.255.255"
CONNECT_TIMEOUT = 5  # seconds for a failover TCP connect before retrying
RESOLVE_RETRY = 30  # seconds at least between lookups of a partner host name that failed (a board blocks on each)
PEER_READ_MAX = 4096  # bytes per read from a partner
PEER_BACKLOG_MAX = 65536  # unsent bytes to one partner before the link counts as lost
MGMT_LINE_MAX = 4096  # a longer management request is answered with an error and closes the connection
MGMT_IDLE = 300  # seconds a management connection may send nothing before it is closed (frees its slot)
NOMEM_LIMIT = 8  # wake-ups in a row whose input could not even be read: not recoverable
# Partner reads lost for memory count until every relationship is NORMAL
# again, not until the next read that worked: a fragmented board heap let
# each new link read once and fail on the next, and kept a pair in RECOVER
# (serving nothing) for good while both nodes looked alive.


class FailStop(Exception):
    """Raised out of flush() after fail_stop(): nothing of that turn is sent."""


ip_text = ip_str  # re-exported: drivers name it so


def ip_bytes(text):
    parts = text.split(".")
    return bytes([int(p) for p in parts])


def fresh_nonce(size=msession.NONCE_BYTES):
    """Randomness for a management handshake or a failover connection
    (os.urandom on every port that has it)."""
    try:
        import os
        return os.urandom(size)
    except (ImportError, AttributeError, OSError):
        import random
        return bytes(random.getrandbits(8) for _ in range(size))


def peer_ip(peername):
    """4 address bytes from a stream's peername: CPython and the esp32/rp2
    ports give ("a.b.c.d", port); the unix port gives the raw sockaddr
    (family u16, port u16, address)."""
    if isinstance(peername, tuple):
        return ip_bytes(peername[0])
    return bytes(peername[4:8])


def _backlog(writer):
    """Bytes queued on a stream and not yet sent (both runtimes)."""
    buf = getattr(writer, "out_buf", None)  # MicroPython asyncio.Stream
    if buf is not None:
        return len(buf)
    transport = getattr(writer, "transport", None)
    if transport is not None:
        return transport.get_write_buffer_size()
    return 0


def _why(e):
    return "%s: %s" % (type(e).__name__, e)


async def _shut(writer):
    """Close a stream for good on both runtimes (MicroPython's asyncio closes
    the socket in wait_closed(); close() alone may leave it open)."""
    try:
        writer.close()
        await writer.wait_closed()
    except Exception:
        pass


def _error_line(text):
    return (json_dumps({"ok": False, "error": text}) + "\n").encode()


def resolve_partner(req):
    """add-failover may name the partner by host name: the driver resolves it
    here (the core never does) into req["resolved"], or req["resolve_error"].
    The lookup blocks the loop, which a rare, administrator-only command can
    afford."""
    req.pop("resolved", None)  # only the driver says what a name resolved to
    req.pop("resolve_error", None)
    host = req.get("partner")
    if req.get("cmd") != "add-failover" or type(host) is not str or not host or parse_ip(host) is not None:
        return
    port = req.get("partner_port")
    try:
        req["resolved"] = ip_str(lookup(host, port if type(port) is int else FAILOVER_PORT))
    except Exception as e:  # OSError (no such name), or an address that is not IPv4
        req["resolve_error"] = _why(e)


def lookup(host, port):
    """A host name -> its IPv4 address (4 bytes); raises when it does not
    resolve. socket.getaddrinfo(host, port) is the form every MicroPython
    port takes (it blocks the loop for the lookup)."""
    import socket
    return _first_ipv4(socket.getaddrinfo(host, port), host)


async def lookup_async(host, port):
    """lookup() without blocking the loop where the runtime can (CPython's
    resolver runs in a thread; a board's lookup blocks)."""
    if IS_MICROPYTHON:
        return lookup(host, port)
    return _first_ipv4(await asyncio.get_running_loop().getaddrinfo(host, port), host)


def _first_ipv4(infos, host):
    """The first IPv4 address of getaddrinfo's answer (CPython lists ::1
    first for localhost); each entry's last item is the socket address."""
    for ai in infos:
        if ai[0] == 2:  # AF_INET on every port
            return peer_ip(ai[-1])
    raise ValueError("%s has no IPv4 address" % host)


_REPLY_NAMES = ("bootreply", "discover", "offer", "request", "decline", "ack", "nak")


def _reply_name(payload):
    """The tx.* counter suffix of an encoded reply (its message type), or None."""
    try:
        mt = wire.decode(payload).msg_type
    except Exception:  # our own encoding: never expected, but a count is not worth a crash
        return None
    return _REPLY_NAMES[mt] if mt < len(_REPLY_NAMES) else None
def endpoints(rel):
    """(partner address, partner port, local address, local port) of a
    relationship, as text; the partner's address is the one the node holds
    (a partner given by host name: what it last resolved to)."""
    rc = rel.rc
    return ip_text(rel.partner_address), rc.partner_port, ip_text(rc.local_address), rc.local_port


class PeerConn:
    """One failover TCP connection; identity for the core is the object itself."""

    _next_id = 1

    def __init__(self, reader, writer, peer_ip, outgoing, port=None):
        self.reader = reader
        self.writer = writer
        self.peer_ip = peer_ip
        self.outgoing = outgoing
        self.port = port  # the partner's port dialled, or our listening port it came in on
        self.closed = False
        self.draining = False
        self.id = PeerConn._next_id
        PeerConn._next_id += 1

    def __repr__(self):
        return "<conn %d %s %s>" % (self.id, ip_text(self.peer_ip), "out" if self.outgoing else "in")


class NodeRunner:
    def __init__(self, node, store, clock, udp, local_addr, mgmt=None, log=None, relay_port=67, token=None,
                 user_token=None, config_path=None, mgmt_max=MGMT_MAX_CONNECTIONS):
        self.node = node
        self.config_path = config_path  # where Outbox.config goes (runtime/cfgfile.py)
        self.mgmt_line_max = MGMT_LINE_MAX  # once authenticated (a host node takes whole documents)
        self.config_file = None  # its ConfigFile, made at the first change (heap on a board)
        self.store = store
        self.clock = clock
        self.udp = udp
        self.local_addr = local_addr  # 4 bytes: the serving interface's address
        self.mgmt = mgmt  # callable(request dict, now) -> response dict
        self.relay_port = relay_port  # where relayed replies go (67; demos on loopback use another)
        # management authentication (mgmt/session.py): the administrator's token and
        # an optional read-only user's; with neither, only loopback may reach it (config rule)
        keys = {}
        if token:
            keys[msession.ADMIN] = token
        if user_token:
            keys[msession.USER] = user_token
        self.gate = msession.Gate(keys, node.events)
        self.mgmt_max = mgmt_max  # TCP management connections at once; one more is refused
        self.mgmt_open = 0
        self.log = log or (lambda msg: None)
        self.conns = []
        self.running = True
        self.compact_every = 0  # checked by the store's own policy
        self.stats_turns = 0
        self.failed = None  # the fail-stop reason, once stopped for one
        self.send_error = None  # cause of the last refused DHCP send, logged once until a send succeeds
        self.on_fail_stop = None  # callable(reason) after service is down (a board resets)
        self.servers = []  # the management listener
        self.listeners = {}  # (address, port) -> failover listener (None while it opens)
        self.connectors = {}  # relationship -> its connector task
        self.unresolved = []  # relationships whose partner host name did not resolve at the last lookup
        self.beat = 0  # tick-task turns: the watchdog feeds only while this moves
        self.peer_nomem = 0  # partner reads lost for memory since every relationship was last NORMAL
        self.extra_tasks = []  # (name, coroutine) run under the same guard (board: link, watchdog)

    # ------------------------------------------------------------------
    # the one place actions leave the core

    def flush(self):
        out = self.node.out
        if self.failed is not None:
            out.clear()
            raise FailStop(self.failed)
        try:
            if out.lazy:
                self.store.append(out.lazy)  # rides with the next commit (or the tick's)
            if out.records:
                self.store.append(out.records)
                self.store.commit()  # durable before anything below is sent
        except Exception as e:  # MemoryError included: the turn's records are not durable
            out.clear()
            self.fail_stop("lease store commit failed: " + _why(e))
            raise FailStop(self.failed)
        relink = out.config is not None
        if relink:
            # a live change: durable before the answer, the CONNECT or the
            # update that follows from it leaves (the records above first, so
            # a crash in between costs a resynchronisation, never a wrong state)
            try:
                if self.config_file is None:
                    if self.config_path is None:
                        raise OSError("this node has no configuration file to write")
                    from runtime.cfgfile import ConfigFile
                    self.config_file = ConfigFile(self.config_path)
                self.config_file.write(out.config)
            except Exception as e:
                out.clear()
                self.fail_stop("configuration write failed: " + _why(e))
                raise FailStop(self.failed)
            out.config = None
        lost = []
        for payload, dst, port, delay in out.dhcp:
            ip = ip_text(dst)
            if port == 67:
                port = self.relay_port
            if delay:
                asyncio.create_task(self._send_later(payload, ip, port, delay))
            else:
                self._send(payload, ip, port)
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
                if conn.closed:
                    continue
                try:
                    # MicroPython hands back a stream even for a refused
                    # connect: the first write is where that shows
                    conn.writer.write(b"".join(batches[conn]))
                except OSError:
                    lost.append(conn)
                    continue
                if _backlog(conn.writer) > PEER_BACKLOG_MAX:
                    lost.append(conn)  # the partner stopped reading
                elif not conn.draining:
                    conn.draining = True
                    asyncio.create_task(self._drain(conn))
        for conn in out.closes:
            self._close(conn)
        for name, host, port in out.connects:
            asyncio.create_task(self._connect(host, port))
        out.clear()
        self.stats_turns += 1
        if relink:
            self.sync_links()
        for conn in lost:
            self._lost(conn)

    async def _send_later(self, payload, ip, port, delay_ms):
        await asyncio.sleep(delay_ms / 1000)
        if self.failed is None:
            self._send(payload, ip, port)

    def _send(self, payload, ip, port):
        """Send one DHCP reply. One the socket refuses (no route, no
        interface, a down link) was not sent: it comes off its tx.* count
        onto tx.send-error, and its cause is logged once, and again only
        when the cause changes or after a send got through in between."""
        if self.udp.sendto(payload, ip, port):
            self.send_error = None
            return
        events = self.node.events
        events.count("tx.send-error")
        name = _reply_name(payload)
        if name is not None:
            events.count_as("tx.", name, -1)  # the core counted it when it decided to send
        why = _why(getattr(self.udp, "last_error", None) or OSError("send refused"))
        if why != self.send_error:
            self.send_error = why
            events.emit(self.clock.now(), ev.WARN, ev.EV_SEND_FAIL,
                        "DHCP %s to %s:%d not sent: %s" % (name or "reply", ip, port, why))

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
            if self.failed is None:
                self.node.peer_closed(conn, self.clock.now())
                self.flush()
        else:
            self._close(conn)

    # ------------------------------------------------------------------
    # fail-stop

    def fail_stop(self, reason):
        """Stop serving for good: DHCP socket and listeners closed, failover
        links closed (the partner sees COMMUNICATIONS-INTERRUPTED and takes
        over), then on_fail_stop(reason). Only the first reason counts."""
        if self.failed is not None:
            return
        self.failed = reason
        self.running = False
        try:  # out of memory, any step here can raise: on_fail_stop runs anyway
            self.node.out.clear()
            try:
                self.udp.close()
            except Exception:
                pass
            for s in self.servers + [s for s in self.listeners.values() if s is not None]:
                try:
                    s.close()
                except Exception:
                    pass
            for c in list(self.conns):
                self._close(c)
            self.conns = []
            if hasattr(self, "_stop"):
                self._stop.set()
        finally:
            if self.on_fail_stop is not None:
                self.on_fail_stop(reason)

    async def _guard(self, name, coro, forever=True):
        """Run one task; its death (an exception) is a fail-stop, and so is
        the end of a task meant to run `forever` while the node serves."""
        try:
            await coro
        except FailStop:
            pass
        except asyncio.CancelledError:
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # MemoryError too: the core may be half-updated
            gc.collect()
            self.fail_stop("task %s died: %s" % (name, _why(e)))
            return
        if forever and self.running:
            self.fail_stop("task %s ended" % name)

    # ------------------------------------------------------------------
    # tasks

    async def dhcp_task(self):
        node = self.node
        nomem = 0
        while self.running:
            await self.udp.wait_readable()
            try:
                batch = self.udp.drain()
                nomem = 0
            except MemoryError:  # nothing reached the core yet: drop what was read
                batch = None
                gc.collect()
                node.events.count("drop.nomem")
                nomem += 1
                if nomem >= NOMEM_LIMIT:  # serving nothing while looking alive is a zombie
                    self.fail_stop("out of memory: %d DHCP reads in a row failed" % nomem)
                    return
                continue
            if not batch:
                continue
            node.handle_dhcp_batch(batch, self.local_addr, self.clock.now(),
                                   len(batch) >= DRAIN_MAX)
            self.flush()

    async def tick_task(self):
        while self.running:
            now = self.clock.now()
            self.node.tick(now)
            self.flush()
            try:  # the tick's commit is the lease store's like flush's: same fail-stop reason
                if self.store.pending():
                    self.store.commit()
                if self.store.should_compact():
                    self.store.compact()
            except Exception as e:
                self.fail_stop("lease store commit failed: " + _why(e))
                raise FailStop(self.failed)
            self.beat += 1
            self.links_recovered()
            await asyncio.sleep(1)

    def links_recovered(self):
        """Forget partner reads lost for memory once every relationship is
        NORMAL: the links work again. Until then they add up to a fail-stop."""
        if self.peer_nomem:
            for rel in self.node.relationships:
                if rel.state != fstates.NORMAL:
                    return
            self.peer_nomem = 0

    async def _peer_loop(self, conn):
        self.conns.append(conn)
        self.node.peer_connected(conn, conn.peer_ip, conn.outgoing, self.clock.now(), conn.port,
                                 fresh_nonce(fw.NONCE_LEN))
        self.flush()
        while self.running and not conn.closed:
            try:
                data = await conn.reader.read(PEER_READ_MAX)
            except MemoryError:  # bytes lost from the stream: end the link, keep the node
                gc.collect()
                self.node.events.count("peer.nomem")
                self.peer_nomem += 1
                if self.peer_nomem >= NOMEM_LIMIT:  # see NOMEM_LIMIT: links that never recover
                    raise  # a fail-stop, not a link that flaps for ever
                break
            except OSError:  # refused, reset, unreachable: an ordinary lost link
                break
            if not data:
                break
            self.node.peer_data(conn, data, self.clock.now())
            self.flush()
        self._lost(conn)

    def _acceptor(self, port):
        """The accept callback of the listener on our `port` (MicroPython
        streams tell the peer's address only, not which listener took it)."""
        return lambda reader, writer: self._accept(reader, writer, port)

    async def _accept(self, reader, writer, port=None):
        try:
            ip = peer_ip(writer.get_extra_info("peername"))
        except Exception:
            writer.close()
            return
        await self._guard("peer", self._peer_loop(PeerConn(reader, writer, ip, False, port)), False)

    async def _connect(self, host, port, local=None):
        try:
            if IS_MICROPYTHON or local is None:
                conn = asyncio.open_connection(host, port)
            else:
                conn = asyncio.open_connection(host, port, local_addr=(local, 0))
            reader, writer = await asyncio.wait_for(conn, CONNECT_TIMEOUT)
        except Exception:  # MemoryError included: nothing reached the core
            return False
        if not self.running:
            writer.close()
            return False
        asyncio.create_task(self._guard("peer", self._peer_loop(PeerConn(reader, writer, ip_bytes(host), True, port)),
                                        False))
        return True

    # ------------------------------------------------------------------
    # failover links follow the relationships (start and live changes)

    def _start_connector(self, rel, host, port, local):
        self.connectors[rel] = asyncio.create_task(
            self._guard("connect", self.connector_task(rel, host, port, local)))

    def sync_links(self):
        """Listeners and connectors for the relationships the node has now,
        without a restart: a created relationship listens and connects as one
        configured at start does; a deleted one's connector stops (the core
        already closed its links) and its listener closes unless another
        relationship shares the endpoint."""
        rels = self.node.relationships
        for rel in list(self.connectors):
            if rel not in rels:
                self.connectors.pop(rel).cancel()
        want = []
        for rel in rels:
            host, port, local, lport = endpoints(rel)
            if rel not in self.connectors:
                self._start_connector(rel, host, port, local)
            if (local, lport) not in want:
                want.append((local, lport))
        for addr in list(self.listeners):
            if addr not in want:
                srv = self.listeners.pop(addr)
                if srv is not None:
                    srv.close()
        for addr in want:
            if addr not in self.listeners:
                self.listeners[addr] = None
                asyncio.create_task(self._listen(addr))

    async def _listen(self, addr):
        """Open a failover listener at run time; a failure (address in use)
        is an error event, not a fail-stop: the connector still dials out."""
        try:
            srv = await asyncio.start_server(self._acceptor(addr[1]), addr[0], addr[1])
        except Exception as e:
            if self.listeners.get(addr, 1) is None:
                del self.listeners[addr]
            self.node.events.count("peer.listen-error")
            self.node.events.emit(self.clock.now(), ev.ERROR, ev.EV_SERVICE,
                                  "cannot listen for failover partners on %s:%d: %s" % (addr[0], addr[1], _why(e)))
            return
        if self.running and addr in self.listeners and self.listeners[addr] is None:
            self.listeners[addr] = srv
        else:  # stopped, or no longer wanted, while it opened
            srv.close()

    async def connector_task(self, rel, host, port, local):
        """Keep one outgoing attempt going per relationship while it has no
        link. A partner given by host name is looked up before the first
        attempt and again after a lost link; a failed lookup is tried again
        before the next attempt at least RESOLVE_RETRY seconds later (on a
        board a lookup blocks the loop for as long as the DNS server takes),
        dialling meanwhile the address the node had, if any."""
        delay = 1
        fresh = False  # the partner's host name was looked up since the link was last up
        retry_at = 0  # (node time) when a lookup that failed may be tried again
        while self.running:
            if rel.link_up():
                delay = 1
                fresh = False
                await asyncio.sleep(1)
                continue
            name = getattr(rel.rc, "partner_host", None)
            if name and not fresh and self.clock.now() >= retry_at:
                fresh = await self.resolve(rel, name)
                if not fresh:
                    retry_at = self.clock.now() + RESOLVE_RETRY
            if rel.partner_address == UNRESOLVED:  # nowhere to dial until the name resolves
                await asyncio.sleep(1)
                continue
            ok = await self._connect(ip_text(rel.partner_address), port, local)
            await asyncio.sleep(1 if ok else delay)
            delay = delay * 2 if delay < 8 else 10

    async def resolve(self, rel, name):
        """Look up the partner's host name and tell the node (the core never
        resolves). A failure is counted and, when it starts, an event; the
        node keeps the address it had (none, or the last one). True when
        the name resolved."""
        ev_ = self.node.events
        try:
            addr = await lookup_async(name, rel.rc.partner_port)
        except Exception as e:  # OSError: no such name, no DNS server; ValueError: not IPv4
            now = self.clock.now()
            ev_.count("peer.resolve-failed")
            if rel not in self.unresolved:
                self.unresolved.append(rel)
                ev_.emit(now, ev.WARN, ev.EV_SERVICE,
                         "failover relationship %s: partner host name %s could not be resolved (%s); "
                         "retrying before each connect attempt%s"
                         % (rel.name, name, _why(e), "" if rel.partner_address == UNRESOLVED
                            else ", meanwhile using %s" % ip_text(rel.partner_address)))
            return False
        if rel in self.unresolved:
            self.unresolved.remove(rel)
        if self.node.partner_resolved(rel, addr):
            ev_.emit(self.clock.now(), ev.INFO, ev.EV_SERVICE, "failover relationship %s: partner host name %s is %s"
                     % (rel.name, name, ip_text(addr)))
        return True

    async def _read_line(self, reader, buf, limit=MGMT_LINE_MAX):
        """One request line of at most `limit` bytes; None when the
        connection closed or sat idle MGMT_IDLE seconds; False when too long."""
        while True:
            i = buf.find(b"\n")
            if 0 <= i <= limit:
                line = bytes(buf[:i])
                buf[:] = buf[i + 1:]
                return line
            if len(buf) > limit:
                self.node.events.count("mgmt.too-long")
                return False
            try:
                data = await asyncio.wait_for(reader.read(1024), MGMT_IDLE)
            except asyncio.TimeoutError:
                self.node.events.count("mgmt.idle-closed")
                return None
            if not data:
                return None
            buf.extend(data)

    def answer(self, sess, line):
        """One management request line -> its answer line (bytes, newline-ended).

        The same for every transport (TCP here, the serial console in
        runtime/console.py): the session decides what may run, the command
        table runs it, and what the command changed is flushed before the
        answer leaves."""
        try:
            req = json_loads(line)
            if not isinstance(req, dict):
                raise ValueError("request must be a JSON object")
            now = self.clock.now()
            resp, run = sess.handle(req, now)
            if run is not None:
                resolve_partner(run)
                resp = self.mgmt(run, now, sess.role)
        except ValueError as e:
            resp = {"ok": False, "error": "bad request: %s" % (e,)}
        except MemoryError:
            gc.collect()
            if not self.node.out.empty():
                raise  # the command changed state half-way: fail-stop
            resp = {"ok": False, "error": "out of memory"}
        self.flush()
        return (json_dumps(resp) + "\n").encode()

    async def _mgmt_client(self, reader, writer):
        buf = bytearray()
        try:
            peer = writer.get_extra_info("peername")
            source = ip_str(peer_ip(peer)) if peer else "?"
        except Exception:
            source = "?"
        sess = self.gate.open(source, fresh_nonce())
        try:
            while self.running:
                # before authentication every connection gets the small bound
                limit = self.mgmt_line_max if sess.role is not None else MGMT_LINE_MAX
                try:
                    line = await self._read_line(reader, buf, limit)
                except OSError:
                    break
                if line is None:
                    break
                if line is False:
                    try:
                        writer.write(_error_line("request longer than %d bytes; connection closed" % limit))
                        await writer.drain()
                    except OSError:
                        pass
                    break
                resp = self.answer(sess, line)
                try:
                    writer.write(resp)
                    await writer.drain()
                except OSError:
                    break
                if sess.closed:
                    self.log("management connection from %s closed: not authenticated" % source)
                    break
        finally:
            await _shut(writer)

    async def _mgmt_accept(self, reader, writer):
        if self.mgmt_open >= self.mgmt_max:
            # bounded: each session costs heap (buffers, a handshake); one too
            # many gets one line saying so and is closed, and is counted
            self.node.events.count("mgmt.conn-refused")
            self.log("management connection refused: %d open already" % self.mgmt_open)
            try:
                writer.write(_error_line("too many management connections (at most %d); try again later"
                                         % self.mgmt_max))
                await writer.drain()
            except Exception:
                pass
            await _shut(writer)
            return
        self.mgmt_open += 1
        try:
            await self._guard("mgmt", self._mgmt_client(reader, writer), False)
        finally:
            self.mgmt_open -= 1

    async def serve(self, peer_listen=None, connectors=None, mgmt_listen=None):
        """Run until stop(): DHCP, ticks, failover links, management. Without
        peer_listen and connectors, each relationship listens on its local
        endpoint and connects to its partner's (runtime.aio.endpoints)."""
        now = self.clock.now()
        self.node.start(now)
        self.flush()
        if peer_listen is None and connectors is None:
            peer_listen = []
            connectors = []
            for rel in self.node.relationships:
                host, port, local, lport = endpoints(rel)
                peer_listen.append((local, lport))
                connectors.append((rel, host, port, local))
        for addr in peer_listen or ():
            if addr not in self.listeners:  # relationships may share one listening endpoint
                self.listeners[addr] = await asyncio.start_server(self._acceptor(addr[1]), addr[0], addr[1])
        if mgmt_listen is not None and self.mgmt is not None:
            self.servers.append(await asyncio.start_server(self._mgmt_accept, mgmt_listen[0], mgmt_listen[1]))
        self._stop = asyncio.Event()
        tasks = [asyncio.create_task(self._guard("dhcp", self.dhcp_task())),
                 asyncio.create_task(self._guard("tick", self.tick_task()))]
        for rel, host, port, local in connectors or ():
            self._start_connector(rel, host, port, local)
        for name, coro in self.extra_tasks:
            tasks.append(asyncio.create_task(self._guard(name, coro)))
        if self.failed is None:
            await self._stop.wait()
        self.running = False
        for t in tasks + list(self.connectors.values()):
            t.cancel()
        for s in self.servers + [s for s in self.listeners.values() if s is not None]:
            s.close()
        for c in list(self.conns):
            self._close(c)
        if self.failed is None:  # a clean stop: what is pending is written
            self.flush()
            if self.store.pending():
                self.store.commit()
        try:
            self.store.close()
        except Exception:
            pass

    def stop(self):
        self.running = False
        if hasattr(self, "_stop"):
            self._stop.set()
