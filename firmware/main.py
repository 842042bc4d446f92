# main.py - board entry point: run the dhcpfo node from /config.json.
# Safe mode (/safemode or the board's safe pin) and a start-up error leave
# the REPL to an admin; a failure while serving is a fail-stop that records
# why and resets (runtime/board.py).
import sys

try:
    from runtime import board

    board.run()
except Exception as e:
    sys.print_exception(e) if hasattr(sys, "print_exception") else print(repr(e))
