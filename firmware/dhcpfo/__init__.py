"""dhcpfo firmware: DHCPv4 server with draft-12 failover."""
VERSION = "0.1.0"
