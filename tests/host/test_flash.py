"""`dhcpfo flash` against real MicroPython behind a pty (the pty_board fixture):
stage, verify by SHA-256 on the device, switch; interrupted transfers leave
the running firmware whole and resume; mismatched boards are refused."""
import hashlib
import io
import json
import os
import shutil

import pytest

from dhcpfo_host import build as B
from dhcpfo_host import cli, flash

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _bundle(tmp, name, addresses):
    with open(os.path.join(ROOT, "examples", "single.json")) as f:
        d = json.load(f)
    sc = d["scopes"][0]
    d["scopes"] = [sc]
    sc["ranges"] = [{"start": "198.18.0.10", "end": "198.18.0.%d" % (9 + addresses)}]
    sc["exclusions"], sc["reservations"], sc["policies"] = [], [], []
    cfg = tmp / (name + ".json")
    cfg.write_text(json.dumps(d))
    return B.build("w5500-evb-pico", str(cfg), str(tmp / name))["out"]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bundles")
    return _bundle(tmp, "a", 20), _bundle(tmp, "b", 30)


def _live_matches(board, bundle):
    with open(os.path.join(bundle, "manifest.json")) as f:
        m = json.load(f)
    for f in m["files"]:
        with open(board.path(f["path"]), "rb") as fh:
            if hashlib.sha256(fh.read()).hexdigest() != f["sha256"]:
                return False
    return True


def test_deploy_stages_verifies_switches_and_the_board_imports_it(pty_board, bundles):
    a, _ = bundles
    bar = io.StringIO()
    r = flash.deploy(a, pty_board.port, root=pty_board.root, any_platform=True, stream=bar, reset=False)
    assert r["sent"] == len(json.load(open(os.path.join(a, "manifest.json")))["files"]) + 1
    assert _live_matches(pty_board, a)
    assert not os.path.exists(pty_board.path(".new")) and not os.path.exists(pty_board.path(".old"))
    assert "100%" in bar.getvalue()
    # the board itself imports the deployed .mpy files and loads the deployed config
    t = flash.connect(pty_board.port)
    try:
        out = t.eval("(__import__('sys').path.insert(0, %r), __import__('dhcpfo.node').__name__)[1]" % pty_board.root)
        assert out == "dhcpfo"
        n = t.eval("len(__import__('dhcpfo.config').config.load(__import__('json').loads("
                   "open(%r).read())).scopes)" % pty_board.path("config.json"))
        assert n == 1
    finally:
        t.close()


def test_interrupted_transfer_keeps_the_running_firmware_and_resumes(pty_board, bundles):
    a, b = bundles
    flash.deploy(a, pty_board.port, root=pty_board.root, any_platform=True, stream=io.StringIO(), reset=False)
    lease = pty_board.path("data")
    os.mkdir(lease)
    open(os.path.join(lease, "log"), "wb").write(b"\x01" * 56)
    sent = []

    def cut(path):
        sent.append(path)
        if len(sent) == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        flash.deploy(b, pty_board.port, root=pty_board.root, any_platform=True, stream=io.StringIO(),
                     reset=False, on_file=cut)
    assert _live_matches(pty_board, a)  # the previous firmware is whole
    assert os.path.isdir(pty_board.path(".new"))
    r = flash.deploy(b, pty_board.port, root=pty_board.root, any_platform=True, stream=io.StringIO(),
                     reset=False)
    assert r["kept"] >= 5  # staged files were not sent again
    assert _live_matches(pty_board, b) and not _live_matches(pty_board, a)
    assert open(os.path.join(lease, "log"), "rb").read() == b"\x01" * 56  # lease store untouched


def test_a_board_with_another_mpy_version_or_port_is_refused(pty_board, bundles, tmp_path):
    a, _ = bundles
    with pytest.raises(flash.FlashError) as e:
        flash.deploy(a, pty_board.port, root=pty_board.root, stream=io.StringIO(), reset=False)
    assert "runs the linux port but the bundle is for rp2" in str(e.value) and e.value.code == 2
    old = tmp_path / "old"
    shutil.copytree(a, old)
    m = json.load(open(old / "manifest.json"))
    m["micropython"]["mpy"] = "6.1"
    (old / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(flash.FlashError) as e:
        flash.deploy(str(old), pty_board.port, root=pty_board.root, any_platform=True, reset=False)
    assert "the board loads mpy v6.3 but the bundle is mpy v6.1" in str(e.value)
    assert os.listdir(pty_board.root) == []  # nothing written


def test_a_file_that_does_not_verify_stops_before_the_switch(pty_board, bundles, tmp_path):
    a, _ = bundles
    bad = tmp_path / "bad"
    shutil.copytree(a, bad)
    m = json.load(open(bad / "manifest.json"))
    m["files"][0]["sha256"] = "0" * 64
    (bad / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(flash.FlashError) as e:
        flash.deploy(str(bad), pty_board.port, root=pty_board.root, any_platform=True,
                     stream=io.StringIO(), reset=False)
    assert "SHA-256 differs on the board for %s" % m["files"][0]["path"] in str(e.value)
    assert not os.path.exists(pty_board.path("main.py"))  # nothing switched


def test_cli_flash_then_soft_reset(pty_board, bundles, capsys):
    a, _ = bundles
    rc = cli.main(["flash", "--board", "w5500-evb-pico", "--port", pty_board.port, "--bundle", a,
                   "--root", pty_board.root, "--any-platform"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "flashed %s to %s" % (a, pty_board.port) in out.out
    assert _live_matches(pty_board, a)
    rc = cli.main(["flash", "--board", "pico-w", "--port", pty_board.port, "--bundle", a])
    assert rc == 2 and "built for w5500-evb-pico, not pico-w" in capsys.readouterr().err


def test_interrupt_message_says_how_to_resume(monkeypatch, bundles, capsys):
    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(flash, "deploy", boom)
    rc = flash.main("w5500-evb-pico", "/dev/null", bundles[0])
    err = capsys.readouterr().err
    assert rc == 130
    assert "still runs its previous firmware" in err and "again to resume" in err


def test_firmware_images_are_checked_before_anything_is_sent(tmp_path):
    from dhcpfo_host import profiles

    esp, rp = profiles.load("wt32-eth01"), profiles.load("pico-w")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 1024)
    with pytest.raises(flash.FlashError) as e:
        flash.check_firmware(str(junk), esp)
    assert "not an ESP32 application image" in str(e.value)
    with pytest.raises(flash.FlashError):
        flash.check_firmware(str(junk), rp)
    assert flash.esptool_args(esp, "/dev/ttyUSB0", "fw.bin") == [
        "--chip", "esp32", "--port", "/dev/ttyUSB0", "--baud", "460800", "write-flash", "0x1000", "fw.bin"]


def test_uf2_is_copied_to_the_bootloader_drive(tmp_path):
    uf2 = tmp_path / "fw.uf2"
    block = b"UF2\n" + b"\x57\x51\x5d\x9e" + b"\x00" * 504
    uf2.write_bytes(block * 4)
    drive = tmp_path / "RPI-RP2"
    drive.mkdir()
    with pytest.raises(flash.FlashError) as e:
        flash.install_uf2(str(uf2), drive=str(drive), timeout=1)
    assert "no UF2 drive" in str(e.value)
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\n")
    from dhcpfo_host import profiles

    msg = flash.install_firmware(profiles.load("pico-w"), str(uf2), None, drive=str(drive))
    assert (drive / "fw.uf2").read_bytes() == block * 4 and "copied" in msg


def test_a_port_with_no_repl_behind_it_is_a_clear_error_not_a_hang(tmp_path, bundles):
    import pty
    import time

    m, s = pty.openpty()  # a serial line with nothing answering
    try:
        t0 = time.monotonic()
        with pytest.raises(flash.FlashError) as e:
            flash.deploy(bundles[0], os.ttyname(s), root=str(tmp_path), any_platform=True, reset=False)
        assert "no MicroPython REPL on %s" % os.ttyname(s) in str(e.value)
        assert time.monotonic() - t0 < 120
    finally:
        os.close(m)
        os.close(s)
