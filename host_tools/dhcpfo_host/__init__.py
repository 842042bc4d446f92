"""dhcpfo host tools: CLI, serial/TCP management link, flashing."""
