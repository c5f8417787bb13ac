"""Doing things inside a pod's network namespace from this process, without ``ip netns exec``.

A socket belongs to the namespace it was created in, whatever thread uses it later; so a helper
thread ``setns``-es into the pod namespace, creates the socket (or spawns a child, which inherits
the namespace), and ``setns``-es back. The event loop then connects and streams as usual. This is
how port-forward reaches ``127.0.0.1:port`` of a pod and how qemu starts with its tap in the pod.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from centaurus.runtimes import linux, spawn

T = TypeVar("T")
_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cl-netns")


def _in_netns(netns_path: str, fn: Callable[[], T]) -> T:
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(netns_path, os.O_RDONLY)
    try:
        linux.setns(target, linux.CLONE_NEWNET)
        try:
            return fn()
        finally:
            linux.setns(home, linux.CLONE_NEWNET)
    finally:
        os.close(target)
        os.close(home)


async def run_in_netns(netns_path: str, fn: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(_executor, _in_netns, netns_path, fn)


async def open_connection(
    netns_path: str | None, host: str, port: int, timeout: float = 10.0
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """TCP connection to ``host:port`` as seen from inside ``netns_path`` (None: this namespace)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    def make() -> socket.socket:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        return s

    sock = await run_in_netns(netns_path, make) if netns_path else make()
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), timeout)
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)


async def spawn_in_netns(netns_path: str | None, argv: Sequence[str], **kw: object) -> int:
    """``posix_spawn`` a child whose network namespace is ``netns_path``."""

    def do() -> int:
        return spawn.spawn(argv, **kw)  # type: ignore[arg-type]

    if netns_path is None:
        return await asyncio.get_running_loop().run_in_executor(_executor, do)
    return await run_in_netns(netns_path, do)
