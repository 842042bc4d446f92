"""dhcpfo.mgmt: the management surface; the driver holds only `handler`."""

from dhcpfo import ondemand


def handler(node, max_page=None):
    """The management entry point a board's driver holds: callable(request,
    now, role) -> answer. The command table (mgmt/commands.py) and whatever
    a command imports that is droppable (mgmt/failover.py, failover/reconfig.py)
    are loaded for the request and dropped after it (dhcpfo/ondemand.py), so
    between requests the board keeps none of that code on its heap."""

    def handle(req, now, role="administrator"):
        return ondemand.call(_run, node, max_page, req, now, role)

    return handle


def _run(node, max_page, req, now, role):
    from dhcpfo.mgmt.commands import Commands

    cmds = Commands(node) if max_page is None else Commands(node, max_page)
    return cmds.handle(req, now, role)
