# node.py - the engine: every input in, actions out.
#
# The driver calls one of the handle_* / peer_* / tick / command methods with
# `now`, then drains `node.out`: first it appends `out.records` to the lease
# log and flushes once, then it sends what the turn produced. That ordering
# is what makes "nothing acknowledged before it is durable" hold without the
# core ever touching a file.

from dhcpfo import events as ev
from dhcpfo.dhcp.scope import Scopes
from dhcpfo.dhcp.server import DhcpServer
from dhcpfo.lease import log as ll
from dhcpfo.lease import table as lt
from dhcpfo.lease.table import LeaseTable


OVERLOAD_MIN_DISCOVERS = 8  # DISCOVERs served per wake-up even under a backlog


class Outbox:
    """Actions produced by one loop turn, in the order the driver must honour."""

    def __init__(self):
        self.records = []  # lease-log records: append + flush before any send
        self.lazy = []  # records nothing in this turn depends on: written with the next flush
        self.dhcp = []  # (payload, dst_ip4, dst_port, delay_ms)
        self.peer = []  # (conn, payload)
        self.connects = []  # (relationship name, host, port)
        self.closes = []  # conn
        self.timers = []  # reserved for drivers that want explicit wake-ups

    def send_dhcp(self, payload, dst, port, delay_ms=0):
        self.dhcp.append((payload, dst, port, delay_ms))

    def send_peer(self, conn, payload):
        self.peer.append((conn, payload))

    def connect(self, name, host, port):
        self.connects.append((name, host, port))

    def close(self, conn):
        self.closes.append(conn)

    def empty(self):
        return not (self.records or self.lazy or self.dhcp or self.peer or self.connects or self.closes)

    def clear(self):
        self.records = []
        self.lazy = []
        self.dhcp = []
        self.peer = []
        self.connects = []
        self.closes = []


class Node:
    """A dhcpfo node: scopes, lease tables, DHCP service and failover relationships."""

    def __init__(self, config, events=None, relationship_factory=None):
        self.config = config
        self.events = events if events is not None else ev.Events()
        self.out = Outbox()
        self.scopes = Scopes(config)
        self.tables = [LeaseTable(sc.size) for sc in self.scopes]
        srv = config.server
        self.server = DhcpServer(
            self.scopes, self.tables, self.events, srv.server_id, srv.offer_hold, srv.decline_hold,
            getattr(srv, "abuse", None)  # server "abuse" object (docs/config.md), defaults when absent
        )
        self.relationships = []
        self._conns = {}  # conn -> relationship
        if relationship_factory is None and config.failover:
            from dhcpfo.failover.peer import Relationship as relationship_factory
        for i, rc in enumerate(config.failover):
            scopes = [self.scopes.by_id(sid) for sid in rc.scopes]
            scopes = [sc for sc in scopes if sc is not None]
            rel = relationship_factory(rc, scopes, self.tables, self.events, srv, self._log_meta, i)
            rel.is_offered = self.server.is_offered
            self.relationships.append(rel)
            for sc in scopes:
                self.server.authorities[sc.index] = rel
        self.started = False

    # ------------------------------------------------------------------
    # recovery

    def tables_by_scope(self):
        """Lease tables keyed by the scope id used in log records."""
        return dict((i, self.tables[i]) for i in range(len(self.tables)))

    def restore_meta(self, key, payload):
        """A META record replayed from the lease log (failover state)."""
        for rel in self.relationships:
            if rel.meta_key == key:
                rel.restore_meta(payload)
            elif rel.meta_key + 64 == key:
                rel.restore_amnesia(payload)

    def storage_lost(self, now):
        """The lease store was found damaged: forget saved failover state so each
        relationship recovers everything from its partner before serving."""
        for rel in self.relationships:
            rel.saved = None
        self.events.emit(now, ev.ERROR, ev.EV_SERVICE, "lease store damaged: recovering from the partner")

    def _log_meta(self, key, payload):
        self.out.records.append(ll.encode_meta(key, payload))

    def after_restore(self):
        """Clear per-run marks left in restored records (updates in flight)."""
        for t in self.tables:
            off = t.next_flagged(lt.MARK, 0)
            while off >= 0:
                t.clear_flag(off, lt.MARK)
                off = t.next_flagged(lt.MARK, off)

    def start(self, now):
        self.started = True
        self.events.emit(now, ev.INFO, ev.EV_SERVICE, "node %s started: %d scopes, %d relationships"
                         % (self.config.server.name, len(self.tables), len(self.relationships)))
        for rel in self.relationships:
            rel.start(now, self.out)

    # ------------------------------------------------------------------
    # inputs

    def handle_dhcp(self, data, local_addr, now):
        """A datagram arrived on UDP 67 at an interface whose address is `local_addr` (4 bytes)."""
        try:
            self.server.handle(data, local_addr, now, self.out)
            for rel in self.relationships:
                rel.pump(now, self.out)  # binding updates leave with this turn, not at the next tick
        except Exception as e:  # a bug must cost one packet, never the service
            self.events.count("drop.internal-error")
            self.events.emit(now, ev.ERROR, ev.EV_SERVICE, "internal error on DHCP packet: %r" % (e,))

    def handle_dhcp_batch(self, datagrams, local_addr, now, backlog=False):
        """Several datagrams of one wake-up. DISCOVERs go last: a REQUEST
        completes a client's exchange, a DISCOVER only starts one. With a
        backlog (the socket held more than one wake-up takes), DISCOVERs
        beyond the number of other messages are dropped and counted
        (drop.overload): new exchanges start only as fast as others finish,
        and clients retransmit, instead of the server collapsing under
        OFFERs whose REQUESTs it then has no time for."""
        later = None
        others = 0
        for data in datagrams:
            # option 53 is the first option in practice (offset 240); a packet
            # laid out otherwise just keeps its place
            if len(data) > 242 and data[240] == 53 and data[242] == 1:
                if later is None:
                    later = []
                later.append(data)
            else:
                others += 1
                self.handle_dhcp(data, local_addr, now)
        if later:
            quota = len(later)
            if backlog:
                quota = others if others > OVERLOAD_MIN_DISCOVERS else OVERLOAD_MIN_DISCOVERS
                if quota < len(later):
                    self.events.count("drop.overload", len(later) - quota)
            for i in range(min(quota, len(later))):
                self.handle_dhcp(later[i], local_addr, now)

    def peer_connected(self, conn, peer_ip, outgoing, now):
        """A TCP connection to or from a failover partner is up."""
        rel = self._rel_for_ip(peer_ip)
        if rel is None:
            self.events.count("peer.unknown-address")
            self.out.close(conn)
            return
        self._conns[conn] = rel
        rel.connected(conn, outgoing, now, self.out)

    def peer_data(self, conn, data, now):
        rel = self._conns.get(conn)
        if rel is None:
            self.out.close(conn)
            return
        try:
            rel.data(conn, data, now, self.out)
        except Exception as e:
            self.events.count("peer.internal-error")
            self.events.emit(now, ev.ERROR, ev.EV_SERVICE, "internal error on failover data: %r" % (e,))
            self.out.close(conn)

    def peer_closed(self, conn, now):
        rel = self._conns.pop(conn, None)
        if rel is not None:
            rel.closed(conn, now, self.out)

    def tick(self, now):
        """Time passed: expire leases, run failover timers. Returns the next deadline (core time)."""
        self.server.expire(now, self.out)
        nxt = now + 1
        for rel in self.relationships:
            d = rel.tick(now, self.out)
            if d is not None and d < nxt:
                nxt = d
        return nxt

    def _rel_for_ip(self, ip):
        for rel in self.relationships:
            if rel.partner_address == ip:
                return rel
        return None

    def relationship(self, name):
        for rel in self.relationships:
            if rel.name == name:
                return rel
        return None
