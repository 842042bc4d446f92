"""Who answers a REQUEST with ciaddr in NORMAL (issue 8 item 6).

Load balance: any server, for any client (draft-12 §5.5, §9.8.2).
Hot standby: the active server; the standby serves nothing in NORMAL, so a
broadcast REBINDING (ciaddr set, broadcast flag clear: in the packet it
looks like a unicast RENEWING) leaves it silent and no updates duel."""

from dhcpfo.failover import hashing
from dhcpfo.failover import states as S
from dhcpfo.wire import dhcp as wire
from pairlink import Pair, client_packet, dora


def _normal(mode):
    p = Pair(mode=mode)
    p.connect()
    p.tick(3)
    assert p.state(p.a) == S.NORMAL and p.state(p.b) == S.NORMAL
    return p


def _rebinding(mac, addr, xid=21):
    pkt = client_packet(mac, wire.REQUEST, xid)
    pkt.ciaddr = addr  # no server id, no requested address, broadcast flag clear
    return pkt


def _rejects(node):
    return sum(v for k, v in node.events.counters.items() if k.startswith("peer.bndupd-reject."))


def test_hot_standby_standby_ignores_rebinding_in_normal():
    p = _normal("hot-standby")
    mac = b"\x02\x00\x00\x00\x06\x01"
    side, ack = dora(p, mac)
    assert side is p.a
    ra, rb = p.broadcast(_rebinding(mac, ack.yiaddr))
    assert [r.msg_type for r in ra] == [wire.ACK]
    assert rb == []  # the standby stays silent
    p.tick(3)
    assert _rejects(p.a.node) == 0 and _rejects(p.b.node) == 0


def test_hot_standby_standby_ignores_late_discovers_in_normal():
    p = _normal("hot-standby")
    mac = b"\x02\x00\x00\x00\x06\x02"
    rb = p.dhcp(p.b, client_packet(mac, wire.DISCOVER, 5, secs=30))
    assert rb == []


def test_hot_standby_standby_answers_rebinding_once_the_active_is_gone():
    p = _normal("hot-standby")
    mac = b"\x02\x00\x00\x00\x06\x03"
    side, ack = dora(p, mac)
    p.tick(2)
    p.cut()
    assert p.state(p.b) == S.COMM_INTERRUPTED
    rb = p.dhcp(p.b, _rebinding(mac, ack.yiaddr))
    assert [r.msg_type for r in rb] == [wire.ACK]


def test_load_balance_both_answer_rebinding_as_the_draft_says():
    p = _normal("load-balance")
    hba = hashing.hba_for_percent(50)
    mac = None
    for i in range(256):
        m = bytes([2, 0, 0, 0, 7, i])
        if hashing.in_buckets(hba, hashing.client_hash(m)):
            mac = m
            break
    side, ack = dora(p, mac)
    assert side is p.a
    p.tick(2)
    pkt = _rebinding(mac, ack.yiaddr)
    pkt.flags = 0x8000  # even with the broadcast flag set
    rb = p.dhcp(p.b, pkt)  # the secondary, whose hash buckets do not hold this client
    assert [r.msg_type for r in rb] == [wire.ACK]
