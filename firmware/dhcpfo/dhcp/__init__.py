"""dhcpfo.dhcp"""
