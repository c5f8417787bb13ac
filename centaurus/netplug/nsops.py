"""Named network namespaces made and removed in-process (what ``ip netns add/del`` does).

A thread may change its network namespace alone (``unshare(CLONE_NEWNET)``/``setns``): the
worker thread here creates a namespace by unsharing, bind-mounts its ``/proc/thread-self/ns/net``
at ``/run/netns/<name>`` (the host mount namespace: ``/run/netns`` is a shared mount, so crun in
the runtime's private slave namespace sees it too), opens whatever it needs inside (a netlink
socket), and returns to the namespace it came from. No process is spawned per pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from centaurus.runtimes import linux
from centaurus.runtimes.spawn import ensure_shared_netns_dir

T = TypeVar("T")
NETNS_DIR = Path("/run/netns")


def netns_path(name: str) -> Path:
    return NETNS_DIR / name


def exists(name: str) -> bool:
    return netns_path(name).exists()


def _thread_ns() -> str:
    return f"/proc/self/task/{threading.get_native_id()}/ns/net"


def open_netns(name: str) -> int:
    return os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)


class NsWorker:
    """One thread that may hop between network namespaces; always returns to its home one."""

    def __init__(self, name: str = "cl-netplug") -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._home: int | None = None
        ensure_shared_netns_dir()
        self._executor.submit(self._init).result()

    def _init(self) -> None:
        self._home = os.open(_thread_ns(), os.O_RDONLY | os.O_CLOEXEC)

    def go_home(self) -> None:
        assert self._home is not None
        linux.setns(self._home, linux.CLONE_NEWNET)

    def enter(self, fd: int) -> None:
        linux.setns(fd, linux.CLONE_NEWNET)

    def run_sync(self, fn: Callable[[], T]) -> T:
        return self._executor.submit(fn).result()

    async def call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def in_netns(self, fd: int, fn: Callable[[], T]) -> T:
        """(worker thread) run ``fn`` inside the namespace ``fd``, then come home."""
        self.enter(fd)
        try:
            return fn()
        finally:
            self.go_home()

    def create_netns(self, name: str, inside: Callable[[], T]) -> tuple[int, T]:
        """(worker thread) create netns ``name``; run ``inside`` in it; returns (open fd, result).
        Nothing is left behind when any step fails."""
        path = netns_path(name)
        NETNS_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        os.close(fd)
        mounted = False
        try:
            linux.unshare(linux.CLONE_NEWNET)
            try:
                linux.mount(_thread_ns(), str(path), None, linux.MS_BIND)
                mounted = True
                nsfd = os.open(_thread_ns(), os.O_RDONLY | os.O_CLOEXEC)
                try:
                    result = inside()
                except BaseException:
                    os.close(nsfd)
                    raise
            finally:
                self.go_home()
        except BaseException:
            if mounted:
                with contextlib.suppress(OSError):
                    linux.umount(str(path))
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        return nsfd, result

    def close(self) -> None:
        def shut() -> None:
            if self._home is not None:
                os.close(self._home)
                self._home = None

        with contextlib.suppress(RuntimeError):
            self._executor.submit(shut).result()
        self._executor.shutdown(wait=True)


def delete_netns(name: str) -> bool:
    """Unmount and remove ``/run/netns/<name>`` (any thread). False when it did not exist. The
    namespace itself lives on until its last process and open fd are gone."""
    path = netns_path(name)
    if not path.exists():
        return False
    with contextlib.suppress(OSError):
        linux.umount(str(path))
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return True
