"""Live reconfiguration on a pair of emulated boards (MicroPython's unix
port running firmware/main.py; topology: integration/pair.py), changed
only through the management port: a setting that reaches the partner, the
relationship deleted and created again without a reboot (MicroPython's
listeners and connectors follow), then a power cycle that boots from the
configuration the board rewrote on its flash, with the client's lease kept
and no address given twice."""

import json
import os

import pytest

from integration.conftest import require
from integration.emuboards import require_micropython
from integration.netns import Lab
from integration.pair import FO_ADDRS, REL, ROLES, SCOPE
from integration.test_board_pair import _board_pair

pytestmark = pytest.mark.netns

MCLT = 90


@pytest.fixture(scope="module")
def pair():
    require("ip", "dhclient", "busybox")
    require_micropython()
    with Lab() as lab:
        p = _board_pair(lab)
        for node in p.nodes.values():
            node.start()
        yield p
        for node in p.nodes.values():
            node.kill()


def _add(side):
    other = "b" if side == "a" else "a"
    return {"name": REL, "partner": FO_ADDRS[other], "local_address": FO_ADDRS[side], "role": ROLES[side],
            "scopes": [SCOPE], "mclt": MCLT, "load_balance_percent": 50, "shared_secret": "lab-pair-secret",
            "force": True}


def test_boards_change_live_and_boot_with_the_change(pair):
    p = pair
    p.wait_states({"a": "normal", "b": "normal"}, 180)
    lease = p.client("udhcpc", "a").acquire(60)
    offsets = dict((s, p.nodes[s].log_size()) for s in ("a", "b"))
    # a setting the partner learns from CONNECT: the link is re-established
    for side in ("a", "b"):
        p.nodes[side].call("set-failover", name=REL, mclt=MCLT, timeout=30)
    p.wait_states({"a": "normal", "b": "normal"}, 180)
    assert p.failover("a")["mclt"] == MCLT and p.failover("b")["mclt"] == MCLT
    # deleted and created again without a reboot
    assert p.a.call("remove-failover", name=REL, timeout=30)["removed"] == [REL]
    assert p.b.call("remove-failover", name=REL, force=True, timeout=30)["removed"] == [REL]
    for side in ("a", "b"):
        assert p.nodes[side].call("get-failover")["relationships"] == []
    for side in ("a", "b"):
        p.nodes[side].call("add-failover", timeout=30, **_add(side))
    p.wait_states({"a": "normal", "b": "normal"}, 180)
    for side in ("a", "b"):
        assert lease.ip in p.nodes[side].leases(SCOPE, "active"), side
    # power cycle: the board boots from the configuration it wrote
    p.a.kill()
    with open(os.path.join(p.a.flash, "config.json")) as f:
        rel = json.load(f)["failover"][0]
    assert rel["name"] == REL and rel["mclt"] == MCLT, p.a.console_text()[-3000:]
    assert not os.path.exists(os.path.join(p.a.flash, "config.json.new"))
    p.a.start()
    p.wait_states({"a": "normal", "b": "normal"}, 180)
    assert p.failover("a")["mclt"] == MCLT and p.failover("a")["authentication"]
    for side in ("a", "b"):
        assert lease.ip in p.nodes[side].leases(SCOPE, "active"), side
        text = p.nodes[side].console_text(offsets[side])
        assert "FAIL-STOP" not in text and "Traceback" not in text, text[-2000:]
    assert p.duplicates() == []
