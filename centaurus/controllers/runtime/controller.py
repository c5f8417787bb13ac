"""The reconcile loop every controller runs: events -> keys -> work queue -> ``reconcile(key)``.

A controller declares its type (``ctype``, the Arktos controllerType: ``deployment``,
``replicaset``...), its primary informer and the informers it watches for dependents; it enqueues
keys (``tenant/namespace/name``) of primary objects and implements ``reconcile``. The loop adds
what every controller needs: ownership by hash range (a key is only processed by the instance that
owns its ``hashKey`` right now, see :mod:`sharding`), at most one reconcile per key at a time,
retries with back-off, periodic re-checks (``reconcile`` returns a delay), the instance's
``workloadNum``, and drain/resync on ring changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

from centaurus.client.aio import AsyncClient
from centaurus.client.rest import ApiError
from centaurus.controllers.runtime.informer import FuncHandler, Informer, InformerSet, object_key
from centaurus.controllers.runtime.sharding import Membership, hash_key, hash_of_text
from centaurus.controllers.runtime.workqueue import ShutDown, WorkQueue

Obj = dict[str, Any]


@dataclass
class Context:
    """What a controller gets: the API, the process's shared informers, the membership (None:
    this process owns everything, e.g. in unit tests) and its options (``--set k=v``)."""

    api: AsyncClient
    informers: InformerSet
    membership: Membership | None = None
    instance: str = "standalone"
    options: dict[str, str] = field(default_factory=dict)

    def opt(self, name: str, default: float) -> float:
        return float(self.options.get(name, default))


class Controller:
    ctype: ClassVar[str] = ""
    workers: ClassVar[int] = 4

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.api = ctx.api
        self.queue = WorkQueue()
        self.log = logging.getLogger(f"centaurus.controllers.{self.ctype}")
        self._hashes: dict[str, int] = {}
        self.primary: Informer = self.setup()
        self.primary.add_handler(FuncHandler(self._on_primary))
        self.reconciles = 0
        self.errors = 0

    # ---- to implement --------------------------------------------------------------------------
    def setup(self) -> Informer:
        """Create/get informers, add dependent handlers; return the primary informer."""
        raise NotImplementedError

    async def reconcile(self, key: str) -> float | None:
        """Bring the object at ``key`` to its desired state; return seconds until a re-check."""
        raise NotImplementedError

    # ---- ownership -----------------------------------------------------------------------------
    def hash_for(self, key: str) -> int:
        h = self._hashes.get(key)
        if h is None:
            obj = self.primary.get(key)
            h = hash_key(obj) if obj is not None else hash_of_text(key)
        return h

    def owns(self, key: str) -> bool:
        m = self.ctx.membership
        return True if m is None else m.owns(self.ctype, self.hash_for(key))

    def drained(self) -> bool:
        return all(self.owns(k) for k in self.queue.processing)

    def resync(self) -> None:
        for key in list(self.primary.cache):
            self.enqueue(key)

    def owned_count(self) -> int:
        return sum(1 for k in self.primary.cache if self.owns(k))

    # ---- events ----------------------------------------------------------------------------------
    def _on_primary(self, typ: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        key = object_key(obj)
        self._hashes[key] = hash_key(obj)
        if self.wants(typ, old, new):
            self.enqueue(key)

    def wants(self, typ: str, old: Obj | None, new: Obj | None) -> bool:
        """Filter primary events (default: every change)."""
        return True

    def enqueue(self, key: str) -> None:
        if self.owns(key):
            self.queue.add(key)

    # ---- loop --------------------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                if not self.owns(key):
                    continue
                self.reconciles += 1
                again = await self.reconcile(key)
                self.queue.forget(key)
                if self.primary.get(key) is None:
                    self._hashes.pop(key, None)
                if again is not None:
                    self.queue.add_after(key, again)
            except asyncio.CancelledError:
                raise
            except (TimeoutError, ApiError, OSError, ValueError, KeyError) as exc:
                self.errors += 1
                n = self.queue.retries(key)
                (self.log.warning if n >= 5 else self.log.info)("%s: retry %d after %s", key, n, exc)
                self.queue.add_rate_limited(key)
            except Exception:
                self.errors += 1
                self.log.exception("%s: reconcile failed", key)
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)

    async def _report_workload(self) -> None:
        m = self.ctx.membership
        while m is not None:
            m.set_workload(self.ctype, self.owned_count())
            await asyncio.sleep(2.0)

    async def run(self) -> None:
        m = self.ctx.membership
        if m is not None:
            m.on_change(self.ctype, self.drained, self.resync)
        await self.primary.wait_synced()
        self.resync()
        tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        tasks.append(asyncio.create_task(self._report_workload()))
        try:
            await asyncio.gather(*tasks)
        finally:
            self.queue.shutdown()
            for t in tasks:
                t.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*tasks, return_exceptions=True)
