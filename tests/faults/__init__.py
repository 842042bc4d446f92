"""The real fault suite: a dhcpfo pair in network namespaces under load,
broken on purpose (docs/faults.md). `python -m faults.run` (make faults)."""
