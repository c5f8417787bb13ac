"""Real etcd: a 3-member cluster loses its leader; the process manager cleans up after crashes."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from centaurus.store.base import AlreadyExists, Event, StoreUnavailable
from centaurus.store.etcd import EtcdStore
from centaurus.store.etcdproc import EtcdCluster, EtcdProcessError

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture
def cluster3(tmp_path: Path) -> Iterator[EtcdCluster]:
    c = EtcdCluster(tmp_path, members=3, heartbeat_ms=50, election_ms=500)
    try:
        c.start()
        yield c
    finally:
        c.stop()


async def test_leader_loss_keeps_every_acknowledged_write(cluster3: EtcdCluster) -> None:
    store = EtcdStore(endpoints=cluster3.endpoints, timeout=15)
    await store.start()
    try:
        start = await store.revision()
        acked: dict[str, int] = {}
        unknown: set[str] = set()
        ack_times: list[float] = []
        stop = asyncio.Event()
        seen: list[Event] = []

        async def watcher() -> None:
            async for ev in store.watch("/ha/", start):
                seen.append(ev)

        async def writer(n: int) -> None:
            i = 0
            while not stop.is_set():
                key = f"/ha/{n}/{i:06d}"
                i += 1
                try:
                    acked[key] = (await store.create(key, b"v")).mod_revision
                    ack_times.append(time.monotonic())
                except StoreUnavailable:
                    unknown.add(key)  # in flight on the killed member: outcome unknown
                except AlreadyExists:  # pragma: no cover - keys are unique
                    raise

        watch_task = asyncio.create_task(watcher())
        writers = [asyncio.create_task(writer(n)) for n in range(4)]
        while len(acked) < 100:
            await asyncio.sleep(0.01)
        old_leader = cluster3.leader()
        killed_at = time.monotonic()
        await asyncio.to_thread(cluster3.kill, old_leader)
        async with asyncio.timeout(30):
            while sum(1 for t in ack_times if t > killed_at) < 100:
                await asyncio.sleep(0.01)
        stop.set()
        await asyncio.gather(*writers)
        new_leader = await asyncio.to_thread(cluster3.leader)
        assert new_leader != old_leader

        items, _, _ = await store.list("/ha/")
        stored = {kv.key: kv.mod_revision for kv in items}
        assert set(acked) <= set(stored), "an acknowledged write was lost"
        assert all(stored[k] == rev for k, rev in acked.items())
        assert set(stored) <= set(acked) | unknown, "a write nobody issued appeared"

        try:
            async with asyncio.timeout(20):
                while not set(acked) <= {e.kv.key for e in seen}:
                    await asyncio.sleep(0.05)
        finally:
            watch_task.cancel()
        revs = [e.kv.mod_revision for e in seen]
        assert revs == sorted(set(revs)), "watch across the failover: ordered, no duplicates"
        assert {e.kv.key for e in seen} >= set(acked), "watch across the failover missed an event"

        ack_times.sort()
        gap = max(b - a for a, b in itertools.pairwise(ack_times))
        print(f"\nleader kill: longest pause between acknowledged writes {gap * 1000:.0f} ms, "
              f"{len(unknown)} write(s) with unknown outcome")

        # The killed member rejoins and catches up from its peers.
        await asyncio.to_thread(cluster3.restart, old_leader)
        alone = EtcdStore(endpoints=[cluster3.members[old_leader].endpoint])
        await alone.start()
        try:
            items, _, _ = await alone.list("/ha/")
            assert {kv.key for kv in items} >= set(acked)
        finally:
            await alone.close()
    finally:
        await store.close()


async def test_writes_fail_clearly_without_quorum(tmp_path: Path) -> None:
    c = EtcdCluster(tmp_path, members=3, heartbeat_ms=50, election_ms=500)
    c.start()
    try:
        store = EtcdStore(endpoints=c.endpoints, timeout=3)
        await store.start()
        try:
            await store.create("/q/1", b"v")
            leader = c.leader()
            for i in range(3):
                if i != leader:
                    c.kill(i)
                    break
            c.kill(leader)
            with pytest.raises(StoreUnavailable):
                await store.create("/q/2", b"v")
        finally:
            await store.close()
    finally:
        c.stop()


def test_cleanup_after_a_crashed_run(tmp_path: Path) -> None:
    """A run that died without stop() leaves etcd running; cleanup() finds it via the state
    file and ends it by pid; a recycled pid of another process is never touched."""
    c = EtcdCluster(tmp_path, members=1, name="crashy")
    c.start()
    pid = c.pids[0]
    assert pid is not None
    del c  # the "crash": nobody calls stop()
    assert EtcdCluster.cleanup(tmp_path, "crashy") == 1
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert EtcdCluster.cleanup(tmp_path, "crashy") == 0  # idempotent
    assert EtcdCluster.cleanup(tmp_path / "nothing-here") == 0
    # The state file names our own pid now: cleanup must not kill a process that is not our etcd.
    again = EtcdCluster(tmp_path, members=1, name="crashy")
    again.members[0].pid = os.getpid()
    again._save()
    assert EtcdCluster.cleanup(tmp_path, "crashy") == 0


def test_restart_reuses_ports_and_data(tmp_path: Path) -> None:
    c = EtcdCluster(tmp_path, members=1)
    c.start()
    endpoints = c.endpoints
    c.stop()
    assert c.pids == [None]
    d = EtcdCluster(tmp_path, members=1)  # a new manager object reads the state file
    try:
        d.start()
        assert d.endpoints == endpoints and d.healthy(0)
        with pytest.raises(EtcdProcessError, match="1-member etcd, not 3"):
            EtcdCluster(tmp_path, members=3)
    finally:
        d.stop()


def test_member_that_cannot_start_reports_its_log(tmp_path: Path) -> None:
    c = EtcdCluster(tmp_path, members=1, extra_args=("--no-such-flag",))
    with pytest.raises(EtcdProcessError, match="exited"):
        c.start(timeout=10)
    c.stop()  # stopping a member that already died is a no-op
    assert c.pids == [None]
