"""Fixtures for the network-namespace integration tests.

Tests here need root (namespaces, veths, raw sockets). Without root they
skip with the reason "needs root for network namespaces". A missing tool is
a skip on a developer machine but a failure under CI (CI=true), where
`make test` has installed everything through tools/sysdeps.sh.
"""

import os

import pytest

from integration.netns import ROOT_REASON, Lab, have_root, missing_tools


def require(*tools):
    """Skip (or, under CI, fail) unless root and every tool is on PATH."""
    if not have_root():
        pytest.skip(ROOT_REASON)
    miss = missing_tools(*tools)
    if miss:
        msg = "missing tools: " + " ".join(miss)
        if os.environ.get("CI"):
            pytest.fail(msg + " (tools/sysdeps.sh should have installed them)")
        pytest.skip(msg)


@pytest.fixture
def lab():
    """A fresh Lab (switch namespace, no hosts yet), torn down after the test."""
    require("ip")
    with Lab() as lab_:
        yield lab_
