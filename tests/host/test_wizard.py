"""The Configure Failover wizard and Deconfigure (issue 10 item 3) on two real
`dhcpfo node` processes over TCP on loopback: from a partner with no scopes,
success creates this node's scopes there (identical) and the mirrored
relationship on both nodes, which reach NORMAL and serve; every
prerequisite check refuses with the seed's message and changes nothing; a
partner killed after step k (a hook in the wizard, no timing) is rolled back
with this node, to exactly what both had (get-failover, get-server-info and
the configuration file bytes), with a warning; deconfigure deletes the
scopes from the partner and its rollback brings them back."""

import http.server
import os
import signal
import subprocess
import sys
import threading

import pytest

from dhcpfo.compat import json_dumps
from dhcpfo_host import boardconf, wizard
from host.test_live_reconfig import (ADDR, BASE, NET1, NET2, REPO, TOKEN, Proc, _config, _has, _mgmt_port, _normal,
                                     _serve, _until)

NET3 = "127.81.3.0"
# libfaketime preloaded into the node itself (its `faketime` wrapper would
# run the node as a child that a kill by PID leaves behind)
LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
FAKE_CLOCK = {"LD_PRELOAD": LIBFAKETIME, "FAKETIME": "+300s", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
FO_PORT = BASE + 2


class Node(Proc):
    """A node whose configuration file starts in compiled form, so that it can
    be compared byte for byte with what the node writes after a change."""

    def __init__(self, tmp_path, i, edit=None, env=None):
        super().__init__(tmp_path, i, env=dict(os.environ, **env) if env else None)
        doc = _config(tmp_path, i)
        doc["scopes"].append({"id": NET3, "mask": 24, "lease_time": 900,
                              "ranges": [{"start": "127.81.3.10", "end": "127.81.3.20"}]})
        if edit is not None:
            edit(doc)
        self.path.write_text(json_dumps(boardconf.compile_config(doc)))

    def endpoint(self, token=TOKEN):
        return wizard.Endpoint("127.0.0.1", _mgmt_port(self.i), None, token)

    def snapshot(self):
        """Everything that must be as before after a rollback."""
        info = self.call({"cmd": "get-server-info"})
        for k in ("ok", "time"):
            info.pop(k)
        return {"failover": self.call({"cmd": "get-failover"})["relationships"], "info": info,
                "file": self.path.read_bytes()}


@pytest.fixture
def nodes(tmp_path):
    made = []

    def make(i, edit=None, env=None):
        n = Node(tmp_path, i, edit, env)
        made.append(n)
        return n.start()

    try:
        yield make
    finally:
        for n in made:
            n.stop(signal.SIGKILL)


def _bare(doc):
    """A partner with no scopes: the wizard creates them there."""
    doc["scopes"] = []


def _scope_configs(n, nets):
    return [n.call({"cmd": "get-scope-config", "scope": net})["config"] for net in nets]


def _settings(**kw):
    kw.setdefault("local_port", FO_PORT)
    kw.setdefault("partner_port", FO_PORT)
    kw.setdefault("mclt", 300)
    return wizard.Settings(**kw)


def _configure(a, b, scopes=(NET1,), hook=None, partner_wait=30.0, **kw):
    lines = []
    res = wizard.configure(a.endpoint(), b.endpoint(), list(scopes), _settings(**kw), lines.append, hook,
                           partner_wait)
    return res, lines


def _check_fails(a, b, message, scopes=(NET1,), partner=None, **kw):
    with pytest.raises(wizard.WizardError) as e:
        wizard.configure(a.endpoint(), partner or b.endpoint(), list(scopes), _settings(**kw), lambda line: None)
    assert message in str(e.value)


def _cli(*argv):
    r = subprocess.run([sys.executable, "-m", "dhcpfo_host.cli", "failover"] + list(argv),
                       capture_output=True, text=True, cwd=REPO, timeout=120, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout, r.stderr


def _mirrored(ea, eb):
    """Relationship entries of get-server-info that are each other's mirror."""
    assert ea["name"] == eb["name"] and ea["scopes"] == eb["scopes"]
    assert {ea["role"], eb["role"]} == {"primary", "secondary"}
    assert (ea["local_address"], ea["local_port"]) == (eb["partner_address"], eb["partner_port"])
    assert (ea["partner_address"], ea["partner_port"]) == (eb["local_address"], eb["local_port"])
    for k in ("mode", "mclt", "auto_state_switchover", "authentication", "reserve_percent"):
        assert ea[k] == eb[k], k
    assert ea["load_balance_percent"] + eb["load_balance_percent"] == 100


def test_configure_success_over_the_cli_leaves_mirrored_pair_in_normal_serving(nodes):
    a, b = nodes(0), nodes(1, edit=_bare)
    assert b.call({"cmd": "get-server-info"})["scopes"] == []
    rc, out, err = _cli("configure", "--scope", NET1, "--scope", NET2, "--name", "pair", "--local-port",
                        str(FO_PORT), "--partner-port", str(FO_PORT), "--mclt", "5m", "--load-balance-percent",
                        "60", "--port", str(_mgmt_port(0)), "--token", TOKEN,
                        "--partner", "localhost:%d" % _mgmt_port(1))  # the partner by host name
    assert rc == 0, out + err
    lines = out.splitlines()
    assert [ln.split(" ")[1] for ln in lines if ln.startswith("check ")] == ["%d/9" % i for i in range(1, 10)]
    assert "check 1/9 Is the specified DNS name resolvable: localhost -> 127.0.0.1" in lines
    assert any("permissible 1 minute" in ln for ln in lines)
    assert "check 9/9 Are any of the scopes selected for failover setup present on the partner server: no" in lines
    assert [ln.split(" ")[0] for ln in lines if ln.startswith("[")] == ["[%d/5]" % i for i in range(1, 6)]
    assert any(ln.startswith("[1/5]") and "created and deactivated: %s, %s" % (NET1, NET2) in ln for ln in lines)
    assert lines[-1] == "configured pair: done"
    # the partner's scopes are this node's, field for field, active, in the relationship
    assert _scope_configs(a, (NET1, NET2)) == _scope_configs(b, (NET1, NET2))
    ia, ib = a.call({"cmd": "get-server-info"}), b.call({"cmd": "get-server-info"})
    _mirrored(ia["relationships"][0], ib["relationships"][0])
    assert ia["relationships"][0]["scopes"] == [NET1, NET2] and ia["relationships"][0]["load_balance_percent"] == 60
    assert [s for s in ia["scopes"] if s["relationship"]] == ib["scopes"]
    assert [s["active"] for s in ib["scopes"]] == [True, True]
    _normal([a, b])
    bound = _serve(NET1, ADDR, 6, seed=31)
    for n in (a, b):
        _until(lambda: n.leases(NET1).keys() >= bound.keys(), "node %d has every lease" % n.i, a, b)
        _has(n, NET1, bound)
    # configuring again: the scopes are taken now (nothing changes)
    rc, out, err = _cli("configure", "--scope", NET1, "--port", str(_mgmt_port(0)), "--token", TOKEN,
                        "--partner", "127.0.0.1:%d" % _mgmt_port(1))
    assert rc == 1 and "already in failover relationship pair on this server" in err


def _kill_then(b, k, restart):
    def hook(i):
        if i == k:
            b.stop(signal.SIGKILL)
            if restart:
                b.start()
    return hook


# after step k the partner dies and comes back: the steps done, newest first, are undone on both
# (step 5's lost request is undone too: it may have taken effect)
ROLLED_BACK = {1: [1], 2: [1], 3: [5, 4, 3, 1], 4: [5, 4, 3, 1]}


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_partner_killed_after_step_k_both_rolled_back_exactly_with_a_warning(nodes, k):
    a, b = nodes(0), nodes(1, edit=_bare)
    before = a.snapshot(), b.snapshot()
    res, lines = _configure(a, b, hook=_kill_then(b, k, restart=True), name="pair")
    failed = {1: 2, 2: 3}.get(k, 5)  # step 4 is this server's: the partner is missed at step 5
    assert not res["ok"] and res["error"].startswith("step %d " % failed)
    assert any(ln.startswith("[%d/5]" % failed) and "FAILED" in ln for ln in lines), lines
    assert res["rolled_back"] == ROLLED_BACK[k] and res["not_rolled_back"] == [], (res, lines)
    assert len(res["warnings"]) == 1 and res["warnings"][0].startswith("Contact with the partner server")
    assert "rollback was completed too" in res["warnings"][0]
    assert any(ln.startswith("rollback of step 1 (delete the created scope(s) from the partner server)")
               and ln.endswith(": done") for ln in lines), lines
    assert (a.snapshot(), b.snapshot()) == before


def test_partner_that_stays_down_rolled_back_here_and_warned_with_the_command_left(nodes):
    a, b = nodes(0), nodes(1, edit=_bare)
    before = a.snapshot(), b.snapshot()
    res, lines = _configure(a, b, hook=_kill_then(b, 3, restart=False), name="pair", partner_wait=0.5)
    assert not res["ok"] and res["rolled_back"] == [4]
    left = res["not_rolled_back"]
    assert [x["step"] for x in left] == [5, 3, 1]
    warning = res["warnings"][0]
    assert "could not be completed on it" in warning
    assert "dhcpfo call remove-failover name=pair force=true" in warning
    assert "dhcpfo call remove-scope scope=%s force=true" % NET1 in warning
    assert a.snapshot() == before[0]
    b.start()  # as warned: the partner kept the relationship and the scope; the commands given complete it
    assert list(b.rels()) == ["pair"]
    b.call({"cmd": "remove-failover", "name": "pair", "force": True})
    b.call({"cmd": "remove-scope", "scope": NET1, "force": True})
    assert b.snapshot() == before[1]


def test_a_refused_step_rolls_back_the_partner(nodes):
    a, b = nodes(0), nodes(1, edit=_bare)
    before = b.snapshot()

    def meanwhile(i):  # another administrator takes the scope on this server after step 3
        if i == 3:
            a.call({"cmd": "add-failover", "name": "other", "partner": "127.81.0.9", "scopes": [NET1],
                    "local_port": FO_PORT, "partner_port": FO_PORT})

    res, lines = _configure(a, b, hook=meanwhile, name="pair")
    assert not res["ok"] and "step 4" in res["error"] and "already in failover relationship other" in res["error"]
    assert res["rolled_back"] == [3, 1] and res["warnings"] == []
    assert b.snapshot() == before
    assert list(a.rels()) == ["other"]


def test_scopes_identical_on_the_partner_are_taken_as_provisioned_and_kept_on_rollback(nodes):
    a, b = nodes(0), nodes(1)  # the same scopes on both
    before = b.snapshot()
    res, lines = _configure(a, b, hook=_kill_then(b, 3, restart=True), name="pair")
    assert any("%s: present identically in no relationship, taken as provisioned" % NET1 in ln for ln in lines)
    assert any(ln.startswith("[1/5]") and "nothing to create" in ln for ln in lines), lines
    assert not res["ok"] and res["rolled_back"] == [4, 3]  # nothing created, nothing activated: nothing deleted
    assert b.snapshot() == before


def test_a_scope_inactive_here_is_created_inactive_on_the_partner(nodes):
    def inactive(doc):
        doc["scopes"][1]["active"] = False  # NET2
    a, b = nodes(0, edit=inactive), nodes(1, edit=_bare)
    res, lines = _configure(a, b, scopes=(NET1, NET2), name="pair")
    assert res["ok"], (res, lines)
    assert _scope_configs(a, (NET1, NET2)) == _scope_configs(b, (NET1, NET2))
    assert _active(b) == {NET1: True, NET2: False}


def _differs(doc):
    doc["scopes"][0]["lease_time"] = 600  # NET1 differs
    del doc["scopes"][1]  # NET2 missing
    doc["failover"] = [{"name": "old", "role": "primary", "partner": {"address": "127.81.0.9", "port": FO_PORT},
                        "local": {"address": ADDR[1], "port": FO_PORT}, "scopes": [NET3]}]


def test_each_prerequisite_check_refuses_with_the_seeds_message_and_changes_nothing(nodes, tmp_path):
    a, b = nodes(0), nodes(1, edit=_differs)
    before = a.snapshot(), b.snapshot()
    # 1: the name does not resolve (in a network namespace of its own: no DNS query leaves the machine)
    r = subprocess.run(["unshare", "-n", sys.executable, "-m", "dhcpfo_host.cli", "failover", "configure",
                        "--partner", "no-such-host.invalid", "--port", str(_mgmt_port(0)), "--token", TOKEN],
                       capture_output=True, text=True, cwd=REPO, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and wizard.MSG_DNS in r.stderr, r.stderr
    # 2: not an address
    _check_fails(a, b, "The specified IP address 127.81.0.300 is invalid",
                 partner=wizard.Endpoint("127.81.0.300", _mgmt_port(1), None, TOKEN))
    # 3: nothing listens there
    _check_fails(a, b, wizard.MSG_REACH, partner=wizard.Endpoint("127.0.0.1", BASE + 3, None, TOKEN))
    # 4: a server that is not a dhcpfo node (a real HTTP server)
    httpd = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        _check_fails(a, b, wizard.MSG_VERSION,
                     partner=wizard.Endpoint("127.0.0.1", httpd.server_address[1], None, TOKEN))
    finally:
        httpd.shutdown()
        httpd.server_close()
    # 9: present on the partner (NET2 is not: it would be created)
    _check_fails(a, b, wizard.MSG_SCOPES_EXIST % ("%s (configured differently), %s (in failover relationship old)"
                                                  % (NET1, NET3)), scopes=[NET1, NET2, NET3])
    assert wizard.MSG_SCOPES_EXIST.startswith("Following scopes already exist on the specified partner server")
    # scopes this server cannot offer
    _check_fails(a, b, "scope 127.81.9.0 does not exist on this server", scopes=["127.81.9.0"])
    assert (a.snapshot(), b.snapshot()) == before
    # 5: last, since a wrong token backs the source off for a while
    _check_fails(a, b, wizard.MSG_PERM, partner=b.endpoint("not-the-admin-token"))
    assert a.snapshot() == before[0]


def _clock_limit(seconds):
    def edit(doc):
        doc["server"]["time_skew_max"] = seconds
    return edit


@pytest.mark.skipif(not os.path.exists(LIBFAKETIME), reason="libfaketime is not installed")
def test_clock_check_uses_the_smaller_permissible_difference(nodes):
    # the partner's clock runs 5 minutes ahead (libfaketime); this node allows 10, the partner 4
    a = nodes(0, edit=_clock_limit(600))
    b = nodes(1, edit=_clock_limit(240), env=FAKE_CLOCK)
    info = b.call({"cmd": "get-server-info"})
    assert abs(info["time"] - a.call({"cmd": "get-server-info"})["time"] - 300) <= 5
    _check_fails(a, b, wizard.MSG_TIME % "4 minutes")
    assert wizard.MSG_TIME % "4 minutes" == wizard.MSG_TIME.replace("%s", "4 minutes")
    assert a.rels() == {} and b.rels() == {}


def _many(doc):
    """31 relationships, each with a scope of its own (partners that never answer, on loopback)."""
    for k in range(31):
        net = "127.84.%d.0" % k
        doc["scopes"].append({"id": net, "mask": 24, "ranges": [{"start": net[:-1] + "10", "end": net[:-1] + "11"}]})
        doc.setdefault("failover", []).append(
            {"name": "r%d" % k, "role": "primary", "partner": {"address": "127.84.200.%d" % (k + 1), "port": FO_PORT},
             "local": {"address": ADDR[1], "port": FO_PORT}, "scopes": [net]})


def test_the_32nd_relationship_is_refused_before_anything_changes(nodes):
    a, b = nodes(0), nodes(1, edit=_many)
    _check_fails(a, b, "The partner server already has 31 (maximum allowed) failover relationships. A server "
                       "cannot have more than 31 failover relationships.")
    assert a.rels() == {}


def test_checks_that_no_real_node_can_fail_on_demand():
    # check 7: the drivers start DHCP before they answer management, so no live node fails it
    with pytest.raises(wizard.WizardError, match="DHCP server is not running on the specified server"):
        wizard.check_running({"serving": False})
    with pytest.raises(wizard.WizardError, match="The local server already has 31"):
        wizard.check_limit({"relationship_count": 31, "max_relationships": 31}, "local", True)
    wizard.check_limit({"relationship_count": 31, "max_relationships": 31}, "local", False)  # reusing one
    for bad in ("256.1.1.1", "1.2.3", "0.1.2.3", "224.0.0.1", "1..2.3"):
        with pytest.raises(wizard.WizardError, match="The specified IP address %s is invalid" % bad.replace(".", r"\.")):
            wizard.partner_address(bad)


def _active(n):
    return dict((x["scope"], x["active"]) for x in n.call({"cmd": "get-server-info"})["scopes"])


def test_deconfigure_success_and_rollback(nodes):
    a, b = nodes(0), nodes(1, edit=_bare)
    before = a.snapshot(), b.snapshot()
    # a short MCLT: a rollback that recreates the relationship brings it back new, and a new
    # relationship waits one MCLT in RECOVER-WAIT before NORMAL (draft-12)
    res, _ = _configure(a, b, scopes=(NET1, NET2), name="pair", mclt=15)
    assert res["ok"], res
    _normal([a, b])
    configured = a.snapshot()["info"]["relationships"], b.snapshot()["info"]["relationships"]
    scopes = _scope_configs(b, (NET1, NET2))

    # one scope leaves; the partner is lost after this server's step and comes back: the partner's
    # deactivation and this server's removal are undone, so both are as configured
    lines = []
    res = wizard.deconfigure(a.endpoint(), b.endpoint(), "pair", [NET2], say=lines.append,
                             hook=_kill_then(b, 2, restart=True))
    assert not res["ok"] and "step 3" in res["error"] and res["rolled_back"] == [2, 1], (res, lines)
    assert "rollback was completed too" in res["warnings"][0]
    assert a.rels()["pair"]["scopes"] == [NET1, NET2] and b.rels()["pair"]["scopes"] == [NET1, NET2]
    assert _scope_configs(b, (NET1, NET2)) == scopes and _active(b) == {NET1: True, NET2: True}
    _normal([a, b])

    # the whole relationship; after the partner left it, another administrator puts NET2 into another
    # relationship there: NET1 is deleted, NET2's deletion refused; the rollback creates NET1 again as it
    # was, reactivated, and undoes this server's step; the partner's relationship comes back without
    # NET2 (taken), which the result reports as partly done
    def meanwhile(i):
        if i == 3:
            b.call({"cmd": "add-failover", "name": "other", "partner": "127.81.0.9", "scopes": [NET2],
                    "local_port": FO_PORT, "partner_port": FO_PORT})
    lines = []
    res = wizard.deconfigure(a.endpoint(), b.endpoint(), "pair", say=lines.append, hook=meanwhile)
    assert not res["ok"] and "step 4" in res["error"] and "failover relationship other" in res["error"]
    assert res["rolled_back"] == [4, 2, 1], (res, lines)
    assert [x["step"] for x in res["not_rolled_back"]] == [3]
    assert any(ln.startswith("rollback of step 4 (re-create the scope(s) on the partner server)")
               and ln.endswith(": done") for ln in lines), lines
    assert _scope_configs(b, (NET1, NET2)) == scopes and _active(b) == {NET1: True, NET2: True}
    left = res["not_rolled_back"][0]
    assert left["command"].startswith("dhcpfo call add-failover name=pair ") and left["partly_done"]
    assert "scope %s is already in failover relationship other" % NET2 in left["error"]
    assert b.rels()["pair"]["scopes"] == [NET1]  # recreated with the scope it could take
    b.call({"cmd": "remove-failover", "name": "other", "force": True})
    b.call({"cmd": "add-failover-scope", "name": "pair", "scopes": [NET2]})
    ea, eb = a.call({"cmd": "get-server-info"})["relationships"], b.call({"cmd": "get-server-info"})["relationships"]
    _mirrored(ea[0], eb[0])
    assert ea == list(configured[0]) and eb == list(configured[1])
    _normal([a, b])

    # one scope leaves, for real: deactivated and then deleted on the partner, kept here
    lines = []
    res = wizard.deconfigure(a.endpoint(), b.endpoint(), "pair", [NET2], say=lines.append)
    assert res["ok"] and res["warnings"] == [], res
    assert [ln.split(" ")[0] for ln in lines if ln.startswith("[")] == ["[%d/4]" % i for i in range(1, 5)]
    assert a.rels()["pair"]["scopes"] == [NET1] and b.rels()["pair"]["scopes"] == [NET1]
    assert _active(b) == {NET1: True} and NET2 in _active(a)
    _normal([a, b])

    # the partner is lost after leaving the relationship (step 3) and comes back: the deletion never
    # reached it (nothing to undo there); it is put back into the relationship and reactivated
    lines = []
    res = wizard.deconfigure(a.endpoint(), b.endpoint(), "pair", say=lines.append,
                             hook=_kill_then(b, 3, restart=True))
    assert not res["ok"] and "step 4" in res["error"], res
    assert res["rolled_back"] == [3, 2, 1] and res["not_rolled_back"] == [], (res, lines)
    assert _scope_configs(b, (NET1,)) == scopes[:1] and _active(b) == {NET1: True}
    ea, eb = a.call({"cmd": "get-server-info"})["relationships"], b.call({"cmd": "get-server-info"})["relationships"]
    _mirrored(ea[0], eb[0])
    assert ea[0] == dict(configured[0][0], scopes=[NET1]) and eb[0] == dict(configured[1][0], scopes=[NET1])
    _normal([a, b])

    # then for real: both nodes exactly as before the wizard ran (the partner without scopes)
    lines = []
    res = wizard.deconfigure(a.endpoint(), b.endpoint(), "pair", say=lines.append)
    assert res["ok"], (res, lines)
    after = a.snapshot(), b.snapshot()
    assert after[0]["failover"] == [] and after[1]["failover"] == []
    assert after[0]["file"] == before[0]["file"] and after[1]["file"] == before[1]["file"]


def test_deconfigure_outside_normal_needs_force_and_then_is_local(nodes):
    a, b = nodes(0), nodes(1)
    res, _ = _configure(a, b, name="pair")
    assert res["ok"], res
    _normal([a, b])
    b.stop(signal.SIGKILL)
    with pytest.raises(wizard.NeedsForce, match="the deletion will only be performed locally"):
        wizard.deconfigure(a.endpoint(), b.endpoint(), "pair", say=lambda line: None)
    assert list(a.rels()) == ["pair"]
    res = wizard.deconfigure(a.endpoint(), b.endpoint(), "pair", force=True, say=lambda line: None)
    assert res["ok"] and a.rels() == {} and res["steps"] == 1
    assert "perform similar deconfiguration on the partner server" in res["warnings"][0]
    b.start()
    assert list(b.rels()) == ["pair"]
    argv = ["deconfigure", "--name", "pair", "--port", str(_mgmt_port(1)), "--token", TOKEN,
            "--partner", "127.0.0.1:%d" % _mgmt_port(0)]
    rc, out, err = _cli(*argv)  # the partner has no relationship pair any more
    assert rc == 2 and "Give --force to continue" in err and list(b.rels()) == ["pair"]
    rc, out, err = _cli(*argv + ["--force"])
    assert rc == 0 and "deconfigured pair: done" in out and b.rels() == {}


def test_configure_reuses_the_relationship_with_that_partner_and_rolls_back_a_scope(nodes):
    a, b = nodes(0), nodes(1)
    res, _ = _configure(a, b, name="pair")
    assert res["ok"], res
    before = a.snapshot(), b.snapshot()
    res, lines = _configure(a, b, scopes=(NET2,), hook=_kill_then(b, 3, restart=True))
    assert res["relationship"] == "pair" and any(ln.startswith("reusing failover relationship pair") for ln in lines)
    assert not res["ok"] and res["rolled_back"] == [4, 3]
    for x, y in zip((a.snapshot(), b.snapshot()), before):
        assert x["file"] == y["file"] and x["info"]["relationships"] == y["info"]["relationships"]
    res, lines = _configure(a, b, scopes=(NET2,))
    assert res["ok"], res
    assert a.rels()["pair"]["scopes"] == [NET1, NET2] and b.rels()["pair"]["scopes"] == [NET1, NET2]
