"""The management commands that change failover relationships (mgmt/failover.py):
each change through the command table on a running pair, each refusal the
seed's cmdlet rules call for (nothing changed, nothing to persist), the
non-terminating errors, and a restart from what the driver would have
written (records + configuration document)."""

from dhcpfo import config
from dhcpfo.failover import states as S
from dhcpfo.lease import table as lt
from dhcpfo.mgmt.commands import Commands
from dhcpfo.node import Node
from pairlink import Pair

NET1 = "198.18.0.0"
NET2 = "198.18.1.0"
ADMIN_ONLY = ("add-failover", "remove-failover", "add-failover-scope", "remove-failover-scope", "set-failover")


def _normal(**kw):
    p = Pair(**kw)
    p.connect()
    p.tick(3)
    assert p.state(p.a) == S.NORMAL and p.state(p.b) == S.NORMAL
    return p


def _cmd(p, s, req, role="administrator"):
    ans = Commands(s.node).handle(req, p.now, role)
    p.drain(s)
    return ans


def _ok(p, s, req):
    ans = _cmd(p, s, req)
    assert ans["ok"], ans
    return ans


def _refused(p, s, req, words, role="administrator"):
    """A terminating error: ok false, an error naming `words`, nothing changed or persisted."""
    before = (s.doc, [r.status(p.now) for r in s.node.relationships])
    ans = Commands(s.node).handle(req, p.now, role)
    assert not ans["ok"] and words in ans["error"], (req, ans)
    assert s.node.out.config is None
    p.drain(s)
    assert (s.doc, [r.status(p.now) for r in s.node.relationships]) == before
    return ans["error"]


def _both(p, req):
    for s in (p.a, p.b):
        _ok(p, s, req)


def test_user_role_may_not_run_a_change_command():
    p = _normal()
    for name in ADMIN_ONLY:
        _refused(p, p.a, {"cmd": name, "name": "pair"}, "may only read", role="user")
    assert Commands(p.a.node).handle({"cmd": "get-failover"}, p.now, "user")["ok"]


def test_set_failover_mclt_reaches_the_partner_and_survives_a_restart():
    p = _normal(mclt=60)
    _refused(p, p.a, {"cmd": "set-failover", "name": "pair", "mclt": 0}, "mclt")
    _refused(p, p.a, {"cmd": "set-failover", "name": "nope", "mclt": 90}, "no failover relationship named nope")
    _refused(p, p.a, {"cmd": "set-failover", "name": "pair"}, "nothing to change")
    _refused(p, p.a, {"cmd": "set-failover", "name": "pair", "partner": "198.18.0.9"}, "cannot change partner")
    _both(p, {"cmd": "set-failover", "name": "pair", "mclt": 120})
    p.connect()
    p.tick(3)
    assert p.state(p.b) == S.NORMAL and p.b.node.relationships[0].mclt == 120
    p.restart(p.a)
    assert p.a.node.relationships[0].mclt == 120


def test_set_failover_parameter_sets_of_the_mode():
    p = _normal()
    # load balance: reserve percent and server role belong to hot standby (terminating)
    _refused(p, p.a, {"cmd": "set-failover", "name": "pair", "reserve_percent": 10}, "does not apply")
    _refused(p, p.a, {"cmd": "set-failover", "name": "pair", "server_role": "standby"}, "does not apply")
    _refused(p, p.a, {"cmd": "set-failover", "name": "pair", "load_balance_percent": 101}, "load_balance_percent")
    _both(p, {"cmd": "set-failover", "name": "pair", "mode": "hot-standby", "reserve_percent": 10})
    _refused(p, p.a, {"cmd": "set-failover", "name": "pair", "load_balance_percent": 60}, "does not apply")
    p.restart(p.a)
    st = p.a.node.relationships[0].status(p.now)
    assert st["mode"] == "hot-standby" and st["reserve_percent"] == 10


def test_set_failover_auto_state_transition_and_safe_period_rules():
    p = _normal()
    req = {"cmd": "set-failover", "name": "pair", "auto_state_transition": False, "safe_period": 60}
    _refused(p, p.b, req, "safe_period needs auto_state_transition true")
    # true without a period: the seed's default of one hour
    _ok(p, p.b, {"cmd": "set-failover", "name": "pair", "auto_state_transition": True})
    assert p.b.node.relationships[0].safe_period == 3600
    # a period alone turns it on with that period
    _ok(p, p.b, {"cmd": "set-failover", "name": "pair", "safe_period": 30})
    assert p.b.node.relationships[0].safe_period == 30 and p.up  # local only: the link stays
    p.restart(p.b)
    assert p.b.node.relationships[0].safe_period == 30
    _ok(p, p.b, {"cmd": "set-failover", "name": "pair", "auto_state_transition": False})
    assert not p.b.node.relationships[0].safe_period
    assert p.b.doc["failover"][0]["auto_state_switchover"] is None


def test_set_failover_partner_down_only_from_communication_interrupted():
    p = _normal()
    ans = _ok(p, p.a, {"cmd": "set-failover", "name": "pair", "partner_down": True})
    assert ans["errors"] and "communication-interrupted" in ans["errors"][0]  # non-terminating
    assert p.state(p.a) == S.NORMAL
    p.cut()
    assert p.state(p.a) == S.COMM_INTERRUPTED
    ans = _ok(p, p.a, {"cmd": "set-failover", "name": "pair", "partner_down": True})
    assert not ans["errors"] and p.state(p.a) == S.PARTNER_DOWN
    assert ans["relationship"]["state"] == S.name(S.PARTNER_DOWN)


def test_set_failover_shared_secret_warns_and_enable_auth_false_removes_it():
    p = _normal()
    _refused(p, p.a, {"cmd": "set-failover", "name": "pair", "shared_secret": "x", "enable_auth": False},
             "enable_auth false")
    ans = _ok(p, p.a, {"cmd": "set-failover", "name": "pair", "shared_secret": "s3cret"})
    assert "warning" in ans and ans["relationship"]["authentication"]
    ans = _ok(p, p.b, {"cmd": "set-failover", "name": "pair", "shared_secret": "s3cret", "force": True})
    assert "warning" not in ans
    p.connect()
    p.tick(3)
    assert p.state(p.a) == S.NORMAL and p.state(p.b) == S.NORMAL  # the new link is authenticated
    p.restart(p.a)
    assert p.a.node.relationships[0].channel.key == b"s3cret"
    _ok(p, p.a, {"cmd": "set-failover", "name": "pair", "enable_auth": False})
    assert p.a.node.relationships[0].channel.key is None
    assert p.a.doc["failover"][0]["shared_secret"] is None


def test_add_and_remove_failover_scope_with_non_terminating_errors():
    p = _normal(scopes=2)
    _refused(p, p.a, {"cmd": "add-failover-scope", "name": "nope", "scopes": [NET2]}, "no failover relationship")
    _refused(p, p.a, {"cmd": "add-failover-scope", "name": "pair", "scopes": ["198.18.1"]}, "not a scope id")
    # scopes that do not exist or are taken are non-terminating; the valid one joins
    for s in (p.a, p.b):
        ans = _ok(p, s, {"cmd": "add-failover-scope", "name": "pair", "scopes": [NET2, "198.18.9.0", NET1]})
        assert len(ans["errors"]) == 2 and NET2 in ans["relationship"]["scopes"]
    p.tick(3)
    sc2 = p.b.node.scopes.by_id(bytes([198, 18, 1, 0]))
    assert p.b.node.tables[sc2.index].count(lt.BACKUP) > 0  # the primary gave the secondary its share
    # removing the last scope is refused by the rules (terminating); an unknown one is not
    _refused(p, p.a, {"cmd": "remove-failover-scope", "name": "pair", "scopes": [NET1, NET2]}, "scope")
    p.cut()
    _refused(p, p.a, {"cmd": "remove-failover-scope", "name": "pair", "scopes": [NET2]}, "not normal")
    ans = _ok(p, p.a, {"cmd": "remove-failover-scope", "name": "pair", "scopes": [NET2, "198.18.9.0"],
                       "force": True})
    assert ans["errors"] == ["scope 198.18.9.0 does not exist on this server"]
    assert ans["relationship"]["scopes"] == [NET1]
    p.restart(p.a)
    assert [sc for sc in p.a.node.relationships[0].status(p.now)["scopes"]] == [NET1]


def _add_two(role):
    me, partner = ("198.18.0.2", "198.18.0.3") if role == "primary" else ("198.18.0.3", "198.18.0.2")
    return {"cmd": "add-failover", "name": "two", "partner": partner, "local_address": me, "role": role,
            "scopes": [NET2], "local_port": 648, "partner_port": 648, "reserve_percent": 7, "mclt": 90,
            "safe_period": 600, "shared_secret": "two-secret", "force": True}


def test_add_failover_rules_and_remove_failover():
    p = _normal(scopes=2)
    add = _add_two("primary")
    _refused(p, p.a, dict(add, name="pair"), "already exists")
    _refused(p, p.a, dict(add, name="x" * 127), "1..126")
    _refused(p, p.a, dict(add, partner="partner.example"), "partner")
    _refused(p, p.a, dict(add, scopes=[NET1]), "no usable scope")  # taken by "pair"
    _refused(p, p.a, dict(add, load_balance_percent=60), "does not apply")  # both parameter sets
    _refused(p, p.a, dict(add, auto_state_transition=False), "safe_period needs")
    _refused(p, p.a, dict(add, server_role="backup"), "active or standby")
    p.a.node.out.clear()
    ans = _ok(p, p.a, add)
    rel = ans["relationship"]
    assert rel["mode"] == "hot-standby" and rel["mclt"] == 90 and rel["reserve_percent"] == 7
    assert rel["auto_state_switchover"] == 600 and rel["authentication"] and rel["scopes"] == [NET2]
    _ok(p, p.b, _add_two("secondary"))
    p.restart(p.a)
    names = [r.name for r in p.a.node.relationships]
    assert names == ["pair", "two"]
    two = p.a.node.relationship("two")
    assert two.rc.mode == "hot-standby" and two.rc.partner_port == 648 and two.channel.key == b"two-secret"
    # remove: an unknown name and a relationship outside NORMAL are non-terminating errors
    ans = _ok(p, p.a, {"cmd": "remove-failover", "name": ["nope", "two"]})
    assert len(ans["errors"]) == 2 and ans["removed"] == []
    ans = _ok(p, p.a, {"cmd": "remove-failover", "name": ["nope", "two"], "force": True, "passthru": True})
    assert ans["removed"][0]["name"] == "two" and len(ans["errors"]) == 1
    p.restart(p.a)
    assert [r.name for r in p.a.node.relationships] == ["pair"]
    assert p.state(p.a) in (S.STARTUP, S.NORMAL, S.COMM_INTERRUPTED)


def test_the_32nd_relationship_is_refused():
    from dhcpfo_host import boardconf
    scopes = [{"id": "10.%d.0.0" % i, "mask": 24, "ranges": [{"start": "10.%d.0.10" % i, "end": "10.%d.0.12" % i}]}
              for i in range(32)]
    rels = [{"name": "r%d" % i, "role": "primary", "local": {"address": "198.18.0.2", "port": 700 + i},
             "partner": {"address": "198.18.0.3", "port": 700 + i}, "scopes": ["10.%d.0.0" % i]} for i in range(31)]
    doc = boardconf.compile_config({"server": {"name": "n", "server_id": "198.18.0.2"}, "scopes": scopes,
                                    "failover": rels})
    n = Node(config.load(doc), doc=doc)
    n.start(0)
    n.out.clear()
    ans = Commands(n).handle({"cmd": "add-failover", "name": "r31", "partner": "198.18.0.4",
                              "scopes": ["10.31.0.0"]}, 1)
    assert not ans["ok"] and "31" in ans["error"] and n.out.config is None
    assert len(n.relationships) == 31


def _ack_from(p, s, mac, xid):
    """A client served by server `s` alone (no partner hears it); its address."""
    from dhcpfo.wire import dhcp as wire
    from pairlink import client_packet
    offer = [r for r in p.dhcp(s, client_packet(mac, wire.DISCOVER, xid)) if r.msg_type == wire.OFFER][0]
    req = client_packet(mac, wire.REQUEST, xid, o50=offer.yiaddr, o54=offer.options[wire.OPT_SERVER_ID])
    acks = [r for r in p.dhcp(s, req) if r.msg_type == wire.ACK]
    assert acks, "no ACK from a server serving alone"
    return acks[0].yiaddr


def test_a_relationship_created_on_a_serving_node_keeps_its_leases():
    # regression: a relationship created live starts with no saved state and
    # resynchronises in RECOVER; it took the new partner's FREE over the
    # leases it had granted alone, which the partner then also refused
    p = _normal()
    p.cut()
    for s in (p.a, p.b):
        _ok(p, s, {"cmd": "remove-failover", "name": "pair", "force": True})
    macs = [bytes([2, 0, 0, 0, 7, i]) for i in range(4)]
    leased = [_ack_from(p, p.a, mac, 40 + i) for i, mac in enumerate(macs)]
    for i, s in enumerate((p.a, p.b)):
        me, partner = ("198.18.0.2", "198.18.0.3") if i == 0 else ("198.18.0.3", "198.18.0.2")
        _ok(p, s, {"cmd": "add-failover", "name": "pair", "partner": partner, "local_address": me,
                   "role": "primary" if i == 0 else "secondary", "scopes": [NET1], "mclt": 60})
    p.connect()
    p.tick(5)
    assert p.state(p.a) == S.NORMAL and p.state(p.b) == S.NORMAL
    for s in (p.a, p.b):
        t = s.node.tables[0]
        sc = s.node.scopes[0]
        for mac, addr in zip(macs, leased):
            off = sc.offset_of(addr)
            assert t.state(off) == lt.ACTIVE and t.hwaddr(off)[1] == mac, (s.addr, addr, t.state(off))
    p.restart(p.a)
    assert p.a.node.tables[0].state(p.a.node.scopes[0].offset_of(leased[0])) == lt.ACTIVE


def test_set_failover_server_role_swaps_who_serves_in_hot_standby():
    from dhcpfo.wire import dhcp as wire
    from pairlink import client_packet
    p = _normal(mode="hot-standby")
    roles = [p.a.node.relationships[0].rc.hot_standby_role, p.b.node.relationships[0].rc.hot_standby_role]
    assert roles == ["active", "standby"]
    _refused(p, p.a, {"cmd": "set-failover", "name": "pair", "load_balance_percent": 50}, "does not apply")
    _ok(p, p.a, {"cmd": "set-failover", "name": "pair", "server_role": "standby"})
    _ok(p, p.b, {"cmd": "set-failover", "name": "pair", "server_role": "active"})
    p.connect()
    p.tick(5)
    assert p.state(p.a) == S.NORMAL and p.state(p.b) == S.NORMAL
    ra, rb = p.broadcast(client_packet(b"\x02\x00\x00\x00\x09\x02", wire.DISCOVER, 6))
    assert rb and not ra  # the secondary is the active server now
    p.restart(p.a)
    assert p.a.node.relationships[0].rc.hot_standby_role == "standby"


def test_help_lists_every_command_and_every_change_is_administrators_only():
    p = Pair()
    table = Commands(p.a.node).handle({"cmd": "help"}, p.now)["commands"]
    for name in ("status", "get-leases", "get-scope-statistics", "get-failover", "set-failover-state",
                 "get-counters", "get-events") + ADMIN_ONLY:
        assert name in table, name
    for name in ADMIN_ONLY:
        r = Commands(p.a.node).handle({"cmd": name}, p.now, "reader")
        assert not r["ok"] and "may only read" in r["error"], (name, r)
