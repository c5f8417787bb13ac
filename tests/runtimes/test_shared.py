"""Pieces the process, vm and hollow runtimes share: change listeners and instance logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from centaurus.runtimes.base import Listeners, RuntimeError_
from centaurus.runtimes.logs import read_instance

pytestmark = pytest.mark.anyio


def test_a_failing_listener_does_not_stop_the_others() -> None:
    seen: list[tuple[str, str]] = []

    def bad(uid: str, name: str) -> None:
        raise ValueError("boom")

    ls = Listeners()
    ls.add(bad)
    ls.add(lambda uid, name: seen.append((uid, name)))
    ls("u1", "c1")
    assert seen == [("u1", "c1")]


async def test_instance_logs_current_previous_and_none(tmp_path: Path) -> None:
    for n in (0, 1):
        (tmp_path / f"{n}.log").write_bytes(f"instance {n}\n".encode())

    async def read(count: int, previous: bool) -> bytes:
        it = read_instance(
            lambda n: tmp_path / f"{n}.log",
            count,
            previous=previous,
            follow=True,
            tail_lines=None,
            writing=lambda n: False,
            what="container 'c'",
        )
        return b"".join([chunk async for chunk in it])

    assert await read(1, False) == b"instance 1\n"
    assert await read(1, True) == b"instance 0\n"
    with pytest.raises(RuntimeError_, match="no previous instance"):
        await read(0, True)


def test_pid_alive_counts_zombies_as_gone() -> None:
    """One liveness check for runtimes, the control-plane supervisor and the hollow fleet."""
    import os
    import subprocess
    import time

    from centaurus.runtimes.linux import pid_alive

    assert pid_alive(os.getpid())
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 5
    while pid_alive(child.pid) and time.monotonic() < deadline:  # exits; unreaped = zombie
        time.sleep(0.01)
    assert not pid_alive(child.pid)
    child.wait()
