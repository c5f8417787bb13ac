"""Run code inside a named network namespace without a subprocess.

``bpf_xdp_attach`` and devmap updates resolve ifindexes in the caller's network namespace,
and Python 3.11 has no ``os.setns``. setns(2) on a network namespace changes only the
calling *thread*, so :func:`in_netns` runs the callable in a fresh thread that first enters
``/var/run/netns/<name>`` (or any netns file) and then ends; the caller's thread never moves.
File descriptors (maps, programs) are per process and stay usable across namespaces.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from centaurus.bpf._libbpf import setns

T = TypeVar("T")

NETNS_DIR = Path("/var/run/netns")


def netns_path(name: str) -> Path:
    p = Path(name)
    return p if p.is_absolute() else NETNS_DIR / name


def in_netns(netns: str | None, fn: Callable[[], T]) -> T:
    """Return ``fn()`` evaluated inside ``netns`` (``None``: right here, in this thread)."""
    if netns is None:
        return fn()
    path = netns_path(netns)
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(fd)
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as e:  # re-raised in the caller's thread
            error.append(e)

    t = threading.Thread(target=run, name=f"netns-{netns}", daemon=True)
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0]


def ifindex(name: str, netns: str | None = None) -> int:
    """Interface index of ``name`` inside ``netns``."""
    return in_netns(netns, lambda: socket.if_nametoindex(name))


SIOCGIFHWADDR = 0x8927


def mac_address(name: str, netns: str | None = None) -> str:
    """MAC of ``name`` inside ``netns`` (an ioctl on a socket opened there: /sys shows the
    mounter's netns, not the thread's)."""

    def get() -> str:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            req = struct.pack("256s", name.encode()[:15])
            res = fcntl.ioctl(s.fileno(), SIOCGIFHWADDR, req)
        return ":".join(f"{b:02x}" for b in res[18:24])

    return in_netns(netns, get)
