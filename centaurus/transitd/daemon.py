"""transitd: the per-droplet daemon (``python -m centaurus.transitd``).

Start-up order matters: (1) join the droplet's netns with setns(2) -- before any thread exists,
so every later thread (gRPC's included) inherits it, and without ``ip netns exec``, which would
remount /sys and hide bpffs; (2) adopt the pinned maps and programs a previous instance left
(restart-safe: the dataplane keeps forwarding while the daemon is away) or load fresh ones;
(3) attach transit to the substrate interface unless it already runs there, re-attach the agent
on every endpoint veth recorded in ``cl_ifaces``; (4) serve gRPC on a unix socket (and TCP if
asked).

Stopping: SIGTERM/SIGINT stop the daemon and leave the dataplane running (a restart adopts it);
the ``Shutdown(cleanup=true)`` RPC detaches every program and removes the pins (lab down).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
import struct
import sys
from pathlib import Path
from typing import Any

import centaurus

log = logging.getLogger("centaurus.transitd")
_SIOCGIFHWADDR = 0x8927
_SIOCGIFADDR = 0x8915


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="transitd", description="Centaurus per-droplet transit daemon")
    p.add_argument("--droplet", required=True, help="droplet name")
    p.add_argument("--netns", default="", help="join this named netns first (/run/netns/NAME)")
    p.add_argument("--socket", required=True, help="unix socket path to serve gRPC on")
    p.add_argument("--tcp", default="", help="also serve on HOST:PORT (real hosts)")
    p.add_argument("--pin-dir", default="", help=f"bpffs directory for this droplet's pins "
                   f"(default {centaurus.BPFFS_ROOT}/<droplet>)")
    p.add_argument("--ifname", default="eth0", help="substrate interface (transit XDP attaches here)")
    p.add_argument("--ip", default="", help="substrate IPv4 (default: the interface's address)")
    p.add_argument("--mode", default="native", choices=("native", "skb"), help="XDP attach mode")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def _ifreq(name: str, req: int) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        return fcntl.ioctl(s.fileno(), req, struct.pack("256s", name.encode()[:15]))


def iface_mac(name: str) -> str:
    return ":".join(f"{b:02x}" for b in _ifreq(name, _SIOCGIFHWADDR)[18:24])


def iface_ip(name: str) -> str:
    return socket.inet_ntoa(_ifreq(name, _SIOCGIFADDR)[20:24])


def join_netns(name: str) -> None:
    from centaurus.bpf._libbpf import setns

    fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd)
    finally:
        os.close(fd)


def local_ifindexes(ov: Any) -> list[int]:
    """Endpoint veths bound to the agent (``cl_ifaces`` entries in use: vni != 0)."""
    lister = getattr(ov, "local_ifaces", None)
    if lister is not None:
        return [int(i) for i, _ in lister()]
    out: list[int] = []
    for m in (ov.ifaces, getattr(ov, "ifaces_x", None)):
        if m is not None:
            out += [int(i) for i, v in m.items() if v.vni]
    return out


class Daemon:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.server: Any = None
        self.stop_event = asyncio.Event()
        self.cleanup = False

    def bring_up(self) -> Any:
        from centaurus.bpf import xdp
        from centaurus.bpf.overlay import Overlay
        from centaurus.transitd.service import TransitService

        a = self.args
        pin_dir = Path(a.pin_dir or f"{centaurus.BPFFS_ROOT}/{a.droplet}")
        pin_dir.mkdir(parents=True, exist_ok=True)
        adopted = False
        ov: Overlay | None = None
        if Overlay.exists(pin_dir):
            try:
                ov = Overlay.open_pinned(pin_dir)
                adopted = True
            except OSError as exc:
                log.warning("cannot adopt pinned programs (%s); loading fresh ones on the pinned maps", exc)
        if ov is None:
            ov = Overlay.load(pin_dir)
        self.ov = ov
        ifindex = socket.if_nametoindex(a.ifname)
        host_ip = a.ip or iface_ip(a.ifname)
        host_mac = iface_mac(a.ifname)
        ov.set_config(host_ip, host_mac, ifindex)
        progs = ov.prog_info()
        if xdp.query(ifindex).prog_id != progs["cl_transit"].id:
            ov.attach_transit(ifindex, mode=a.mode)
        agent_id = progs["cl_agent"].id
        for ifi in local_ifindexes(ov):
            try:
                socket.if_indextoname(int(ifi))
            except OSError:  # the veth went away while we were down
                ov.delete_iface(int(ifi))
                ov.delete_port(int(ifi))
                continue
            if xdp.query(int(ifi)).prog_id != agent_id:
                ov.attach_agent(int(ifi), mode=a.mode)
        log.info("droplet %s: %s transit on %s (%s, %s), %d local endpoint(s)", a.droplet,
                 "adopted" if adopted else "loaded", a.ifname, host_ip, host_mac,
                 len(local_ifindexes(ov)))
        return TransitService(ov, a.droplet, host_ip, host_mac, a.ifname, adopted, self.request_stop)

    def request_stop(self, cleanup: bool) -> None:
        self.cleanup = self.cleanup or cleanup
        self.stop_event.set()

    def teardown(self) -> None:
        """Detach every program of ours and remove the pins (Shutdown with cleanup)."""
        from centaurus.bpf import xdp

        ov = self.ov
        ids = {i.id for i in ov.prog_info().values()}
        for ifi, name in socket.if_nameindex():
            with contextlib.suppress(OSError):
                if xdp.query(ifi).prog_id in ids:
                    xdp.detach(ifi)
                    log.info("detached from %s", name)
        ov.destroy()

    async def serve(self) -> int:
        import grpc

        from centaurus.transitd.rpc import generic_handler

        service = self.bring_up()
        sock = Path(self.args.socket)
        sock.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        server.add_generic_rpc_handlers((generic_handler(service),))
        server.add_insecure_port(f"unix:{sock}")
        if self.args.tcp:
            server.add_insecure_port(self.args.tcp)
        await server.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, False)
        log.info("serving on unix:%s%s", sock, f" and {self.args.tcp}" if self.args.tcp else "")
        await self.stop_event.wait()
        # Clean up BEFORE stopping the server: stopping removes the socket, and callers take the
        # socket's disappearance as "done" (Dataplane.teardown_host).
        if self.cleanup:
            self.teardown()
            log.info("cleaned up: programs detached, pins removed")
        await server.stop(grace=0.5)
        if not self.cleanup:
            self.ov.close()
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="%(asctime)s transitd[" + args.droplet + "] %(levelname)s %(message)s")
    if args.netns:
        join_netns(args.netns)  # first: every thread created later inherits the namespace
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        return asyncio.run(Daemon(args).serve())
    except OSError as exc:
        log.error("%s", str(exc).splitlines()[0])
        return 1


if __name__ == "__main__":
    sys.exit(main())
