"""The fault suite's checks must be able to fail: overlapping grants and
leases a table lost are found, a client's own renewals and moves are not
counted against it."""

from faults import ledger

A, B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"


def test_two_clients_one_address_at_once_is_a_duplicate():
    gs = ledger.settle([ledger.Grant(A, "198.18.0.20", 100, 190, "t"),
                        ledger.Grant(B, "198.18.0.20", 150, 240, "t")])
    assert len(ledger.overlaps(gs)) == 1


def test_reuse_after_expiry_or_move_is_not_a_duplicate():
    gs = ledger.settle([ledger.Grant(A, "198.18.0.20", 100, 190, "t"),
                        ledger.Grant(A, "198.18.0.21", 120, 210, "t"),   # A moved at 120
                        ledger.Grant(B, "198.18.0.20", 130, 220, "t"),
                        ledger.Grant(A, "198.18.0.22", 300, 390, "t")])
    assert ledger.overlaps(gs) == []
    gs = [ledger.Grant(A, "198.18.0.30", 0, 90, "t"), ledger.Grant(B, "198.18.0.30", 90, 180, "t")]
    assert ledger.overlaps(gs) == []


def test_running_lease_missing_or_rebound_is_lost():
    gs = [ledger.Grant(A, "198.18.0.20", 100, 200, "t"), ledger.Grant(B, "198.18.0.21", 100, 200, "t"),
          ledger.Grant(B.replace("0b", "0c"), "198.18.0.22", 0, 50, "t")]  # expired: not checked
    table = {"198.18.0.20": {"mac": A, "state": "active"}, "198.18.0.21": {"mac": A, "state": "active"}}
    lost = ledger.lost(gs, table, "a", now=120)
    assert len(lost) == 1 and "198.18.0.21" in lost[0]
    table["198.18.0.21"] = {"mac": B, "state": "active"}
    assert ledger.lost(gs, table, "a", now=120) == []
    table["198.18.0.21"] = {"mac": B, "state": "expired"}  # expired early on the server
    assert len(ledger.lost(gs, table, "a", now=120)) == 1
