"""The seed's read commands and the fields behind them: scope statistics
with -Failover (leases by the server that granted them, from the lease
record's BY_PARTNER bit), Get-DhcpServerv4Failover by name or scope with
non-terminating errors, TimeOutOfSync, wall times of events, a partner
given by host name and the 31-relationship limit."""

from dhcpfo import config
from dhcpfo import events as ev
from dhcpfo.compat import to_unix
from dhcpfo.lease import log as ll
from dhcpfo.lease import replay as lrp
from dhcpfo.lease import table as lt
from dhcpfo.mgmt.commands import Commands
from dhcpfo.node import Node
from dhcpfo.wire import dhcp as wire
from dhcpfo_host import boardconf
from pairlink import Pair, client_packet, dora

NET = "198.18.0.0"


def _normal():
    p = Pair()
    p.connect()
    p.tick(3)
    return p


def _stats(s, p, **kw):
    req = {"cmd": "get-scope-statistics"}
    req.update(kw)
    ans = Commands(s.node).handle(req, p.now)
    assert ans["ok"], ans
    return ans


# -- the lease record's BY_PARTNER bit ---------------------------------------------

def test_by_partner_bit_is_counted_logged_and_cleared_by_a_grant():
    t = lt.LeaseTable(8)
    mac = b"\x02\x00\x00\x00\x00\x01"
    t.set(3, lt.ACTIVE, 0, mac, None, 5000, 0, 100)
    assert not t.by_partner(3) and t.active_by_partner() == 0
    t.mark_by_partner(3, True)
    assert t.by_partner(3) and t.state(3) == lt.ACTIVE and t.get(3)[0] == lt.ACTIVE
    assert t.active_by_partner() == 1 and t.count(lt.ACTIVE) == 1
    assert t.next_in_state(lt.ACTIVE, 0) == 3
    seen = []
    t.expire(6000, seen.append)
    assert seen == [3]
    # the bit travels in the log record and comes back on replay
    recs = ll.encode_binding(0, 3, t, full=True)
    u = lt.LeaseTable(8)
    lrp.replay(recs, lambda sc, off, rec, extra: u.load_record(off, rec, extra), lambda k, v: None)
    assert u.by_partner(3) and u.state(3) == lt.ACTIVE and u.active_by_partner() == 1
    # a record written before the bit existed (bit clear) reads as this server's
    t.mark_by_partner(3, False)
    old = ll.encode_binding(0, 3, t, full=True)
    u.clear()
    lrp.replay(old, lambda sc, off, rec, extra: u.load_record(off, rec, extra), lambda k, v: None)
    assert not u.by_partner(3) and u.active_by_partner() == 0
    # our own grant or a state change clears it; the count follows
    t.mark_by_partner(3, True)
    t.set_state(3, lt.EXPIRED, 200)
    assert not t.by_partner(3) and t.active_by_partner() == 0 and t.count(lt.EXPIRED) == 1
    t.set(3, lt.ACTIVE, 0, mac, None, 5000, 0, 300)
    t.mark_by_partner(3, True)
    t.set(3, lt.ACTIVE, 0, mac, None, 6000, 0, 400)
    assert not t.by_partner(3) and t.active_by_partner() == 0
    t.reset(3)
    assert t.is_default(3)


# -- Get-DhcpServerv4ScopeStatistics -Failover -------------------------------------

SEED_FIELDS = ("ScopeId", "SuperscopeName", "AddressesFree", "AddressesInUse", "PendingOffers",
               "ReservedAddresses", "PercentageInUse", "AddressesFreeOnThisServer",
               "AddressesFreeOnPartnerServer", "AddressesInUseOnThisServer", "AddressesInUseOnPartnerServer")


def test_scope_statistics_split_leases_by_the_server_that_granted_them():
    p = _normal()
    granted = {"a": 0, "b": 0}
    for i in range(12):
        side, ack = dora(p, bytes([2, 0, 0, 0, 1, i]), xid=100 + i)
        assert ack is not None
        granted["a" if side is p.a else "b"] += 1
    p.tick(2)
    assert granted["a"] and granted["b"], granted  # load balance: both served some
    sa = _stats(p.a, p, failover=True)["scopes"][0]
    sb = _stats(p.b, p, failover=True)["scopes"][0]
    for k in SEED_FIELDS:
        assert k in sa, k
    assert sa["ScopeId"] == NET and sa["AddressesInUse"] == 12 and sb["AddressesInUse"] == 12
    assert sa["AddressesInUseOnThisServer"] == granted["a"] == sb["AddressesInUseOnPartnerServer"]
    assert sb["AddressesInUseOnThisServer"] == granted["b"] == sa["AddressesInUseOnPartnerServer"]
    assert sa["AddressesFreeOnThisServer"] == sb["AddressesFreeOnPartnerServer"]
    assert sa["AddressesFree"] == 50 - 12 and sa["PercentageInUse"] == 24.0
    # without the switch the failover members are 0 (seed)
    plain = _stats(p.a, p)["scopes"][0]
    assert plain["AddressesInUse"] == 12 and plain["AddressesInUseOnThisServer"] == 0
    assert plain["AddressesFreeOnPartnerServer"] == 0
    # a renewal by the other server moves the lease to it
    side, ack = dora(p, bytes([2, 0, 0, 0, 1, 0]), xid=300)
    p.tick(1)
    sa2 = _stats(p.a, p, failover=True)["scopes"][0]
    assert sa2["AddressesInUseOnThisServer"] + sa2["AddressesInUseOnPartnerServer"] == 12
    # the split survives a restart from the log (the bit is in the record)
    before = _stats(p.b, p, failover=True)["scopes"][0]
    p.restart(p.b)
    after = _stats(p.b, p, failover=True)["scopes"][0]
    assert after["AddressesInUseOnPartnerServer"] == before["AddressesInUseOnPartnerServer"]


def test_scope_statistics_pending_offers_reserved_and_unknown_scope():
    p = Pair(scope_extra={"reservations": [{"address": "198.18.0.20", "mac": "02:00:00:00:09:09"}]})
    p.connect()
    p.tick(3)
    ra, rb = p.broadcast(client_packet(b"\x02\x00\x00\x00\x07\x01", wire.DISCOVER, 9))
    offered_by_a = sum(1 for r in ra if r.msg_type == wire.OFFER)
    st = _stats(p.a, p, failover=True)
    row = st["scopes"][0]
    assert row["PendingOffers"] == offered_by_a and row["ReservedAddresses"] == 1
    assert row["AddressesInUse"] == 0 and st["errors"] == []
    # an unknown scope id is a non-terminating error next to the known one's row
    st = _stats(p.a, p, scope=[NET, "198.18.9.0"], failover=True)
    assert [r["ScopeId"] for r in st["scopes"]] == [NET]
    assert st["errors"] == ["scope 198.18.9.0 does not exist on this server"]
    bad = Commands(p.a.node).handle({"cmd": "get-scope-statistics", "failover": "yes"}, p.now)
    assert not bad["ok"] and "failover must be true or false" in bad["error"]


# -- Get-DhcpServerv4Failover [-Name] | -ScopeId -----------------------------------

def test_get_failover_unknown_name_is_non_terminating():
    p = _normal()
    c = Commands(p.a.node)
    ans = c.handle({"cmd": "get-failover", "name": ["nope", "pair"]}, p.now)
    assert ans["ok"] and [r["name"] for r in ans["relationships"]] == ["pair"]
    assert ans["errors"] == ["no failover relationship named nope"]
    ans = c.handle({"cmd": "get-failover", "scope": NET}, p.now)
    assert [r["name"] for r in ans["relationships"]] == ["pair"] and ans["errors"] == []
    ans = c.handle({"cmd": "get-failover", "scope": ["198.18.9.0"]}, p.now)
    assert ans["relationships"] == [] and ans["errors"] == ["scope 198.18.9.0 does not exist on this server"]
    ans = c.handle({"cmd": "get-failover"}, p.now)
    assert len(ans["relationships"]) == 1 and ans["errors"] == []
    st = ans["relationships"][0]
    assert st["time_out_of_sync"] is False and st["time_skew_max"] == 60 and st["partner_server"] == "198.18.0.3"
    assert not c.handle({"cmd": "get-failover", "name": "pair", "scope": NET}, p.now)["ok"]


def test_get_failover_scope_in_no_relationship():
    p = Pair(scopes=2)
    ans = Commands(p.a.node).handle({"cmd": "get-failover", "scope": "198.18.1.0"}, p.now)
    assert ans["ok"] and ans["errors"] == ["scope 198.18.1.0 is not part of any failover relationship"]


# -- TimeOutOfSync -------------------------------------------------------------------

def test_time_out_of_sync_event_has_the_seeds_words_and_get_failover_shows_it():
    p = Pair()
    p.up = True
    p.a.conn, p.b.conn = "a->b", "b<-a"
    p.a.node.peer_connected(p.a.conn, p.b.addr, True, p.now + 180)  # the primary's clock 3 min ahead
    p.drain(p.a)
    p.b.node.peer_connected(p.b.conn, p.a.addr, False, p.now)
    p.drain(p.b)
    p.flow()
    rows = Commands(p.b.node).handle({"cmd": "get-events", "level": "error"}, p.now)["events"]
    texts = [e["text"] for e in rows if e["code"] == ev.EV_TIME_OUT_OF_SYNC]
    assert texts, rows
    assert texts[0].startswith("The server detected that it is out of time synchronization with partner "
                               "198.18.0.2 for failover relationship pair. The time is out of sync by 3 minutes")
    st = Commands(p.b.node).handle({"cmd": "get-failover"}, p.now)["relationships"][0]
    assert st["time_out_of_sync"] is True and st["clock_difference"] >= 170


# -- wall time of events --------------------------------------------------------------

def test_events_carry_wall_time_when_the_node_knows_it():
    p = Pair()
    p.a.node.events.emit(p.now - 50, ev.WARN, ev.EV_SERVICE, "an event 50 s ago")
    p.a.node.time.offset = None  # a board without a clock, before NTP or a partner told it the time
    unknown = Commands(p.a.node).handle({"cmd": "get-events", "limit": 1}, p.now)["events"][0]
    assert unknown["wall_time"] is None and unknown["time"] == p.now - 50
    # the time base learned that wall time runs 7 s ahead of the node's time
    p.a.node.time.offset = 7
    row = Commands(p.a.node).handle({"cmd": "get-events", "limit": 1}, p.now)["events"][0]
    assert row["text"] == "an event 50 s ago" and row["wall_time"] == to_unix(p.now - 50 + 7)


# -- partner by host name; at most 31 relationships -----------------------------------

def _doc_with(nrels, nscopes):
    scopes = [{"id": "10.%d.0.0" % i, "mask": 24, "ranges": [{"start": "10.%d.0.10" % i, "end": "10.%d.0.20" % i}]}
              for i in range(nscopes)]
    rels = [{"name": "r%d" % i, "role": "primary", "local": {"address": "198.18.0.2", "port": 1000 + i},
             "partner": {"address": "198.18.0.3", "port": 2000 + i}, "scopes": ["10.%d.0.0" % i]}
            for i in range(nrels)]
    return boardconf.compile_config({"server": {"name": "many", "server_id": "198.18.0.2"}, "scopes": scopes,
                                     "failover": rels})


def test_the_32nd_relationship_is_refused_with_the_seeds_words():
    doc = _doc_with(31, 32)
    node = Node(config.load(doc), doc=doc)
    node.start(1000)
    node.out.clear()
    ans = Commands(node).handle({"cmd": "add-failover", "name": "r31", "partner": "198.18.0.3",
                                 "partner_port": 2031, "local_port": 1031, "scopes": ["10.31.0.0"]}, 1000)
    assert not ans["ok"]
    assert ans["error"] == ("The local server already has 31 (maximum allowed) failover relationships. "
                            "A server cannot have more than 31 failover relationships.")
    assert node.out.config is None and len(node.relationships) == 31


def test_partner_by_host_name_resolved_by_the_driver():
    doc = _doc_with(0, 2)
    node = Node(config.load(doc), doc=doc)
    node.start(1000)
    node.out.clear()
    c = Commands(node)
    base = {"cmd": "add-failover", "name": "byname", "partner": "dhcp2.example", "scopes": ["10.0.0.0"]}
    # the core never resolves: without the driver's answer the name is refused, saying why
    ans = c.handle(dict(base, resolve_error="OSError: -2"), 1000)
    assert not ans["ok"] and "dhcp2.example could not be resolved" in ans["error"] and "-2" in ans["error"]
    ans = c.handle(dict(base, partner="not a name!", resolved="198.18.0.3"), 1000)
    assert not ans["ok"] and "address or host name" in ans["error"]
    ans = c.handle(dict(base, resolved="198.18.0.3"), 1000)
    assert ans["ok"], ans
    st = ans["relationship"]
    assert st["partner"] == "198.18.0.3" and st["partner_server"] == "dhcp2.example"
    written = node.out.config
    assert written["failover"][0]["partner_host"] == "dhcp2.example"
    # a restart from the written document keeps the name
    again = Node(config.load(written), doc=written)
    assert again.relationships[0].rc.partner_host == "dhcp2.example"
