"""The /board.json a build writes holds every key firmware/runtime/board.py
reads with board["key"] (required) for that network kind."""
import os
import re

from dhcpfo_host import profiles as P

BOARD_PY = os.path.join(os.path.dirname(__file__), "..", "..", "firmware", "runtime", "board.py")


def _required_keys_by_kind():
    """board["k"] lookups in board.py, grouped by the `kind == "..."` branch they sit in."""
    need = {"lan": set(), "wlan": set(), "wiznet": set()}
    branch = None
    for line in open(BOARD_PY):
        m = re.search(r'kind == "(\w+)"', line)
        if m:
            branch = m.group(1)
        elif re.match(r"\s*else:", line) and branch:
            branch = "wlan"  # the Wi-Fi station is the else branch
        elif re.match(r"\s*def ", line):
            branch = None
        for k in re.findall(r'board\["(\w+)"\]', line):
            for kind in ([branch] if branch else need):
                need[kind].add(k)
    return need


def test_device_board_json_has_what_board_py_reads():
    need = _required_keys_by_kind()
    assert need["lan"] >= {"mdc", "mdio"}, need  # the parser still understands board.py
    for name in P.names():
        prof = P.load(name)
        kind = prof["network"]["kind"]
        site = {"ssid": "lab", "password": "pw"} if kind == "wlan" else {}
        dev = P.device_board(prof, site)
        assert dev["network"] == kind and dev["port"] in ("esp32", "rp2")
        missing = need[kind] - set(dev)
        assert not missing, (name, missing)
        assert "ssid" not in P.load(name)["network"]  # credentials never live in a profile
