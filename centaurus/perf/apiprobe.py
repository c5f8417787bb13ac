"""API latency while something else loads the cluster (PERF-API-1 "held"): a background task
that runs create -> get -> patch -> delete of a ConfigMap at a fixed rate and records each call's
latency per verb. It is the probe, not the load: its own rate stays low so it measures the API
the campaign's pods, nodes and controllers see."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time

from centaurus.client.aio import AsyncClient
from centaurus.client.rest import ApiError
from centaurus.perf.measurements.pod_startup import perfdata

MUTATING = ("create", "patch", "delete")


class ApiProbe:
    def __init__(self, api: AsyncClient, namespace: str, rate: float = 5.0) -> None:
        self.api, self.namespace, self.rate = api, namespace, rate
        self.samples: dict[str, list[float]] = {"create": [], "get": [], "patch": [], "delete": []}
        self.errors: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def _timed(self, verb: str, coro: object) -> None:
        t0 = time.perf_counter()
        try:
            await coro  # type: ignore[misc]
        except (ApiError, OSError, TimeoutError) as exc:
            self.errors.append(f"{verb}: {exc}")
            return
        self.samples[verb].append((time.perf_counter() - t0) * 1000.0)

    async def _one(self) -> None:
        name = f"probe-{secrets.token_hex(4)}"
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}
        ns = self.namespace
        await self._timed("create", self.api.create("configmaps", body, namespace=ns))
        await self._timed("get", self.api.get("configmaps", name, namespace=ns))
        await self._timed("patch", self.api.patch("configmaps", name, {"data": {"k": "w"}}, namespace=ns))
        await self._timed("delete", self.api.delete("configmaps", name, namespace=ns, missing_ok=True))

    async def _run(self) -> None:
        period = 1.0 / self.rate
        nxt = time.monotonic()
        running: set[asyncio.Task[None]] = set()
        while True:
            t = asyncio.create_task(self._one())
            running.add(t)
            t.add_done_callback(running.discard)
            nxt += period
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))

    def start(self) -> ApiProbe:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def p99_mutating(self) -> float | None:
        vals = [v for verb in MUTATING for v in self.samples[verb]]
        return perfdata(vals, {})["data"]["Perc99"] if vals else None

    def perfdata(self, labels: dict[str, str]) -> list[dict[str, object]]:
        return [
            perfdata(vals, {"Metric": "api_latency", "Resource": "configmaps", "Verb": verb, **labels})
            for verb, vals in self.samples.items()
            if vals
        ]
