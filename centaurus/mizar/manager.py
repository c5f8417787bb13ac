"""One instance of the management plane: shared informers, the transitd channels, membership
in the ``mizar`` hash ring and the six operators. ``python -m centaurus.mizar`` runs one per
process; tests run them in-process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any

from centaurus.client.aio import AsyncClient
from centaurus.controllers.runtime.controller import Context
from centaurus.controllers.runtime.informer import InformerSet
from centaurus.controllers.runtime.sharding import Membership
from centaurus.mizar import crds
from centaurus.mizar.operators import operator_classes
from centaurus.mizar.operators.base import CTYPE, MizarOperator
from centaurus.mizar.plane import Plane

log = logging.getLogger("centaurus.mizar")


class OperatorManager:
    def __init__(
        self,
        api: AsyncClient,
        *,
        instance: str | None = None,
        sharded: bool = True,
        lease_duration: float = 5.0,
        renew_every: float = 1.0,
        options: dict[str, str] | None = None,
    ) -> None:
        self.api = api
        self.instance = instance or f"network-operator-{secrets.token_hex(3)}"
        self.informers = InformerSet(api)
        self.membership = (
            Membership(api, self.instance, [CTYPE], lease_duration=lease_duration, renew_every=renew_every)
            if sharded
            else None
        )
        self.plane = Plane(api, self.informers, self.instance)
        ctx = Context(api, self.informers, self.membership, self.instance, dict(options or {}))
        self.operators: list[MizarOperator] = [cls(ctx, self.plane) for cls in operator_classes()]
        self.plane.operators = self.operators
        self._tasks: list[asyncio.Task[Any]] = []

    def operator(self, plural: str) -> MizarOperator:
        return next(o for o in self.operators if o.plural == plural)

    async def start(self, ensure_crds: bool = True) -> None:
        if ensure_crds:
            await crds.ensure_async(self.api)
        if self.membership is not None:
            self._tasks.append(asyncio.create_task(self.membership.run(), name="membership"))
        self.informers.start()
        for op in self.operators:
            self._tasks.append(asyncio.create_task(op.run(), name=op.plural))
        log.info("%s: %d operators started", self.instance, len(self.operators))

    async def wait(self) -> None:
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            if not t.cancelled() and t.exception() is not None:
                raise RuntimeError(f"{t.get_name()} failed: {t.exception()!r}")

    async def stop(self, *, leave: bool = True) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        await self.informers.stop()
        if leave and self.membership is not None:
            await self.membership.leave()
        await self.plane.pool.close()

    def stats(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "reconciles": {o.plural: o.reconciles for o in self.operators},
            "writes": {o.plural: o.writes for o in self.operators},
            "errors": {o.plural: o.errors for o in self.operators},
            "owned": {o.plural: o.owned_count() for o in self.operators},
            "transit_calls": sum(self.plane.pool.calls.values()),
        }
