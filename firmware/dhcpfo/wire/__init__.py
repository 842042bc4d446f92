"""Wire codecs: DHCPv4 packets and option values, failover messages."""
