"""A BNDACK whose address is not the in-flight update's is not its answer.

ISC dhcpd sends the BNDACKs it still owed on a lost connection first thing on
the next connection, with the old xids (docs/interop.md). If one of those xids
matched an update in flight on the new link, taking it would mark the wrong
binding acknowledged; the address in the BNDACK (option 2) tells them apart.
"""
from dhcpfo.failover import states as S
from dhcpfo.lease import table as lt
from dhcpfo.wire import failover as fw
from pairlink import Pair, dora


def test_bndack_for_another_address_is_ignored_and_the_real_one_taken():
    p = Pair()
    p.connect()
    p.tick(3)
    assert p.state(p.a) == S.NORMAL and p.state(p.b) == S.NORMAL
    side, ack = dora(p, b"\x02\x00\x00\x00\x00\x31")
    assert ack is not None
    srv = side.node
    rel = srv.relationships[0]
    off = srv.scopes[0].offset_of(ack.yiaddr)
    t = srv.tables[0]
    # a renewal puts a new update in flight; hold the partner's answer back
    t.set_flags(off, t.flags(off) | lt.PENDING)
    rel.updates.enqueue(0, off)
    rel.pump(p.now, srv.out)
    held = len(p.wire)
    p.drain(side)
    assert len(p.wire) > held
    xid = [x for x, ent in rel.updates.inflight.items() if ent[0] == 0 and ent[1] == off][0]
    other = srv.scopes[0].addr_of((off + 1) % srv.scopes[0].size)
    stale = fw.encode(fw.make_bndack(xid, fw_time(p), other), None)
    srv.peer_data(side.conn, stale, p.now)
    p.drain(side)
    assert srv.events.get("peer.bndack-stale") == 1
    assert xid in rel.updates.inflight and t.flags(off) & lt.PENDING
    p.flow()  # the partner's real BNDACK
    assert xid not in rel.updates.inflight and not t.flags(off) & lt.PENDING


def fw_time(p):
    from dhcpfo.compat import to_unix
    return to_unix(p.now)
