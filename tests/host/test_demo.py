"""`make run`: the demo pair comes up, reaches NORMAL, serves its clients,
and stops cleanly on SIGINT (Ctrl-C)."""
import os
import re
import signal
import subprocess
import sys
import time

from dhcpfo.failover import hashing

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_demo_pair_serves_clients_and_stops_on_ctrl_c():
    proc = subprocess.Popen([sys.executable, "-m", "dhcpfo_host.cli", "demo", "--clients", "6"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 40
    out = ""
    try:
        while time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            out += line
            if out.count("clients served:") >= 3:
                break
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=20)
        out += rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out[-2000:]
    assert "dhcpfo demo stopped." in out
    last = out[out.rfind("== dhcpfo demo"):]
    assert re.search(r"board-a .*state normal .*partner normal", last), last
    assert re.search(r"board-b .*state normal .*partner normal", last), last
    rows = re.findall(r"([0-9a-f:]{17})\s+bound\s+(127\.77\.0\.\d+)\s+from (127\.77\.1\.\d)", last)
    assert len(rows) == 6, last  # every client bound
    assert len(set(r[1] for r in rows)) == 6, last  # no address twice
    # each client was served by the board that owns its RFC 3074 hash bucket
    hba = hashing.hba_for_percent(50)
    for mac, _addr, server in rows:
        key = b"\x01" + bytes(int(x, 16) for x in mac.split(":"))
        owner = "127.77.1.1" if hashing.in_buckets(hba, hashing.client_hash(key)) else "127.77.1.2"
        assert server == owner, (mac, server, owner)
