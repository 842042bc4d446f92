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


# --- `dhcpfo flash` against an emulated board (dhcpfo emuboard) -----------------------------------
# The board as a user meets it: MicroPython behind a pty, its flash folder the filesystem, main.py
# run at every power-on. The deploy goes through the command line, as a user types it.

TOKEN = "flash-test-token"


def _loopback_node(name, net):
    """A one-node config on loopback addresses of this run: server <net>.8.1, relay <net>.7.1."""
    server = net + ".8.1"
    return {"server": {"name": name, "server_id": server,
                       "listen": {"address": server, "port": 17767, "relay_port": 17768},
                       "mgmt": {"address": server, "port": 17770, "token": TOKEN}},
            "scopes": [{"id": net + ".7.0", "mask": 24, "lease_time": 3600,
                        "ranges": [{"start": net + ".7.100", "end": net + ".7.120"}]}]}


def _net():
    return "127.%d" % (100 + os.getpid() % 150)


def _emu_bundle(tmp, name):
    cfg = tmp / (name + ".json")
    cfg.write_text(json.dumps(_loopback_node(name, _net())))
    return B.build("w5500-evb-pico", str(cfg), str(tmp / ("bundle-" + name)))["out"]


def _flash_cmd(bundle, port):
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "firmware"), os.path.join(ROOT, "host_tools")]))
    argv = [sys.executable, "-m", "dhcpfo_host.cli", "flash", "--board", "w5500-evb-pico", "--port", port,
            "--bundle", bundle, "--any-platform"]
    return argv, env


def _flash(bundle, port):
    import subprocess

    argv, env = _flash_cmd(bundle, port)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)


def _flash_until(bundle, port, percent):
    """Start `dhcpfo flash` and return it once its progress bar passed `percent`."""
    import re
    import select
    import subprocess
    import time

    argv, env = _flash_cmd(bundle, port)
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and p.poll() is None:
        if select.select([p.stderr], [], [], 0.2)[0]:
            seen += os.read(p.stderr.fileno(), 4096)
            done = [int(x) for x in re.findall(rb"\] +(\d+)%", seen)]
            if done and max(done) >= percent:
                return p, seen
    p.kill()
    p.wait()
    raise AssertionError("flash ended or stalled before %d%%: %r" % (percent, seen[-500:]))


def _serves(net, timeout=120):
    """A virtual client behind a loopback relay gets an address from the node at <net>.8.1."""
    import time

    from dhcpfo_host.vclients import Relay

    r = Relay(net + ".7.1", 17768, [(net + ".8.1", 17767)], count=1)
    r.open()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = time.monotonic()
            r.receive(now)
            c = next(iter(r.clients.values()))
            if c.state == "bound":
                return c.log[-1][2]
            r.kick(now)
            time.sleep(0.3)
    finally:
        r.close()
    return None


def test_flash_to_an_emulated_board_lands_verifies_boots_and_serves(emulated_board, tmp_path):
    from dhcpfo_host import mgmtclient

    board = emulated_board("fresh", ip=_net() + ".8.1")
    board.wait(r">>> $")  # an empty flash: MicroPython's REPL, nothing else
    v1 = _emu_bundle(tmp_path, "v1")
    r = _flash(v1, board.port)
    assert r.returncode == 0, r.stderr[-2000:]
    files = json.load(open(os.path.join(v1, "manifest.json")))["files"]
    assert "%d files sent" % (len(files) + 1) in r.stdout and "0 already staged; soft reset" in r.stdout
    assert "100%" in r.stderr  # the progress bar ran to the end
    assert _live_matches(board, v1)  # every file landed with the manifest's SHA-256
    assert os.path.isfile(board.path("manifest.json")) and not os.path.exists(board.path(".new"))
    # the soft reset started the deployed firmware, which serves
    board.wait(r"MPY: soft reboot\r\ndhcpfo: node v1: DHCP on %s\.8\.1:17767" % _net().replace(".", r"\."))
    assert (_serves(_net()) or "").startswith(_net() + ".7.")
    st = mgmtclient.call(_net() + ".8.1", 17770, {"cmd": "status"}, token=TOKEN)
    assert st["name"] == "v1"


def test_a_cut_transfer_leaves_the_previous_firmware_booting_and_the_same_command_resumes(emulated_board, tmp_path):
    import signal

    board = emulated_board("cut", ip=_net() + ".8.1")
    board.wait(r">>> $")
    v1, v2 = _emu_bundle(tmp_path, "v1"), _emu_bundle(tmp_path, "v2")
    assert _flash(v1, board.port).returncode == 0
    board.wait(r"dhcpfo: node v1: DHCP on")

    # 1. the board goes away mid-copy (power off: its pty closes under the tool)
    p, _ = _flash_until(v2, board.port, 20)
    board.power_off()
    _, err = p.communicate(timeout=120)
    err = err.decode(errors="replace")
    assert p.returncode == 1 and "Traceback" not in err, err[-2000:]
    assert "broke off" in err and "boots it after a reset" in err and "run the same command again to resume" in err
    assert _live_matches(board, v1) and os.path.isdir(board.path(".new"))
    start = board.size()
    board.power_on()
    board.wait(r"dhcpfo: node v1: DHCP on", start=start)  # the previous firmware boots

    # 2. the user presses Ctrl-C mid-copy
    p, _ = _flash_until(v2, board.port, 30)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    err = err.decode(errors="replace")
    assert p.returncode == 130, err[-2000:]
    assert "still runs its previous firmware" in err and "again to resume" in err
    assert _live_matches(board, v1)
    start = board.size()
    board.power_off()
    board.power_on()
    board.wait(r"dhcpfo: node v1: DHCP on", start=start)

    # 3. the same command again: what was staged and verifies is not sent again
    r = _flash(v2, board.port)
    assert r.returncode == 0, r.stderr[-2000:]
    kept = int(r.stdout.split(" already staged")[0].rsplit(" ", 1)[1])
    assert kept >= 5, r.stdout
    assert _live_matches(board, v2) and not _live_matches(board, v1)
    board.wait(r"dhcpfo: node v2: DHCP on", start=start)
    assert _serves(_net())


def test_mpremote_mip_install_of_package_json_installs_the_firmware_on_an_emulated_board(emulated_board, tmp_path):
    """firmware/package.json with mpremote's own `mip install` (no dhcpfo tool in between).
    mpremote soft-resets the board first; the emulated board reboots as a board does. (The
    bare unix port on a pty exits on that Ctrl-D and mpremote then waits forever: docs/boards.md.)"""
    import subprocess
    import sys

    board = emulated_board("mip")
    board.wait(r">>> $")
    mpremote = os.path.join(os.path.dirname(sys.executable), "mpremote")
    r = subprocess.run([mpremote, "connect", board.port, "mip", "install", "--target", "/", "package.json"],
                       cwd=os.path.join(ROOT, "firmware"), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and r.stdout.rstrip().endswith("Done"), (r.stdout[-1500:], r.stderr[-1500:])
    urls = json.load(open(os.path.join(ROOT, "firmware", "package.json")))["urls"]
    for dst, src in urls:
        with open(os.path.join(ROOT, "firmware", src), "rb") as a, open(board.path(dst), "rb") as b:
            assert a.read() == b.read(), dst
