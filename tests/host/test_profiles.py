"""Board profile schema: every shipped profile loads; each kind of mistake is
reported by path, all of them at once, and nothing half-valid gets through."""
import copy
import json
import os

import pytest

from dhcpfo_host import profiles as P


def _raw(name):
    with open(os.path.join(P.ROOT, name, "board.json")) as f:
        return json.load(f)


def _errors(obj):
    with pytest.raises(P.ProfileError) as e:
        P.validate(obj, "x")
    return e.value.errors


def test_every_shipped_profile_loads():
    got = P.names()
    for want in ("wt32-eth01", "olimex-esp32-poe", "esp32-wifi", "pico-w", "w5500-evb-pico"):
        assert want in got
    for name in got:
        p = P.load(name)
        assert p["id"] == name
        march = {"esp32": "xtensawin", "rp2040": "armv6m"}[p["chip"]]
        assert p["micropython"]["march"] == march
        if p["flash"]["image"] == "bin":
            assert p["flash"]["offset"] == 0x1000  # ESP32 (not S3/C3): bootloader at 0x1000
        else:
            assert p["flash"]["offset"] is None


def test_lan_profiles_have_the_real_rmii_clock_wiring():
    wt = P.load("wt32-eth01")["network"]
    assert (wt["phy_addr"], wt["power"], wt["ref_clk"], wt["ref_clk_mode"]) == (1, 16, 0, "in")
    ol = P.load("olimex-esp32-poe")["network"]
    assert (ol["phy_addr"], ol["power"], ol["ref_clk"], ol["ref_clk_mode"]) == (0, 12, 17, "out")


def test_every_error_is_reported_by_path_at_once():
    bad = _raw("wt32-eth01")
    bad["chip"] = "esp8266"
    bad["micropython"]["mpy"] = "6.1"
    bad["network"]["mdc"] = "twenty-three"
    del bad["network"]["mdio"]
    bad["heap_budget"] = 1000
    bad["colour"] = "blue"
    errs = _errors(bad)
    for frag in ("x: chip: must be one of", "x: micropython.mpy: must be one of",
                 "x: network.mdc: must be a GPIO number", "x: network.mdio: required",
                 "x: heap_budget: must be", "x: colour: unknown key"):
        assert any(e.startswith(frag) for e in errs), (frag, errs)


def test_chip_and_abi_must_agree():
    bad = _raw("pico-w")
    bad["micropython"]["march"] = "xtensawin"
    bad["flash"]["offset"] = 4096
    bad["micropython"]["version"] = "1.19"
    errs = _errors(bad)
    assert any("micropython.march: chip rp2040 needs -march=armv6m" in e for e in errs), errs
    assert any("flash.offset: a UF2 image" in e for e in errs), errs
    assert any("micropython.version" in e for e in errs), errs


def test_rmii_clock_and_pin_clashes():
    bad = _raw("wt32-eth01")
    bad["network"]["ref_clk"] = 17  # input clock only on GPIO0
    bad["pins"]["safe_mode"]["pin"] = 23  # MDC
    errs = _errors(bad)
    assert any("network.ref_clk: the ESP32 EMAC takes an external RMII clock only on GPIO0" in e
               for e in errs), errs
    assert any("pins.safe_mode.pin: GPIO23 is already network.mdc" in e for e in errs), errs


def test_network_kind_must_fit_the_chip():
    bad = _raw("w5500-evb-pico")
    bad["chip"], bad["port"] = "esp32", "esp32"
    bad["micropython"]["march"] = "xtensawin"
    bad["flash"]["image"], bad["flash"]["offset"] = "bin", 4096
    assert any("network.kind: the WIZNET5K driver" in e for e in _errors(bad))


def test_hex_strings_and_unknown_board():
    p = P.validate(_raw("olimex-esp32-poe"), "x")
    assert p["flash"]["size"] == 4 << 20 and p["lease_log_bytes"] == 512 * 1024
    bad = _raw("olimex-esp32-poe")
    bad["flash"]["offset"] = "0xZZ"
    assert any("flash.offset: not a hex number" in e for e in _errors(bad))
    with pytest.raises(P.ProfileError) as e:
        P.load("no-such-board")
    assert "known: " in str(e.value) and "wt32-eth01" in str(e.value)


def test_site_section_wifi_needs_ssid_lan_refuses_it():
    wifi, lan = P.load("pico-w"), P.load("wt32-eth01")
    with pytest.raises(P.ProfileError) as e:
        P.validate_site({}, wifi)
    assert e.value.errors == ["board.ssid: required: Raspberry Pi Pico W joins a Wi-Fi network as a station"]
    assert P.validate_site({"ssid": "lab", "password": "pw"}, wifi) == {"ssid": "lab", "password": "pw"}
    with pytest.raises(P.ProfileError) as e:
        P.validate_site({"ssid": "lab", "netmask": "255.255.0"}, lan)
    assert sorted(e.value.errors) == ["board.netmask: must be a dotted IPv4 address",
                                      "board.ssid: WT32-ETH01 has no Wi-Fi interface in this profile"]


def test_validate_does_not_mutate_its_input():
    raw = _raw("wt32-eth01")
    before = copy.deepcopy(raw)
    P.validate(raw)
    assert raw == before
