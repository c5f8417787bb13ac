"""One worker thread in a private mount namespace: where crun runs and container rootfs mount.

Why a thread, not the whole process: on this machine's hybrid cgroup layout crun refuses to
run unless ``/sys/fs/cgroup/unified/cgroup.controllers`` looks empty, which needs a bind mount
that must not leak into the host. ``unshare(CLONE_NEWNS)`` affects only the calling thread, so a
single worker thread takes the private namespace and every crun it spawns inherits it; the rest
of the process (the agent's loop, other helpers' code in the same process, ``ip netns`` calls)
keeps the host's mount namespace and sees no difference. No extra process per container start:
the fix costs one ``unshare`` and one bind mount per process lifetime.

The namespace is a *slave* of the host's (``MS_REC|MS_SLAVE`` on ``/``): mounts the host makes
later (``ip netns add`` bind-mounts under ``/run/netns``) propagate in, while ours (the cgroup
fix, per-container overlay rootfs) never propagate out. ``/run/netns`` is made a shared mount
first (what ``ip netns`` itself does) so namespaces created after the worker started are visible.
Overlay rootfs mounted here vanish with the process; a restarted agent simply finds plain
directories (the running containers keep their own copies of the mount).

Pure cgroup-v2 or pure v1 hosts need no cgroup fix (:func:`centaurus.runtimes.cgroups.needs_hybrid_fix`);
the private namespace is still used so overlay mounts stay private.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from centaurus.runtimes import cgroups, linux

T = TypeVar("T")
NETNS_DIR = "/run/netns"
EMPTY_FILE = "/run/centaurus/empty"


class SpawnError(RuntimeError):
    pass


def ensure_shared_netns_dir() -> None:
    """Make ``/run/netns`` a shared mount (as ``ip netns add`` does) so netns created later by
    anyone propagate into slave namespaces. Idempotent."""
    os.makedirs(NETNS_DIR, exist_ok=True)
    with open("/proc/self/mountinfo") as f:
        lines = [ln.split() for ln in f]
    mine = [ln for ln in lines if ln[4] == NETNS_DIR]
    if mine and any(opt.startswith("shared:") for opt in mine[-1][6:]):
        return
    if not mine:
        linux.mount(NETNS_DIR, NETNS_DIR, None, linux.MS_BIND | linux.MS_REC)
    linux.mount(None, NETNS_DIR, None, 1 << 20)  # MS_SHARED


class PrivateMountWorker:
    """A single thread in a private (slave) mount namespace; see the module docstring."""

    _instance: PrivateMountWorker | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.hybrid_fix = cgroups.needs_hybrid_fix()
        self.error: BaseException | None = None
        self.namespace: str | None = None
        self.tid: int | None = None  # the worker's thread id (its /proc/self/task/<tid>/mountinfo)
        ensure_shared_netns_dir()
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="cl-mntns", initializer=self._enter
        )
        # Run the initializer now so a failure is reported at prepare(), not at the first start.
        self._executor.submit(lambda: None).result()
        if self.error is not None:
            raise SpawnError(f"cannot enter a private mount namespace: {self.error}") from self.error

    @classmethod
    def get(cls) -> PrivateMountWorker:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _enter(self) -> None:
        try:
            linux.unshare(linux.CLONE_NEWNS)
            linux.mount(None, "/", None, linux.MS_REC | linux.MS_SLAVE)
            if self.hybrid_fix:
                os.makedirs(os.path.dirname(EMPTY_FILE), exist_ok=True)
                with open(EMPTY_FILE, "w"):
                    pass
                linux.mount(EMPTY_FILE, cgroups.UNIFIED_CONTROLLERS, None, linux.MS_BIND)
            self.tid = threading.get_native_id()
            self.namespace = os.readlink(f"/proc/self/task/{self.tid}/ns/mnt")
        except BaseException as exc:  # reported by __init__
            self.error = exc

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the worker thread (mounts, file work, spawning) and await its result."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def run_sync(self, fn: Callable[[], T]) -> T:
        return self._executor.submit(fn).result()


def spawn(
    argv: Sequence[str],
    *,
    stdin: int | None = None,
    stdout: int | None = None,
    stderr: int | None = None,
    env: Mapping[str, str] | None = None,
    setsid: bool = True,
    fds: Mapping[int, int] | None = None,
) -> int:
    """``posix_spawn`` from the *calling* thread (so the child inherits its namespaces); file
    descriptors given are dup'ed onto 0/1/2 (and ``fds``: child fd -> our fd), everything else
    stays close-on-exec. Returns the pid."""
    actions: list[tuple[int, int, int]] = []
    for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2), *((v, k) for k, v in (fds or {}).items())):
        if fd is not None:
            actions.append((os.POSIX_SPAWN_DUP2, fd, target))
    path = argv[0] if "/" in argv[0] else _which(argv[0])
    with linux.OWN_LOCK:  # registered before any stray reaper can see it exit
        pid = os.posix_spawn(
            path,
            list(argv),
            dict(env if env is not None else os.environ),
            file_actions=actions,
            setsid=setsid,
        )
        linux.own(pid)
    return pid


def _which(name: str) -> str:
    for d in os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(":"):
        p = Path(d) / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    raise FileNotFoundError(f"{name} not found on PATH")
