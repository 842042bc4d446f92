"""Management clients that each send 4 KB without a line end and stay
connected: memory the node must hold (the memory-starvation fault).

Usage: memhog.py HOST PORT CONNECTIONS SECONDS (both bounded)."""

import socket
import sys
import time


def main(host, port, count, seconds):
    socks = []
    deadline = time.monotonic() + seconds
    for _ in range(count):
        if time.monotonic() >= deadline:
            break
        try:
            s = socket.create_connection((host, port), timeout=2)
            s.sendall(b"x" * 4000)
        except OSError:
            break  # the node stopped listening (or refuses more): enough
        socks.append(s)
    print("memhog: %d connections" % len(socks), flush=True)
    while time.monotonic() < deadline:
        time.sleep(0.2)
    for s in socks:
        s.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
