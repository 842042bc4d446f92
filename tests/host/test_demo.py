"""`make run`: the demo pair comes up, reaches NORMAL, serves its clients,
and stops cleanly on SIGINT (Ctrl-C)."""
import os
import re
import signal
import subprocess
import sys
import time

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
    served = re.search(r"clients served: (.*)", last).group(1)
    assert "127.77.1.1" in served and "127.77.1.2" in served, served  # both boards answer
    addrs = re.findall(r"bound\s+(127\.77\.0\.\d+)", last)
    assert len(addrs) == 6 and len(set(addrs)) == 6, last  # every client bound, no address twice
