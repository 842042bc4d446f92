"""Deterministic simulation of dhcpfo nodes, clients and faults on virtual time.

world.py runs real `dhcpfo.node.Node`s on a virtual network and clock,
clients.py drives them with real DHCP packets, flash.py stands in for the
lease store (with torn writes), faults.py draws a fault schedule from a seed
and invariants.py checks the draft-12 safety rules after every step.
See docs/simulation.md.
"""
