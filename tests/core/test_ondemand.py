"""Code loaded on demand and dropped after (dhcpfo/ondemand.py): the
management command table per request, the configuration loader, the store's
boot-time reader. Runs on CPython and MicroPython; heap figures are in
test_board_heap.py."""
import sys

from dhcpfo import config, ondemand
from dhcpfo.mgmt import handler

import test_board_heap as H

MGMT_CODE = ("dhcpfo.mgmt.commands", "dhcpfo.failover.admin")


def _forget(names):
    """Drop `names` for a test and return what to put back (other test
    modules hold the loaded copies: they must find the same ones after)."""
    saved = [(n, sys.modules[n]) for n in names if n in sys.modules]
    for n in names:
        ondemand.drop(n)
    return saved


def _restore(saved):
    for n, m in saved:
        sys.modules[n] = m
        pkg, leaf = n.rsplit(".", 1)
        setattr(sys.modules[pkg], leaf, m)


def _node():
    from dhcpfo.node import Node
    H.write_configs()
    with open(H.CFG_DIR + "/a.json") as f:
        return Node(config.load_text(f.read()))


def test_a_request_loads_the_command_table_and_drops_it_after():
    node = _node()
    node.start(1000)
    saved = _forget(MGMT_CODE)
    try:
        mgmt = handler(node)
        for _ in range(2):  # the second request imports it all again
            ans = mgmt({"cmd": "get-failover"}, 1000)
            assert ans["ok"] and ans["relationships"][0]["name"] == "heap"
            for n in MGMT_CODE:
                assert n not in sys.modules, n
            assert not hasattr(sys.modules["dhcpfo.mgmt"], "commands")
        ans = mgmt({"cmd": "nope"}, 1000)
        assert not ans["ok"] and "unknown command" in ans["error"]
        assert "dhcpfo.mgmt.commands" not in sys.modules
    finally:
        _restore(saved)


def test_a_failing_call_still_drops_and_nested_calls_drop_at_the_outermost():
    saved = _forget(("dhcpfo.cfgload",))
    try:
        try:
            config.load_text("{not json")
        except config.ConfigError as e:
            assert e.errors
        else:
            raise AssertionError("a damaged file must be refused")
        assert "dhcpfo.cfgload" not in sys.modules

        def nested():
            try:
                config.load({})
            except config.ConfigError:
                pass
            return "dhcpfo.cfgload" in sys.modules  # still held: the outer call is running

        assert ondemand.call(nested) is True
        assert "dhcpfo.cfgload" not in sys.modules
    finally:
        _restore(saved)


def test_imported_outside_a_call_a_droppable_module_stays():
    saved = _forget(("dhcpfo.cfgload",))
    try:
        from dhcpfo import cfgload  # noqa: F401  (as a host driver or a test imports it)
        try:
            config.load({})
        except config.ConfigError:
            pass
        assert "dhcpfo.cfgload" in sys.modules
    finally:
        ondemand.drop("dhcpfo.cfgload")
        _restore(saved)
