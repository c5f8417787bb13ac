"""The Node object and its Lease, as kubelet keeps them.

* Registration: create the Node (labels, capacity, addresses, daemon endpoint, podCIDR), or take
  over an existing one of the same name (an agent restart) and bring its labels/spec up to date.
* Heartbeat: the Lease ``kube-node-lease/<node>`` is renewed every ``lease_renew_seconds``
  (leaseDurationSeconds 40 / renew 10 s, kubelet's defaults). The node status itself is written
  when it changes and every ``node_status_seconds`` (kubelet's nodeStatusReportFrequency idea):
  the lease is the cheap heartbeat, the status the expensive one.
* Leases are written with the last seen resourceVersion (compare-and-swap, no GET per renewal).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import time
import uuid
from typing import Any

from centaurus.agent.config import (
    ENDPOINT_ANNOTATION,
    LEASE_NAMESPACE,
    REGION_LABEL,
    SITE_LABEL,
    SITE_TYPE_LABEL,
    ZONE_LABEL,
    AgentConfig,
)
from centaurus.agent.podstatus import ts
from centaurus.client.rest import ApiError

log = logging.getLogger("centaurus.agent.node")
Obj = dict[str, Any]
VERSION = "v1.33.0-centaurus"


def node_labels(cfg: AgentConfig) -> dict[str, str]:
    labels = {
        "kubernetes.io/hostname": cfg.node_name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "node-role.kubernetes.io/worker": "",
        ZONE_LABEL: cfg.zone,
        REGION_LABEL: cfg.region,
        SITE_TYPE_LABEL: cfg.site_type,
        SITE_LABEL: cfg.site or cfg.zone,
    }
    labels.update(cfg.labels)
    return labels


def node_conditions(ready: bool, now: float, prev: list[Obj] | None = None, message: str = "") -> list[Obj]:
    old = {c.get("type"): c for c in prev or []}
    out = []
    for kind, ok, reason, msg in (
        ("MemoryPressure", False, "KubeletHasSufficientMemory", "agent has sufficient memory available"),
        ("DiskPressure", False, "KubeletHasNoDiskPressure", "agent has no disk pressure"),
        ("PIDPressure", False, "KubeletHasSufficientPID", "agent has sufficient PID available"),
        (
            "Ready",
            ready,
            "KubeletReady" if ready else "KubeletNotReady",
            message or ("agent is posting ready status" if ready else "agent is not ready"),
        ),
    ):
        status = "True" if ok else "False"
        prev_c = old.get(kind)
        trans = prev_c.get("lastTransitionTime") if prev_c and prev_c.get("status") == status else ts(now)
        out.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": msg,
                "lastHeartbeatTime": ts(now),
                "lastTransitionTime": trans,
            }
        )
    return out


def node_object(
    cfg: AgentConfig,
    *,
    endpoint: str,
    port: int,
    pod_cidr: str | None,
    ready: bool,
    now: float,
    runtime_version: str = "crun",
    prev: Obj | None = None,
) -> Obj:
    capacity = {
        "cpu": cfg.cpu,
        "memory": cfg.memory,
        "pods": str(cfg.pods),
        "ephemeral-storage": "100Gi",
        "hugepages-2Mi": "0",
    }
    spec: Obj = {}
    if pod_cidr:
        spec = {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}
    boot = _boot_id()
    md: Obj = {"name": cfg.node_name, "labels": node_labels(cfg)}
    if endpoint:
        md["annotations"] = {ENDPOINT_ANNOTATION: endpoint}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": md,
        "spec": spec,
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": node_conditions(ready, now, ((prev or {}).get("status") or {}).get("conditions")),
            "addresses": [
                {"type": "InternalIP", "address": cfg.host_ip},
                {"type": "Hostname", "address": cfg.node_name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            "nodeInfo": {
                "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, cfg.node_name).hex,
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, cfg.node_name)),
                "bootID": boot,
                "kernelVersion": platform.release(),
                "osImage": "Centaurus node agent",
                "containerRuntimeVersion": runtime_version,
                "kubeletVersion": VERSION,
                "kubeProxyVersion": VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }


def _boot_id() -> str:
    with contextlib.suppress(OSError), open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()
    return ""


class NodeRegistration:
    """Registers one node, keeps its Lease fresh and its status current."""

    def __init__(self, client: Any, cfg: AgentConfig) -> None:
        self.client, self.cfg = client, cfg
        self.endpoint = ""
        self.port = 0
        self.pod_cidr: str | None = None
        self.runtime_version = "crun"
        self.uid: str | None = None
        self.ready = False
        self._lease_rv: str | None = None
        self._last_status: Obj | None = None
        self._task: asyncio.Task[None] | None = None
        self._status_due = 0.0
        self.lease_renewals = 0

    async def register(self) -> Obj:
        now = time.time()
        want = node_object(
            self.cfg,
            endpoint=self.endpoint,
            port=self.port,
            pod_cidr=self.pod_cidr,
            ready=self.ready,
            now=now,
            runtime_version=self.runtime_version,
        )
        try:
            cur = await self.client.create("nodes", {k: v for k, v in want.items() if k != "status"})
        except ApiError as exc:
            if exc.code != 409:
                raise
            cur = await self.client.get("nodes", self.cfg.node_name)
            md = cur["metadata"]
            md.setdefault("labels", {}).update(want["metadata"]["labels"])
            if self.endpoint:
                md.setdefault("annotations", {}).update(want["metadata"]["annotations"])
            if self.pod_cidr and not (cur.get("spec") or {}).get("podCIDR"):
                cur.setdefault("spec", {}).update(want["spec"])
            cur = await self.client.replace("nodes", cur)
        self.uid = cur["metadata"]["uid"]
        await self.write_status(force=True, prev=cur)
        node: Obj = cur
        await self._ensure_lease_namespace()
        await self.renew_lease()
        return node

    async def write_status(self, *, force: bool = False, prev: Obj | None = None) -> None:
        now = time.time()
        obj = node_object(
            self.cfg,
            endpoint=self.endpoint,
            port=self.port,
            pod_cidr=self.pod_cidr,
            ready=self.ready,
            now=now,
            runtime_version=self.runtime_version,
            prev=prev or self._last_status,
        )
        st = obj["status"]
        if not force and self._last_status is not None and now < self._status_due:
            old = self._last_status.get("status") or {}
            if [(c["type"], c["status"]) for c in old.get("conditions", [])] == [
                (c["type"], c["status"]) for c in st["conditions"]
            ]:
                return
        await self.client.patch("nodes", self.cfg.node_name, {"status": st}, subresource="status")
        self._last_status = obj
        self._status_due = now + self.cfg.node_status_seconds

    async def _ensure_lease_namespace(self) -> None:
        with contextlib.suppress(ApiError):
            await self.client.create(
                "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NAMESPACE}}
            )

    def lease_object(self, now: float) -> Obj:
        md: Obj = {"name": self.cfg.node_name, "namespace": LEASE_NAMESPACE}
        if self.uid:
            md["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "Node", "name": self.cfg.node_name, "uid": self.uid}
            ]
        if self._lease_rv:
            md["resourceVersion"] = self._lease_rv
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": md,
            "spec": {
                "holderIdentity": self.cfg.node_name,
                "leaseDurationSeconds": self.cfg.lease_duration_seconds,
                "renewTime": ts(now),
            },
        }

    async def renew_lease(self) -> None:
        lease = self.lease_object(time.time())
        gv = "coordination.k8s.io/v1"
        try:
            if self._lease_rv is None:
                try:
                    out = await self.client.create(
                        "leases", lease, namespace=LEASE_NAMESPACE, group_version=gv
                    )
                except ApiError as exc:
                    if exc.code != 409:
                        raise
                    cur = await self.client.get(
                        "leases", self.cfg.node_name, namespace=LEASE_NAMESPACE, group_version=gv
                    )
                    self._lease_rv = cur["metadata"]["resourceVersion"]
                    out = await self.client.replace(
                        "leases", self.lease_object(time.time()), group_version=gv
                    )
            else:
                out = await self.client.replace("leases", lease, group_version=gv)
        except ApiError as exc:
            if exc.code in (409, 404):
                self._lease_rv = None  # someone else wrote it, or it was deleted: start over
            raise
        self._lease_rv = out["metadata"]["resourceVersion"]
        self.lease_renewals += 1

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.lease_renew_seconds)
            try:
                await self.renew_lease()
                await self.write_status()
            except (TimeoutError, ApiError, OSError) as exc:
                log.warning("node %s heartbeat: %s", self.cfg.node_name, exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def set_ready(self, ready: bool) -> None:
        self.ready = ready
        await self.write_status(force=True)

    async def unregister(self) -> None:
        """Remove the Node and its Lease (used when a node is taken away for good)."""
        with contextlib.suppress(ApiError):
            await self.client.delete(
                "leases",
                self.cfg.node_name,
                namespace=LEASE_NAMESPACE,
                group_version="coordination.k8s.io/v1",
                missing_ok=True,
            )
        with contextlib.suppress(ApiError):
            await self.client.delete("nodes", self.cfg.node_name, missing_ok=True)


def hostname() -> str:
    return os.uname().nodename
