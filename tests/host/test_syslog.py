"""Events to syslog (runtime/syslog.py): RFC 5424 messages over UDP from a
running `dhcpfo node`, filtered by level, with a UTC timestamp only when the
node knows the wall time; the date arithmetic agrees with Python's."""
import datetime
import json
import re
import socket
import time

from hypothesis import given, strategies as st

from dhcpfo.config import ConfigError
from dhcpfo_host import boardconf, mgmtclient
from host.test_node_process import BASE, _config, _start, _stop
from runtime import syslog

# RFC 5424 §6: HEADER = PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID
RFC5424 = re.compile(r"^<(\d{1,3})>1 (-|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) (\S{1,255}) (\S{1,48}) (\S{1,128}) "
                     r"(\S{1,32}) (-|\[.*\]) (.*)$", re.S)


@given(st.integers(min_value=0, max_value=2 ** 32))
def test_civil_agrees_with_python(unix):
    d = datetime.datetime.fromtimestamp(unix, datetime.timezone.utc)
    assert syslog.civil(unix) == (d.year, d.month, d.day, d.hour, d.minute, d.second)


def test_format_levels_and_nil_timestamp():
    msg = syslog.format_message((5, 2, 20252, "state changed"), "node-a", 3, 1796302129).decode()
    m = RFC5424.match(msg)
    assert m and m.group(1) == "27"  # daemon (3) * 8 + err (3)
    assert m.group(2) == "2026-12-03T12:48:49Z" and m.group(3) == "node-a" and m.group(4) == "dhcpfo"
    assert m.group(6) == "20252" and m.group(8) == "state changed"
    unsynced = syslog.format_message((5, 0, 10, "x" * 1000), "n", 16, None)
    assert RFC5424.match(unsynced.decode()).group(2) == "-" and unsynced.startswith(b"<134>1 ")
    assert len(unsynced) == syslog.MAX_DATAGRAM


def test_config_checks_the_syslog_block():
    base = {"server": {"name": "s", "server_id": "127.0.0.1"},
            "scopes": [{"id": "10.0.0.0", "mask": 24, "ranges": [{"start": "10.0.0.10", "end": "10.0.0.20"}]}]}
    base["server"]["syslog"] = {"address": "127.0.0.1", "level": "loud", "facility": 99}
    try:
        boardconf.load(base)
        raise AssertionError("accepted a bad syslog block")
    except ConfigError as e:
        text = str(e)
    assert "server.syslog.level" in text and "server.syslog.facility" in text
    base["server"]["syslog"] = {"address": "127.0.0.1"}
    cfg = boardconf.load(base)
    assert (cfg.server.syslog_port, cfg.server.syslog_level, cfg.server.syslog_facility) == (514, "warning", 3)


def test_a_running_node_sends_its_warnings_to_syslog(tmp_path):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(0.5)
    cfg = _config(tmp_path, token="syslog-token-1")
    cfg["server"]["syslog"] = {"address": "127.0.0.1", "port": rx.getsockname()[1], "level": "warning"}
    proc = _start(tmp_path, cfg)
    try:
        try:  # a refused management login: event 20261, a warning
            mgmtclient.call("127.0.0.1", BASE + 2, {"cmd": "status"}, token="not-the-token")
        except mgmtclient.MgmtError:
            pass
        got = []
        deadline = time.time() + 30
        while time.time() < deadline and not any(" 20261 " in g for g in got):
            try:
                got.append(rx.recv(2048).decode())
            except socket.timeout:
                pass
        msgs = [RFC5424.match(g) for g in got]
        assert all(msgs), got
        auth = [m for m in msgs if m.group(6) == "20261"]
        assert auth, got
        m = auth[0]
        assert int(m.group(1)) == 3 * 8 + 4 and m.group(3) == "t" and "refused" in m.group(8)
        stamp = datetime.datetime.strptime(m.group(2), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
        assert abs(stamp.timestamp() - time.time()) < 120  # a Linux node knows the time
        # info-level events (the node's start) stayed below the threshold
        assert not any(int(x.group(1)) % 8 == 6 for x in msgs)
        counters = None
        while counters is None:  # the refused login backed 127.0.0.1 off for a second or two
            try:
                counters = mgmtclient.call("127.0.0.1", BASE + 2, {"cmd": "get-counters"}, token="syslog-token-1")
            except mgmtclient.MgmtError as e:
                assert "retry in" in str(e) and time.time() < deadline + 30, e
                time.sleep(0.5)
        assert counters["counters"].get("syslog.sent", 0) >= 1
    finally:
        _stop(proc)
        rx.close()
