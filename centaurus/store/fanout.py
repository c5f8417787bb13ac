"""Live fan-out of committed events to in-process watchers, with catch-up from history.

Used by the embedded (sqlite) store, whose writer thread commits and then hands the batch of
events to the event loop. A watcher is registered *before* it replays history, so an event is
either in the replay snapshot or arrives in the watcher's buffer (or both: duplicates are
dropped by revision). A watcher whose consumer falls behind by more than ``max_buffer`` events
drops its buffer and catches up from history again, so a slow consumer costs disk reads, never
unbounded memory (and ends with :class:`Compacted` if its history was compacted meanwhile), the
way etcd moves slow watchers to its "unsynced" group.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence

from centaurus.store.base import Event

#: ``replay(prefix, after_revision, limit)`` -> committed events under prefix with revision >
#: after_revision, in order, at most ``limit``; raises Compacted.
Replay = Callable[[str, int, int], Awaitable[Sequence[Event]]]


class _Watcher:
    __slots__ = ("buffer", "closed", "lagging", "prefix", "wakeup")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.buffer: deque[Event] = deque()
        self.wakeup = asyncio.Event()
        self.lagging = False
        self.closed = False


class FanOut:
    """Registry of watchers on one store; all methods run on the event loop thread."""

    def __init__(self, replay: Replay, *, max_buffer: int = 10_000, replay_chunk: int = 1_000) -> None:
        self._replay = replay
        self._watchers: set[_Watcher] = set()
        self.max_buffer = max_buffer
        self.replay_chunk = replay_chunk

    def __len__(self) -> int:
        return len(self._watchers)

    def publish(self, events: Sequence[Event]) -> None:
        """Hand committed events (in revision order) to every matching watcher."""
        for w in self._watchers:
            if w.lagging:
                continue
            added = False
            for ev in events:
                if ev.kv.key.startswith(w.prefix):
                    w.buffer.append(ev)
                    added = True
            if len(w.buffer) > self.max_buffer:
                w.buffer.clear()
                w.lagging = True
                added = True
            if added:
                w.wakeup.set()

    def close(self) -> None:
        """End every watch (their iterators return)."""
        for w in self._watchers:
            w.closed = True
            w.wakeup.set()
        self._watchers.clear()

    async def watch(self, prefix: str, from_revision: int) -> AsyncGenerator[Event, None]:
        w = _Watcher(prefix)
        self._watchers.add(w)
        last = from_revision
        need_replay = True
        try:
            while not w.closed:
                if need_replay:
                    need_replay = False
                    while True:
                        if w.lagging:
                            # Buffer was dropped; history from ``last`` covers it (we are replaying).
                            w.lagging = False
                        chunk = await self._replay(prefix, last, self.replay_chunk)
                        for ev in chunk:
                            if ev.kv.mod_revision > last:
                                last = ev.kv.mod_revision
                                yield ev
                        if len(chunk) < self.replay_chunk or w.closed:
                            break
                    continue
                while w.buffer and not w.lagging:
                    ev = w.buffer.popleft()
                    if ev.kv.mod_revision > last:
                        last = ev.kv.mod_revision
                        yield ev
                if w.lagging:
                    need_replay = True
                    continue
                if w.closed:
                    break
                w.wakeup.clear()
                if not w.buffer and not w.lagging and not w.closed:
                    await w.wakeup.wait()
        finally:
            self._watchers.discard(w)
