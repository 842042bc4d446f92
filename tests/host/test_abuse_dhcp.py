"""DHCP starvation defences (dhcp/server.py): per-client and per-relay rate
limits in fixed-size tables with counted drops, the pool-exhaustion alarm
(once per crossing, re-armed below), and REQUESTs for another server."""

import tracemalloc

from dhcpfo import events as ev
from dhcpfo.dhcp import server as srv
from dhcpfo.dhcp.server import DhcpServer
from dhcpfo.wire import dhcp as wire

from core.srvkit import LOCAL, OTHER_SERVER, RELAY, SERVER_ID, Kit, client, config_dict, ip, mac


def kit(**abuse):
    """A standalone node (scope 198.18.0.10-29 direct, 198.18.1.100-119 relayed)
    whose server runs with these abuse settings."""
    k = Kit(config_dict())
    n = k.node
    n.server = DhcpServer(n.scopes, n.tables, n.events, SERVER_ID, 60, 600, abuse)
    return k


def pool_events(k):
    return [e for e in k.node.events.recent(256, ev.INFO, ev.EV_POOL_LOW)]


def bind(k, n, giaddr=b"\0\0\0\0"):
    off = k.one(client(mac(n), wire.DISCOVER, xid=n, giaddr=giaddr), wire.OFFER)
    k.one(client(mac(n), wire.REQUEST, xid=n, giaddr=giaddr, req=off.yiaddr, sid=SERVER_ID), wire.ACK)
    return off.yiaddr


def test_settings_default_and_ignore_bad_values():
    assert srv.abuse_settings(None) == srv.ABUSE_DEFAULTS
    a = srv.abuse_settings({"client_rate": 5, "relay_rate": -1, "client_window": "10", "other": 1})
    assert a["client_rate"] == 5 and a["relay_rate"] == srv.ABUSE_DEFAULTS["relay_rate"]
    assert a["client_window"] == srv.ABUSE_DEFAULTS["client_window"] and "other" not in a


def test_default_limits_leave_a_normal_client_alone():
    k = kit()
    for n in range(1, 6):
        bind(k, n)
        k.one(client(mac(n), wire.REQUEST, xid=n, ciaddr=ip("198.18.0.%d" % (9 + n))), wire.ACK)
    assert k.node.events.get("drop.rate-client") == 0


def test_one_client_over_its_rate_is_dropped_and_counted():
    k = kit(client_rate=5, client_window=10)
    for _ in range(5):
        k.one(client(mac(1), wire.DISCOVER), wire.OFFER)
    k.silent(client(mac(1), wire.DISCOVER))
    k.silent(client(mac(1), wire.DISCOVER))
    assert k.node.events.get("drop.rate-client") == 2
    k.one(client(mac(2), wire.DISCOVER), wire.OFFER)  # another client is not affected
    k.now += 10  # the next window
    k.one(client(mac(1), wire.DISCOVER), wire.OFFER)


def test_client_id_is_the_client_key():
    """Changing chaddr under one client id does not escape the limit."""
    k = kit(client_rate=3, client_window=10)
    cid = b"\x00the-same-client"
    for n in range(3):
        k.one(client(mac(10 + n), wire.DISCOVER, cid=cid), wire.OFFER)
    k.silent(client(mac(20), wire.DISCOVER, cid=cid))
    assert k.node.events.get("drop.rate-client") == 1


def test_relay_over_its_rate_is_dropped_direct_clients_still_served():
    k = kit(relay_rate=8, relay_window=1)
    offers = sum(len(k.send(client(mac(100 + n), wire.DISCOVER, giaddr=RELAY))) for n in range(12))
    assert offers == 8 and k.node.events.get("drop.rate-relay") == 4
    k.one(client(mac(1), wire.DISCOVER), wire.OFFER)  # not through the relay
    k.now += 1
    k.one(client(mac(200), wire.DISCOVER, giaddr=RELAY), wire.OFFER)


def test_limit_zero_turns_it_off():
    k = kit(client_rate=0)
    for _ in range(100):
        k.one(client(mac(1), wire.DISCOVER), wire.OFFER)
    assert k.node.events.get("drop.rate-client") == 0


def test_state_is_a_fixed_table_whatever_the_number_of_clients():
    k = kit(client_rate=2, client_slots=64)
    s = k.node.server
    for n in range(300):  # warm up: tables, counters, offers at their cap
        k.send(client(mac(n), wire.DISCOVER, giaddr=RELAY if n & 1 else b"\0\0\0\0"))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for n in range(300, 5300):
            k.send(client(mac(n), wire.DISCOVER, giaddr=RELAY if n & 1 else b"\0\0\0\0"))
        grew = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert len(s._clients._t) == 9 * 64 and len(s._relays._t) == 9 * srv.ABUSE_DEFAULTS["relay_slots"]
    assert len(s._offers) <= srv.OFFER_CAP
    assert grew < 32 * 1024, grew


def test_flood_of_one_client_with_a_colliding_slot_does_not_limit_another():
    """Slots are shared by hash; a different sender takes a slot over, it
    never inherits the flooder's count."""
    t = srv.RateTable(1, 3, 10)  # one slot: everybody collides
    assert all(t.allow(b"flooder", 0) for _ in range(3)) and not t.allow(b"flooder", 0)
    assert t.allow(b"victim", 0)


def test_pool_alarm_once_per_crossing_and_rearmed_below():
    k = kit(pool_alarm_percent=90)  # 20 addresses: 18 in use is 90 %
    addrs = [bind(k, n) for n in range(1, 18)]
    assert pool_events(k) == []
    addrs.append(bind(k, 18))
    ev1 = pool_events(k)
    assert len(ev1) == 1 and ev1[0][1] == ev.WARN and "90%" in ev1[0][3]
    addrs.append(bind(k, 19))
    assert len(pool_events(k)) == 1  # still in the same band: no repeat
    addrs.append(bind(k, 20))
    full = pool_events(k)
    assert len(full) == 2 and full[0][1] == ev.ERROR and "exhausted" in full[0][3]
    for n in range(21, 25):  # clients turned away: counted, no more events
        k.silent(client(mac(n), wire.DISCOVER))
    assert k.node.events.get("drop.pool-exhausted") == 4 and len(pool_events(k)) == 2
    assert k.node.events.get("alarm.pool-exhausted") == 1 and k.node.events.get("alarm.pool-low") == 1
    # one release: below 100 %, re-armed for "exhausted" (still in the warning band)
    k.silent(client(mac(20), wire.RELEASE, ciaddr=addrs[-1], sid=SERVER_ID))
    bind(k, 30)
    assert len(pool_events(k)) == 3 and pool_events(k)[0][1] == ev.ERROR
    # below the threshold (17 of 20): both re-armed; back at 18 the warning comes again
    for n in (1, 2, 3):
        k.silent(client(mac(n), wire.RELEASE, ciaddr=addrs[n - 1], sid=SERVER_ID))
    assert len(pool_events(k)) == 3
    bind(k, 31)
    assert len(pool_events(k)) == 4 and pool_events(k)[0][1] == ev.WARN
    bind(k, 32)
    assert len(pool_events(k)) == 4


def test_exhaustion_seen_by_a_client_alarms_even_below_the_count():
    """Addresses held by open offers are not ACTIVE, yet a new client gets none."""
    k = kit()
    for n in range(1, 21):
        k.one(client(mac(n), wire.DISCOVER), wire.OFFER)
    assert pool_events(k) == []
    k.silent(client(mac(99), wire.DISCOVER))
    e = pool_events(k)
    assert len(e) == 1 and e[0][1] == ev.ERROR
    k.silent(client(mac(98), wire.DISCOVER))
    assert len(pool_events(k)) == 1


def test_request_for_another_server_is_ignored_and_frees_the_offer():
    k = kit()
    off = k.one(client(mac(1), wire.DISCOVER), wire.OFFER)
    k.silent(client(mac(1), wire.REQUEST, req=off.yiaddr, sid=OTHER_SERVER))
    assert k.records == []  # no binding written
    assert k.node.events.get("rx.request-other-server") == 1
    assert k.node.events.get("tx.nak") == 0
    # the client chose the other server: our offer is withdrawn, another client may get the address
    assert not k.node.server.is_offered(0, k.node.scopes[0].offset_of(off.yiaddr), k.now)


def test_request_with_a_malformed_server_id_is_ignored():
    k = kit()
    off = k.one(client(mac(1), wire.DISCOVER), wire.OFFER)
    k.silent(client(mac(1), wire.REQUEST, req=off.yiaddr, sid=SERVER_ID + b"\x00"))
    k.silent(client(mac(1), wire.REQUEST, req=off.yiaddr, sid=b""))
    assert k.records == [] and k.node.events.get("rx.request-other-server") == 2


def test_reserved_address_held_by_another_is_not_a_pool_alarm():
    cfg = config_dict()
    cfg["scopes"][0]["reservations"] = [{"address": "198.18.0.20", "mac": "02:00:5e:10:00:07"}]
    k = Kit(cfg)
    sc = k.node.scopes[0]
    off = sc.offset_of(ip("198.18.0.20"))
    # bound to another client (say, by a partner before the reservation existed)
    k.node.tables[0].set(off, 2, 0, mac(8), None, k.now + 600, 0, k.now)
    k.silent(client(mac(7), wire.DISCOVER))
    assert k.node.events.get("drop.reserved-in-use") == 1
    assert k.node.events.get("drop.pool-exhausted") == 0 and pool_events(k) == []


def test_abuse_settings_are_validated_and_reach_the_server():
    """server.abuse is checked on the host, carried in the compiled form, and used."""
    import copy
    from dhcpfo.config import ConfigError
    from dhcpfo.node import Node
    from dhcpfo_host import boardconf
    base = {"server": {"name": "n", "server_id": "198.18.0.1"},
            "scopes": [{"id": "198.18.0.0", "mask": 24, "ranges": [{"start": "198.18.0.10", "end": "198.18.0.20"}]}]}
    d = copy.deepcopy(base)
    d["server"]["abuse"] = {"client_rate": 5, "pool_alarm_percent": 90}
    compiled = boardconf.compile_config(d)
    assert compiled["server"]["abuse"] == {"client_rate": 5, "pool_alarm_percent": 90}
    cfg = boardconf.load(compiled)
    assert cfg.server.abuse["client_rate"] == 5
    Node(cfg)  # the server takes them
    for bad, msg in (({"client_rat": 5}, "did you mean client_rate"), ({"pool_alarm_percent": 0}, "1..100"),
                     ({"client_rate": -1}, "0..1000000")):
        d = copy.deepcopy(base)
        d["server"]["abuse"] = bad
        try:
            boardconf.load(d)
        except ConfigError as e:
            assert any(msg in x for x in e.errors), e.errors
        else:
            raise AssertionError("accepted %r" % (bad,))
