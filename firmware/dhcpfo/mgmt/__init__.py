"""dhcpfo.mgmt"""
