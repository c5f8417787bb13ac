"""Mizar endpoints for hollow nodes' pods (scale runs: SCALE-3 "network endpoints per region").

A hollow node runs no workload, but the management plane should do all of its real work for its
pods so that its cost per endpoint can be measured: Endpoint objects, the subnet's address pool,
the pipeline and its two writes, the transitd calls to the endpoint's droplet and to the
network's bouncers (real droplets when the network's VPC is a real one). Only the hollow nodes'
own droplets are hollow: one hollow transit daemon inside the fleet's process serves all of them
(addresses ``hollow:<socket>#<node>``), and their Droplet objects carry ``mizar.com/hollow=true``
(never chosen to host bouncers or dividers of real VPCs).

One instance per fleet process: one endpoint watch (label ``mizar.com/hollow-fleet=<fleet>``)
wakes every waiting pod, whatever the number of nodes. Used by the hollow fleet
(``centaurus/agent/hollow.py``): :meth:`add_node` when a node registers, :meth:`setup` instead of
the node's own address pool for pods of a mizar network (NetworkError ``InvalidNetwork`` for other
networks: keep the pool), :meth:`teardown` when a pod goes, :meth:`close` at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from centaurus.client.rest import ApiError
from centaurus.mizar import model as M
from centaurus.mizar.hollow import HollowTransit
from centaurus.mizar.podendpoint import ProvisionWaiters, pod_endpoint
from centaurus.netplug.base import NetworkError, PodNetRequest, PodNetResult
from centaurus.netplug.mizar import pod_mac, resolve_network

log = logging.getLogger("centaurus.mizar.hollownet")
L_FLEET = "mizar.com/hollow-fleet"
Obj = dict[str, Any]
WHERE = {"namespace": M.MIZAR_NS, "tenant": M.SYSTEM, "group_version": M.GV}


class HollowEndpoints:
    def __init__(self, api: Any, state_dir: Path, fleet: str, provision_timeout: float = 60.0) -> None:
        self.api = api
        self.fleet = fleet
        self.transit = HollowTransit(Path(state_dir) / f"hollow-transitd-{fleet}.sock")
        self.provision_timeout = provision_timeout
        self._waiters = ProvisionWaiters()
        self._nets: dict[tuple[str, str], tuple[float, Obj]] = {}
        self._watch: asyncio.Task[None] | None = None
        self.nodes: set[str] = set()

    async def start(self) -> None:
        await self.transit.start()
        self._watch = asyncio.ensure_future(self._run_watch())

    async def _run_watch(self) -> None:
        while True:
            try:
                async for ev in self.api.list_watch(
                    "endpoints", tenant="all", group_version=M.GV, label_selector=f"{L_FLEET}={self.fleet}"
                ):
                    for o in ev["items"] if ev["type"] == "SYNC" else [ev.get("object") or {}]:
                        self._waiters.note(M.key_of(o), o)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("hollow endpoint watch: %s", exc)
                await asyncio.sleep(0.5)

    async def add_node(self, name: str, ip: str, zone: str = "") -> None:
        body = {
            "apiVersion": M.GV,
            "kind": "Droplet",
            "metadata": {"name": name, "labels": {M.L_HOLLOW: "true", L_FLEET: self.fleet}},
            "spec": {
                "ip": ip,
                "mac": "02:00:00:00:00:01",
                "zone": zone,
                "transitd": self.transit.address(name),
            },
        }
        try:
            await self.api.create("droplets", body, **WHERE)
        except ApiError as exc:
            if exc.code != 409:
                raise
        self.nodes.add(name)

    async def remove_node(self, name: str) -> None:
        self.nodes.discard(name)
        with contextlib.suppress(ApiError):
            await self.api.delete("droplets", name, missing_ok=True, **WHERE)

    async def setup(self, pod: PodNetRequest, node: str) -> PodNetResult:
        net = await resolve_network(self.api, pod, self._nets)
        st = M.status(net)
        key = f"{pod.tenant}/{pod.namespace}/{pod.name}"
        fut = self._waiters.expect(key)
        body = pod_endpoint(
            pod,
            droplet=node,
            node=node,
            vpc=st["vpc"],
            subnet=st["subnet"],
            veth="hollow",
            mac=pod_mac(pod.uid),
            labels={L_FLEET: self.fleet},
        )
        t0 = time.perf_counter()
        try:
            try:
                await self.api.create(
                    "endpoints", body, namespace=pod.namespace, tenant=pod.tenant, group_version=M.GV
                )
            except ApiError as exc:
                if exc.code != 409:
                    raise NetworkError(f"endpoint {key}: {exc}", "EndpointNotProvisioned") from None
                cur = await self.api.get(
                    "endpoints", pod.name, namespace=pod.namespace, tenant=pod.tenant, group_version=M.GV
                )
                if M.spec(cur).get("podUid") != pod.uid:
                    raise NetworkError(
                        f"endpoint {key} is held by an earlier pod", "EndpointNotProvisioned"
                    ) from None
                self._waiters.note(key, cur)
            ep = await self._waiters.wait(key, fut, self.provision_timeout)
        except BaseException:
            self._waiters.forget(key, fut)
            raise
        if M.phase(ep) == M.FAILED:
            raise NetworkError(f"endpoint {key}: {M.status(ep).get('reason')}", "EndpointFailed")
        es = M.status(ep)
        return PodNetResult(
            netns_path=None,
            ip=str(M.spec(ep)["ip"]),
            prefix_len=int(es["prefix"]),
            gateway=str(es["gateway"]),
            mac=pod_mac(pod.uid),
            extra={
                "endpoint": key,
                "vni": int(es.get("vni") or 0),
                "endpoint_ms": (time.perf_counter() - t0) * 1e3,
            },
        )

    async def teardown(self, tenant: str, namespace: str, name: str) -> None:
        """Delete the pod's endpoint (its finalizer removes it from the bouncers; no wait)."""
        with contextlib.suppress(ApiError):
            await self.api.delete(
                "endpoints", name, namespace=namespace, tenant=tenant, group_version=M.GV, missing_ok=True
            )

    async def close(self, *, remove_nodes: bool = False) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        self._waiters.cancel_all()
        if remove_nodes:
            await asyncio.gather(*(self.remove_node(n) for n in list(self.nodes)), return_exceptions=True)
        await self.transit.stop()
