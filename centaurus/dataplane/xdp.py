"""``mizar-xdp``: this project's XDP/Geneve overlay, programmed through each droplet's transitd.

The dataplane object is a thin management-plane client: it holds one gRPC channel per droplet
and turns VPC/network/endpoint objects into ``Update*`` calls on exactly the hosts it is given
(the endpoint's own host and its network's bouncers -- PERF-NET-3). It never touches a map
itself; the daemon on the droplet does (bpf syscalls, no subprocess per update).

The lab owns the daemon processes: :meth:`XdpDataplane.daemon_argv` says what to run on a
droplet, :meth:`XdpDataplane.wait_ready` waits until it answers.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import grpc

from centaurus import BPFFS_ROOT
from centaurus.dataplane.base import (
    DataplaneError,
    DropletInfo,
    EndpointInfo,
    NetworkInfo,
    VpcInfo,
)


def net_id_of(vni: int, name: str) -> int:
    """A stable 32-bit id for a network (stats and debugging only)."""
    return zlib.crc32(f"{vni}/{name}".encode()) & 0x7FFFFFFF or 1


class XdpDataplane:
    name = "mizar-xdp"
    #: frames are XDP_TX'd / redirected into veths: their peers need an XDP program (labs attach one)
    needs_xdp_peers = True

    def __init__(self, options: dict[str, str] | None = None) -> None:
        self.options = dict(options or {})
        self.mode = self.options.get("xdp_mode", "native")
        if self.mode not in ("native", "skb"):
            raise DataplaneError(f"mizar-xdp: option xdp_mode must be native or skb, got {self.mode!r}")
        self._clients: dict[str, Any] = {}
        self._droplets: dict[str, DropletInfo] = {}
        self._lock = threading.Lock()
        self.calls: list[tuple[str, str]] = []  # (droplet, method): the fan-out record (PERF-NET-3)

    # ---- daemon --------------------------------------------------------------------------------
    def pin_dir(self, droplet: DropletInfo) -> str:
        lab = self.options.get("lab_id", "")
        return f"{BPFFS_ROOT}/{lab}/{droplet.name}" if lab else f"{BPFFS_ROOT}/{droplet.name}"

    def daemon_argv(self, droplet: DropletInfo) -> list[str] | None:
        """``unix:/path`` address: serve there (netns lab). ``host:port``: serve TCP on every address
        of the host at that port, plus a local socket under /run/centaurus (real hosts)."""
        addr = droplet.transitd
        if addr.startswith("unix:"):
            where = ["--socket", addr.removeprefix("unix:")]
        elif addr.rpartition(":")[2].isdigit():
            lab = self.options.get("lab_id", "lab")
            where = ["--socket", f"/run/centaurus/{lab}/transitd-{droplet.name}.sock",
                     "--tcp", f"0.0.0.0:{addr.rpartition(':')[2]}"]
        else:
            raise DataplaneError(f"mizar-xdp: droplet {droplet.name}: transitd address {addr!r} is neither "
                                 "unix:/path nor host:port")
        argv = [sys.executable, "-m", "centaurus.transitd", "--droplet", droplet.name, *where,
                "--pin-dir", self.pin_dir(droplet), "--ifname", droplet.ifname, "--mode", self.mode,
                "--log-level", self.options.get("log_level", "INFO")]
        if droplet.ip:
            argv += ["--ip", droplet.ip]
        return argv

    def client(self, droplet: DropletInfo) -> Any:
        from centaurus.transitd.rpc import TransitClient

        with self._lock:
            c = self._clients.get(droplet.name)
            if c is None or c.address != droplet.transitd:
                if not droplet.transitd:
                    raise DataplaneError(f"mizar-xdp: no transitd address for droplet {droplet.name}")
                c = self._clients[droplet.name] = TransitClient(droplet.transitd, name=droplet.name)
            return c

    def wait_ready(self, droplet: DropletInfo, proc: subprocess.Popen[bytes] | None = None,
                   log: Path | None = None, timeout: float = 20.0) -> None:
        """Block until transitd on ``droplet`` answers Status (or fail with its last log line)."""
        from centaurus.transitd.rpc import TransitError

        deadline = time.monotonic() + timeout
        while True:
            if proc is not None and proc.poll() is not None:
                raise DataplaneError(f"transitd on {droplet.name} exited with {proc.returncode}: "
                                     f"{_last_line(log)}")
            try:
                self.client(droplet).status(timeout=0.5, wait_ready=True)
                return
            except TransitError as exc:
                if exc.code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise DataplaneError(str(exc)) from None
            if time.monotonic() > deadline:
                raise DataplaneError(f"transitd on {droplet.name} not ready after {timeout:.0f} s: "
                                     f"{_last_line(log)}")
            time.sleep(0.02)

    def close(self) -> None:
        with self._lock:
            for c in self._clients.values():
                with contextlib.suppress(Exception):
                    c.close()
            self._clients.clear()

    def _call(self, droplet: DropletInfo, method: str, request: Any) -> Any:
        from centaurus.transitd.rpc import TransitError

        self.calls.append((droplet.name, method))
        try:
            return self.client(droplet).call(method, request)
        except TransitError as exc:
            raise DataplaneError(str(exc)) from None

    def _ip_of(self, name: str) -> str:
        try:
            return self._droplets[name].ip
        except KeyError:
            raise DataplaneError(f"mizar-xdp: droplet {name!r} was never set up") from None

    # ---- hosts ---------------------------------------------------------------------------------
    def setup_host(self, droplet: DropletInfo) -> None:
        """Tell the droplet and every droplet set up before it each other's substrate MAC."""
        from centaurus.transitd.rpc import pb

        if not droplet.mac:
            raise DataplaneError(f"mizar-xdp: droplet {droplet.name} has no substrate MAC")
        with self._lock:
            peers = [p for n, p in self._droplets.items() if n != droplet.name]
            self._droplets[droplet.name] = droplet
        for p in peers:
            self._call(droplet, "UpdateDroplet", pb.Droplet(ip=p.ip, mac=p.mac, name=p.name))
            self._call(p, "UpdateDroplet", pb.Droplet(ip=droplet.ip, mac=droplet.mac, name=droplet.name))

    def adopt_hosts(self, droplets: list[DropletInfo]) -> None:
        """Know droplets set up by another process (a lab attached from its state file)."""
        with self._lock:
            for d in droplets:
                self._droplets[d.name] = d

    def teardown_host(self, droplet: DropletInfo) -> None:
        """Ask transitd to detach everything and remove its pins, then wait for it to go."""
        from centaurus.transitd.rpc import TransitError

        if not droplet.transitd:
            return
        sock = Path(droplet.transitd.removeprefix("unix:"))
        if droplet.transitd.startswith("unix:") and not sock.exists():
            return
        try:
            self.client(droplet).shutdown(cleanup=True)
        except TransitError:
            return
        deadline = time.monotonic() + 5
        while sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        with self._lock:
            c = self._clients.pop(droplet.name, None)
            self._droplets.pop(droplet.name, None)
        if c is not None:
            c.close()

    # ---- objects -------------------------------------------------------------------------------
    def apply_vpc(self, vpc: VpcInfo, hosts: list[DropletInfo]) -> None:
        from centaurus.transitd.rpc import pb

        req = pb.Vpc(vni=vpc.vni, cidr=vpc.cidr, dividers=[self._ip_of(d) for d in vpc.dividers],
                     tenant=vpc.tenant)
        for h in hosts:
            self._call(h, "UpdateVpc", req)

    def apply_network(self, net: NetworkInfo, hosts: list[DropletInfo]) -> None:
        from centaurus.transitd.rpc import pb

        req = pb.Net(vni=net.vni, cidr=net.cidr, bouncers=[self._ip_of(b) for b in net.bouncers],
                     net_id=net_id_of(net.vni, net.name), name=net.name, gateway=net.gateway)
        for h in hosts:
            self._call(h, "UpdateNet", req)

    def apply_endpoint(self, ep: EndpointInfo, hosts: list[DropletInfo]) -> None:
        from centaurus.transitd.rpc import pb

        for h in hosts:
            req = pb.Endpoint(vni=ep.vni, ip=ep.ip, kind=ep.kind, name=str(ep.extra.get("name", "")))
            if ep.kind == "scaled":
                req.backends.extend(ep.backends)
            else:
                req.mac = ep.mac
                req.host_ip = self._ip_of(ep.host)
                if h.name == ep.host:
                    req.veth = ep.veth
            self._call(h, "UpdateEp", req)

    def remove_endpoint(self, ep: EndpointInfo, hosts: list[DropletInfo]) -> None:
        from centaurus.transitd.rpc import TransitError, pb

        for h in hosts:
            self.calls.append((h.name, "DeleteEp"))
            try:
                self.client(h).call("DeleteEp", pb.EpKey(vni=ep.vni, ip=ep.ip))
            except TransitError as exc:
                if exc.code != grpc.StatusCode.NOT_FOUND:
                    raise DataplaneError(str(exc)) from None

    def stats(self, droplet: DropletInfo) -> dict[str, int]:
        from centaurus.transitd.rpc import TransitError

        try:
            return dict(self.client(droplet).stats())
        except TransitError as exc:
            raise DataplaneError(str(exc)) from None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "xdp_mode": self.mode}


def _last_line(log: Path | None) -> str:
    if log is None:
        return "no log"
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return lines[-1][-300:] if lines else "empty log"
