"""The scheduling queue (kube-scheduler's three queues, reduced).

* ``active``: pods to try now, first come first served, taken in batches;
* ``backoff``: pods whose binding failed, retried after 1, 2, 4 ... 10 s;
* ``unschedulable``: pods no node fits; they wait for a cluster change that may help (a node
  added or changed, a pod gone) -- :meth:`move_unschedulable` -- or ``unschedulable_timeout``
  at the latest, so a missed event never strands a pod.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import deque


class SchedulingQueue:
    def __init__(self, *, max_backoff: float = 10.0, unschedulable_timeout: float = 60.0) -> None:
        self.max_backoff = max_backoff
        self.unschedulable_timeout = unschedulable_timeout
        self._active: deque[str] = deque()
        self._in_active: set[str] = set()
        self._backoff: list[tuple[float, str]] = []
        self._in_backoff: set[str] = set()
        self.unschedulable: dict[str, float] = {}
        self.attempts: dict[str, int] = {}
        self.enqueued_at: dict[str, float] = {}
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._in_active) + len(self._in_backoff) + len(self.unschedulable)

    def pending(self) -> dict[str, int]:
        return {
            "active": len(self._in_active),
            "backoff": len(self._in_backoff),
            "unschedulable": len(self.unschedulable),
        }

    def add(self, key: str) -> None:
        """A pod that needs a node (new, or changed while waiting)."""
        if key in self._in_active or key in self._in_backoff:
            return
        self.unschedulable.pop(key, None)
        self.enqueued_at.setdefault(key, time.monotonic())
        self._active.append(key)
        self._in_active.add(key)
        self._ready.set()

    def remove(self, key: str) -> None:
        """Bound elsewhere or deleted: forget it (lazy removal from the deque/heap)."""
        self._in_active.discard(key)
        self._in_backoff.discard(key)
        self.unschedulable.pop(key, None)
        self.attempts.pop(key, None)
        self.enqueued_at.pop(key, None)

    def backoff(self, key: str) -> None:
        n = self.attempts.get(key, 0) + 1
        self.attempts[key] = n
        self._in_backoff.add(key)
        heapq.heappush(self._backoff, (time.monotonic() + min(2 ** (n - 1), self.max_backoff), key))

    def mark_unschedulable(self, key: str) -> None:
        self.attempts[key] = self.attempts.get(key, 0) + 1
        self.unschedulable[key] = time.monotonic()

    def move_unschedulable(self) -> int:
        """A cluster change: every unschedulable pod gets another try."""
        keys = list(self.unschedulable)
        self.unschedulable.clear()
        for k in keys:
            self.add(k)
        return len(keys)

    def _flush(self) -> None:
        now = time.monotonic()
        while self._backoff and self._backoff[0][0] <= now:
            _, key = heapq.heappop(self._backoff)
            if key in self._in_backoff:
                self._in_backoff.discard(key)
                self.add(key)
        stale = [k for k, t in self.unschedulable.items() if now - t > self.unschedulable_timeout]
        for k in stale:
            self.unschedulable.pop(k, None)
            self.add(k)

    async def pop_batch(self, size: int) -> list[str]:
        while True:
            self._flush()
            out: list[str] = []
            while self._active and len(out) < size:
                key = self._active.popleft()
                if key in self._in_active:
                    self._in_active.discard(key)
                    out.append(key)
            if out:
                return out
            self._ready.clear()
            wait = 1.0
            if self._backoff:
                wait = max(0.01, min(wait, self._backoff[0][0] - time.monotonic()))
            try:
                await asyncio.wait_for(self._ready.wait(), wait)
            except TimeoutError:
                pass
