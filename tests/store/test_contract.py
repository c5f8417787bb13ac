"""The one Store contract, run against every store kind (sqlite file, real etcd).

Semantics under test are etcd v3's as described in ``centaurus/store/base.py``: a store-wide
revision bumped once per write, create/mod revisions per key, compare-and-swap on mod_revision,
ordered watches from a revision with replay, compaction.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from centaurus import plugins
from centaurus.store.base import (
    AlreadyExists,
    Compacted,
    Conflict,
    Event,
    FutureRevision,
    NotFound,
    Store,
)

pytestmark = pytest.mark.anyio


async def collect(store: Store, prefix: str, from_revision: int, n: int, timeout: float = 10) -> list[Event]:
    """The first ``n`` events of a watch (fails the test on timeout)."""
    out: list[Event] = []
    it = store.watch(prefix, from_revision)
    try:
        async with asyncio.timeout(timeout):
            async for ev in it:
                out.append(ev)
                if len(out) == n:
                    break
    finally:
        await it.aclose()
    return out


async def test_create_get(store: Store, prefix: str) -> None:
    before = await store.revision()
    kv = await store.create(prefix + "a", b"one")
    assert kv.key == prefix + "a" and kv.value == b"one"
    assert kv.create_revision == kv.mod_revision > before
    assert await store.revision() == kv.mod_revision
    assert await store.get(prefix + "a") == kv
    assert await store.get(prefix + "missing") is None
    with pytest.raises(AlreadyExists):
        await store.create(prefix + "a", b"two")
    assert (await store.get(prefix + "a")) == kv, "a failed create must not change anything"
    assert await store.revision() == kv.mod_revision, "a failed create must not bump the revision"


async def test_update_compare_and_swap(store: Store, prefix: str) -> None:
    k = prefix + "k"
    v1 = await store.create(k, b"1")
    v2 = await store.update(k, b"2", v1.mod_revision)
    assert v2.value == b"2" and v2.create_revision == v1.create_revision
    assert v2.mod_revision == v1.mod_revision + 1
    with pytest.raises(Conflict) as err:
        await store.update(k, b"stale", v1.mod_revision)
    assert err.value.expected == v1.mod_revision and err.value.actual == v2.mod_revision
    assert (await store.get(k)) == v2
    v3 = await store.update(k, b"3", 0)  # unconditional
    assert v3.value == b"3" and v3.mod_revision > v2.mod_revision
    with pytest.raises(NotFound):
        await store.update(prefix + "nope", b"x", 0)
    with pytest.raises(NotFound):
        await store.update(prefix + "nope", b"x", v3.mod_revision)


async def test_delete(store: Store, prefix: str) -> None:
    k = prefix + "d"
    v1 = await store.create(k, b"last")
    with pytest.raises(Conflict):
        await store.delete(k, v1.mod_revision + 100)
    gone = await store.delete(k, v1.mod_revision)
    assert gone.value == b"last" and gone.create_revision == v1.create_revision
    assert gone.mod_revision == v1.mod_revision + 1 == await store.revision()
    assert await store.get(k) is None
    with pytest.raises(NotFound):
        await store.delete(k)
    again = await store.create(k, b"new")  # a re-created key starts a new life
    assert again.create_revision == again.mod_revision > gone.mod_revision


async def test_revisions_strictly_increase_one_per_write(store: Store, prefix: str) -> None:
    revs = []
    for i in range(20):
        revs.append((await store.create(f"{prefix}{i:02d}", b"x")).mod_revision)
    revs.append((await store.update(prefix + "00", b"y", revs[0])).mod_revision)
    revs.append((await store.delete(prefix + "01")).mod_revision)
    assert revs == list(range(revs[0], revs[0] + len(revs)))


async def test_list_prefix_isolation_and_order(store: Store, prefix: str) -> None:
    keys = [f"{prefix}a/{n}" for n in ("x", "b", "a/deep", "é", "z9")]
    for k in keys:
        await store.create(k, k.encode())
    # Neighbours that share a string prefix but are outside the "a/" prefix.
    for k in (prefix + "a", prefix + "ab/1", prefix + "a0", prefix + "b/1"):
        await store.create(k, b"other")
    items, rev, more = await store.list(prefix + "a/")
    assert [i.key for i in items] == sorted(keys)
    assert all(i.value == i.key.encode() for i in items)
    assert not more and rev == await store.revision()
    items, _, _ = await store.list(prefix + "nothing/")
    assert items == []


async def test_pagination_is_a_consistent_snapshot(store: Store, prefix: str) -> None:
    for i in range(25):
        await store.create(f"{prefix}{i:03d}", str(i).encode())
    page, rev, more = await store.list(prefix, limit=10)
    assert len(page) == 10 and more
    # Writes between pages must not show up in later pages read at the first page's revision.
    await store.create(prefix + "999", b"late")
    await store.update(prefix + "020", b"changed", 0)
    seen = list(page)
    while more:
        page, rev2, more = await store.list(prefix, limit=10, start_after=seen[-1].key, revision=rev)
        assert rev2 == rev
        seen.extend(page)
    assert [kv.key for kv in seen] == [f"{prefix}{i:03d}" for i in range(25)]
    assert seen[20].value == b"20", "a page read at an old revision shows the old value"
    latest, _, _ = await store.list(prefix)
    assert len(latest) == 26 and latest[20].value == b"changed"
    exact, _, more = await store.list(prefix, limit=26)
    assert len(exact) == 26 and not more


async def test_list_at_old_revision_and_bounds(store: Store, prefix: str) -> None:
    a = await store.create(prefix + "a", b"1")
    await store.update(prefix + "a", b"2", 0)
    await store.create(prefix + "b", b"1")
    await store.delete(prefix + "a")
    items, rev, _ = await store.list(prefix, revision=a.mod_revision)
    assert rev == a.mod_revision and [(i.key, i.value) for i in items] == [(prefix + "a", b"1")]
    items, _, _ = await store.list(prefix)
    assert [i.key for i in items] == [prefix + "b"]
    with pytest.raises(FutureRevision):
        await store.list(prefix, revision=await store.revision() + 1000)
    now = await store.revision()
    await store.compact(now)
    with pytest.raises(Compacted):
        await store.list(prefix, revision=a.mod_revision)
    items, rev, _ = await store.list(prefix, revision=now)  # the compaction point itself stays readable
    assert rev == now and [i.key for i in items] == [prefix + "b"]


async def test_watch_replay_then_live_in_order(store: Store, prefix: str) -> None:
    start = await store.revision()
    k = prefix + "w"
    v1 = await store.create(k, b"1")
    await store.update(k, b"2", v1.mod_revision)
    await store.create(prefix + "other", b"o")
    got: list[Event] = []

    async def consume() -> None:
        got.extend(await collect(store, prefix, start, 8))

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    for i in range(4):  # live writes while the watcher runs
        await store.update(k, str(10 + i).encode(), 0)
    await store.delete(k)
    await asyncio.wait_for(task, 15)
    revs = [e.kv.mod_revision for e in got]
    assert revs == list(range(start + 1, start + 9)), "no gaps, no duplicates, commit order"
    assert [e.type for e in got] == ["PUT"] * 7 + ["DELETE"]
    assert got[0].prev is None and got[0].kv.create_revision == got[0].kv.mod_revision
    assert got[1].prev is not None and got[1].prev.value == b"1" and got[1].kv.value == b"2"
    assert got[7].kv.value == b"13", "a DELETE event carries the last value"
    assert got[7].kv.create_revision == v1.create_revision


async def test_watch_from_the_middle_and_prefix_isolation(store: Store, prefix: str) -> None:
    await store.create(prefix + "x/1", b"a")
    mid = (await store.create(prefix + "y/1", b"b")).mod_revision
    await store.create(prefix + "x/2", b"c")
    await store.create(prefix + "xx/1", b"not under x/")
    await store.create(prefix + "x/3", b"d")
    got = await collect(store, prefix + "x/", mid, 2)
    assert [e.kv.key for e in got] == [prefix + "x/2", prefix + "x/3"]


async def test_many_watchers_see_the_same_stream(store: Store, prefix: str) -> None:
    start = await store.revision()
    tasks = [asyncio.create_task(collect(store, prefix, start, 30)) for _ in range(5)]
    await asyncio.sleep(0.05)
    await asyncio.gather(*(store.create(f"{prefix}{i}", b"v") for i in range(30)))
    streams = await asyncio.wait_for(asyncio.gather(*tasks), 20)
    first = [e.kv.mod_revision for e in streams[0]]
    assert first == sorted(set(first)) and len(first) == 30
    assert all([e.kv.mod_revision for e in s] == first for s in streams)


async def test_watch_from_compacted_revision(store: Store, prefix: str) -> None:
    old = await store.revision()
    for i in range(5):
        await store.create(f"{prefix}{i}", b"v")
    now = await store.revision()
    await store.compact(now - 1)
    with pytest.raises(Compacted):
        await collect(store, prefix, old, 1)
    await store.compact(now - 1)  # idempotent
    await store.create(prefix + "after", b"v")
    got = await collect(store, prefix, now, 1)  # from the compaction point onwards still works
    assert got[0].kv.key == prefix + "after"
    with pytest.raises(FutureRevision):
        await store.compact(await store.revision() + 100)


async def test_concurrent_cas_writers_lose_no_update(store: Store, prefix: str) -> None:
    key = prefix + "counter"
    await store.create(key, b"0")
    conflicts = 0

    async def incrementer(n: int) -> None:
        nonlocal conflicts
        for _ in range(n):
            while True:
                cur = await store.get(key)
                assert cur is not None
                try:
                    await store.update(key, str(int(cur.value) + 1).encode(), cur.mod_revision)
                    break
                except Conflict:
                    conflicts += 1

    await asyncio.gather(*(incrementer(100) for _ in range(8)))
    final = await store.get(key)
    assert final is not None and int(final.value) == 800
    assert final.mod_revision == final.create_revision + 800


async def test_close_ends_pending_watches(make_store: object) -> None:
    assert callable(make_store)
    s: Store = make_store()
    await s.start()
    it = s.watch("/close/", await s.revision())
    task = asyncio.create_task(anext(it))
    await asyncio.sleep(0.1)
    await s.close()
    with contextlib.suppress(StopAsyncIteration):
        await asyncio.wait_for(task, 10)
        pytest.fail("the watch yielded an event although nothing was written")


async def test_restart_keeps_data_and_revision(kind: str, tmp_path: Path) -> None:
    """Close the partition (for etcd: stop its process) and open it again from disk."""
    cls = plugins.load("store", kind)
    s: Store = await cls.open_partition(0, tmp_path, {})
    kv = await s.create("/r/a", b"kept")
    await s.update("/r/a", b"kept2", kv.mod_revision)
    await s.create("/r/b", b"b")
    rev = await s.revision()
    await s.close()
    s = await cls.open_partition(0, tmp_path, {})
    try:
        assert await s.revision() == rev
        items, _, _ = await s.list("/r/")
        assert [(i.key, i.value) for i in items] == [("/r/a", b"kept2"), ("/r/b", b"b")]
        nxt = await s.create("/r/c", b"c")
        assert nxt.mod_revision == rev + 1
        got = await collect(s, "/r/", kv.mod_revision, 3)  # history survived too
        assert [e.kv.mod_revision for e in got] == [rev - 1, rev, rev + 1]
    finally:
        await s.close()


async def test_bad_input_is_refused_and_nothing_is_stored(store: Store, prefix: str) -> None:
    before = await store.revision()
    with pytest.raises(ValueError):
        await store.create("", b"x")
    with pytest.raises(ValueError):
        await store.list(prefix, limit=-1)
    assert await store.revision() == before
    kv = await store.create(prefix + "big", b"x" * 3_000_000)  # an API body may be up to 3 MiB
    assert (await store.get(prefix + "big")) == kv
