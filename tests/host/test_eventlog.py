"""The event ring's persisted tail (runtime/eventlog.py): warnings and errors
survive a restart of a real `dhcpfo node`, the file stays bounded, an event
storm is rate-limited, and a damaged file restores what it can."""
import os

from dhcpfo import events as ev
from dhcpfo_host import mgmtclient
from host.test_node_process import BASE, _config, _start, _stop
from runtime import eventlog


class Clock:
    def __init__(self):
        self.t = 1000

    def __call__(self):
        return self.t


def _log(tmp_path, clock, events=None):
    events = events or ev.Events()
    return events, eventlog.EventLog(str(tmp_path), lambda: 1796300000 + clock.t, events, clock)


def test_only_warnings_and_errors_are_kept_rate_limited_and_bounded(tmp_path):
    clock = Clock()
    events, sink = _log(tmp_path, clock)
    events.sink = sink
    events.emit(clock.t, ev.INFO, 1000, "started")
    for i in range(20):
        events.emit(clock.t, ev.WARN, 20261, "refused login %d" % i)
    lines = (tmp_path / eventlog.LOG).read_text().splitlines()
    assert len(lines) == eventlog.PER_MINUTE
    assert lines[0] == "1796301000 1 20261 refused login 0"
    assert events.get("eventlog.skipped") == 20 - eventlog.PER_MINUTE
    for minute in range(1, 200):  # a long storm: the files never outgrow two generations
        clock.t += 60
        for i in range(eventlog.PER_MINUTE):
            events.emit(clock.t, ev.ERROR, 20255, "x" * 200)
    assert os.path.getsize(tmp_path / eventlog.LOG) <= eventlog.MAX_BYTES
    assert os.path.getsize(tmp_path / eventlog.OLD) <= eventlog.MAX_BYTES


def test_restore_brings_back_the_tail_and_skips_damage(tmp_path):
    (tmp_path / eventlog.OLD).write_text("1796300000 2 20255 oldest\n")
    (tmp_path / eventlog.LOG).write_text("- 1 20257 refused connect\nnot a line\n1796300100 9 1 bad level\n"
                                         "1796300200 2 1001 fail-stopped\n")
    events = ev.Events()
    assert eventlog.restore(str(tmp_path), events, 5) == 3
    got = [(e[1], e[2], e[3]) for e in reversed(events.recent(10))]
    assert got == [(2, 20255, "(before restart, unix time 1796300000) oldest"),
                   (1, 20257, "(before restart, time unknown) refused connect"),
                   (2, 1001, "(before restart, unix time 1796300200) fail-stopped")]
    assert events.get("eventlog.bad-line") == 2
    assert eventlog.restore(str(tmp_path / "none"), ev.Events(), 5) == 0  # no file: nothing, no error


def test_a_restarted_node_shows_the_warnings_of_its_last_run(tmp_path):
    cfg = _config(tmp_path, token="tail-token-1")
    proc = _start(tmp_path, cfg)
    try:
        try:
            mgmtclient.call("127.0.0.1", BASE + 2, {"cmd": "status"}, token="wrong-token-1")
        except mgmtclient.MgmtError:
            pass
    finally:
        _stop(proc)
    proc = _start(tmp_path, cfg)
    try:
        evs = None
        for _ in range(40):  # the refused login backed 127.0.0.1 off briefly
            try:
                evs = mgmtclient.call("127.0.0.1", BASE + 2, {"cmd": "get-events", "limit": 50},
                                      token="tail-token-1")["events"]
                break
            except mgmtclient.MgmtError as e:
                assert "retry in" in str(e)
                import time
                time.sleep(0.5)
        texts = [e["text"] for e in evs if e["code"] == 20261]
        assert any(t.startswith("(before restart, unix time ") and "refused" in t for t in texts), evs
    finally:
        _stop(proc)
