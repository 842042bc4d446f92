# node.py - the engine: every input in, actions out.
#
# The driver calls one of the handle_* / peer_* / tick / command methods with
# `now`, then drains `node.out`: first it appends `out.records` to the lease
# log and flushes once, then it sends what the turn produced. That ordering
# is what makes "nothing acknowledged before it is durable" hold without the
# core ever touching a file.

import struct

from dhcpfo import events as ev
from dhcpfo import ondemand
from dhcpfo.compat import crc32
from dhcpfo.dhcp.scope import Scopes
from dhcpfo.dhcp.server import DhcpServer
from dhcpfo.lease import log as ll
from dhcpfo.lease import table as lt
from dhcpfo.lease.table import LeaseTable
from dhcpfo.timebase import TimeBase


OVERLOAD_MIN_DISCOVERS = 8  # DISCOVERs served per wake-up even under a backlog
SLOTS = 31  # relationship slots (META keys 0..30 state, +64 horizons)
SLOT_OWNER = 128  # META key 128 + slot: crc32 of the name of the relationship that owns the slot (0: free)
AMNESIA = 64
CLOCK_NOTE = 255  # META key: the local clock and its wall offset (timebase.py)


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
        # a changed configuration document: the driver writes it atomically
        # (temporary file, flush, rename) after the records of this turn
        self.config = None

    def send_dhcp(self, payload, dst, port, delay_ms=0):
        self.dhcp.append((payload, dst, port, delay_ms))

    def send_peer(self, conn, payload):
        self.peer.append((conn, payload))

    def connect(self, name, host, port):
        self.connects.append((name, host, port))

    def close(self, conn):
        self.closes.append(conn)

    def empty(self):
        return not (self.records or self.lazy or self.dhcp or self.peer or self.connects or self.closes
                    or self.config is not None)

    def clear(self):
        self.records = []
        self.lazy = []
        self.dhcp = []
        self.peer = []
        self.connects = []
        self.closes = []
        self.config = None



def _timeboot(fn, *args):
    """timeboot.<fn>(*args): boot-time and NTP code, droppable (ondemand.py)."""
    from dhcpfo import timeboot

    return getattr(timeboot, fn)(*args)

def _relchange(fn, *args):
    """relchange.<fn>(*args): live relationship changes, droppable (ondemand.py)."""
    from dhcpfo import relchange

    return getattr(relchange, fn)(*args)


class Node:
    """A dhcpfo node: scopes, lease tables, DHCP service and failover relationships."""

    def __init__(self, config, events=None, relationship_factory=None, doc=None, doc_source=None):
        self.config = config
        # the configuration document, needed for live reconfiguration: held
        # (doc), or fetched when a change needs it (doc_source(): a board
        # reads its file back rather than keep the document on its heap)
        self.doc = doc
        self._doc_source = doc_source
        self.events = events if events is not None else ev.Events()
        self.out = Outbox()
        self.scopes = Scopes(config)
        self.tables = [LeaseTable(sc.size) for sc in self.scopes]
        srv = config.server
        self.server = DhcpServer(
            self.scopes, self.tables, self.events, srv.server_id, srv.offer_hold, srv.decline_hold,
            srv.abuse  # server "abuse" object (docs/config.md), defaults when absent
        )
        self.relationships = []
        self._conns = {}  # conn -> relationship
        self._factory = relationship_factory
        self._metas = {}  # META records replayed: key -> payload
        self.time = TimeBase()  # local <-> wall time; `now` is always local (docs/time.md)
        for i, rc in enumerate(config.failover):
            self._add(rc, i)
        self.started = False
        self._by_index = None

    def _add(self, rc, slot):
        if self._factory is None:
            from dhcpfo.failover.peer import Relationship
            self._factory = Relationship
        scopes = [self.scopes.by_id(sid) for sid in rc.scopes]
        scopes = [sc for sc in scopes if sc is not None]
        rel = self._factory(rc, scopes, self.tables, self.events, self.config.server, self._log_meta, slot,
                            self.server.is_offered)
        rel.time = self.time
        if hasattr(rel, "channel"):
            rel.channel.time = self.time
        self.relationships.append(rel)
        for sc in scopes:
            self.server.authorities[sc.index] = rel.authority
        if hasattr(rel, "cfgd") and (self.doc is not None or self._doc_source is not None):
            rel.cfgd = [self._doc, None, None]  # failover/cfgdigest.py
        return rel

    # ------------------------------------------------------------------
    # recovery

    def tables_by_scope(self):
        """Lease tables keyed by the scope id used in log records: one dict,
        kept current when scopes change (the lease store holds it)."""
        if self._by_index is None:
            self._by_index = dict((i, self.tables[i]) for i in range(len(self.tables)))
        return self._by_index

    def layout_bytes(self, config=None):
        """4 bytes naming the lease layout (each scope's id, prefix and ranges
        in scope order): the payload of the LAYOUT meta (lease/log.py)."""
        c = crc32(b"")
        for sc in (config or self.config).scopes:
            c = crc32(sc.id + bytes([sc.prefix]), c)
            for s, e in sorted(sc.ranges):
                c = crc32(s + e, c)
        return struct.pack("!I", c)

    def restore_meta(self, key, payload):
        """A META record replayed from the lease log (failover state, clock note)."""
        if key == CLOCK_NOTE:
            self.time.restore(payload)
            return
        self._metas[key] = bytes(payload)
        for rel in self.relationships:
            if rel.meta_key == key:
                rel.restore_meta(payload)
            elif rel.meta_key + 64 == key:
                from dhcpfo.failover import amnesia

                amnesia.restore(rel, payload)

    def storage_lost(self, now):
        """The lease store was found damaged: forget saved failover state so each
        relationship recovers everything from its partner before serving."""
        for rel in self.relationships:
            rel.saved = None
        self.events.emit(now, ev.ERROR, ev.EV_SERVICE, "lease store damaged: recovering from the partner")

    def _log_meta(self, key, payload):
        self.out.records.append(ll.encode_meta(key, payload))

    def after_restore(self):
        """Clear per-run marks left in restored records (updates in flight), and
        give each relationship the state records of its own slot."""
        owners = {}
        for slot in range(SLOTS):
            p = self._metas.get(SLOT_OWNER + slot)
            if p is not None:
                owners[struct.unpack("!I", p[:4])[0]] = slot
        if owners:
            # slots are owned by name (relationships created and deleted
            # live): each relationship takes its own slot's records, or none
            from dhcpfo.failover import meta
            used = [owners[k] for k in owners if k]  # 0: a freed slot
            for rel in self.relationships:
                slot = owners.get(_owner_id(rel.name))
                if slot == rel.meta_key:
                    continue  # restored from the right records already
                meta.forget(rel)
                if slot is None:
                    slot = _free_slot(used)
                    used.append(slot)
                    rel.meta_key = slot
                    continue
                rel.meta_key = slot
                for key in (slot, slot + AMNESIA):
                    if key in self._metas:
                        self.restore_meta(key, self._metas[key])
        self._metas = {}
        for t in self.tables:
            off = t.next_flagged(lt.MARK, 0)
            while off >= 0:
                t.clear_flag(off, lt.MARK)
                off = t.next_flagged(lt.MARK, off)

    def resume_time(self, wall_now=None):
        """After the log is restored: the local time the driver's clock starts
        at. `wall_now`: wall core time when the driver has a trusted clock
        (a host, an RTC, NTP), else None (a board without a real-time clock)."""
        return ondemand.call(_timeboot, "resume_time", self, wall_now)

    def set_wall(self, wall_now, now, source="ntp"):
        """Wall time learned while running (NTP): only the offset moves, never
        `now` or a stored time. A moved offset restarts the failover links,
        so each partner measures our clock afresh (failover/clockdiff.py)."""
        ondemand.call(_timeboot, "set_wall", self, wall_now, now, source)

    def _note_clock(self, now):
        self.out.lazy.append(ll.encode_meta(CLOCK_NOTE, self.time.note_payload(now)))

    def _restart_links(self, now, keep):
        for rel in self.relationships:
            if rel is keep or not hasattr(rel, "channel"):
                continue
            for lk in list(rel.channel.links):
                self.out.close(lk.conn)
                self.peer_closed(lk.conn, now)

    def _after_peer_input(self, rel, now):
        if self.time.moved:
            # wall time learned from this partner (failover/clockdiff.py):
            # the other partners measured our old wire time
            self.time.moved = False
            self._note_clock(now)
            self._restart_links(now, rel)

    def start(self, now):
        self.started = True
        self.out.records.append(ll.encode_meta(CLOCK_NOTE, self.time.note_payload(now)))
        self.events.emit(now, ev.INFO, ev.EV_SERVICE, "node %s started: %d scopes, %d relationships"
                         % (self.config.server.name, len(self.tables), len(self.relationships)))
        for rel in self.relationships:
            self._claim(rel)
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

    def peer_connected(self, conn, peer_ip, outgoing, now, port=None, nonce=None):
        """A TCP connection to or from a failover partner is up. `port`, when
        the driver knows it, is the partner's port we dialled (outgoing) or
        our port it arrived on: it tells apart relationships with one partner.
        nonce: fresh random bytes from the driver for this connection
        (wire.failover NONCE_LEN; binds a signed relationship's digests to it)."""
        rel = self._rel_for_ip(peer_ip, port, outgoing)
        if rel is None:
            self.events.count("peer.unknown-address")
            self.out.close(conn)
            return
        self._conns[conn] = rel
        rel.connected(conn, outgoing, now, self.out, nonce)
        self._after_peer_input(rel, now)

    def peer_data(self, conn, data, now):
        rel = self._conns.get(conn)
        if rel is None:
            self.out.close(conn)
            return
        try:
            rel.data(conn, data, now, self.out)
            self._after_peer_input(rel, now)
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
        if self.time.due(now):
            self._note_clock(now)
        nxt = now + 1
        for rel in self.relationships:
            d = rel.tick(now, self.out)
            if d is not None and d < nxt:
                nxt = d
        return nxt

    def _rel_for_ip(self, ip, port=None, outgoing=False):
        for rel in self.relationships:
            if rel.partner_address == ip:
                if port is None or port == (rel.rc.partner_port if outgoing else rel.rc.local_port):
                    return rel
        return None

    def partner_resolved(self, rel, addr):
        """The driver looked up rel's partner host name (the core never
        resolves): connections from and to `addr` are the partner's now.
        True when that changed the address."""
        if rel.partner_address == addr:
            return False
        rel.partner_address = addr
        return True

    def relationship(self, name):
        for rel in self.relationships:
            if rel.name == name:
                return rel
        return None

    # ------------------------------------------------------------------
    # live reconfiguration: relchange.py (loaded for the call, dropped after)

    def create_relationship(self, spec, now):
        return _relchange("create_relationship", self, spec, now)

    def delete_relationship(self, name, now, force=False):
        return _relchange("delete_relationship", self, name, now, force)

    def add_failover_scopes(self, name, scope_ids, now):
        return _relchange("add_failover_scopes", self, name, scope_ids, now)

    def remove_failover_scopes(self, name, scope_ids, now, force=False):
        return _relchange("remove_failover_scopes", self, name, scope_ids, now, force)

    def set_relationship(self, name, changes, now):
        return _relchange("set_relationship", self, name, changes, now)

    def _doc(self):
        if self.doc is None and self._doc_source is not None:
            try:
                return self._doc_source()  # kept once a change is made (self.doc)
            except (OSError, ValueError) as e:
                from dhcpfo.failover.reconfig import ReconfigError
                raise ReconfigError(["cannot read the configuration document: %s" % (e,)])
        if self.doc is None:
            from dhcpfo.failover.reconfig import ReconfigError
            raise ReconfigError(["this node was built without its configuration document"])
        return self.doc

    def _claim(self, rel):
        self._log_meta(SLOT_OWNER + rel.meta_key, struct.pack("!I", _owner_id(rel.name)) + bytes(16))

    def _standalone(self):
        from dhcpfo.dhcp.server import STANDALONE
        return STANDALONE


def _owner_id(name):
    return crc32(name.encode()) or 1


def _free_slot(used):
    for i in range(SLOTS):
        if i not in used:
            return i
    return -1
