"""`dhcpfo counters` against a running `dhcpfo node` over TCP: the seed's ten
failover counters as a table, as JSON and as Prometheus text that the
Prometheus project's own parser (prometheus_client) reads."""
import json
import os
import subprocess
import sys
import time

from prometheus_client.parser import text_string_to_metric_families

from dhcpfo_host import mgmtclient
from dhcpfo_host.prometheus import FAILOVER
from host.test_node_process import BASE, REPO, _config, _start, _stop

TOKEN = "counters-token-1"


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(REPO, "host_tools"),
                                                       os.path.join(REPO, "firmware")]))
    return subprocess.run([sys.executable, "-m", "dhcpfo_host.cli"] + list(args), env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_counters_table_json_and_prometheus(tmp_path):
    cfg = _config(tmp_path, token=TOKEN)
    cfg["failover"] = [{"name": "lab", "role": "primary", "mode": "load-balance",
                        "local": {"address": "127.78.0.2", "port": BASE + 3},
                        "partner": {"address": "127.78.0.3", "port": BASE + 3},  # nobody there
                        "scopes": ["127.78.1.0"], "mclt": 60}]
    proc = _start(tmp_path, cfg)
    try:
        deadline = time.time() + 120
        while True:  # a new node with no partner in sight: STARTUP, then RECOVER (draft-12 §9.3.2)
            rel = mgmtclient.call("127.0.0.1", BASE + 2, {"cmd": "get-failover"}, token=TOKEN)["relationships"][0]
            if rel["state"] == "recover":
                break
            assert time.time() < deadline, (rel["state"], rel["partner_state"])
            time.sleep(0.2)
        where = ["--tcp", "127.0.0.1:%d" % (BASE + 2), "--token", TOKEN]

        r = _cli("counters", *where)
        assert r.returncode == 0, r.stderr
        rows = dict((line.split()[0], line.split()[1:]) for line in r.stdout.splitlines()[1:])
        assert set(rows) == set(FAILOVER)
        assert rows["TransitionsToRecover"] == ["1", "1"]  # node total, relationship lab
        assert rows["TransitionsToCommunicationInterrupted"] == ["0", "0"]

        r = _cli("counters", "--json", *where)
        data = json.loads(r.stdout)
        assert data["failover"]["TransitionsToRecover"] == 1
        assert data["relationships"]["lab"]["TransitionsToPartnerDown"] == 0

        r = _cli("counters", "--prometheus", *where)
        assert r.returncode == 0, r.stderr
        fams = dict((f.name, f) for f in text_string_to_metric_families(r.stdout))
        ci = fams["dhcpfo_failover_transitions_recover"]  # the parser drops _total
        assert ci.type == "counter"
        assert [(s.labels, s.value) for s in ci.samples if s.name.endswith("_total")] == \
            [({"node": "t", "relationship": "lab"}, 1.0)]
        state = fams["dhcpfo_failover_state"].samples
        assert state[0].labels["state"] == "recover"
        assert any(s.labels.get("name") == "mgmt.auth-ok" for s in fams["dhcpfo_events"].samples)

        r = _cli("counters", "--tcp", "127.0.0.1:%d" % (BASE + 2), "--token", "wrong-token-x")
        assert r.returncode == 1 and "authentication refused" in r.stderr
        r = _cli("counters", "--tcp", "127.0.0.1")
        assert r.returncode == 2 and "HOST:PORT" in r.stderr
    finally:
        _stop(proc)
