"""A real control plane per test (API server on sqlite + the scheduler component the supervisor
starts through the ``centaurus.components`` entry point; no controllers), nodes created as
objects: the scheduler only reads Node objects, so no agent is needed here."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from centaurus.client.rest import ApiClient, ApiError
from centaurus.controlplane.supervisor import ControlPlane

Obj = dict[str, Any]


def uid(prefix: str) -> str:
    return f"cl-{prefix}-{secrets.token_hex(2)}"


def node_obj(
    name: str,
    cpu: str = "4",
    mem: str = "8Gi",
    *,
    zone: str = "az1",
    ready: bool = True,
    labels: dict[str, str] | None = None,
    taints: list[Obj] | None = None,
) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone, **(labels or {})}},
        "spec": {"taints": taints} if taints else {},
        "status": {
            "capacity": {"cpu": cpu, "memory": mem, "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": mem, "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pod_obj(name: str, cpu: str = "100m", mem: str = "64Mi", **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu, "memory": mem}}}
            ],
            **spec,
        },
    }


def wait(fn: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(ApiError):
            last = fn()
            if last:
                return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ApiClient]:
    cp = ControlPlane(tmp_path / "cp")
    try:
        cp.up(partitions=1, port=0, controllers=False)
        api = ApiClient.from_kubeconfig(str(cp.kubeconfig))
        yield api
        api.close()
    finally:
        cp.down()
