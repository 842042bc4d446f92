"""Where the `dhcpfo` CLI takes tokens from (cli._node_conn, mgmtclient.read_token):
an unreadable token file is a usage error naming the file, before any
connection; the wizard's and replication's partner token defaults to this
node's and can come from its own file."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cli(*argv):
    r = subprocess.run([sys.executable, "-m", "dhcpfo_host.cli"] + list(argv), capture_output=True, text=True,
                       cwd=REPO, timeout=60, stdin=subprocess.DEVNULL)
    return r.returncode, r.stderr


@pytest.mark.parametrize("argv, what", [
    (["failover", "show", "--token-file", "/nonexistent/dhcpfo.token"], "token file"),
    (["failover", "replicate", "--all", "--force", "--partner-token-file", "/nonexistent/p.token",
      "--partner-tcp", "127.0.0.1:9"], "partner token file"),
    (["failover", "configure", "--scope", "198.18.1.0", "--partner", "127.0.0.1:9",
      "--partner-token-file", "/nonexistent/p.token"], "partner token file"),
])
def test_unreadable_token_file_is_a_usage_error(argv, what):
    rc, err = _cli(*(argv + ["--tcp", "127.0.0.1:9"]))
    assert rc == 2, err
    assert "cannot read the %s" % what in err and "/nonexistent/" in err, err


def test_partner_token_comes_from_its_file_or_defaults_to_ours(tmp_path):
    import argparse

    from dhcpfo_host import cli

    f = tmp_path / "partner.token"
    f.write_text("partner-secret\n")
    base = dict(token="ours", token_file=None, host=None, port=None, tcp="127.0.0.1:9", role="administrator",
                serial=None, partner_token=None, partner_token_file=None)
    assert cli._node_conn(argparse.Namespace(**base))["partner_token"] == "ours"
    kw = cli._node_conn(argparse.Namespace(**dict(base, partner_token_file=str(f))))
    assert (kw["token"], kw["partner_token"], kw["port"]) == ("ours", "partner-secret", 9)
