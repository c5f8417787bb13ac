"""Consistent reads wait for the watch cache to reach a revision
(``centaurus.api.watchcache.PartitionCache.wait_for``): a waiter wakes when its revision is
applied and not before, a waiter that timed out says so and does not disturb the others, and
stale waits do not pile up."""

from __future__ import annotations

import asyncio
from pathlib import Path

from centaurus.api.watchcache import PartitionCache
from centaurus.store.sqlite import SqliteStore


def test_waiters_wake_at_their_revision_only(tmp_path: Path) -> None:
    async def run() -> None:
        store = SqliteStore(path=tmp_path / "p.db")
        await store.start()
        cache = PartitionCache(0, store)
        await cache.start()
        try:
            base = cache.revision
            woke: dict[int, int] = {}

            async def wait(rev: int) -> None:
                assert await cache.wait_for(rev, 5.0)
                woke[rev] = cache.revision

            waiters = [asyncio.create_task(wait(base + n)) for n in (3, 1, 2)]
            await asyncio.sleep(0.05)
            assert not woke
            # a wait for a revision that never comes times out with False, the others go on
            assert not await cache.wait_for(base + 1000, 0.05)
            for i in range(3):
                await store.create(f"/registry/core/configmaps/system/default/cm-{i}", b'{"data":{}}')
                await cache.wait_for(base + i + 1, 5.0)
                await asyncio.sleep(0.01)  # let the woken waiter tasks run
                assert set(woke) == {base + n for n in range(1, i + 2)}
            await asyncio.gather(*waiters)
            assert all(seen >= rev for rev, seen in woke.items())
            assert await cache.wait_for(base + 3, 0.0)  # already there: no waiting at all
            # timed-out waits are pruned once many have accumulated
            for n in range(1100):
                assert not await cache.wait_for(base + 10_000 + n, 0.0001)
            assert len(cache._waiters) <= 1025
        finally:
            await cache.close()
            await store.close()

    asyncio.run(run())
