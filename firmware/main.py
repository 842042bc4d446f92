# main.py - board entry point: run the dhcpfo node from /config.json.
# A failure is printed and the board keeps its REPL, so an admin can look.
import sys

try:
    from runtime import board

    board.run()
except Exception as e:
    sys.print_exception(e) if hasattr(sys, "print_exception") else print(repr(e))
