"""Failover events as the seed words them: 20252 for our own and the
partner's transitions with the server's address and the seed's levels,
CommUp (Information) / CommDown (Error) with the partner's address."""

from dhcpfo import events as ev
from dhcpfo.failover import states as S
from pairlink import Pair

A, B = "198.18.0.2", "198.18.0.3"


def _events(side, code):
    return [(e[1], e[3]) for e in reversed(side.node.events.recent(200, code=code))]


def _state_events(side):
    return _events(side, ev.EV_STATE_CHANGE)


def test_levels_and_texts_through_normal_cut_and_partner_down():
    p = Pair()
    p.connect()
    p.tick(3)
    assert p.state(p.a) == S.NORMAL
    own = [e for e in _state_events(p.a) if "server %s " % A in e[1]]
    assert own[0] == (ev.WARN, "The failover state of server %s for failover relationship pair changed to startup "
                               "(previous none)." % A)
    into_normal = [e for e in own if " to normal (" in e[1]]
    assert into_normal and all(level == ev.INFO for level, _ in into_normal)
    # the partner's transitions are logged too, with the partner's address
    theirs = [e for e in _state_events(p.a) if "server %s " % B in e[1]]
    assert any("to normal (told by the partner)." in t and level == ev.INFO for level, t in theirs)

    assert _events(p.a, ev.EV_COMM_UP) == [
        (ev.INFO, "Server has established contact with failover partner server %s for relationship pair." % B)]

    p.cut()
    p.tick(2)
    down = _events(p.a, ev.EV_COMM_DOWN)
    assert len(down) == 1 and down[0][0] == ev.ERROR
    assert down[0][1].startswith("Server has lost contact with failover partner server %s for relationship pair (" % B)
    left_normal = [e for e in _state_events(p.a) if "from normal to communications-interrupted" in e[1]]
    assert [level for level, _ in left_normal] == [ev.ERROR]  # leaving NORMAL is an Error

    p.a.node.relationships[0].admin("partner-down", p.now, p.a.node.out)
    p.drain(p.a)
    pd = [e for e in _state_events(p.a) if "to partner-down" in e[1]]
    assert [level for level, _ in pd] == [ev.ERROR]  # entering PARTNER-DOWN is an Error
    assert "from communications-interrupted to partner-down (administrator)." in pd[0][1]

    # a transition between two other states is a Warning
    p.connect()
    p.tick(2)
    others = [e for e in _state_events(p.a) if "server %s " % A in e[1] and "from partner-down to" in e[1]]
    assert others and all(level == ev.WARN for level, _ in others), others
