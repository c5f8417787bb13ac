"""Data partitions: tenants land in different stores (files / etcd clusters); composite
resourceVersions resume a cross-partition watch exactly."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from centaurus.store.base import Compacted, Event
from centaurus.store.partitions import (
    SYSTEM_TENANT,
    Partitions,
    decode_rv,
    encode_rv,
    revision_for,
    stable_hash,
)

pytestmark = pytest.mark.anyio


def two_tenants_in_different_partitions(n: int = 2) -> tuple[str, str]:
    """Two tenant names the stable hash puts in different partitions (found, not assumed)."""
    names = [f"tenant-{c}" for c in "abcdefghij"]
    first = names[0]
    other = next(t for t in names[1:] if stable_hash(t, n) != stable_hash(first, n))
    return first, other


def keys_in_sqlite(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT key FROM kv")}
    finally:
        conn.close()


async def test_tenants_land_in_different_sqlite_files(tmp_path: Path) -> None:
    parts = await Partitions.open("sqlite", 2, tmp_path)
    try:
        a, b = two_tenants_in_different_partitions()
        ia, ib = parts.bind(a), parts.bind(b)
        assert ia != ib
        await parts.for_tenant(a).create(f"/registry/pods/{a}/default/p", b"A")
        await parts.for_tenant(b).create(f"/registry/pods/{b}/default/p", b"B")
        await parts.for_tenant(SYSTEM_TENANT).create("/registry/tenants/a", b"T")
    finally:
        await parts.close()
    files = {i: keys_in_sqlite(tmp_path / f"partition-{i}.db") for i in (0, 1)}
    assert f"/registry/pods/{a}/default/p" in files[ia] and f"/registry/pods/{a}/default/p" not in files[ib]
    assert f"/registry/pods/{b}/default/p" in files[ib] and f"/registry/pods/{b}/default/p" not in files[ia]
    assert "/registry/tenants/a" in files[0], "system data lives in partition 0"


@pytest.mark.integration
async def test_tenants_land_in_different_etcd_clusters(tmp_path: Path) -> None:
    parts = await Partitions.open("etcd", 2, tmp_path, {"election_ms": 500, "heartbeat_ms": 50})
    try:
        stores = parts.all()
        eps = [s.endpoints for s in stores]  # type: ignore[attr-defined]
        assert eps[0] != eps[1], "each partition is its own etcd cluster"
        parts.bind("t-one", "0")
        parts.bind("t-two", 1)
        await parts.for_tenant("t-one").create("/registry/pods/t-one/ns/p", b"1")
        await parts.for_tenant("t-two").create("/registry/pods/t-two/ns/p", b"2")
        in0, _, _ = await stores[0].list("/registry/pods/")
        in1, _, _ = await stores[1].list("/registry/pods/")
        assert [kv.key for kv in in0] == ["/registry/pods/t-one/ns/p"]
        assert [kv.key for kv in in1] == ["/registry/pods/t-two/ns/p"]
        assert (tmp_path / "etcd-p0").is_dir() and (tmp_path / "etcd-p1").is_dir()
    finally:
        await parts.close()
    assert all(c is None for s in stores for c in s.cluster.pids)  # type: ignore[attr-defined]


async def test_mapping_rules(tmp_path: Path) -> None:
    parts = await Partitions.open("sqlite", 3, tmp_path)
    try:
        assert parts.index_for(SYSTEM_TENANT) == 0
        assert parts.bind(SYSTEM_TENANT, "2") == 0, "the system tenant always stays in partition 0"
        assert parts.bind("explicit", "2") == 2 and parts.index_for("explicit") == 2
        assert parts.index_for("unbound") == stable_hash("unbound", 3) == parts.place("unbound")
        for bad in ("3", "-1", "x", 7):
            with pytest.raises(ValueError, match="storageClusterId"):
                parts.bind("bad", bad)
        parts.unbind("explicit")
        assert parts.index_for("explicit") == stable_hash("explicit", 3)
        least = Partitions(parts.all(), placement="least-loaded")
        least.bind("x", 0)
        least.bind("y", 2)
        assert least.place("new") == 1
        least.bind("z", 1)
        assert least.place("new2") == 0
    finally:
        await parts.close()


async def test_following_tenant_objects(tmp_path: Path) -> None:
    """The API server's use: bindings follow the Tenant objects; least-loaded placement counts
    the system tenant in partition 0; an unset or invalid id binds at the stable hash."""
    parts = await Partitions.open("sqlite", 3, tmp_path)
    try:
        api = Partitions(parts.all(), placement="least-loaded", count_system=True)
        assert api.place("first") == 1, "partition 0 already holds the system tenant"
        api.follow_all({SYSTEM_TENANT: "0", "a": "1", "b": "", "c": "9"})
        assert api.index_for("a") == 1
        assert api.index_for("b") == stable_hash("b", 3) and api.index_for("c") == stable_hash("c", 3)
        assert api.follow("a", "2") == 2 and api.index_for("a") == 2
        api.follow_all({"x": "1", "y": "2"})
        assert api.place("new") == 0 and api.index_for("a") == stable_hash("a", 3)
    finally:
        await parts.close()


def test_resource_version_codec() -> None:
    assert encode_rv([7]) == "7"
    assert encode_rv([3, 9, 0]) == "3.9.0"
    assert decode_rv("3.9.0", 3) == [3, 9, 0]
    assert decode_rv("", 2) is None and decode_rv("0", 2) is None
    for bad in ("1.2", "a.b", "1..2", "-1.2.3"):
        with pytest.raises(ValueError):
            decode_rv(bad, 3)
    assert revision_for("42", 1, 2) == 42
    assert revision_for("5.42", 1, 2) == 42


async def test_cross_partition_list_and_watch_resume_exactly(tmp_path: Path) -> None:
    parts = await Partitions.open("sqlite", 2, tmp_path)
    try:
        s0, s1 = parts.all()
        for i in range(3):
            await s0.create(f"/registry/pods/a/{i}", b"0")
            await s1.create(f"/registry/pods/b/{i}", b"1")
        # Paginated list across partitions, one snapshot per partition.
        seen, token, pages = [], None, 0
        while True:
            items, rv, token = await parts.list_all("/registry/pods/", limit=2, cont=token)
            seen.extend((i, kv.key) for i, kv in items)
            pages += 1
            if token is None:
                break
            await s1.create(f"/registry/pods/b/late{pages}", b"x")  # not in the snapshot
        assert len(seen) == 6 and pages == 3
        # Watch everything after the list; cut the stream after some events and resume from the
        # resourceVersion of the last event seen, as client-go's reflector does.
        writes = [(s0, "/registry/pods/a/w0"), (s1, "/registry/pods/b/w0"), (s1, "/registry/pods/b/w1"),
                  (s0, "/registry/pods/a/w1"), (s1, "/registry/pods/b/w2"), (s0, "/registry/pods/a/w2")]
        list_rv = rv
        for store, key in writes:
            await store.create(key, b"w")
        first: list[tuple[int, Event, str]] = []
        gen = parts.watch_all("/registry/pods/", list_rv)
        async with asyncio.timeout(10):
            async for item in gen:
                first.append(item)
                if len(first) == 4:
                    break
        await gen.aclose()
        resume_rv = first[-1][2]
        rest: list[tuple[int, Event, str]] = []
        gen = parts.watch_all("/registry/pods/", resume_rv)
        async with asyncio.timeout(10):
            async for item in gen:
                rest.append(item)
                if len(first) + len(rest) == 8:  # 2 late list writes + 6 watch writes
                    break
        await gen.aclose()
        keys = [e.kv.key for _, e, _ in first + rest]
        assert len(keys) == len(set(keys)) == 8, "no duplicate and no gap across the resume"
        assert set(keys) >= {k for _, k in writes}
        for part in (0, 1):  # per partition, commit order is kept
            revs = [e.kv.mod_revision for i, e, _ in first + rest if i == part]
            assert revs == sorted(revs)
    finally:
        await parts.close()


async def test_unknown_kind_and_bad_count_fail_clearly(tmp_path: Path) -> None:
    from centaurus.plugins import PluginError

    with pytest.raises(PluginError):
        await Partitions.open("nosuchstore", 1, tmp_path)
    with pytest.raises(ValueError):
        await Partitions.open("sqlite", 0, tmp_path)


async def test_compactors_forget_old_history(tmp_path: Path) -> None:
    parts = await Partitions.open("sqlite", 2, tmp_path)
    try:
        s0 = parts.store(0)
        first = await s0.create("/c/a", b"1")
        await s0.update("/c/a", b"2", first.mod_revision)
        parts.start_compactors(interval=0.05)
        async with asyncio.timeout(10):
            while True:  # two rounds: the first only notes the revision
                try:
                    await s0.list("/c/", revision=first.mod_revision)
                except Compacted:
                    break
                await asyncio.sleep(0.02)
        items, _, _ = await s0.list("/c/")
        assert [i.value for i in items] == [b"2"]
    finally:
        await parts.close()
