"""A machine-wide bound on concurrent cold boots (all agents, all VM runtimes of this host).

Why: a cold boot under TCG is ~1-2 s of CPU, nearly all of it translating guest code the first
time it runs. N boots at once on C cores share the cores, so *every* one of them takes ~N/C times
longer; a FIFO of boots with C slots finishes the first ones at full speed and the last one no
later (same total CPU), which keeps the tail (p99) down whenever boots arrive in bursts. The slots
are ``flock`` s on files, so agents in different processes (one per lab droplet) share them, and a
process that dies releases its slot with its file descriptors.

A slot is taken before qemu is spawned and given back when the guest's agent answers (or the
machine exits, or :data:`HOLD_LIMIT` s pass): the wait is part of the measured start time.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from pathlib import Path

DEFAULT_DIR = Path("/run/centaurus/vm/boot-slots")
HOLD_LIMIT = 30.0  # a guest that never answers must not hold a slot forever


def default_slots() -> int:
    """One cold boot per core, leaving one core to the control plane and the agents when there
    are more than two; on a 2-core host, 2 (both cores boot; the figures show the cost)."""
    n = os.cpu_count() or 1
    return max(1, n - 1) if n > 2 else n


class BootSlot:
    """A held slot (a locked file descriptor). :meth:`release` is idempotent."""

    def __init__(self, fd: int | None, waited_s: float) -> None:
        self._fd = fd
        self.waited_s = waited_s
        self._timer: asyncio.TimerHandle | None = None
        if fd is not None:
            with contextlib.suppress(RuntimeError):
                self._timer = asyncio.get_running_loop().call_later(HOLD_LIMIT, self.release)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor drops the flock


class BootSlots:
    """``slots`` lock files under ``root``; ``slots <= 0`` means unbounded."""

    def __init__(self, slots: int | None = None, root: Path | None = None) -> None:
        self.slots = default_slots() if slots is None else int(slots)
        self.root = Path(root) if root else DEFAULT_DIR

    def _try(self) -> int | None:
        self.root.mkdir(parents=True, exist_ok=True)
        for i in range(self.slots):
            fd = os.open(self.root / f"slot{i}", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                os.close(fd)
        return None

    async def acquire(self, timeout: float = 120.0) -> BootSlot:
        """Wait for a free slot (polling: the lock files are shared with other processes). After
        ``timeout`` s the boot goes ahead without one rather than failing the pod."""
        t0 = time.monotonic()
        if self.slots <= 0:
            return BootSlot(None, 0.0)
        delay = 0.002
        while True:
            fd = self._try()
            if fd is not None or time.monotonic() - t0 > timeout:
                return BootSlot(fd, time.monotonic() - t0)
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.02)
