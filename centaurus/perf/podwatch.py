"""Pod startup at density scale: one asynchronous watch over every measured pod.

The transitions are those of :mod:`centaurus.perf.measurements.pod_startup` (its
:func:`stamps_from` and :func:`perfdata` are reused as they are); only the collection differs.
That module keeps a synchronous watch thread and the full objects per namespace, which is right
for conformance-sized runs; with 100,000 pods on two cores its threads cost the campaign process
more CPU than the API server spends on the pods (5.8 vs 5.4 ms per pod, measured) and competed
with the system under test. Here: one watch (``tenants/all`` + label selector) on the campaign's
event loop, the stamps computed the moment a pod is first seen Running, the object dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from centaurus.client.aio import AsyncClient
from centaurus.perf.measurements.pod_startup import TRANSITIONS, Stamps, is_running, perfdata, stamps_from

Obj = dict[str, Any]


class PodStartupWatch:
    def __init__(self, api: AsyncClient, label_selector: str, kind: str = "hollow") -> None:
        self.api, self.selector, self.kind = api, label_selector, kind
        self._created: dict[str, float] = {}
        self.stamps: dict[str, Stamps] = {}
        self.events = 0
        self._task: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()
        self._progress = asyncio.Event()

    def created(self, namespace: str, name: str, at: float | None = None) -> None:
        self._created[f"{namespace}/{name}"] = time.time() if at is None else at

    def _note(self, pod: Obj) -> None:
        md = pod.get("metadata") or {}
        key = f"{md.get('namespace')}/{md.get('name')}"
        if key in self.stamps or not is_running(pod):
            return
        self.stamps[key] = stamps_from(pod, self._created.get(key), time.time())
        self._progress.set()

    async def _run(self) -> None:
        async for ev in self.api.list_watch("pods", tenant="all", label_selector=self.selector):
            self.events += 1
            if ev["type"] == "SYNC":
                for pod in ev["items"]:
                    self._note(pod)
                self._synced.set()
            elif ev["type"] in ("ADDED", "MODIFIED"):
                self._note(ev["object"])

    async def start(self, timeout: float = 30.0) -> PodStartupWatch:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._synced.wait(), timeout)
        return self

    async def wait(self, keys: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            missing = [k for k in keys if k not in self.stamps]
            if not missing:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"{len(missing)} of {len(keys)} pods not Running within {timeout:g} s "
                    f"(e.g. {missing[:3]})"
                )
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), min(left, 1.0))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def transitions(self) -> dict[str, list[float]]:
        per: dict[str, list[float]] = {t: [] for t in TRANSITIONS}
        for s in self.stamps.values():
            for t, v in s.transitions().items():
                per.setdefault(t, []).append(v)
        return {t: v for t, v in per.items() if v}

    def gather(self, labels: dict[str, str]) -> list[Obj]:
        base = {"Metric": "pod_startup", "Kind": self.kind, **labels}
        return [perfdata(vals, {**base, "Transition": t}) for t, vals in self.transitions().items()]
