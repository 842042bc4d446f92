"""Management replies a board can afford: leases and events in pages, and an
events ring bounded in bytes as well as in count."""
from dhcpfo import events as ev
from dhcpfo.mgmt.commands import MAX_PAGE, Commands
from srvkit import Kit, mac


def _leased(n):
    k = Kit()
    for i in range(n):
        k.dora(mac(i + 1), xid=i + 1)
    return k


def test_leases_come_in_pages_that_resume_where_the_last_stopped():
    k = _leased(20)
    cmds = Commands(k.node)
    seen = []
    off = 0
    pages = 0
    while off is not None:
        r = cmds.handle({"cmd": "get-leases", "scope": "198.18.0.0", "offset": off, "limit": 7}, k.now)
        assert r["ok"] and len(r["leases"]) <= 7
        seen += [row["address"] for row in r["leases"]]
        off = r["next"]
        pages += 1
    assert pages == 3 and len(seen) == 20 and len(set(seen)) == 20
    r = cmds.handle({"cmd": "get-leases", "scope": "198.18.0.0", "limit": 1000}, k.now)
    assert len(r["leases"]) == MAX_PAGE and r["next"] is not None  # capped per reply
    r = Commands(k.node, max_page=1000).handle({"cmd": "get-leases", "scope": "198.18.0.0", "limit": 1000}, k.now)
    assert len(r["leases"]) == 20 and r["next"] is None
    for bad in ({"limit": 0}, {"offset": -1}, {"offset": "3"}):
        req = {"cmd": "get-leases", "scope": "198.18.0.0"}
        req.update(bad)
        assert cmds.handle(req, k.now)["ok"] is False


def test_events_are_paged_newest_first():
    k = Kit()
    cmds = Commands(k.node)
    for i in range(30):
        k.node.events.emit(k.now, ev.WARN, ev.EV_POOL_LOW, "event %d" % i)
    r = cmds.handle({"cmd": "get-events", "level": "warning", "limit": 10, "offset": 5}, k.now)
    assert [e["text"] for e in r["events"]] == ["event %d" % i for i in range(24, 14, -1)]


def test_events_ring_is_bounded_in_bytes_and_count():
    e = ev.Events(capacity=8, max_bytes=600)
    for i in range(50):
        e.emit(i, ev.INFO, ev.EV_RELEASE, "x" * 100)
    assert e.bytes <= 600 and len(e.recent(100)) == 600 // (100 + ev.EVENT_OVERHEAD)
    assert e.total == 50 and e.dropped == 50 - len(e.recent(100))
    assert e.recent(1)[0][0] == 49  # the newest survives
    for i in range(20):
        e.emit(i, ev.INFO, ev.EV_RELEASE, "y")
    assert len(e.recent(100)) == 8  # count bound
    e.emit(0, ev.INFO, ev.EV_RELEASE, "z" * 10000)  # one huge text cannot take the ring
    assert e.bytes <= 600 and len(e.recent(1)[0][3]) == 600 // 4


def test_counter_names_are_made_once():
    e = ev.Events()
    for _ in range(3):
        e.count_as("rx.", "discover")
    assert e.get("rx.discover") == 3
    assert e._names["rx."]["discover"] is e._names["rx."]["discover"]
