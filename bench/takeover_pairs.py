"""Takeover of the three pairs (dhcpfo, ISC dhcpd, Kea HA), with real clients.

For each pair and each way of losing the partner ("kill": SIGKILL of the
partner process; "cut": the partner's switch port taken down, its process
running on), on a fresh pair serving a small pool (so that it balances in
seconds):

  1. two udhcpc clients hold leases, one from each server; the survivor
     (the primary, "srv") must have learned the partner's lease first;
  2. the partner is lost at t0; at once a dhclient of the partner's hash
     share starts (a new client), and both udhcpc get SIGUSR1: the
     survivor's client renews (unicast to its own server), the partner's
     client renews to the lost server and, unanswered, rebinds (broadcast);
  3. measured from t0, bounded by DEADLINE s: when the new client is bound
     (and by whom), when each renewal/rebind is ACKed (or NAKed, or given
     up); then NEXT more new clients of the lost share, each timed from its
     own start.

The pairs' failure settings are equal (refservers: MAX_RESPONSE_DELAY,
LB_MAX_SECONDS; Kea HA max-unacked-clients 0). Used by run.py; alone:

    sudo .venv/bin/python bench/takeover_pairs.py [--pairs dhcpfo-pair,...] [--how kill,cut]
"""

import argparse
import json
import os
import signal
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import refservers as R  # noqa: E402
from integration.netns import Dhclient, Lab, LabError, Udhcpc, tail, wait_until  # noqa: E402

PAIRS = ("dhcpfo-pair", "isc-dhcpd-pair", "kea-ha-pair")
HOWS = ("kill", "cut")
SMALL_POOL = ("198.18.1.0", "198.18.1.255", 256)
DEADLINE = 40.0     # s after the failure: longer than every pair's detection time
NEXT = 2            # further new clients of the lost share, one after another
_OK = {"renew", "bound", "BOUND", "RENEW", "REBIND", "REBOOT"}
_BAD = {"nak", "leasefail", "deconfig", "FAIL", "EXPIRE", "NAK"}


class Clients:
    """Client namespaces with MACs chosen by the pair's hash split."""

    def __init__(self, lab, server):
        self.lab, self.server = lab, server
        self.seq = 0

    def mac(self, kind, partner):
        while True:
            self.seq += 1
            n = self.seq
            mac = "02:be:%02x:%02x:%02x:%02x" % (os.getpid() & 0xFF, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF)
            raw = bytes(int(x, 16) for x in mac.split(":"))
            key = b"\x01" + raw if kind == "udhcpc" else raw   # udhcpc sends client id 01+MAC
            if self.server.partner_owns(key) == partner:
                return mac

    def make(self, kind, partner):
        mac = self.mac(kind, partner)
        host = self.lab.add_host("c%d" % self.seq)
        host.ip("link", "set", "eth0", "address", mac)
        c = Dhclient(host, timeout=int(DEADLINE) + 20) if kind == "dhclient" else Udhcpc(host, tries=60)
        c.mac = mac
        return c


def _outcome(c, after):
    """What happened to client `c` after `after` (time.time() s): a dict with
    ok_s (first lease granted, s after `after`), lost_s (first NAK, give-up
    or release of the address before that, if any) and the event/server of
    the grant; None while nothing happened."""
    lost = None
    for e in c.events():
        t = int(e.stamp) / 1e9
        if t <= after:
            continue
        if e.event in _BAD and lost is None:
            lost = (t - after, e.event)
        elif e.event in _OK:
            return {"ok_s": round(t - after, 2), "event": e.event, "server": e.server_id,
                    "lost_s": lost and round(lost[0], 2), "lost_event": lost and lost[1]}
    return None if lost is None else {"ok_s": None, "lost_s": round(lost[0], 2), "lost_event": lost[1]}


def one(cls, how, log):
    out = {"pair": cls.name, "how": how}
    with Lab() as lab:
        srv = lab.add_host("srv", "%s/%d" % (R.SERVER_A, R.PREFIX_LEN))
        server = cls()
        try:
            server.start(lab, srv)
            cs = Clients(lab, server)
            mine, theirs = cs.make("udhcpc", False), cs.make("udhcpc", True)
            la, lb = mine.acquire(), theirs.acquire()
            out["owners_ok"] = (la.server_id == R.SERVER_A and lb.server_id == R.SERVER_B)
            wait_until(lambda: server.survivor_knows(lb.ip), 30, 0.2, "survivor knows the partner's lease")
            fresh = cs.make("dhclient", True)
            t0 = time.time()
            server.fail(how)
            fresh.start()
            for c in (mine, theirs):
                c.proc.send_signal(signal.SIGUSR1)
            got = {}
            names = (("new", fresh), ("renew", mine), ("rebind", theirs))

            def done():
                for name, c in names:
                    got[name] = _outcome(c, t0)
                return all(g and g.get("ok_s") is not None for g in got.values())

            try:
                wait_until(done, DEADLINE, 0.1, "takeover clients")
            except LabError:
                pass
            for name, _ in names:
                g = got.get(name) or {"ok_s": None, "lost_s": None, "lost_event": None}
                g["ok"] = g["ok_s"] is not None and g["lost_s"] is None
                out[name] = g
            out["new_first_s"] = out["new"]["ok_s"]
            out["renew_s"] = out["renew"]["ok_s"] if out["renew"]["ok"] else None
            out["rebind_s"] = out["rebind"]["ok_s"] if out["rebind"]["ok"] else None
            after = []
            for _ in range(NEXT):
                c = cs.make("dhclient", True)
                t1 = time.time()
                try:
                    lease = c.acquire(DEADLINE)
                    after.append(int(lease.stamp) / 1e9 - t1)
                except LabError:
                    after.append(None)
            out["new_next_s"] = [round(x, 2) if x is not None else None for x in after]
        except Exception as exc:
            out["error"] = str(exc).splitlines()[0][:200]
            for p in server.logs():
                sys.stderr.write("--- %s\n%s\n" % (p, tail(p, 10)))
        finally:
            server.stop()
    log("    %s %-4s: %s" % (cls.name, how, describe(out)))
    return out


def _client_text(g):
    if not g:
        return "?"
    if g.get("ok"):
        return "ok after %.2fs (%s)" % (g["ok_s"], g.get("server"))
    txt = "FAILED"
    if g.get("lost_s") is not None:
        txt += ": %s at %.2fs" % (g["lost_event"], g["lost_s"])
    if g.get("ok_s") is not None:
        txt += ", leased again at %.2fs (%s)" % (g["ok_s"], g.get("server"))
    elif g.get("lost_s") is None:
        txt += ": no answer in %ds" % DEADLINE
    return txt


def describe(out):
    """One line per measure, for the log."""
    if out.get("error"):
        return "ERROR " + out["error"]
    return ("new client of the lost share %s, next new clients %s s; survivor's client renew %s; "
            "lost server's client renew/rebind %s"
            % (_client_text(out.get("new")), out.get("new_next_s"), _client_text(out.get("renew")),
               _client_text(out.get("rebind"))))


def run_all(pairs=PAIRS, hows=HOWS, log=print):
    """{pair: {how: result}} for every pair and way of failing; restores the pool."""
    saved = (R.POOL_LO, R.POOL_HI, R.POOL_SIZE)
    R.set_pool(*SMALL_POOL)
    res = {}
    try:
        for name in pairs:
            for how in hows:
                res.setdefault(name, {})[how] = one(R.REGISTRY[name], how, log)
    finally:
        R.set_pool(*saved)
    return res


def summary(res):
    """Medians over the NEXT clients, for the table."""
    for by_how in res.values():
        for r in by_how.values():
            xs = [x for x in r.get("new_next_s") or [] if x is not None]
            r["new_next_median_s"] = round(statistics.median(xs), 2) if xs else None
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", default=",".join(PAIRS))
    ap.add_argument("--how", default=",".join(HOWS))
    args = ap.parse_args(argv)
    import run  # registers the dhcpfo servers (bench/srv_*.py)
    run.load_plugins()
    res = summary(run_all(args.pairs.split(","), args.how.split(",")))
    print(json.dumps(res, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
