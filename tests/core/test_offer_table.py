"""The held-offer table at its cap (dhcp.server OFFER_CAP): a DISCOVER that
finds it full drops expired offers first, else one held offer, and the
server skips the scan for expired ones until the earliest end has passed.
CPython and MicroPython."""

from dhcpfo.dhcp import server as srv
from srvkit import Kit, config_dict, mac

CAP = srv.OFFER_CAP


def _full_kit():
    cfg = config_dict(first="198.18.0.10", last="198.18.3.250")  # more addresses than the cap
    cfg["scopes"] = cfg["scopes"][:1]  # one /22 (the kit's relayed /24 would overlap it)
    cfg["scopes"][0]["mask"] = 22
    k = Kit(cfg)
    for n in range(CAP):
        k.offer(mac(n), xid=n + 1)
    assert len(k.node.server._offers) == CAP
    return k


def test_full_table_before_any_offer_ends_drops_one_and_keeps_the_rest():
    k = _full_kit()
    s = k.node.server
    k.tick(10)  # offers held 60 s: none has ended
    assert s._first_until is not None and s._first_until > k.now
    k.offer(mac(CAP), xid=CAP + 1)
    assert len(s._offers) == CAP  # one held offer made room for the new one
    assert k.count("tx.offer") == CAP + 1


def test_full_table_after_the_offers_ended_prunes_them_all():
    k = _full_kit()
    s = k.node.server
    k.now += 61  # every offer has ended (no tick: the DISCOVER itself prunes)
    k.offer(mac(CAP), xid=CAP + 1)
    assert len(s._offers) == 1  # only the new client's offer is held
    assert s._first_until == k.now + 60  # the next scan waits for that offer's end


def test_bound_is_kept_when_offers_are_taken_back_in_between():
    k = _full_kit()
    s = k.node.server
    first = s._first_until
    k.node.server._offers = {}  # what a re-scoping does (dhcpfo/rescope.py)
    s._offered = {}
    k.offer(mac(CAP + 5), xid=9)
    assert s._first_until == first  # still a lower bound of every held offer's end
    k.now += 61
    for n in range(CAP):
        k.offer(mac(1000 + n), xid=1000 + n)
    assert len(s._offers) <= CAP
