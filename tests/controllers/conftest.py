"""Fixtures of the controller tests: a real control plane (API server on sqlite + the scheduler
component), controller instances as real processes (so they can be killed), and fake node agents:
Node objects whose leases a thread renews and whose bound pods it reports Running/Ready (what a
kubelet would do), so workload controllers see ready replicas without containers."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from centaurus.client.rest import ApiClient, ApiError, resource_path
from centaurus.controlplane.supervisor import ControlPlane

Obj = dict[str, Any]
LEASE_NS = "kube-node-lease"


def uid(prefix: str) -> str:
    return f"cl-{prefix}-{secrets.token_hex(2)}"


def micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def wait(fn: Callable[[], Any], timeout: float = 30.0, what: str = "condition", interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(ApiError):
            last = fn()
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")


class Cluster:
    def __init__(self, cp: ControlPlane, tmp: Path) -> None:
        self.cp = cp
        self.tmp = tmp
        self.api = ApiClient.from_kubeconfig(str(cp.kubeconfig))
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.agents: FakeAgents | None = None

    def start_controllers(self, instance: str, *extra: str, lease: float = 2.0) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{instance}.log", "ab")  # noqa: SIM115 - owned by the process
        argv = [
            sys.executable,
            "-m",
            "centaurus.controllers",
            "--kubeconfig",
            str(self.cp.kubeconfig),
            "--instance",
            instance,
            "--lease-duration",
            str(lease),
            "--renew-every",
            str(lease / 4),
            "--log-level",
            "INFO",
            *extra,
        ]
        p = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
        self.procs[instance] = p
        return p

    def kill(self, instance: str) -> None:
        p = self.procs.pop(instance)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()

    def log(self, instance: str) -> str:
        return (self.tmp / f"{instance}.log").read_text()

    def agents_for(self, names: list[str], *, zones: list[str] | None = None, lease: int = 2) -> FakeAgents:
        self.agents = FakeAgents(self.api, names, zones or ["az1"] * len(names), lease)
        self.agents.start()
        return self.agents

    def close(self) -> None:
        if self.agents is not None:
            self.agents.stop()
        for p in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.api.close()


class FakeAgents(threading.Thread):
    """Node objects + leases renewed every ``lease/4`` s; pods bound to a live node become
    Running/Ready, terminating ones are removed (grace 0). ``stop_node(n)`` = the agent dies."""

    def __init__(self, api: ApiClient, names: list[str], zones: list[str], lease: int) -> None:
        super().__init__(daemon=True)
        self.api, self.lease = api, lease
        self.live = set(names)
        self._halt = threading.Event()
        with contextlib.suppress(ApiError):
            api.create(
                "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NS}}
            )
        for name, zone in zip(names, zones, strict=True):
            api.create(
                "nodes",
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "labels": {"topology.kubernetes.io/zone": zone, "kubernetes.io/hostname": name},
                    },
                    "status": {
                        "capacity": {"cpu": "8", "memory": "16Gi", "pods": "110"},
                        "allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"},
                        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                    },
                },
            )
            self._renew(name)

    def _renew(self, name: str) -> None:
        spec = {"holderIdentity": name, "leaseDurationSeconds": self.lease, "renewTime": micro_now()}
        try:
            self.api.patch("leases", name, {"spec": spec}, namespace=LEASE_NS)
        except ApiError as exc:
            if exc.code != 404:
                raise
            self.api.create(
                "leases",
                {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": name},
                    "spec": spec,
                },
                namespace=LEASE_NS,
            )

    def stop_node(self, name: str) -> None:
        self.live.discard(name)

    def run(self) -> None:
        last = 0.0
        while not self._halt.is_set():
            with contextlib.suppress(Exception):
                if time.monotonic() - last > self.lease / 4:
                    for n in list(self.live):
                        self._renew(n)
                    last = time.monotonic()
                    self._report_ready()
                self._pods()
            self._halt.wait(0.1)

    def _report_ready(self) -> None:
        """Like a kubelet: a node whose Ready condition is not True (e.g. set Unknown by the node
        lifecycle controller while this agent was away) gets it posted again."""
        for n in list(self.live):
            node = self.api.get("nodes", n)
            conds = node.get("status", {}).get("conditions", [])
            if any(c["type"] == "Ready" and c["status"] != "True" for c in conds):
                fixed = [
                    {
                        **c,
                        "status": "True",
                        "reason": "KubeletReady",
                        "message": "kubelet is posting ready status",
                    }
                    if c["type"] == "Ready"
                    else c
                    for c in conds
                ]
                self.api.patch("nodes", n, {"status": {"conditions": fixed}}, subresource="status")

    def _pods(self) -> None:
        for p in self.api.list("pods", tenant="all")["items"]:
            md, node = p["metadata"], p["spec"].get("nodeName")
            if node not in self.live:
                continue
            ns, tenant = md.get("namespace"), md.get("tenant")
            if md.get("deletionTimestamp"):
                path = resource_path("pods", namespace=ns, name=md["name"], tenant=tenant)
                with contextlib.suppress(ApiError):
                    self.api.request(
                        "DELETE",
                        path,
                        body={"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0},
                    )
                continue
            st = p.get("status") or {}
            if st.get("phase") == "Running":
                continue
            now = micro_now()
            conds = [c for c in st.get("conditions") or () if c["type"] == "PodScheduled"]
            conds.append({"type": "Ready", "status": "True", "lastTransitionTime": now})
            with contextlib.suppress(ApiError):
                self.api.patch(
                    "pods",
                    md["name"],
                    {
                        "status": {
                            "phase": "Running",
                            "conditions": conds,
                            "podIP": "10.0.0.1",
                            "startTime": now,
                        }
                    },
                    namespace=ns,
                    tenant=tenant,
                    subresource="status",
                )

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    cp = ControlPlane(tmp_path / "cp")
    c: Cluster | None = None
    try:
        cp.up(partitions=2, port=0, controllers=False)
        c = Cluster(cp, tmp_path)
        yield c
    finally:
        if c is not None:
            c.close()
        cp.down()
