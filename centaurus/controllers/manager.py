"""One controller process: shared informers, the membership of this instance, the controllers.

Used by ``python -m centaurus.controllers`` and by tests that run controllers in-process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any

from centaurus.client.aio import AsyncClient
from centaurus.controllers import registry
from centaurus.controllers.runtime.controller import Context, Controller
from centaurus.controllers.runtime.informer import InformerSet
from centaurus.controllers.runtime.sharding import Membership

log = logging.getLogger("centaurus.controllers")


class Manager:
    def __init__(
        self,
        api: AsyncClient,
        *,
        instance: str | None = None,
        only: list[str] | None = None,
        options: dict[str, str] | None = None,
        sharded: bool = True,
        lease_duration: float = 5.0,
        renew_every: float = 1.0,
    ) -> None:
        self.api = api
        self.instance = instance or f"controllers-{secrets.token_hex(3)}"
        names = only or list(registry())
        unknown = [n for n in names if n not in registry()]
        if unknown:
            raise ValueError(f"unknown controller(s) {', '.join(unknown)}; known: {', '.join(registry())}")
        self.informers = InformerSet(api)
        types = [registry()[n].ctype for n in names]  # type: ignore[attr-defined]
        self.membership = (
            Membership(api, self.instance, types, lease_duration=lease_duration, renew_every=renew_every)
            if sharded
            else None
        )
        ctx = Context(api, self.informers, self.membership, self.instance, dict(options or {}))
        self.controllers: dict[str, Controller] = {n: registry()[n](ctx) for n in names}
        self._tasks: list[asyncio.Task[Any]] = []

    async def start(self) -> None:
        if self.membership is not None:
            self._tasks.append(asyncio.create_task(self.membership.run(), name="membership"))
        self.informers.start()
        for name, c in self.controllers.items():
            self._tasks.append(asyncio.create_task(c.run(), name=name))

    async def wait(self) -> None:
        """Until a task fails (raised) -- controllers and membership run forever."""
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
