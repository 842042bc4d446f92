"""`dhcpfo console`: a terminal on a board's REPL, pyserial's miniterm underneath.

Every key goes to the board as typed, Ctrl-C (interrupt), Ctrl-D (soft
reset) and Ctrl-E (paste mode) included; Enter is sent as CR, which is what
the MicroPython REPL reads as end of line. Ctrl-] leaves. Miniterm's Ctrl-T
menu is off, so Ctrl-T reaches the board too.
"""
import sys

import serial
from serial.tools import miniterm

EXIT_KEY = "\x1d"  # Ctrl-]


class EnterAsCR(miniterm.Transform):
    """The local terminal turns Enter into LF; the REPL ends a line on CR."""

    def tx(self, text):
        return text.replace("\n", "\r")


def open_port(port, baud=115200):
    """Any pyserial URL: /dev/ttyUSB0, a pty, socket://host:port, rfc2217://host:port."""
    ser = serial.serial_for_url(port, baudrate=baud, do_not_open=True)
    ser.open()
    return ser


def main(port, baud=115200):
    try:
        ser = open_port(port, baud)
    except (serial.SerialException, ValueError) as e:
        print("dhcpfo console: cannot open %s: %s" % (port, e), file=sys.stderr)
        return 1
    term = miniterm.Miniterm(ser, echo=False, eol="lf", filters=["direct"])
    term.exit_character = EXIT_KEY
    term.menu_character = None  # pass Ctrl-T through
    term.tx_transformations.insert(0, EnterAsCR())
    term.set_rx_encoding("utf-8", "replace")
    term.set_tx_encoding("utf-8")
    sys.stderr.write("--- dhcpfo console on %s; Ctrl-] to leave ---\n" % port)
    term.start()
    try:
        term.join(True)
    except KeyboardInterrupt:
        pass
    term.join()
    term.close()
    sys.stderr.write("\n--- left %s ---\n" % port)
    return 0
