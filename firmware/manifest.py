# firmware/manifest.py - the board's module set, for freezing into a
# MicroPython firmware image (docs/memory.md).
#
# Frozen modules keep their bytecode, constants and names in flash, so the
# heap holds only what the node builds at run time. A board's own manifest
# (boards/<board>/manifest.py) includes the port's default manifest and this
# one:
#
#     include("$(PORT_DIR)/boards/manifest.py")
#     include("$(MPY_DIR)/../dhcpfo/firmware/manifest.py")
#
# Only what a board runs is listed: the host-side configuration validator
# (host_tools/dhcpfo_host/confcheck.py), the option name/type tables
# (dhcpfo/wire/options.py) and the CPython drivers stay out. The compiled
# configuration (dhcpfo build) is a file on the board's filesystem, not code.

_DHCPFO = (
    "__init__.py",
    "cfgload.py",
    "compat.py",
    "config.py",
    "events.py",
    "node.py",
    "rescope.py",
    "ondemand.py",
    "relchange.py",
    "timebase.py",
    "timeboot.py",
    "dhcp/__init__.py",
    "dhcp/policy.py",
    "dhcp/scope.py",
    "dhcp/server.py",
    "failover/__init__.py",
    "failover/admin.py",
    "failover/amnesia.py",
    "failover/audit.py",
    "failover/authority.py",
    "failover/bindings.py",
    "failover/cfgdigest.py",
    "failover/clockdiff.py",
    "failover/hashing.py",
    "failover/holds.py",
    "failover/inbox.py",
    "failover/link.py",
    "failover/meta.py",
    "failover/notice.py",
    "failover/peer.py",
    "failover/perf.py",
    "failover/pool.py",
    "failover/receive.py",
    "failover/report.py",
    "failover/reconfig.py",
    "failover/states.py",
    "failover/updates.py",
    "lease/__init__.py",
    "lease/log.py",
    "lease/replay.py",
    "lease/status.py",
    "lease/table.py",
    "mgmt/__init__.py",
    "mgmt/cmdlets.py",
    "mgmt/commands.py",
    "mgmt/failover.py",
    "mgmt/helptext.py",
    "mgmt/leases.py",
    "mgmt/serverinfo.py",
    "mgmt/scopes.py",
    "mgmt/reads.py",
    "mgmt/session.py",
    "wire/__init__.py",
    "wire/dhcp.py",
    "wire/failover.py",
)

_RUNTIME = (
    "__init__.py",
    "aio.py",
    "board.py",
    "console.py",
    "eventlog.py",
    "cfgfile.py",
    "store.py",
    "restore.py",
    "syslog.py",
    "udp_mp.py",
)

for _name in _DHCPFO:
    module("dhcpfo/" + _name, base_path="$(MANIFEST_DIR)", opt=3)  # noqa: F821
for _name in _RUNTIME:
    module("runtime/" + _name, base_path="$(MANIFEST_DIR)", opt=3)  # noqa: F821
# main.py stays a file on the board (it is what the board runs at boot).
