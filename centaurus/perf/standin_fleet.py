"""A stand-in hollow-node fleet for the density campaign, used only while the node agent's own
hollow mode (``python -m centaurus.agent.hollow``, same CLI) is not installed.

One process holds N "nodes": it registers their Node objects and Leases, renews the leases spread
evenly over the renew period, and plays kubelet for the pods bound to them (Running + Ready + a
pod IP at once, grace-0 deletes of terminating ones) -- what a KWOK node does. It is not a node
agent (no runtime, no network hook); it exists so the scheduler, the controllers and the API
server can be measured at size.

``--state-file F``: written as ``{"pid", "nodes": [...], "ready": true}`` once every Node and
Lease exists; SIGUSR1 re-reads the wanted count from ``F.want`` (grows or shrinks).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import uvloop

from centaurus.client.aio import AsyncClient
from centaurus.client.rest import ApiError
from centaurus.controllers.runtime.sharding import micro_time

LEASE_NS = "kube-node-lease"
Obj = dict[str, Any]


class StandInFleet:
    def __init__(self, api: AsyncClient, args: argparse.Namespace) -> None:
        self.api, self.args = api, args
        self.nodes: list[str] = []
        self.state = Path(args.state_file) if args.state_file else None
        self.zones = [z for z in args.zones.split(",") if z]
        self._resize = asyncio.Event()
        self.want = args.count

    def _node(self, name: str, i: int) -> Obj:
        zone = self.zones[i % len(self.zones)]
        cap = {"cpu": self.args.cpu, "memory": self.args.memory, "pods": str(self.args.pods)}
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {
                    "kubernetes.io/hostname": name,
                    "topology.kubernetes.io/zone": zone,
                    "topology.kubernetes.io/region": "region-1",
                    "centaurus.io/site-type": "cloud",
                    "centaurus.io/site": zone,
                    "centaurus.io/hollow": "true",
                },
            },
            "status": {
                "capacity": cap,
                "allocatable": cap,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "KubeletReady",
                        "lastTransitionTime": micro_time(),
                    }
                ],
            },
        }

    async def _renew(self, name: str) -> None:
        spec = {
            "holderIdentity": name,
            "leaseDurationSeconds": self.args.lease_duration,
            "renewTime": micro_time(),
        }
        try:
            await self.api.patch("leases", name, {"spec": spec}, namespace=LEASE_NS, tenant="system")
        except ApiError as exc:
            if exc.code != 404:
                raise
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": name},
                "spec": spec,
            }
            with contextlib.suppress(ApiError):
                await self.api.create("leases", body, namespace=LEASE_NS, tenant="system")

    async def _register(self, names: list[tuple[int, str]]) -> None:
        sem = asyncio.Semaphore(32)

        async def one(i: int, name: str) -> None:
            async with sem:
                try:
                    await self.api.create("nodes", self._node(name, i))
                except ApiError as exc:
                    if exc.code != 409:
                        raise
                await self._renew(name)

        await asyncio.gather(*(one(i, n) for i, n in names))

    async def _resize_to(self, n: int) -> None:
        if n > len(self.nodes):
            new = [(i, f"{self.args.prefix}-{i}") for i in range(len(self.nodes), n)]
            await self._register(new)
            self.nodes += [name for _, name in new]
        elif n < len(self.nodes):
            gone, self.nodes = self.nodes[n:], self.nodes[:n]
            for name in gone:
                await self.api.delete("nodes", name, missing_ok=True)
                await self.api.delete("leases", name, namespace=LEASE_NS, tenant="system", missing_ok=True)
        self._write_state()

    def _write_state(self) -> None:
        if self.state is None:
            return
        tmp = self.state.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "nodes": self.nodes, "ready": True}))
        tmp.replace(self.state)

    async def _lease_loop(self) -> None:
        """Each lease renewed once per period, spread evenly over it."""
        period = float(self.args.lease_renew)
        while True:
            t0 = time.monotonic()
            names = list(self.nodes)
            step = period / max(1, len(names))
            for k, name in enumerate(names):
                with contextlib.suppress(ApiError, OSError, TimeoutError):
                    await self._renew(name)
                delay = t0 + (k + 1) * step - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await asyncio.sleep(max(0.0, t0 + period - time.monotonic()))

    async def _pod_loop(self) -> None:
        mine = f"{self.args.prefix}-"
        sem = asyncio.Semaphore(32)
        tasks: set[asyncio.Task[None]] = set()

        async def running(pod: Obj) -> None:
            md = pod["metadata"]
            now = micro_time()
            conds = [
                c
                for c in (pod.get("status") or {}).get("conditions") or ()
                if c.get("type") == "PodScheduled"
            ]
            conds += [
                {"type": t, "status": "True", "lastTransitionTime": now}
                for t in ("Initialized", "ContainersReady", "Ready")
            ]
            status = {
                "phase": "Running",
                "podIP": "10.244.0.1",
                "hostIP": "10.199.0.1",
                "startTime": now,
                "conditions": conds,
                "containerStatuses": [
                    {
                        "name": c.get("name", "c"),
                        "ready": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": now}},
                    }
                    for c in (pod.get("spec") or {}).get("containers") or ()
                ],
            }
            async with sem:
                with contextlib.suppress(ApiError, OSError, TimeoutError):
                    await self.api.patch(
                        "pods",
                        md["name"],
                        {"status": status},
                        namespace=md.get("namespace"),
                        tenant=md.get("tenant"),
                        subresource="status",
                    )

        async def remove(pod: Obj) -> None:
            md = pod["metadata"]
            async with sem:
                with contextlib.suppress(ApiError, OSError, TimeoutError):
                    await self.api.delete(
                        "pods",
                        md["name"],
                        namespace=md.get("namespace"),
                        tenant=md.get("tenant"),
                        grace_period=0,
                        missing_ok=True,
                    )

        async for ev in self.api.list_watch("pods", tenant="all"):
            pods = ev["items"] if ev["type"] == "SYNC" else [ev["object"]] if ev["type"] != "DELETED" else []
            for pod in pods:
                node = (pod.get("spec") or {}).get("nodeName") or ""
                if not node.startswith(mine):
                    continue
                if pod["metadata"].get("deletionTimestamp"):
                    job = remove(pod)
                elif (pod.get("status") or {}).get("phase") == "Pending":
                    job = running(pod)
                else:
                    continue
                t = asyncio.create_task(job)
                tasks.add(t)
                t.add_done_callback(tasks.discard)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, self._resize.set)
        await self._resize_to(self.want)
        print(f"ready {len(self.nodes)}", flush=True)
        tasks = [asyncio.create_task(self._lease_loop()), asyncio.create_task(self._pod_loop())]
        try:
            while True:
                await self._resize.wait()
                self._resize.clear()
                if self.state is not None:
                    with contextlib.suppress(OSError, ValueError):
                        self.want = int(Path(str(self.state) + ".want").read_text().strip())
                await self._resize_to(self.want)
                print(f"ready {len(self.nodes)}", flush=True)
        finally:
            for t in tasks:
                t.cancel()


def main() -> None:
    ap = argparse.ArgumentParser(prog="centaurus-standin-fleet")
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--prefix", default="hollow")
    ap.add_argument("--zones", default="az1,az2,az3")
    ap.add_argument("--cpu", default="32")
    ap.add_argument("--memory", default="256Gi")
    ap.add_argument("--pods", type=int, default=110)
    ap.add_argument("--lease-duration", type=int, default=240)
    ap.add_argument("--lease-renew", type=float, default=60.0)
    ap.add_argument("--state-file", default="")
    args = ap.parse_args()
    uvloop.install()

    async def go() -> None:
        api = AsyncClient.from_kubeconfig(args.kubeconfig, pool=64)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        runner = asyncio.create_task(StandInFleet(api, args).run())
        await asyncio.wait([runner, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await api.close()

    asyncio.run(go())


if __name__ == "__main__":
    main()
