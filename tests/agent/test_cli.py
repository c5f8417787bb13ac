"""``centaurus node start --hollow`` / ``list`` / ``stop --hollow`` against a running control plane."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "centaurus.cli.main", *args], capture_output=True, text=True, timeout=90
    )


def test_node_cli_hollow_fleet(cluster: Cluster) -> None:
    state = str(cluster.base / "target")
    cp = cli("node", "start", "--hollow", "--count", "12", "--zones", "edge-a", "--state-dir", state)
    assert cp.returncode == 0, cp.stderr
    assert "12 hollow nodes" in cp.stdout
    nodes = cluster.api.list("nodes", labelSelector="topology.kubernetes.io/zone=edge-a")["items"]
    assert len(nodes) == 12
    cp = cli("node", "list", "--state-dir", state)
    assert "hollow fleet" in cp.stdout and "12 nodes" in cp.stdout
    cp = cli("node", "stop", "--hollow", "--state-dir", state)
    assert cp.returncode == 0, cp.stderr
    assert not cluster.api.list("nodes", labelSelector="topology.kubernetes.io/zone=edge-a")["items"]


def test_node_cli_errors_are_one_line(tmp_path: object) -> None:
    cp = cli("node", "start", "--hollow", "--state-dir", str(tmp_path))
    assert cp.returncode != 0 and "no control plane" in cp.stderr and "Traceback" not in cp.stderr
