"""The `dhcpfo` command: run a node, manage it, flash a board."""
import argparse
import sys


def main(argv=None):
    ap = argparse.ArgumentParser(prog="dhcpfo", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("check-firmware", help="MicroPython compatibility check of firmware modules")
    p.add_argument("paths", nargs="*", default=["firmware"])
    args = ap.parse_args(argv)
    if args.cmd == "check-firmware":
        from dhcpfo_host import fwcheck
        return fwcheck.main(args.paths)
    return 2


if __name__ == "__main__":
    sys.exit(main())
