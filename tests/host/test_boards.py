"""Board descriptions are valid JSON with what runtime/board.py reads."""
import glob
import json
import os

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "boards")


def test_every_board_json_has_the_keys_board_py_reads():
    files = sorted(glob.glob(os.path.join(ROOT, "*", "board.json")))
    assert len(files) >= 5
    for path in files:
        b = json.load(open(path))
        assert b["network"] in ("lan", "wlan", "wiznet"), path
        assert b["port"] in ("esp32", "rp2"), path
        if b["network"] == "lan":
            for k in ("mdc", "mdio", "phy"):
                assert k in b, (path, k)
        if b["network"] == "wlan":
            assert "ssid" in b, path
        assert isinstance(b["heap_budget"], int) and b["heap_budget"] > 24000, path
