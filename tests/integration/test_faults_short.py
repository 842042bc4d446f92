"""The short fault suite (make test): a dhcpfo pair in namespaces under
perfdhcp, loadclient and real clients survives SIGKILL of the secondary
and a failover-link partition, with no address held twice, no ACKed lease
lost and both back to NORMAL (faults/scenarios.py, docs/faults.md).
`make faults` runs every fault."""

import pytest

from faults.run import table
from faults.scenarios import SHORT, needs, run_fault
from integration.conftest import require
from integration.netns import Lab

pytestmark = pytest.mark.netns


@pytest.mark.parametrize("fault", SHORT)
def test_fault(fault, capsys):
    require(*needs(fault))
    with Lab() as lab:
        row = run_fault(lab, fault)
    with capsys.disabled():
        print("\n" + "\n".join(table([row])))
    assert row["ok"], row
    assert row["leases_served"] > 50 and row["checked_leases"] > 50, row  # the checks saw the load
    assert row["perfdhcp_acks"] > 0, row
