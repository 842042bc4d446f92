"""Failover logic: RFC 3074 hashing, the draft-12 state machine, peer handling."""
