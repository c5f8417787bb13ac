"""Attach, detach and query XDP programs by ifindex, optionally inside a named netns.

Native (driver) mode is the default: veth supports it, and generic mode would measure the
skb path instead of XDP. ``bpf_xdp_attach`` resolves the ifindex in the calling thread's
netns, hence the ``netns`` argument (see :mod:`centaurus.bpf.netns`).
"""

from __future__ import annotations

import ctypes
import os
import socket
from dataclasses import dataclass

from centaurus.bpf import _libbpf as L
from centaurus.bpf.netns import in_netns

MODES = {"native": L.XDP_FLAGS_DRV_MODE, "skb": L.XDP_FLAGS_SKB_MODE, "any": 0}


def _ifindex(dev: int | str) -> int:
    return dev if isinstance(dev, int) else socket.if_nametoindex(dev)


def attach(dev: int | str, prog_fd: int, *, netns: str | None = None, mode: str = "native",
           replace: bool = True) -> None:
    """Attach ``prog_fd`` to ``dev``; ``replace`` swaps whatever program is there atomically."""
    flags = MODES[mode] | (0 if replace else L.XDP_FLAGS_UPDATE_IF_NOEXIST)

    def do() -> None:
        ifi = _ifindex(dev)
        L.check(L.lib.bpf_xdp_attach(ifi, prog_fd, flags, None), f"xdp attach {dev}")

    in_netns(netns, do)


def detach(dev: int | str, *, netns: str | None = None, mode: str = "native",
           missing_ok: bool = True) -> None:
    def do() -> None:
        try:
            ifi = _ifindex(dev)
        except OSError:
            if missing_ok:
                return
            raise
        ret = L.lib.bpf_xdp_detach(ifi, MODES[mode], None)
        if ret < 0 and not (missing_ok and -ret in (19, 2)):  # ENODEV, ENOENT
            L.check(ret, f"xdp detach {dev}")

    in_netns(netns, do)


@dataclass(frozen=True)
class XdpQuery:
    prog_id: int  # the attached program of any mode (0: none)
    drv_prog_id: int
    skb_prog_id: int
    attach_mode: int  # 0 none, 1 native, 2 skb, 3 hw, 4 multi


def query(dev: int | str, *, netns: str | None = None) -> XdpQuery:
    def do() -> XdpQuery:
        opts = L.XdpQueryOpts()
        opts.sz = ctypes.sizeof(opts)
        L.check(L.lib.bpf_xdp_query(_ifindex(dev), 0, ctypes.byref(opts)), f"xdp query {dev}")
        return XdpQuery(int(opts.prog_id), int(opts.drv_prog_id), int(opts.skb_prog_id),
                        int(opts.attach_mode))

    return in_netns(netns, do)


def attached_prog_fd(dev: int | str, *, netns: str | None = None) -> int | None:
    """An fd for the program attached to ``dev`` (for adoption after a restart), or None."""
    q = query(dev, netns=netns)
    if not q.prog_id:
        return None
    return L.check(L.lib.bpf_prog_get_fd_by_id(q.prog_id), "bpf_prog_get_fd_by_id")


def close_fd(fd: int) -> None:
    os.close(fd)
