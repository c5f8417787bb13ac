"""Coalesced pod status writes and events.

A pod's status may change several times before it reaches the API server (network ready,
container started, ready); only the latest one is written, by a small pool of writers, so a
burst of 100 pods/s costs ~one PATCH per pod transition that survives coalescing, never a queue
of stale writes. Writes are JSON merge patches of ``status`` (lists replace wholesale; top-level
keys that disappeared are sent as null), so no read-modify-write round trip and no conflicts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from centaurus.client.rest import ApiError

log = logging.getLogger("centaurus.agent.writer")
Obj = dict[str, Any]
Key = tuple[str, str, str]


@dataclass
class _Pending:
    uid: str
    status: Obj
    previous: Obj
    done: Callable[[Obj], None] | None


class StatusWriter:
    def __init__(self, client: Any, concurrency: int = 16) -> None:
        self.client = client
        self.concurrency = concurrency
        self._pending: OrderedDict[Key, _Pending] = OrderedDict()
        self._inflight: set[Key] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.writes = 0
        self.coalesced = 0
        self.errors = 0

    def start(self) -> None:
        self._tasks = [asyncio.ensure_future(self._worker()) for _ in range(self.concurrency)]

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []

    def submit(
        self, key: Key, uid: str, status: Obj, previous: Obj, done: Callable[[Obj], None] | None = None
    ) -> None:
        """Queue ``status`` for the pod; replaces a queued one not yet sent."""
        old = self._pending.pop(key, None)
        if old is not None:
            self.coalesced += 1
            previous = old.previous  # the last status the server has, not the superseded one
        self._pending[key] = _Pending(uid, status, previous, done)
        self._wake.set()

    def forget(self, key: Key) -> None:
        self._pending.pop(key, None)

    async def flush(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while (self._pending or self._inflight) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def _worker(self) -> None:
        while True:
            key = next((k for k in self._pending if k not in self._inflight), None)
            if key is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            item = self._pending.pop(key)
            self._inflight.add(key)
            try:
                await self._write(key, item)
            finally:
                self._inflight.discard(key)
                if self._pending:
                    self._wake.set()

    async def _write(self, key: Key, item: _Pending) -> None:
        tenant, ns, name = key
        body = dict(item.status)
        for k in item.previous:
            if k not in body:
                body[k] = None
        for attempt in range(5):
            try:
                out = await self.client.patch(
                    "pods", name, {"status": body}, namespace=ns, tenant=tenant, subresource="status"
                )
                self.writes += 1
                if item.done is not None:
                    item.done(out)
                return
            except ApiError as exc:
                if exc.code == 404:
                    return  # deleted meanwhile: nothing to report on
                self.errors += 1
                log.warning("status of %s/%s/%s: %s", tenant, ns, name, exc)
                if exc.code < 500 and exc.code != 429:
                    return
            except (TimeoutError, OSError) as exc:
                self.errors += 1
                log.warning("status of %s/%s/%s: %s", tenant, ns, name, exc)
            await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
            if key in self._pending:  # a newer status superseded this one
                return


class EventRecorder:
    """Kubernetes Events about pods (Warning/Normal), deduplicated for 10 minutes per
    (object, reason, message) as kubelet's recorder does, sent in the background."""

    def __init__(self, client: Any, node: str, component: str = "centaurus-agent") -> None:
        self.client, self.node, self.component = client, node, component
        self._seen: dict[tuple[str, str, str], float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def pod_event(self, pod: Obj, kind: str, reason: str, message: str) -> None:
        md = pod["metadata"]
        key = (str(md.get("uid")), reason, message)
        now = time.time()
        if now - self._seen.get(key, 0.0) < 600:
            return
        self._seen[key] = now
        if len(self._seen) > 10_000:
            for k in [k for k, t in self._seen.items() if now - t > 600]:
                self._seen.pop(k, None)
        t = asyncio.ensure_future(self._send(md, kind, reason, message, now))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _send(self, md: Obj, kind: str, reason: str, message: str, now: float) -> None:
        from centaurus.agent.podstatus import ts

        stamp = ts(now)
        ev = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{md['name']}."},
            "involvedObject": {
                "kind": "Pod",
                "apiVersion": "v1",
                "name": md["name"],
                "namespace": md.get("namespace"),
                "uid": md.get("uid"),
                "resourceVersion": md.get("resourceVersion"),
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": self.component, "host": self.node},
            "reportingComponent": self.component,
            "reportingInstance": self.node,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "eventTime": None,
            "count": 1,
        }
        try:
            await self.client.create("events", ev, namespace=md.get("namespace"), tenant=md.get("tenant"))
        except (TimeoutError, ApiError, OSError) as exc:
            log.info("event %s for %s not recorded: %s", reason, md.get("name"), exc)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
