"""A Store wrapper that times every call into ``etcd_request_duration_seconds`` (labels:
operation, partition), so /metrics shows the store's share of each request's latency."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import Any

from centaurus.api.metrics import METRICS
from centaurus.store.base import KV, Event, Store


class MeteredStore:
    def __init__(self, inner: Store, partition: int) -> None:
        self.inner = inner
        self.name = inner.name
        self._part = str(partition)

    def __getattr__(self, attr: str) -> Any:  # path, endpoints, watcher_count, ...
        return getattr(self.inner, attr)

    def _obs(self, op: str, t0: float) -> None:
        METRICS.store.observe(time.perf_counter() - t0, operation=op, partition=self._part)

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def revision(self) -> int:
        return await self.inner.revision()

    async def get(self, key: str) -> KV | None:
        t0 = time.perf_counter()
        try:
            return await self.inner.get(key)
        finally:
            self._obs("get", t0)

    async def list(
        self, prefix: str, *, limit: int = 0, start_after: str | None = None, revision: int = 0
    ) -> tuple[list[KV], int, bool]:
        t0 = time.perf_counter()
        try:
            return await self.inner.list(prefix, limit=limit, start_after=start_after, revision=revision)
        finally:
            self._obs("list", t0)

    async def create(self, key: str, value: bytes) -> KV:
        t0 = time.perf_counter()
        try:
            return await self.inner.create(key, value)
        finally:
            self._obs("create", t0)

    async def update(self, key: str, value: bytes, expected_revision: int) -> KV:
        t0 = time.perf_counter()
        try:
            return await self.inner.update(key, value, expected_revision)
        finally:
            self._obs("update", t0)

    async def delete(self, key: str, expected_revision: int = 0) -> KV:
        t0 = time.perf_counter()
        try:
            return await self.inner.delete(key, expected_revision)
        finally:
            self._obs("delete", t0)

    def watch(self, prefix: str, from_revision: int) -> AsyncGenerator[Event, None]:
        return self.inner.watch(prefix, from_revision)

    async def compact(self, revision: int) -> None:
        await self.inner.compact(revision)
