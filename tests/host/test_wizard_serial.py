"""The Configure Failover wizard with the partner on a board's serial console:
an emulated board (real MicroPython, firmware/main.py, console on a pty)
answers the checks over --partner-serial (a trusted console: administrator),
holds the scope identically already (taken as provisioned; refused while it
differs), takes the mirrored relationship and connects to a CPython node over
TCP; deconfigure then takes it off both again and deletes the board's scope."""

import os
import signal
import time

import pytest

from dhcpfo_host import wizard
from dhcpfo_host.emuboard import prepare_flash
from host.test_emuboard import Emu, _loopback_config, _need_micropython
from host.test_live_reconfig import NET1
from host.test_wizard import Node


def test_configure_and_deconfigure_with_the_partner_on_a_serial_console(tmp_path):
    _need_micropython()
    port = 26000 + os.getpid() % 3000 * 4
    board_cfg = _loopback_config(port)
    prepare_flash(str(tmp_path / "flash"), board_cfg, {"network": "lan", "mdc": 23, "mdio": 18})
    emu = Emu(tmp_path / "flash", "--heap", "1M")
    here = None
    try:
        emu.wait(r"dhcpfo: node lnk: DHCP on 127\.0\.0\.1", timeout=120)

        def same_scope(doc):  # the board's scope, configured identically here
            doc["scopes"].append(dict(board_cfg["scopes"][0]))
        here = Node(tmp_path, 0, edit=same_scope).start()
        partner = wizard.Endpoint(serial=emu.pty, timeout=30)
        lines = []
        bad = wizard.Endpoint(serial=str(tmp_path / "no-such-tty"))
        with pytest.raises(wizard.WizardError, match="The specified DHCP server is not reachable"):
            wizard.configure(here.endpoint(), bad, ["10.9.0.0"], wizard.Settings(), lines.append)
        same = here.call({"cmd": "get-scope-config", "scope": "10.9.0.0"})["config"]["lease_time"]
        here.call({"cmd": "set-scope", "scope": "10.9.0.0", "lease_time": same + 60})  # now it differs here
        with pytest.raises(wizard.WizardError, match="already exist on the specified partner server: 10.9.0.0 "
                                                     r"\(configured differently\)"):
            wizard.configure(here.endpoint(), partner, ["10.9.0.0"], wizard.Settings(), lambda line: None)
        here.call({"cmd": "set-scope", "scope": "10.9.0.0", "lease_time": same})
        s = wizard.Settings(name="board-pair", local_port=port + 3, partner_port=port + 3, mclt=60)
        res = wizard.configure(here.endpoint(), partner, ["10.9.0.0"], s, lines.append, connect_wait=90)
        assert res["ok"], (res, lines, emu.text()[-2000:])
        assert "check 1/9 Is the specified DNS name resolvable: not needed (serial console %s)" % emu.pty in lines
        assert any(ln.startswith("check 9/9") and "10.9.0.0: present identically" in ln for ln in lines)
        assert any(ln.startswith("check 4/9") and "dhcpfo" in ln for ln in lines)
        mine = here.call({"cmd": "get-server-info"})["relationships"][0]
        theirs = _board(emu, "get-server-info")["relationships"][0]
        assert (mine["role"], theirs["role"]) == ("primary", "secondary")
        assert mine["local_address"] == theirs["partner_address"] == "127.81.0.2"
        assert theirs["local_address"] == mine["partner_address"] == "127.0.0.1"
        deadline = time.monotonic() + 180  # generous: MicroPython on a loaded machine
        while _state(here.call({"cmd": "get-failover"})) != "normal" or _state(_board(emu, "get-failover")) != "normal":
            assert time.monotonic() < deadline, (lines, emu.text()[-2000:])
            time.sleep(0.5)
        res = wizard.deconfigure(here.endpoint(), partner, "board-pair", say=lines.append)
        assert res["ok"], (res, lines)
        assert here.rels() == {}
        assert _board(emu, "get-failover")["relationships"] == []
        assert [x["scope"] for x in _board(emu, "get-server-info")["scopes"]] == []  # deleted from the partner
    finally:
        if here is not None:
            here.stop(signal.SIGKILL)
        emu.close()


def _board(emu, cmd):
    with wizard.Endpoint(serial=emu.pty, timeout=30).open() as c:
        return c.request({"cmd": cmd})


def _state(answer):
    rels = answer["relationships"]
    return rels[0]["state"] if rels else None
