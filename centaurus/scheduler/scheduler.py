"""The scheduler: pending pods -> filter + score over all nodes -> bind through ``pods/binding``.

Throughput comes from three things: decisions are vector operations over every node at once
(:mod:`nodetable`), binds are POSTed concurrently (``bind_concurrency`` in flight) while the next
decisions are made, and a decision *assumes* its pod on the node at once (kube-scheduler's assume
cache) so the next pod already sees the resources taken, without waiting for the watch.

Pods no node fits get ``PodScheduled=False`` (reason ``Unschedulable``) with kube-scheduler's
message (``0/3 nodes are available: 3 Insufficient cpu.``) and a ``FailedScheduling`` Warning
Event, and wait in the unschedulable queue until the cluster changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from centaurus.client.aio import AsyncClient
from centaurus.client.rest import ApiError
from centaurus.controllers.runtime.informer import FuncHandler, Informer, object_key
from centaurus.scheduler import spread
from centaurus.scheduler.binder import Binder
from centaurus.scheduler.filters import failure_message
from centaurus.scheduler.nodetable import NodeTable
from centaurus.scheduler.podinfo import owner_uid, slim_for_scheduler, slim_node
from centaurus.scheduler.queue import SchedulingQueue

log = logging.getLogger("centaurus.scheduler")
Obj = dict[str, Any]
Req = tuple[float, float, float, float]


def micro_now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


class Scheduler:
    def __init__(
        self,
        api: AsyncClient,
        *,
        name: str = "default-scheduler",
        bind_concurrency: int = 64,
        bind_connections: int = 0,
        bind_depth: int = 1,
        batch: int = 256,
        scheduled_events: bool = False,
        stats_file: Path | None = None,
    ) -> None:
        self.api = api
        self.name = name
        self.batch = batch
        self.scheduled_events = scheduled_events
        self.stats_file = stats_file
        self.table = NodeTable()
        self.queue = SchedulingQueue()
        self.nodes = Informer(api, "nodes", tenant=None, transform=slim_node)
        self.pods = Informer(
            api, "pods", tenant="all", transform=slim_for_scheduler, update_transform=slim_for_scheduler
        )
        self.pods.add_index(
            "ns", lambda p: [f"{p['metadata'].get('tenant')}/{p['metadata'].get('namespace')}"]
        )
        self.nodes.add_handler(FuncHandler(self._on_node))
        self.pods.add_handler(FuncHandler(self._on_pod))
        #: pod key -> (node name, requests, owner) of every bound or assumed pod we account for
        self.bound: dict[str, tuple[str, Req, str | None]] = {}
        self.by_node: dict[str, set[str]] = {}
        self.assumed: set[str] = set()
        self.owner_nodes: dict[str, Counter[int]] = {}
        self.owner_zones: dict[str, Counter[int]] = {}
        self._sem = asyncio.Semaphore(bind_concurrency)
        self.binder = Binder(api, connections=bind_connections or bind_concurrency, depth=bind_depth)
        self._failed: dict[str, tuple[str, float]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._rng = np.random.default_rng(random.randrange(2**32))
        self.stats: dict[str, Any] = {
            "scheduled": 0,
            "attempts": 0,
            "unschedulable": 0,
            "bind_errors": 0,
            "first_bind": None,
            "last_bind": None,
        }
        self.latencies: list[float] = []  # queue -> bound, seconds (last 100k)

    # ---- accounting ----------------------------------------------------------------------------
    def _account(self, key: str, node: str, req: Req, owner: str | None) -> None:
        self.bound[key] = (node, req, owner)
        self.by_node.setdefault(node, set()).add(key)
        i = self.table.index.get(node)
        if i is not None:
            self.table.add(i, req)
            if owner:
                self.owner_nodes.setdefault(owner, Counter())[i] += 1
                self.owner_zones.setdefault(owner, Counter())[int(self.table.zone[i])] += 1

    def _release(self, key: str) -> bool:
        entry = self.bound.pop(key, None)
        self.assumed.discard(key)
        if entry is None:
            return False
        node, req, owner = entry
        keys = self.by_node.get(node)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self.by_node[node]
        i = self.table.index.get(node)
        if i is not None:
            self.table.add(i, req, -1.0)
            if owner:
                self._dec(self.owner_nodes, owner, i)
                self._dec(self.owner_zones, owner, int(self.table.zone[i]))
        return True

    @staticmethod
    def _dec(counts: dict[str, Counter[int]], owner: str, k: int) -> None:
        c = counts.get(owner)
        if c is None:
            return
        c[k] -= 1
        if c[k] <= 0:
            del c[k]
        if not c:
            del counts[owner]

    # ---- events --------------------------------------------------------------------------------
    def _on_node(self, typ: str, old: Obj | None, new: Obj | None) -> None:
        if typ == "DELETED" and old is not None:
            name = str(old["metadata"]["name"])
            for key in list(self.by_node.get(name, ())):  # keep entries: the pods still exist
                entry = self.bound[key]
                i = self.table.index.get(name)
                if i is not None:
                    self.table.add(i, entry[1], -1.0)
            self.table.remove(name)
            return
        assert new is not None
        name = str(new["metadata"]["name"])
        fresh = name not in self.table.index
        version = self.table.version
        i = self.table.upsert(new)
        if fresh:
            for key in self.by_node.get(name, ()):  # pods bound before we saw their node
                req = self.bound[key][1]
                self.table.add(i, req)
        if self.table.version != version:
            self.queue.move_unschedulable()

    def _wants(self, pod: Obj) -> bool:
        spec, md = pod.get("spec") or {}, pod.get("metadata") or {}
        return (
            not spec.get("nodeName")
            and (spec.get("schedulerName") or "default-scheduler") == self.name
            and not md.get("deletionTimestamp")
            and (pod.get("status") or {}).get("phase", "Pending") == "Pending"
        )

    def _on_pod(self, typ: str, old: Obj | None, new: Obj | None) -> None:
        pod = new if new is not None else old
        assert pod is not None
        key = object_key(pod)
        if typ == "DELETED" or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            self.queue.remove(key)
            self._failed.pop(key, None)
            if self._release(key):
                self.queue.move_unschedulable()
            return
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            self.queue.remove(key)
            self._failed.pop(key, None)
            cur = self.bound.get(key)
            if cur is not None and cur[0] == node:
                self.assumed.discard(key)  # our assumption confirmed
                return
            if cur is not None:
                self._release(key)
            req = pod.get("_req") or (0.0, 0.0, 0.0, 0.0)
            self._account(key, str(node), tuple(req), owner_uid(pod.get("metadata") or {}))
            return
        if self._wants(pod):
            self.queue.add(key)

    # ---- decisions -----------------------------------------------------------------------------
    def _peers(self, pod: Obj) -> list[tuple[Obj, int]]:
        md = pod.get("metadata") or {}
        out = []
        for p in self.pods.by_index("ns", f"{md.get('tenant')}/{md.get('namespace')}"):
            entry = self.bound.get(object_key(p))
            if entry is not None and (i := self.table.index.get(entry[0])) is not None:
                out.append((p, i))
        return out

    def decide(self, pod: Obj) -> int | None:
        """The node slot for ``pod`` (None: no node fits)."""
        spec = pod.get("spec") or {}
        req: Req = tuple(pod.get("_req") or (0.0, 0.0, 0.0, 0.0))
        static = self.table.static_mask(str(pod.get("_sig") or ""), spec)
        fit = self.table.fits(static, req)
        soft = None
        if spec.get("topologySpreadConstraints"):
            fit, soft = spread.apply(self.table, pod, fit, lambda: self._peers(pod))
        if not fit.any():
            return None
        score = self.table.least_allocated(req)
        owner = owner_uid(pod.get("metadata") or {})
        if owner and owner in self.owner_nodes:
            score = score + self.table.spread(self.owner_nodes[owner], self.owner_zones.get(owner, Counter()))
        if soft is not None:
            score = score + 2.0 * soft
        score = score + self._rng.random(len(score))  # random among equals, like upstream
        score[~fit] = -np.inf
        return int(np.argmax(score))

    # ---- the loop ------------------------------------------------------------------------------
    async def run(self) -> None:
        tasks = [asyncio.create_task(self.nodes.run()), asyncio.create_task(self.pods.run())]
        if self.stats_file is not None:
            tasks.append(asyncio.create_task(self._write_stats()))
        try:
            await self.nodes.wait_synced()
            await self.pods.wait_synced()
            log.info(
                "synced: %d nodes, %d pods, %d pending",
                len(self.table),
                len(self.pods.cache),
                len(self.queue),
            )
            while True:
                for key in await self.queue.pop_batch(self.batch):
                    await self._schedule_one(key)
                await asyncio.sleep(0)  # let the informers run between batches
        finally:
            for t in [*tasks, *self._tasks]:
                t.cancel()
            await asyncio.gather(*tasks, *self._tasks, return_exceptions=True)
            await self.binder.close()

    async def _schedule_one(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None or not self._wants(pod) or key in self.bound:
            self.queue.remove(key)
            return
        self.stats["attempts"] += 1
        slot = self.decide(pod)
        if slot is None:
            self.stats["unschedulable"] += 1
            self.queue.mark_unschedulable(key)
            total, reasons = self.table.reasons(pod.get("spec") or {}, tuple(pod.get("_req") or (0, 0, 0, 0)))
            self._spawn(self._report_failure(key, pod, failure_message(total, reasons)))
            return
        node = self.table.names[slot]
        assert node is not None
        self._account(
            key,
            node,
            tuple(pod.get("_req") or (0.0, 0.0, 0.0, 0.0)),
            owner_uid(pod["metadata"]),
        )
        self.assumed.add(key)
        await self._sem.acquire()
        self._spawn(self._bind(key, pod, node))

    def _spawn(self, coro: Any) -> None:
        t = asyncio.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _bind(self, key: str, pod: Obj, node: str) -> None:
        md = pod["metadata"]
        try:
            await self.binder.bind(md.get("tenant"), str(md.get("namespace")), str(md["name"]), node)
        except (ApiError, OSError, TimeoutError) as exc:
            self.stats["bind_errors"] += 1
            if key in self.assumed:
                self._release(key)
            if isinstance(exc, ApiError) and exc.code in (404, 409):
                return  # gone, or bound by someone else: the informer has the truth
            log.info("bind %s -> %s failed: %s; backing off", key, node, exc)
            self.queue.backoff(key)
            return
        finally:
            self._sem.release()
        now = time.monotonic()
        self.stats["scheduled"] += 1
        self.stats["first_bind"] = self.stats["first_bind"] or time.time()
        self.stats["last_bind"] = time.time()
        since = self.queue.enqueued_at.pop(key, None)
        self.queue.attempts.pop(key, None)
        if since is not None:
            self.latencies.append(now - since)
            if len(self.latencies) > 100_000:
                del self.latencies[:50_000]
        if self.scheduled_events:
            await self._event(
                pod,
                "Scheduled",
                f"Successfully assigned {md.get('namespace')}/{md['name']} to {node}",
                "Normal",
            )

    async def _report_failure(self, key: str, pod: Obj, message: str) -> None:
        """PodScheduled=False + a FailedScheduling event, once per message (and per minute)."""
        last = self._failed.get(key)
        now = time.monotonic()
        if last is not None and last[0] == message and now - last[1] < 60.0:
            return
        self._failed[key] = (message, now)
        md = pod["metadata"]
        cond = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": micro_now(),
        }
        with contextlib.suppress(ApiError, OSError, TimeoutError):
            await self.api.patch(
                "pods",
                md["name"],
                {"status": {"conditions": [cond]}},
                namespace=md.get("namespace"),
                tenant=md.get("tenant"),
                subresource="status",
            )
        await self._event(pod, "FailedScheduling", message, "Warning")

    async def _event(self, pod: Obj, reason: str, message: str, typ: str) -> None:
        md = pod["metadata"]
        ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        ev = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{md['name']}."},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": md["name"],
                "namespace": md.get("namespace"),
                "uid": md.get("uid"),
            },
            "reason": reason,
            "message": message,
            "type": typ,
            "source": {"component": self.name},
            "reportingComponent": self.name,
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
        }
        with contextlib.suppress(ApiError, OSError, TimeoutError):
            await self.api.create("events", ev, namespace=md.get("namespace"), tenant=md.get("tenant"))

    # ---- observability ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(q: float) -> float | None:
            return lat[min(len(lat) - 1, int(q / 100 * len(lat)))] * 1000 if lat else None

        first, last = self.stats["first_bind"], self.stats["last_bind"]
        rate = self.stats["scheduled"] / (last - first) if first and last and last > first else None
        return {
            **self.stats,
            "nodes": len(self.table),
            "pending": self.queue.pending(),
            "bind_rate_per_s": rate,
            "queue_to_bound_ms": {"Perc50": pct(50), "Perc90": pct(90), "Perc99": pct(99)},
        }

    async def _write_stats(self) -> None:
        assert self.stats_file is not None
        while True:
            await asyncio.sleep(1.0)
            tmp = self.stats_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.snapshot()))
            tmp.replace(self.stats_file)
