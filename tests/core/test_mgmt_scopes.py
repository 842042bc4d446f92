"""Scopes changed on a running node (mgmt/scopes.py over rescope.apply,
rescope.py): every command through the command table, every refusal
(nothing changed, nothing to persist), bindings kept by address when ranges
move, a restart from what the driver wrote (records through the real lease
store, and the configuration document), a crash between the two, and the
configuration digest a pair compares at connect (event 20267)."""

import os

from dhcpfo import config
from dhcpfo.failover import states as S
from dhcpfo.lease import table as lt
from dhcpfo.mgmt.commands import Commands
from dhcpfo.node import Node
from pairlink import Pair, dora
from runtime.store import LeaseStore

NET = "198.18.0.0"
NET2 = "198.18.1.0"
MAC = b"\x02\x00\x00\x00\x00\x01"


def _pair():
    p = Pair(scopes=2)
    p.connect()
    p.tick(3)
    assert p.state(p.a) == S.NORMAL
    return p


def _ok(p, s, req):
    ans = Commands(s.node).handle(req, p.now)
    assert ans["ok"], (req, ans)
    p.drain(s)
    return ans


def _refused(p, s, req, words, role="administrator"):
    """ok false, an error naming `words`, nothing changed or to persist."""
    before = (s.doc, [sc.config for sc in s.node.scopes], list(s.node.tables))
    ans = Commands(s.node).handle(req, p.now, role)
    assert not ans["ok"] and words in ans["error"], (req, ans)
    assert s.node.out.config is None and not s.node.out.records
    assert (s.doc, [sc.config for sc in s.node.scopes], list(s.node.tables)) == before
    return ans["error"]


def _cfg(p, s, sid=NET):
    return _ok(p, s, {"cmd": "get-scope-config", "scope": sid})["config"]


def _leased(p):
    side, ack = dora(p, MAC)
    assert ack is not None
    return side, ack.yiaddr


def _state_at(s, addr):
    sc = s.node.scopes.by_addr(addr)
    off = sc.offset_of(addr)
    return s.node.tables[sc.index].state(off) if off >= 0 else None


def _dir():
    d = "/tmp/dfo-scopes-%d" % (id(_dir) & 0xFFFFF)
    try:
        os.mkdir(d)
    except OSError:
        pass
    for f in ("snap", "snap.new", "log"):
        try:
            os.remove(d + "/" + f)
        except OSError:
            pass
    return d


def _restart_through_store(records, doc):
    """A node rebuilt as the driver would: `doc` as the file, `records`
    committed to a real lease store, then loaded with doc's layout."""
    d = _dir()
    st = LeaseStore(d)
    st.load({})
    for r in records:
        st.append(r)
    st.commit()
    st.close()
    node = Node(config.load(doc), doc=doc)
    st = LeaseStore(d)
    st.load(node.tables_by_scope(), node.restore_meta, node.layout_bytes())
    st.close()
    node.after_restore()
    return node


def test_options_reservations_exclusions_policies_apply_at_once():
    p = _pair()
    a = p.a
    _ok(p, a, {"cmd": "set-option", "scope": NET, "code": 6, "value": "c6120001"})
    assert a.node.scopes.by_id(bytes([198, 18, 0, 0])).options[6] == bytes([198, 18, 0, 1])
    _ok(p, a, {"cmd": "set-option", "level": "server", "code": 42, "value": "c6120002"})
    assert a.node.scopes[1].options[42] == bytes([198, 18, 0, 2])
    _ok(p, a, {"cmd": "add-exclusion", "scope": NET, "start": "198.18.0.10", "end": "198.18.0.12"})
    sc = a.node.scopes[0]
    assert sc.is_excluded(0) and sc.is_excluded(2) and not sc.is_excluded(3)
    _ok(p, a, {"cmd": "add-reservation", "scope": NET, "address": "198.18.0.20", "mac": "02:00:00:00:00:09",
               "name": "printer"})
    assert a.node.scopes[0].reservation_for(None, b"\x02\x00\x00\x00\x00\x09") == 10
    _ok(p, a, {"cmd": "set-scope", "scope": NET, "lease_time": 900, "name": "lab"})
    assert a.node.scopes[0].lease_time == 900 and a.node.scopes[0].name == "lab"
    pol = {"name": "phones", "order": 1, "enabled": True, "operator": "or", "vendor_class": [["eq", "706f6c79", True]],
           "user_class": [], "mac": [], "client_id": [], "options": [[66, "74667470"]], "ranges": []}
    _ok(p, a, {"cmd": "add-policy", "scope": NET, "policy": pol})
    assert [x.name for x in a.node.scopes[0].policies] == ["phones"]
    # all of it is in the document the driver writes, so a restart keeps it
    cfg = _cfg(p, a)
    assert cfg["lease_time"] == 900 and cfg["exclusions"] == [["198.18.0.10", "198.18.0.12"]]
    node = Node(config.load(a.doc), doc=a.doc)
    assert node.scopes[0].options[6] == bytes([198, 18, 0, 1]) and node.scopes[0].name == "lab"
    # and back out again
    _ok(p, a, {"cmd": "remove-policy", "scope": NET, "name": "phones"})
    _ok(p, a, {"cmd": "remove-reservation", "scope": NET, "address": "198.18.0.20"})
    _ok(p, a, {"cmd": "remove-exclusion", "scope": NET, "start": "198.18.0.10", "end": "198.18.0.12"})
    _ok(p, a, {"cmd": "remove-option", "scope": NET, "code": 6})
    _ok(p, a, {"cmd": "remove-option", "level": "server", "code": 42})
    assert 6 not in a.node.scopes[0].options and not a.node.scopes[0].policies
    # none of this moved an address: the link stayed up
    assert p.state(p.a) == S.NORMAL and a.node.relationships[0].channel.link is not None


def test_every_refusal_changes_nothing():
    p = _pair()
    a = p.a
    _leased(p)
    cfg = _cfg(p, a)
    _refused(p, a, {"cmd": "set-option", "scope": NET, "code": 6, "value": "c6"}, "set-option", role="user")
    _refused(p, a, {"cmd": "export-config"}, "may only read", role="user")
    _refused(p, a, {"cmd": "get-scope-config", "scope": "198.18.9.0"}, "does not exist")
    _refused(p, a, {"cmd": "get-scope-config", "scope": "nope"}, "scope id is required")
    _refused(p, a, {"cmd": "set-scope-config", "scope": NET, "config": dict(cfg, id=NET2)}, "cannot change")
    _refused(p, a, {"cmd": "set-scope-config", "scope": NET}, "config")
    _refused(p, a, {"cmd": "set-scope-config", "scope": NET, "config": dict(cfg, ranges=[["198.18.0.10", "198.18.1.5"]])},
             "not inside the subnet")
    _refused(p, a, {"cmd": "set-scope-config", "scope": NET, "config": dict(cfg, lease_time=5)}, "lease_time")
    _refused(p, a, {"cmd": "add-scope", "config": cfg}, "already exists")
    _refused(p, a, {"cmd": "add-scope", "config": dict(cfg, id="198.18.0.128", prefix=25, ranges=[["198.18.0.130", "198.18.0.140"]])}, "overlaps")
    _refused(p, a, {"cmd": "add-scope", "config": {"id": "198.18.7.0", "prefix": 24}}, "scopes[2].name: required")
    _refused(p, a, {"cmd": "remove-scope", "scope": NET}, "in failover relationship pair")
    _refused(p, a, {"cmd": "remove-scope", "scope": NET, "force": True}, "in failover relationship pair")
    _refused(p, a, {"cmd": "add-range", "scope": NET, "start": "198.18.0.10", "end": "198.18.0.59"}, "already")
    _refused(p, a, {"cmd": "add-range", "scope": NET, "start": "198.18.0.50", "end": "198.18.0.70"}, "overlaps")
    _refused(p, a, {"cmd": "add-range", "scope": NET, "start": "x"}, "IPv4 addresses are required")
    _refused(p, a, {"cmd": "remove-range", "scope": NET, "start": "198.18.0.1", "end": "198.18.0.2"}, "has no range")
    _refused(p, a, {"cmd": "remove-range", "scope": NET, "start": "198.18.0.10", "end": "198.18.0.59"},
             "at least one range")
    _refused(p, a, {"cmd": "set-scope-config", "scope": NET, "config": dict(cfg, ranges=[["198.18.0.60", "198.18.0.70"]])},
             "has an active lease and would be outside every range")
    _refused(p, a, {"cmd": "remove-exclusion", "scope": NET, "start": "198.18.0.1"}, "has no exclusion")
    _refused(p, a, {"cmd": "add-reservation", "scope": NET}, "address")
    _refused(p, a, {"cmd": "add-reservation", "scope": NET, "address": "198.18.0.30"}, "exactly one of mac and client_id")
    _refused(p, a, {"cmd": "remove-reservation", "scope": NET, "address": "198.18.0.30"}, "no reservation")
    _refused(p, a, {"cmd": "set-option", "code": 6, "value": "c6120001"}, "level")
    _refused(p, a, {"cmd": "set-option", "scope": NET, "code": 300, "value": "00"}, "code")
    _refused(p, a, {"cmd": "set-option", "scope": NET, "code": 6}, "value")
    _refused(p, a, {"cmd": "set-option", "scope": NET, "code": 6, "value": "zz"}, "hex")
    _refused(p, a, {"cmd": "remove-option", "scope": NET, "code": 6}, "not set")
    _refused(p, a, {"cmd": "add-policy", "scope": NET, "policy": {"name": "x"}}, "policies[0]")
    _refused(p, a, {"cmd": "remove-policy", "scope": NET, "name": "x"}, "no policy named x")
    _refused(p, a, {"cmd": "set-scope", "scope": NET, "ranges": []}, "not ranges")
    _refused(p, a, {"cmd": "delete-lease", "scope": NET, "address": "198.18.0.200"}, "no active lease")
    _refused(p, a, {"cmd": "import-config", "config": dict(a.doc, failover=[])}, "failover")
    srv = dict(a.doc["server"], mgmt_port=1234)
    _refused(p, a, {"cmd": "import-config", "config": dict(a.doc, server=srv)}, "server.mgmt_port")


def test_remove_scope_refused_with_active_leases_unless_forced_and_add_scope_back():
    p = _pair()
    a = p.a
    cfg2 = _cfg(p, a, NET2)
    # a lease in the scope outside the relationship (served alone)
    sc2 = a.node.scopes[1]
    t2 = a.node.tables[1]
    t2.set(3, lt.ACTIVE, 0, MAC, None, p.now + 600, 0, p.now)
    _refused(p, a, {"cmd": "remove-scope", "scope": NET2}, "1 active leases (force")
    ans = _ok(p, a, {"cmd": "remove-scope", "scope": NET2, "force": True})
    assert ans["scope"] == NET2 and len(a.node.scopes) == 1 and len(a.node.tables) == 1
    assert a.node.scopes.by_id(sc2.id) is None
    _ok(p, a, {"cmd": "add-scope", "config": cfg2})
    assert len(a.node.tables) == 2 and a.node.tables[1].count(lt.ACTIVE) == 0
    # the relationship's scope kept its bindings and index throughout
    assert a.node.relationships[0].scopes[0] is a.node.scopes[0]


def test_ranges_move_addresses_and_keep_every_binding_across_a_restart():
    p = _pair()
    side, addr = _leased(p)
    for s in (p.a, p.b):
        assert _state_at(s, addr) == lt.ACTIVE
    # a range below the existing one: every offset moves by 5 on both nodes
    for s in (p.a, p.b):
        ans = _ok(p, s, {"cmd": "add-range", "scope": NET, "start": "198.18.0.5", "end": "198.18.0.9"})
        assert ans["moved"] == [NET]
        assert _state_at(s, addr) == lt.ACTIVE and s.node.scopes[0].size == 55
    # the link was dropped (in-flight updates named old offsets): it comes back to NORMAL
    p.connect()
    p.tick(5)
    assert p.state(p.a) == S.NORMAL and p.state(p.b) == S.NORMAL
    for s in (p.a, p.b):
        node = _restart_through_store(s.records, s.doc)
        assert node.scopes[0].size == 55
        sc = node.scopes[0]
        assert node.tables[0].state(sc.offset_of(addr)) == lt.ACTIVE
        assert node.tables[0].count(lt.ACTIVE) == 1


def test_a_crash_before_the_configuration_write_reads_back_the_old_layout():
    p = _pair()
    side, addr = _leased(p)
    a = p.a
    old_doc = a.doc
    Commands(a.node).handle({"cmd": "add-range", "scope": NET, "start": "198.18.0.5", "end": "198.18.0.9"}, p.now)
    records = a.records + a.node.out.records  # committed; the configuration write never happened
    a.node.out.clear()
    node = _restart_through_store(records, old_doc)
    sc = node.scopes[0]
    assert sc.size == 50 and node.tables[0].state(sc.offset_of(addr)) == lt.ACTIVE
    assert node.tables[0].count(lt.ACTIVE) == 1


def test_delete_lease_releases_it_here_and_on_the_partner():
    p = _pair()
    side, addr = _leased(p)
    ans = _ok(p, p.a, {"cmd": "delete-lease", "scope": NET, "address": ".".join(str(x) for x in addr)})
    assert ans["address"] == ".".join(str(x) for x in addr)
    p.flow()
    p.tick(2)
    # released; once the partner has it, the address is free again (draft-12 §5.2)
    free = (lt.RELEASED, lt.FREE, lt.BACKUP)
    assert _state_at(p.a, addr) in free and _state_at(p.b, addr) in free
    assert p.a.node.tables[0].count(lt.ACTIVE) == 0 and p.b.node.tables[0].count(lt.ACTIVE) == 0


def test_export_then_import_the_same_and_a_changed_scope():
    p = _pair()
    a = p.a
    doc = _ok(p, a, {"cmd": "export-config"})["config"]
    doc["scopes"][1]["lease_time"] = 1200
    doc["server"]["options"] = [[15, "6c6162"]]
    _ok(p, a, {"cmd": "import-config", "config": doc})
    assert a.node.scopes[1].lease_time == 1200 and a.node.scopes[1].options[15] == b"lab"


def test_a_drifted_pair_is_flagged_at_connect_and_clears_when_equal():
    p = _pair()
    fo = lambda s: _ok(p, s, {"cmd": "get-failover"})["relationships"][0]
    assert fo(p.a)["config_drift"] is False and fo(p.b)["config_drift"] is False
    assert fo(p.a)["config_digest"] == fo(p.b)["config_digest"]
    # key and item order do not matter
    cfg = _cfg(p, p.b)
    cfg["ranges"] = list(reversed(cfg["ranges"]))
    _ok(p, p.b, {"cmd": "set-scope-config", "scope": NET, "config": dict(reversed(list(cfg.items())))})
    p.flow()
    assert fo(p.a)["config_drift"] is False
    # a scope option on one side only: flagged at the next connect, event 20267 on both
    _ok(p, p.a, {"cmd": "set-option", "scope": NET, "code": 6, "value": "c6120001"})
    p.flow()
    p.cut()
    p.connect()
    p.tick(2)
    for s in (p.a, p.b):
        assert fo(s)["config_drift"] is True
        assert any(e["code"] == 20267 for e in _ok(p, s, {"cmd": "get-events", "level": "warning"})["events"])
    # a scope outside the relationship does not count
    _ok(p, p.b, {"cmd": "set-option", "scope": NET, "code": 6, "value": "c6120001"})
    _ok(p, p.b, {"cmd": "set-scope", "scope": NET2, "lease_time": 999})
    p.flow()
    p.cut()
    p.connect()
    p.tick(2)
    assert fo(p.a)["config_drift"] is False and fo(p.b)["config_drift"] is False


def _states_sent(rel, now):
    """The STATE messages rel sends now, decoded."""
    from dhcpfo.node import Outbox
    from dhcpfo.wire import failover as fw
    out = Outbox()
    rel.send_state(now, out)
    dec = fw.StreamDecoder(None)
    msgs = []
    for conn, payload in out.peer:
        msgs.extend(dec.feed(payload))
    return [m for m in msgs if m.mtype == fw.STATE]


def test_the_digest_goes_only_to_a_dhcpfo_partner():
    from dhcpfo.wire import failover as fw
    p = _pair()
    rel = p.a.node.relationships[0]
    sent = _states_sent(rel, p.now)
    assert sent and sent[0].get_bytes(fw.OPT_VENDOR_OPTIONS)[0] == fw.CFG_DIGEST_TAG
    # the partner's CONNECTACK said ISC: STATE carries only what ISC parses
    rel.channel._learn_partner(fw.make_connectack(1, p.now, b"pair", vendor=b"isc-V4.4.3"))
    assert not rel.channel.partner_is_dhcpfo
    sent = _states_sent(rel, p.now)
    assert sent and sent[0].get_bytes(fw.OPT_VENDOR_OPTIONS) is None
