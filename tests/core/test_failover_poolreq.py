"""POOLREQ timing (issue 8 item 4): a secondary asks for addresses only
when it is really short, never on entering NORMAL before the primary's
BACKUP updates can have arrived."""

from dhcpfo.failover import hashing
from dhcpfo.failover import states as S
from dhcpfo.lease import table as lt
from pairlink import Pair, dora


def _secondary_macs(n):
    hba = hashing.hba_for_percent(50)
    out = []
    for i in range(4096):
        mac = bytes([2, 0, 0, 0, i >> 8, i & 0xFF])
        if not hashing.in_buckets(hba, hashing.client_hash(mac)):
            out.append(mac)
            if len(out) == n:
                return out
    raise ValueError("not enough macs")


def test_secondary_entering_normal_sends_no_poolreq():
    p = Pair()
    p.connect()
    p.tick(3)
    assert p.state(p.b) == S.NORMAL
    p.tick(200)  # several balance periods
    assert p.b.node.events.get("peer.poolreq-sent") == 0
    assert p.a.node.events.get("peer.poolresp") == 0
    assert 20 <= p.b.node.tables[0].count(lt.BACKUP) <= 30  # the primary's BACKUP updates arrived


def test_short_secondary_asks_once_then_backs_off_after_a_negative_answer():
    p = Pair()
    p.connect()
    p.tick(3)
    p.a.node.relationships[0].backup_share = 0  # this primary will give nothing away
    for mac in _secondary_macs(20):
        side, ack = dora(p, mac)
        assert side is p.b
    tb = p.b.node.tables[0]
    assert tb.count(lt.BACKUP) <= 6  # fewer than half its share of what is left
    p.tick(61)  # the next balance period
    assert p.b.node.events.get("peer.poolreq-sent") == 1
    assert p.b.node.events.get("peer.poolresp") == 1  # answered: nothing moved
    p.tick(300)
    assert p.b.node.events.get("peer.poolreq-sent") == 1  # backed off
    p.tick(400)
    assert p.b.node.events.get("peer.poolreq-sent") == 2  # asks again after the back-off



def test_fresh_large_pool_balances_without_overflowing_the_update_queue():
    # 3,000 addresses: the primary owes the secondary ~1,500 BACKUP
    # bindings, three times what the update queue holds. It moves them in
    # batches the queue takes (backpressure), each batch once the partner's
    # acknowledgements drained the last: no update overflows into a rescan.
    from dhcpfo.failover import updates
    p = Pair(first="198.18.0.10", last="198.18.11.193", mask=16)
    size = p.a.node.tables[0].size
    assert size > 2 * updates.QUEUE_MAX
    p.connect()
    for _ in range(60):
        p.tick(1)
        if p.b.node.tables[0].count(lt.BACKUP) >= size // 2 - size // 50:
            break
    assert p.state(p.a) == S.NORMAL and p.state(p.b) == S.NORMAL
    rel = p.a.node.relationships[0]
    assert p.b.node.tables[0].count(lt.BACKUP) >= size // 2 - size // 50
    assert rel.stats["queue_dropped"] == 0, rel.stats
    assert rel.stats["pool_moved"] >= size // 2 - size // 50
    assert rel.updates.room() == updates.QUEUE_MAX  # all sent and acknowledged
