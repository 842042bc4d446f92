# rp2.py - the emulated board's stand-in for MicroPython's `rp2` (RP2040 boards).
#
# Only the BOOTSEL button, which an RP2040 profile uses as its safe-mode
# input: its level comes from the emulator's command line (`--pin BOOTSEL=1`
# holds it), released otherwise.
import machine


def bootsel_button():
    return machine._PIN_LEVELS.get("BOOTSEL", 0)
