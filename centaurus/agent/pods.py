"""The pods bound to this node: one watch, one :class:`PodWorker` per pod, adoption after restart.

The watch is the informer pattern (:meth:`AsyncClient.list_watch`) on
``/api/v1/tenants/all/pods?fieldSelector=spec.nodeName=<node>``: every tenant's pods, only
this node's. After the first list the manager reconciles with what exists locally (runtime
sandboxes, network setups): sandboxes of listed pods are adopted (containers keep running),
anything else is an orphan of a pod deleted while the agent was away and is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from centaurus.agent import podspec
from centaurus.agent.config import AgentConfig
from centaurus.agent.podstatus import parse_ts
from centaurus.agent.worker import PodWorker
from centaurus.agent.writer import EventRecorder, StatusWriter
from centaurus.netplug.base import NetworkError, NetworkHook, PodNetResult
from centaurus.runtimes.base import Runtime, Sandbox

log = logging.getLogger("centaurus.agent.pods")
Obj = dict[str, Any]


class Metrics:
    """Counters and startup phase samples the agent exposes on ``/metrics``."""

    def __init__(self) -> None:
        self.pods_started = 0
        self.pods_deleted = 0
        self.phase_samples: dict[str, list[float]] = {"network": [], "runtime": [], "seen_to_written": []}

    def started(self, w: PodWorker) -> None:
        self.pods_started += 1
        for k, v in w.phases.items():
            self._add(k, v)

    def _add(self, k: str, v: float) -> None:
        s = self.phase_samples.setdefault(k, [])
        s.append(v)
        if len(s) > 10_000:
            del s[: len(s) - 10_000]

    def written_cb(self, w: PodWorker) -> Callable[[Obj], None]:
        def done(_obj: Obj) -> None:
            if (w.last_status or {}).get("phase") == "Running" and "written" not in w.phases:
                w.phases["written"] = time.monotonic() - w.seen_mono
                self._add("seen_to_written", w.phases["written"])

        return done

    def deleted(self, _w: PodWorker) -> None:
        self.pods_deleted += 1


class PodManager:
    def __init__(
        self,
        cfg: AgentConfig,
        client: Any,
        runtimes: dict[str, Runtime],
        hook: NetworkHook,
        log_root: Path,
        droplet_netns_path: str | None = None,
    ) -> None:
        self.cfg, self.client, self.runtimes, self.hook = cfg, client, runtimes, hook
        self.log_root = log_root
        self.host_netns = droplet_netns_path
        self.workers: dict[str, PodWorker] = {}
        self.by_key: dict[tuple[str, str, str], str] = {}
        self.writer = StatusWriter(client, cfg.status_concurrency)
        self.events = EventRecorder(client, cfg.node_name)
        self.metrics = Metrics()
        self.synced = asyncio.Event()
        self._net_uids: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        for rt in runtimes.values():
            rt.add_listener(self._on_runtime)

    # ---- lookup --------------------------------------------------------------------------------
    def runtime_for(self, pod: Obj) -> Runtime:
        return self.runtimes[self.cfg.vm_runtime if podspec.is_vm(pod) else self.cfg.container_runtime]

    def find(self, tenant: str, namespace: str, name: str) -> PodWorker | None:
        uid = self.by_key.get((tenant, namespace, name))
        return self.workers.get(uid) if uid else None

    def _on_runtime(self, uid: str, _container: str) -> None:
        w = self.workers.get(uid)
        if w is not None:
            w.kick()

    def forget(self, w: PodWorker) -> None:
        if self.workers.get(w.uid) is w:
            del self.workers[w.uid]
        if self.by_key.get(w.key) == w.uid:
            del self.by_key[w.key]

    # ---- network -------------------------------------------------------------------------------
    async def network_for(self, w: PodWorker) -> PodNetResult:
        spec = w.pod.get("spec") or {}
        if spec.get("hostNetwork"):
            return PodNetResult(
                netns_path=self.host_netns, ip=self.cfg.host_ip, prefix_len=32, extra={"hostNetwork": True}
            )
        res = await self.hook.setup(podspec.net_request(w.pod))
        self._net_uids.add(w.uid)
        return res

    def hook_has(self, uid: str) -> bool:
        return uid in self._net_uids

    async def release_network(self, w: PodWorker) -> None:
        if w.net is not None and w.net.extra.get("hostNetwork"):
            return
        try:
            await self.hook.teardown(w.uid)
        except NetworkError as exc:
            log.warning("pod %s/%s/%s network teardown: %s", *w.key, exc)
        self._net_uids.discard(w.uid)

    # ---- the watch -----------------------------------------------------------------------------
    def start(self) -> None:
        self.writer.start()
        self._task = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        first = True
        while True:
            try:
                async for ev in self.client.list_watch(
                    "pods", tenant="all", field_selector=f"spec.nodeName={self.cfg.node_name}"
                ):
                    if ev["type"] == "SYNC":
                        await self._resync(ev["items"], adopt=first)
                        first = False
                        self.synced.set()
                    elif ev["type"] == "DELETED":
                        self._deleted(ev["object"])
                    elif ev["type"] in ("ADDED", "MODIFIED"):
                        self._seen(ev["object"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("pod watch of node %s failed: %s", self.cfg.node_name, exc)
                await asyncio.sleep(1.0)

    def _seen(self, pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName") != self.cfg.node_name:
            return
        uid = str(pod["metadata"]["uid"])
        w = self.workers.get(uid)
        if w is not None:
            w.update(pod)
            return
        w = PodWorker(self, pod, self.runtime_for(pod))
        key = podspec.key_of(pod)
        old = self.by_key.get(key)
        if old and old in self.workers:
            self.workers[old].gone()  # same name, new uid: the old object is gone
        self.workers[uid] = w
        self.by_key[key] = uid
        w.start()

    def _deleted(self, pod: Obj) -> None:
        w = self.workers.get(str(pod["metadata"]["uid"]))
        if w is not None:
            w.pod = pod
            w.gone()

    async def _resync(self, items: list[Obj], *, adopt: bool) -> None:
        live = {
            str(p["metadata"]["uid"]): p
            for p in items
            if (p.get("spec") or {}).get("nodeName") == self.cfg.node_name
        }
        for uid, w in list(self.workers.items()):
            if uid not in live:
                w.gone()
        if adopt:
            await self._adopt(live)
        for pod in live.values():
            self._seen(pod)

    async def _adopt(self, live: dict[str, Obj]) -> None:
        """Match what exists on this node with the pods the API says are here."""
        nets = await self.hook.existing()
        self._net_uids |= set(nets)
        found: dict[str, tuple[Runtime, Sandbox]] = {}
        for rt in self.runtimes.values():
            for sb in await rt.sandboxes():
                found[sb.uid] = (rt, sb)
        for uid, (rt, sb) in found.items():
            pod = live.get(uid)
            if pod is None:
                log.info("removing orphan sandbox %s", uid)
                await rt.remove(sb)
                if uid in nets:
                    with contextlib.suppress(NetworkError):
                        await self.hook.teardown(uid)
                    self._net_uids.discard(uid)
                continue
            w = PodWorker(self, pod, rt)  # a terminating pod gets its worker too: it finishes it
            w.sandbox, w.net = sb, nets.get(uid)
            w.start_time = parse_ts((pod.get("status") or {}).get("startTime")) or time.time()
            self.workers[uid] = w
            self.by_key[w.key] = uid
            w.start()
        for uid in set(nets) - set(found):
            pod = live.get(uid)
            if pod is None:
                log.info("removing orphan pod network %s", uid)
                with contextlib.suppress(NetworkError):
                    await self.hook.teardown(uid)
                self._net_uids.discard(uid)
            else:
                w = PodWorker(self, pod, self.runtime_for(pod))
                w.net = nets[uid]
                self.workers[uid] = w
                self.by_key[w.key] = uid
                w.start()

    # ---- shutdown ------------------------------------------------------------------------------
    async def close(self) -> None:
        """Stop watching and writing; workloads keep running (an agent restart adopts them)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for w in list(self.workers.values()):
            await w.cancel()
        await self.writer.flush(2.0)
        await self.writer.close()
        await self.events.close()

    async def purge(self) -> int:
        """Remove every pod this node runs (node teardown): stop, remove, release the network."""
        n = 0
        for w in list(self.workers.values()):
            await w.cancel()
        for rt in self.runtimes.values():
            for sb in await rt.sandboxes():
                with contextlib.suppress(Exception):
                    await rt.stop(sb, 0)
                await rt.remove(sb)
                n += 1
        for uid in list(await self.hook.existing()):
            with contextlib.suppress(NetworkError):
                await self.hook.teardown(uid)
        return n
