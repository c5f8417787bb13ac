"""Fixtures for the store tests: one store of each kind, a unique key prefix per test.

Async tests run through anyio's pytest plugin on asyncio (uvloop, as in the servers).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from centaurus.store.base import Store

KINDS = ["sqlite", pytest.param("etcd", marks=pytest.mark.integration)]


BACKEND: tuple[str, dict[str, Any]] = ("asyncio", {"use_uvloop": True})


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return BACKEND


@pytest.fixture(scope="package", autouse=True)
def _one_loop_for_the_store_tests() -> Iterator[None]:
    """All store tests share one event loop: grpc.aio binds its completion-queue poller to the
    first loop it sees, and with a loop per test a late completion of one test's etcd channel
    was posted to that test's closed loop ("Event loop is closed" in a later teardown)."""
    from anyio.pytest_plugin import get_runner

    with get_runner(*BACKEND):
        yield


@pytest.fixture(scope="session")
def etcd_endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """One real single-member etcd shared by the etcd-parametrized tests of the session."""
    from centaurus.store.etcdproc import EtcdCluster

    cluster = EtcdCluster(tmp_path_factory.mktemp("etcd"), members=1)
    cluster.start()
    try:
        yield cluster.endpoints
    finally:
        cluster.stop()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[], Store]:
    """A factory of not-yet-started stores of ``kind`` sharing one backend (file / cluster)."""
    if kind == "sqlite":
        from centaurus.store.sqlite import SqliteStore

        return lambda: SqliteStore(name="p0", path=tmp_path / "p0.db")
    from centaurus.store.etcd import EtcdStore

    endpoints = request.getfixturevalue("etcd_endpoints")
    return lambda: EtcdStore(name="p0", endpoints=endpoints)


@pytest.fixture
async def store(make_store: Callable[[], Store]) -> AsyncIterator[Store]:
    s = make_store()
    await s.start()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def prefix() -> str:
    """Keys of one test live under their own prefix (the etcd is shared by the session)."""
    return f"/t-{secrets.token_hex(4)}/"
