"""What is particular to the embedded sqlite store: batching, slow watchers, file layout."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from centaurus.store.base import AlreadyExists, Compacted, Event, StoreUnavailable
from centaurus.store.sqlite import SqliteStore

pytestmark = pytest.mark.anyio


async def test_queued_writes_get_one_revision_each(tmp_path: Path) -> None:
    """Many writes queued at once are committed in batches, yet each has its own revision."""
    s = SqliteStore(path=tmp_path / "b.db")
    await s.start()
    try:
        start = await s.revision()
        kvs = await asyncio.gather(*(s.create(f"/b/{i:04d}", b"v") for i in range(2000)))
        assert sorted(kv.mod_revision for kv in kvs) == list(range(start + 1, start + 2001))
        assert await s.revision() == start + 2000
    finally:
        await s.close()


async def test_writes_of_one_loop_turn_apply_in_order_and_survive_close(tmp_path: Path) -> None:
    """The writes of one loop turn reach the writer together (one wake-up): they still apply in
    the order they were issued, each checked against the ones before it, and a close() issued in
    the same turn lets them finish instead of stranding them."""
    s = SqliteStore(path=tmp_path / "o.db")
    await s.start()
    start = await s.revision()

    tasks = [
        asyncio.ensure_future(s.create("/o/a", b"1")),
        asyncio.ensure_future(s.create("/o/a", b"2")),  # sees the first one: AlreadyExists
        asyncio.ensure_future(s.delete("/o/a")),  # after the first create: succeeds
        asyncio.ensure_future(s.create("/o/b", b"3")),
    ]
    closing = asyncio.ensure_future(s.close())
    res = await asyncio.gather(*tasks, return_exceptions=True)
    await closing
    assert isinstance(res[1], AlreadyExists)
    assert [r.mod_revision for r in (res[0], res[2], res[3])] == [start + 1, start + 2, start + 3]  # type: ignore[union-attr]
    s2 = SqliteStore(path=tmp_path / "o.db")
    await s2.start()
    try:
        assert await s2.get("/o/a") is None
        kv = await s2.get("/o/b")
        assert kv is not None and kv.value == b"3"
    finally:
        await s2.close()


async def test_slow_watcher_catches_up_from_history(tmp_path: Path) -> None:
    """A watcher that does not read while thousands of events arrive drops its buffer and
    catches up from history: it still gets every event once, in order."""
    s = SqliteStore(path=tmp_path / "w.db")
    await s.start()
    s._fanout.max_buffer = 50
    s._fanout.replay_chunk = 64
    try:
        start = await s.revision()
        it = s.watch("/w/", start)
        first = asyncio.create_task(anext(it))
        await asyncio.sleep(0.05)
        await asyncio.gather(*(s.create(f"/w/{i:04d}", b"v") for i in range(500)))
        got: list[Event] = [await first]
        async with asyncio.timeout(10):
            async for ev in it:
                got.append(ev)
                if len(got) == 500:
                    break
        await it.aclose()
        assert [e.kv.mod_revision for e in got] == list(range(start + 1, start + 501))
    finally:
        await s.close()


async def test_lagging_watcher_whose_history_was_compacted_ends_with_compacted(tmp_path: Path) -> None:
    s = SqliteStore(path=tmp_path / "c.db")
    await s.start()
    s._fanout.max_buffer = 10
    try:
        it = s.watch("/c/", await s.revision())
        first = asyncio.create_task(anext(it))
        await asyncio.sleep(0.05)
        await s.create("/c/first", b"v")
        assert (await first).kv.key == "/c/first"
        # The consumer stalls now; its buffer overflows and the history it needs is compacted.
        for i in range(50):
            await s.create(f"/c/{i}", b"v")
        await s.compact(await s.revision())
        with pytest.raises(Compacted):
            async with asyncio.timeout(10):
                async for _ in it:
                    pass
    finally:
        await s.close()


async def test_one_file_per_partition_in_wal_mode(tmp_path: Path) -> None:
    s = await SqliteStore.open_partition(3, tmp_path, {"synchronous": "full"})
    try:
        assert s.name == "p3" and s.synchronous == "FULL"
        await s.create("/x", b"1")
    finally:
        await s.close()
    db = tmp_path / "partition-3.db"
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT count(*) FROM kv").fetchone()[0] == 1
    finally:
        conn.close()


async def test_bad_settings_and_closed_store_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SqliteStore(path=tmp_path / "x.db", synchronous="sometimes")
    s = SqliteStore(path=tmp_path / "x.db")
    with pytest.raises(StoreUnavailable):
        await s.get("/x")
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreUnavailable, match="cannot open"):
        await SqliteStore(path=tmp_path / "dir.db").start()


async def test_compaction_keeps_current_values_and_shrinks_history(tmp_path: Path) -> None:
    s = SqliteStore(path=tmp_path / "h.db")
    await s.start()
    try:
        kv = await s.create("/h/a", b"0")
        for i in range(1, 50):
            kv = await s.update("/h/a", str(i).encode(), kv.mod_revision)
        gone = await s.create("/h/gone", b"x")
        await s.delete("/h/gone", gone.mod_revision)
        await s.compact(await s.revision())
        assert (await s.get("/h/a")) == kv
        items, _, _ = await s.list("/h/")
        assert [i.key for i in items] == ["/h/a"]
    finally:
        await s.close()
    conn = sqlite3.connect(tmp_path / "h.db")
    try:
        assert conn.execute("SELECT count(*) FROM history").fetchone()[0] == 1
    finally:
        conn.close()


async def test_large_compaction_runs_in_steps_between_writes(tmp_path: Path) -> None:
    s = SqliteStore(path=tmp_path / "big.db")
    await s.start()
    try:
        await asyncio.gather(*(s.create(f"/big/{i:05d}", b"v") for i in range(12_000)))
        await asyncio.gather(*(s.delete(f"/big/{i:05d}") for i in range(11_000)))
        target = await s.revision()
        compaction = asyncio.create_task(s.compact(target))
        during = await s.create("/other/during", b"x")  # not stuck behind the whole compaction
        await compaction
        assert during.mod_revision > target
        items, _, _ = await s.list("/big/")
        assert len(items) == 1000
        with pytest.raises(Compacted):
            await s.list("/big/", revision=target - 1)
    finally:
        await s.close()
    conn = sqlite3.connect(tmp_path / "big.db")
    try:
        assert conn.execute("SELECT value FROM meta WHERE name = 'compacted'").fetchone()[0] == target
        assert conn.execute("SELECT count(*) FROM history").fetchone()[0] == 1001  # 1000 live + "during"
    finally:
        conn.close()
