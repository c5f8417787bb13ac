"""A rate-limited work queue with client-go semantics.

* A key is queued at most once however often it is added (dirty set), so a burst of events for
  one object costs one reconcile.
* A key being processed is never handed to a second worker: re-adds during processing are parked
  and re-queued when the worker calls :meth:`done` -- one object, one reconcile at a time, which
  is what lets reconcilers read-modify-write without locks.
* Failures are retried with per-key exponential back-off (:meth:`add_rate_limited`) until
  :meth:`forget`; delayed adds (:meth:`add_after`) serve periodic re-checks.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import deque


class ShutDown(Exception):
    """The queue was shut down while a worker waited on it."""


class WorkQueue:
    def __init__(self, *, base_delay: float = 0.05, max_delay: float = 30.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._failures: dict[str, int] = {}
        self._delayed: list[tuple[float, int, str]] = []
        self._seq = 0
        self._ready = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._shutdown = False
        self.adds = 0

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def processing(self) -> frozenset[str]:
        return frozenset(self._processing)

    def _wake(self) -> None:
        self._ready.set()

    def add(self, key: str) -> None:
        if self._shutdown or key in self._dirty:
            return
        self.adds += 1
        self._dirty.add(key)
        if key in self._processing:
            return  # re-queued by done()
        self._queue.append(key)
        self._wake()

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        self._seq += 1
        heapq.heappush(self._delayed, (time.monotonic() + delay, self._seq, key))
        self._arm()

    def add_rate_limited(self, key: str) -> None:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        self.add_after(key, min(self.base_delay * 2**n, self.max_delay))

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def retries(self, key: str) -> int:
        return self._failures.get(key, 0)

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._delayed:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._delayed[0][0] - time.monotonic())
        self._timer = loop.call_later(delay, self._release)

    def _release(self) -> None:
        self._timer = None
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, key = heapq.heappop(self._delayed)
            self.add(key)
        self._arm()

    async def get(self) -> str:
        while not self._queue:  # no await between the check and popleft: no lost wake-ups
            if self._shutdown:
                raise ShutDown
            self._ready.clear()
            await self._ready.wait()
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake()

    def shutdown(self) -> None:
        self._shutdown = True
        if self._timer is not None:
            self._timer.cancel()
        self._wake()
