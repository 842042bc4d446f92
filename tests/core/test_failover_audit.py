"""Configuration audit events (failover/audit.py): each live change made
through the management commands is logged with the seed's opcode and
wording, one ChangeFailoverConfig per changed parameter with old and new
value, never a shared secret's value."""

from dhcpfo import events as ev
from dhcpfo.failover import states as S
from dhcpfo.mgmt.commands import Commands
from pairlink import Pair

NET2 = "198.18.1.0"


def _audit(side):
    codes = (ev.EV_CREATE_FAILOVER, ev.EV_DELETE_FAILOVER, ev.EV_ADD_FAILOVER_SCOPE,
             ev.EV_REMOVE_FAILOVER_SCOPE, ev.EV_CHANGE_FAILOVER_CONFIG)
    return [(e[1], e[2], e[3]) for e in reversed(side.node.events.recent(200)) if e[2] in codes]


def _ok(p, s, req):
    ans = Commands(s.node).handle(req, p.now, "administrator")
    p.drain(s)
    assert ans["ok"], ans
    return ans


def test_every_change_is_audited_in_the_seeds_words():
    p = Pair(scopes=2)
    p.connect()
    p.tick(3)
    assert p.state(p.a) == S.NORMAL
    _ok(p, p.a, {"cmd": "set-failover", "name": "pair", "mclt": 120, "load_balance_percent": 70})
    got = _audit(p.a)
    assert all(level == ev.INFO and code == ev.EV_CHANGE_FAILOVER_CONFIG for level, code, _ in got)
    texts = [t for _, _, t in got]
    assert ("ChangeFailoverConfig: The failover configuration parameter MCLT for failover relationship pair "
            "with server 198.18.0.3 has been changed from 60 seconds to 120 seconds") in texts
    assert ("ChangeFailoverConfig: The failover configuration parameter Load Balance percentage for failover "
            "relationship pair with server 198.18.0.3 has been changed from 50 to 70 on this server") in texts
    assert len(texts) == 2

    _ok(p, p.a, {"cmd": "set-failover", "name": "pair", "shared_secret": "very-secret-1", "force": True})
    last = _audit(p.a)[-1][2]
    assert "Message authentication" in last and "very-secret-1" not in last and "from off to on" in last

    _ok(p, p.a, {"cmd": "add-failover-scope", "name": "pair", "scopes": [NET2]})
    assert _audit(p.a)[-1][1:] == (ev.EV_ADD_FAILOVER_SCOPE, "AddFailoverScope: Scope 198.18.1.0 has been added "
                                   "to the failover relationship pair with server 198.18.0.3")
    _ok(p, p.a, {"cmd": "remove-failover-scope", "name": "pair", "scopes": [NET2], "force": True})
    assert _audit(p.a)[-1][1:] == (ev.EV_REMOVE_FAILOVER_SCOPE, "RemoveFailoverScope: Scope 198.18.1.0 has been "
                                   "removed from the failover relationship pair with server 198.18.0.3")

    _ok(p, p.a, {"cmd": "add-failover", "name": "two", "partner": "198.18.0.3", "local_address": "198.18.0.2",
                 "role": "primary", "scopes": [NET2], "local_port": 648, "partner_port": 648,
                 "reserve_percent": 7, "mclt": 90, "safe_period": 600})
    code, text = _audit(p.a)[-1][1:]
    assert code == ev.EV_CREATE_FAILOVER
    assert text.startswith("CreateFailover: A failover relationship has been created between servers 198.18.0.2 "
                           "and 198.18.0.3 with the following configuration parameters: Name: two Mode: Hot Standby, "
                           "Maximum Client Lead Time: 90 seconds, Reserve Address percentage on standby server: 7%, "
                           "Auto state switchover interval 600 seconds")
    _ok(p, p.a, {"cmd": "remove-failover", "name": "two", "force": True})
    assert _audit(p.a)[-1][1:] == (ev.EV_DELETE_FAILOVER, "DeleteFailover: Failover relationship two between "
                                   "198.18.0.2 and 198.18.0.3 has been deleted")
    # the partner, where nothing was changed, logged no audit event
    assert _audit(p.b) == []
