"""The API server's watch cache: every object of one data partition in memory, fed by ONE store
watch on ``/registry/``, with a bounded history of events per kind.

Why one watch per partition: the store's revision is partition-wide, so a cache that sees every
write of the partition knows exactly how far it has caught up -- a consistent list waits until
``cache.revision >= store.revision()`` and is then served from memory (the same trick as
Kubernetes' consistent reads from cache). Serialized JSON of every object is kept next to the
parsed form, so lists and watch events are concatenations of cached bytes, not re-encodings.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from centaurus.store.base import Compacted, Event, Store

log = logging.getLogger("centaurus.api.watchcache")

#: events kept per kind for watch resumption (env override for tests of 410 Gone)
HISTORY = int(os.environ.get("CENTAURUS_WATCH_HISTORY", "50000"))


@dataclass(slots=True)
class Entry:
    key: str
    rev: int
    obj: dict[str, Any]
    raw: bytes  # JSON of obj, resourceVersion included


def decode(value: bytes, rev: int) -> Entry | None:
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    md = obj.setdefault("metadata", {})
    md["resourceVersion"] = str(rev)
    return Entry("", rev, obj, orjson.dumps(obj))


@dataclass(slots=True)
class CacheEvent:
    rev: int
    type: str  # ADDED | MODIFIED | DELETED
    key: str
    entry: Entry
    prev: Entry | None


@dataclass(eq=False)
class Watcher:
    prefix: str
    match: Callable[[dict[str, Any]], bool] | None
    queue: asyncio.Queue[CacheEvent | None] = field(default_factory=lambda: asyncio.Queue(10_000))
    overflowed: bool = False

    def offer(self, ev: CacheEvent) -> None:
        if not ev.key.startswith(self.prefix) or self.overflowed:
            return
        if self.match is not None:
            new = ev.type != "DELETED" and self.match(ev.entry.obj)
            old = ev.prev is not None and self.match(ev.prev.obj)
            if not new and not old:
                return
            if ev.type != "DELETED" and old and not new:
                ev = CacheEvent(ev.rev, "DELETED", ev.key, ev.entry, ev.prev)
            elif ev.type == "MODIFIED" and new and not old:
                ev = CacheEvent(ev.rev, "ADDED", ev.key, ev.entry, ev.prev)
        try:
            self.queue.put_nowait(ev)
        except asyncio.QueueFull:
            # a watcher that cannot keep up is closed; it re-lists, as with upstream
            self.overflowed = True
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(None)


class KindCache:
    """Objects and recent events under one kind prefix (``/registry/<group>/<plural>/``)."""

    def __init__(self, prefix: str, start_rev: int) -> None:
        self.prefix = prefix
        # parent key ("/registry/g/r/tenant/ns/") -> name -> entry
        self.by_parent: dict[str, dict[str, Entry]] = {}
        self.history: collections.deque[CacheEvent] = collections.deque(maxlen=HISTORY)
        self.oldest = start_rev  # events after this revision are all in history
        self.watchers: set[Watcher] = set()

    def _split(self, key: str) -> tuple[str, str]:
        parent, _, name = key.rpartition("/")
        return parent + "/", name

    def load(self, key: str, entry: Entry) -> None:
        parent, name = self._split(key)
        entry.key = key
        self.by_parent.setdefault(parent, {})[name] = entry

    def get(self, key: str) -> Entry | None:
        parent, name = self._split(key)
        return self.by_parent.get(parent, {}).get(name)

    def apply(self, ev: Event) -> None:
        key = ev.kv.key
        parent, name = self._split(key)
        bucket = self.by_parent.setdefault(parent, {})
        prev = bucket.get(name)
        if ev.type == "DELETE":
            bucket.pop(name, None)
            if not bucket:
                self.by_parent.pop(parent, None)
            base = prev or decode(ev.kv.value, ev.kv.mod_revision)
            if base is None:
                return
            gone = decode(orjson.dumps(base.obj), ev.kv.mod_revision) or base
            gone.key = key
            cev = CacheEvent(ev.kv.mod_revision, "DELETED", key, gone, prev)
        else:
            entry = decode(ev.kv.value, ev.kv.mod_revision)
            if entry is None:
                log.warning("undecodable value at %s", key)
                return
            entry.key = key
            bucket[name] = entry
            cev = CacheEvent(ev.kv.mod_revision, "MODIFIED" if prev else "ADDED", key, entry, prev)
        if len(self.history) == self.history.maxlen:
            self.oldest = self.history[0].rev
        self.history.append(cev)
        for w in list(self.watchers):
            w.offer(cev)

    def entries(self, prefix: str) -> Iterator[Entry]:
        """Entries whose key starts with ``prefix``, in key order."""
        for parent in sorted(p for p in self.by_parent if p.startswith(prefix) or prefix.startswith(p)):
            bucket = self.by_parent[parent]
            for name in sorted(bucket):
                e = bucket[name]
                if e.key.startswith(prefix):
                    yield e

    def count(self, prefix: str) -> int:
        return sum(len(b) for p, b in self.by_parent.items() if p.startswith(prefix))

    def since(self, rev: int) -> list[CacheEvent] | None:
        """Events after ``rev`` or None when ``rev`` is older than what history keeps."""
        if rev < self.oldest:
            return None
        return [e for e in self.history if e.rev > rev]


class PartitionCache:
    """All kinds of one data partition."""

    def __init__(self, index: int, store: Store) -> None:
        self.index = index
        self.store = store
        self.kinds: dict[str, KindCache] = {}
        self.revision = 0
        self.start_revision = 0
        # readers waiting for the cache to reach a revision: a heap of (revision, seq, future),
        # woken only when their revision is applied (a Condition woke every waiter on every
        # event, and each then re-took the lock to re-check)
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    @staticmethod
    def kind_prefix(key: str) -> str:
        parts = key.split("/", 4)  # "", "registry", group, plural, rest
        return "/".join(parts[:4]) + "/"

    def kind(self, prefix: str) -> KindCache:
        kc = self.kinds.get(prefix)
        if kc is None:
            kc = self.kinds[prefix] = KindCache(prefix, self.start_revision)
        return kc

    async def start(self) -> None:
        await self._load()
        self._task = asyncio.create_task(self._run(), name=f"watchcache-{self.index}")

    async def _load(self) -> None:
        items: list[Any] = []
        after: str | None = None
        rev = 0
        while True:
            page, rev_read, more = await self.store.list(
                "/registry/", limit=5000, start_after=after, revision=rev
            )
            rev = rev or rev_read
            items.extend(page)
            if not more or not page:
                break
            after = page[-1].key
        for kc in self.kinds.values():
            for w in list(kc.watchers):
                with contextlib.suppress(asyncio.QueueFull):
                    w.queue.put_nowait(None)
        self.kinds = {}
        self.start_revision = self.revision = rev
        for kv in items:
            entry = decode(kv.value, kv.mod_revision)
            if entry is not None:
                self.kind(self.kind_prefix(kv.key)).load(kv.key, entry)
        self._wake()
        self.ready.set()

    async def _run(self) -> None:
        while True:
            try:
                async for ev in self.store.watch("/registry/", self.revision):
                    self.kind(self.kind_prefix(ev.kv.key)).apply(ev)
                    self.revision = max(self.revision, ev.kv.mod_revision)
                    self._wake()
            except asyncio.CancelledError:
                raise
            except Compacted:
                log.warning("partition %d: watch compacted, reloading the cache", self.index)
                await self._load()
            except Exception as exc:
                log.warning("partition %d: store watch failed (%s); retrying", self.index, exc)
                await asyncio.sleep(0.5)

    def _wake(self) -> None:
        w = self._waiters
        while w and w[0][0] <= self.revision:
            fut = heapq.heappop(w)[2]
            if not fut.done():
                fut.set_result(None)

    async def wait_for(self, rev: int, timeout: float = 5.0) -> bool:
        """Wait until the cache has applied revision ``rev``; False on timeout."""
        if self.revision >= rev:
            return True
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (rev, next(self._seq), fut))
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            # the cancelled future stays in the heap until its revision comes (_wake skips it);
            # waits for revisions that never come (clients asking for absurd ones) are pruned
            if len(self._waiters) > 1024:
                self._waiters = [x for x in self._waiters if not x[2].done()]
                heapq.heapify(self._waiters)
            return self.revision >= rev
        return True

    async def sync(self, timeout: float = 5.0) -> bool:
        """Catch up with the store's current revision (consistent read from cache). False when
        the cache did not get there within ``timeout`` (callers then read the store)."""
        rev = await self.store.revision()
        return await self.wait_for(rev, timeout)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
