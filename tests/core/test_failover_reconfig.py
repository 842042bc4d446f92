"""Live reconfiguration of the failover engine (issue 8 item 2): each
change applied on a running Node, its refusal where the rules forbid it
(leaving nothing changed), and a restart from what was persisted (the
records and the configuration document the driver wrote)."""

from dhcpfo.dhcp.server import STANDALONE
from dhcpfo.failover import hashing
from dhcpfo.failover import states as S
from dhcpfo.failover.reconfig import ReconfigError
from dhcpfo.lease import table as lt
from dhcpfo.wire import dhcp as wire
from pairlink import Pair, client_packet, dora

NET2 = "198.18.1.0"


def _normal(**kw):
    p = Pair(**kw)
    p.connect()
    p.tick(3)
    assert p.state(p.a) == S.NORMAL and p.state(p.b) == S.NORMAL
    return p


def _both(p, method, *args):
    for s in (p.a, p.b):
        getattr(s.node, method)(*(args + (p.now,)))
        p.drain(s)


def _refused(p, s, method, *args, **kw):
    before = (s.node.doc, [r.status(p.now) for r in s.node.relationships], list(s.node.server.authorities))
    try:
        getattr(s.node, method)(*(args + (p.now,)), **kw)
    except ReconfigError as e:
        assert e.errors
        after = (s.node.doc, [r.status(p.now) for r in s.node.relationships], list(s.node.server.authorities))
        assert after == before and s.node.out.config is None  # nothing changed, nothing to persist
        return e
    raise AssertionError("%s was not refused" % method)


def _reconnect(p):
    p.cut()
    p.connect()
    p.tick(3)


def test_mclt_change_reaches_the_partner_and_survives_a_restart():
    p = _normal(mclt=60)
    p.a.node.set_relationship("pair", {"mclt": 120}, p.now)
    p.drain(p.a)
    assert p.a.node.relationships[0].mclt == 120
    assert not p.up  # the partner learns MCLT only from CONNECT: the link is re-established
    p.b.node.set_relationship("pair", {"mclt": 120}, p.now)
    p.drain(p.b)
    p.connect()
    p.tick(3)
    assert p.b.node.relationships[0].mclt == 120 and p.state(p.b) == S.NORMAL
    p.restart(p.a)
    assert p.a.node.relationships[0].mclt == 120
    assert p.a.doc["failover"][0]["mclt"] == 120


def test_load_balance_percent_change_rebalances_and_wrong_mode_setting_is_refused():
    p = _normal()
    _refused(p, p.a, "set_relationship", "pair", {"reserve_percent": 10})  # hot-standby only
    _refused(p, p.a, "set_relationship", "pair", {"load_balance_percent": 150})
    _refused(p, p.a, "set_relationship", "pair", {"partner": {"address": "198.18.0.9"}})
    p.a.node.set_relationship("pair", {"load_balance_percent": 80}, p.now)
    p.drain(p.a)
    p.b.node.set_relationship("pair", {"load_balance_percent": 20}, p.now)
    p.drain(p.b)
    p.connect()
    p.tick(3)
    assert hashing.primary_share(p.b.node.relationships[0].hba) * 100 // 256 in (79, 80)
    tb = p.b.node.tables[0]
    free, backup = tb.count(lt.FREE), tb.count(lt.BACKUP)
    assert backup * 100 // (free + backup) <= 25  # the secondary now owns about 20 %
    p.restart(p.a)
    assert p.a.node.relationships[0].status(p.now)["load_balance_percent"] == 80


def test_mode_change_to_hot_standby_makes_the_standby_silent():
    p = _normal()
    p.a.node.set_relationship("pair", {"mode": "hot-standby", "reserve_percent": 10}, p.now)
    p.drain(p.a)
    p.b.node.set_relationship("pair", {"mode": "hot-standby", "reserve_percent": 10}, p.now)
    p.drain(p.b)
    p.connect()
    p.tick(3)
    ra, rb = p.broadcast(client_packet(b"\x02\x00\x00\x00\x09\x01", wire.DISCOVER, 5))
    assert ra and not rb
    p.restart(p.b)
    assert p.b.node.relationships[0].hot_standby
    assert p.b.doc["failover"][0].get("load_balance_percent") is None


def test_safe_period_changes_without_disturbing_the_link():
    p = _normal()
    p.b.node.set_relationship("pair", {"auto_state_switchover": 30}, p.now)
    p.drain(p.b)
    assert p.up and p.b.node.relationships[0].safe_period == 30
    p.cut()
    p.tick(32)
    assert p.state(p.b) == S.PARTNER_DOWN
    p.restart(p.b)
    assert p.b.node.relationships[0].safe_period == 30


def test_shared_secret_on_both_sides_authenticates_the_new_link():
    p = _normal()
    _both(p, "set_relationship", "pair", {"shared_secret": "s3cret"})
    p.connect()
    p.tick(3)
    assert p.state(p.a) == S.NORMAL
    assert p.a.node.relationships[0].status(p.now)["authentication"]
    p.restart(p.a)
    assert p.a.node.relationships[0].channel.key == b"s3cret"
    p.a.node.set_relationship("pair", {"shared_secret": None}, p.now)
    assert p.a.node.relationships[0].channel.key is None


def test_add_and_remove_scopes_with_their_rules():
    p = _normal(scopes=2)
    sc2 = p.a.node.scopes.by_id(bytes([198, 18, 1, 0]))
    assert p.a.node.server.authorities[sc2.index] is STANDALONE
    _refused(p, p.a, "add_failover_scopes", "pair", ["198.18.9.0"])  # no such scope
    _refused(p, p.a, "add_failover_scopes", "pair", ["198.18.0.0"])  # already in it
    _refused(p, p.a, "remove_failover_scopes", "pair", ["198.18.0.0"])  # the last one
    _both(p, "add_failover_scopes", "pair", [NET2])
    p.tick(3)
    assert p.a.node.server.authorities[sc2.index] is p.a.node.relationships[0].authority
    assert p.b.node.tables[sc2.index].count(lt.BACKUP) >= 20  # the primary gave the secondary its share
    p.cut()
    _refused(p, p.a, "remove_failover_scopes", "pair", [NET2])  # not in NORMAL
    p.a.node.remove_failover_scopes("pair", [NET2], p.now, force=True)
    p.drain(p.a)
    assert p.a.node.server.authorities[sc2.index] is STANDALONE
    p.restart(p.a)
    assert p.a.node.server.authorities[sc2.index] is STANDALONE
    assert p.a.node.relationships[0].rc.scopes == [bytes([198, 18, 0, 0])]


def _spec(name, role, scope):
    me, partner = ("198.18.0.2", "198.18.0.3") if role == "primary" else ("198.18.0.3", "198.18.0.2")
    return {"name": name, "role": role, "local": {"address": me, "port": 648},
            "partner": {"address": partner, "port": 648}, "scopes": [scope], "mclt": 60}


def test_create_and_delete_relationships_and_restart_keeps_each_its_own_state():
    p = _normal(scopes=2)
    _refused(p, p.a, "create_relationship", _spec("pair", "primary", NET2))  # duplicate name
    _refused(p, p.a, "create_relationship", _spec("two", "primary", "198.18.0.0"))  # scope taken
    bad = _spec("two", "primary", NET2)
    bad["scopes"] = []
    _refused(p, p.a, "create_relationship", bad)  # needs a scope
    rel2 = p.a.node.create_relationship(_spec("two", "primary", NET2), p.now)
    p.drain(p.a)
    assert rel2.meta_key == 1 and len(p.a.node.relationships) == 2
    # delete the first: refused while not NORMAL unless forced
    p.cut()
    _refused(p, p.a, "delete_relationship", "pair")
    p.a.node.delete_relationship("pair", p.now, force=True)
    p.drain(p.a)
    assert [r.name for r in p.a.node.relationships] == ["two"]
    assert p.a.node.server.authorities[0] is STANDALONE
    p.tick(20)  # "two" leaves STARTUP on its own (no partner yet)
    state_two = p.a.node.relationships[0].state
    p.restart(p.a)
    rels = p.a.node.relationships
    assert [r.name for r in rels] == ["two"] and rels[0].meta_key == 1
    assert rels[0].saved == state_two  # its own slot's state, not the deleted relationship's
    # a new relationship on the freed slot starts fresh, not from the deleted one's records
    again = p.a.node.create_relationship(_spec("pair", "primary", "198.18.0.0"), p.now)
    p.drain(p.a)
    assert again.meta_key == 0
    p.restart(p.a)
    again = p.a.node.relationship("pair")
    assert again.saved is None or again.need_full


def test_at_most_31_relationships():
    from dhcpfo import config
    from dhcpfo.node import Node
    from dhcpfo_host import boardconf
    scopes = [{"id": "10.%d.0.0" % i, "mask": 24, "ranges": [{"start": "10.%d.0.10" % i, "end": "10.%d.0.20" % i}]}
              for i in range(32)]
    rels = [{"name": "r%d" % i, "role": "primary", "local": {"address": "198.18.0.2", "port": 700 + i},
             "partner": {"address": "198.18.0.3", "port": 700 + i}, "scopes": ["10.%d.0.0" % i]} for i in range(31)]
    doc = boardconf.compile_config({"server": {"name": "n", "server_id": "198.18.0.2"}, "scopes": scopes,
                                    "failover": rels})
    n = Node(config.load(doc), doc=doc)
    n.start(0)
    try:
        n.create_relationship({"name": "r31", "role": "primary", "local": {"address": "198.18.0.2", "port": 800},
                               "partner": {"address": "198.18.0.3", "port": 800}, "scopes": ["10.31.0.0"]}, 1)
    except ReconfigError as e:
        assert "31" in str(e)
    else:
        raise AssertionError("a 32nd relationship was accepted")
    assert len(n.relationships) == 31
