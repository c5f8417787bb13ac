"""A hollow transitd: many droplets' transit daemons in one process, no kernel, no XDP.

Scale runs need >= 1,000 droplets, far more than this machine can run real transit daemons and
network namespaces for. The hollow daemon serves the real transitd gRPC service (same method
table, same validation order: a network needs its VPC, an endpoint its network) on ONE unix
socket for every hollow droplet; the ``x-droplet`` call metadata says which droplet a call is
for (addresses ``hollow:/path#<droplet>``, see :mod:`.transit`). It keeps what each droplet
would hold and counts every call, so a measurement can ask which droplets hold an endpoint and
how many calls each received (extra service ``centaurus.transit.hollow.v1.Hollow/Report``,
JSON in and out).

``python -m centaurus.mizar.hollow --socket S`` runs one; :class:`HollowTransit` embeds one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import signal
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from centaurus.mizar.transit import DROPLET_METADATA
from centaurus.transitd.rpc import METHODS, generic_handler, pb

REPORT_SERVICE = "centaurus.transit.hollow.v1.Hollow"


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, msg: str) -> None:
        super().__init__(msg)
        self.code = code


@dataclass
class Droplet:
    name: str
    vpcs: dict[int, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    nets: dict[tuple[int, str], tuple[tuple[str, ...], int]] = field(default_factory=dict)
    eps: dict[tuple[int, str], Any] = field(default_factory=dict)
    neigh: dict[str, str] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)


class HollowService:
    """The Transit servicer for every hollow droplet (state in memory)."""

    def __init__(self) -> None:
        self.droplets: dict[str, Droplet] = {}
        self.total = 0

    def droplet(self, context: Any, method: str) -> Droplet:
        meta = dict(context.invocation_metadata() or ())
        name = str(meta.get(DROPLET_METADATA) or "")
        if not name:
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"hollow transitd: call without {DROPLET_METADATA}"
            )
        d = self.droplets.get(name)
        if d is None:
            d = self.droplets[name] = Droplet(name)
        d.calls[method] += 1
        self.total += 1
        return d

    @staticmethod
    def _net_for(d: Droplet, vni: int, ip: str) -> tuple[int, str] | None:
        addr = ipaddress.IPv4Address(ip)
        for v, cidr in d.nets:
            if v == vni and addr in ipaddress.IPv4Network(cidr):
                return (v, cidr)
        return None

    def handle(self, method: str, request: Any, d: Droplet) -> Any:
        reply = pb.Reply(changed=True)
        if method == "Status":
            return pb.StatusReply(droplet=d.name, version="hollow", pid=os.getpid())
        if method == "UpdateVpc":
            d.vpcs[request.vni] = (request.cidr, tuple(request.dividers))
        elif method == "UpdateNet":
            if request.vni not in d.vpcs:
                raise _Abort(
                    grpc.StatusCode.FAILED_PRECONDITION, f"VPC {request.vni} is not known on {d.name}"
                )
            d.nets[(request.vni, request.cidr)] = (tuple(request.bouncers), request.net_id)
        elif method == "UpdateEp":
            if request.vni not in d.vpcs:
                raise _Abort(
                    grpc.StatusCode.FAILED_PRECONDITION, f"VPC {request.vni} is not known on {d.name}"
                )
            if self._net_for(d, request.vni, request.ip) is None:
                raise _Abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"no network of VPC {request.vni} holds {request.ip} on {d.name}",
                )
            d.eps[(request.vni, request.ip)] = request
        elif method == "DeleteEp":
            if d.eps.pop((request.vni, request.ip), None) is None:
                raise _Abort(
                    grpc.StatusCode.NOT_FOUND,
                    f"endpoint {request.ip} of VPC {request.vni} is not programmed here",
                )
        elif method == "DeleteNet":
            key = next((k for k in d.nets if k[0] == request.vni and k[1] == request.cidr), None)
            if key is None:
                raise _Abort(grpc.StatusCode.NOT_FOUND, f"network {request.cidr} is not programmed here")
            del d.nets[key]
        elif method == "DeleteVpc":
            if d.vpcs.pop(request.vni, None) is None:
                raise _Abort(grpc.StatusCode.NOT_FOUND, f"VPC {request.vni} is not programmed here")
        elif method == "UpdateDroplet":
            d.neigh[request.ip] = request.mac
        elif method == "DeleteDroplet":
            d.neigh.pop(request.ip, None)
        elif method == "Dump":
            out = pb.DumpReply()
            for vni, (cidr, divs) in d.vpcs.items():
                out.vpcs.append(pb.Vpc(vni=vni, cidr=cidr, dividers=list(divs)))
            for (vni, cidr), (bs, nid) in d.nets.items():
                out.networks.append(pb.Net(vni=vni, cidr=cidr, bouncers=list(bs), net_id=nid))
            out.endpoints.extend(d.eps.values())
            return out
        elif method == "Stats":
            return pb.StatsReply(counters={}, maps={"cl_endpoints": len(d.eps), "cl_networks": len(d.nets)})
        elif method == "GetEp":
            e = d.eps.get((request.vni, request.ip))
            if e is None:
                raise _Abort(grpc.StatusCode.NOT_FOUND, f"endpoint {request.ip} is not programmed here")
            return e
        elif method in (
            "Shutdown",
            "FlushHostCache",
            "UpdateBouncer",
            "UpdateDivider",
            "DeleteBouncer",
            "DeleteDivider",
        ):
            return reply
        else:
            raise _Abort(grpc.StatusCode.UNIMPLEMENTED, f"hollow transitd does not implement {method}")
        return reply

    def __getattr__(self, method: str) -> Any:
        if method not in METHODS:
            raise AttributeError(method)

        async def rpc(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return self.handle(method, request, self.droplet(context, method))
            except _Abort as exc:
                await context.abort(exc.code, str(exc))

        return rpc

    # ---- the report (measurements) -----------------------------------------------------------
    def report(self, query: dict[str, Any]) -> dict[str, Any]:
        keys = [(int(v), str(ip)) for v, ip in query.get("keys") or []]
        holders = {
            f"{v}/{ip}": sorted(d.name for d in self.droplets.values() if (v, ip) in d.eps) for v, ip in keys
        }
        calls = {d.name: dict(d.calls) for d in self.droplets.values()} if query.get("calls") else {}
        return {
            "droplets": len(self.droplets),
            "total_calls": self.total,
            "holders": holders,
            "calls": calls,
            "endpoints": sum(len(d.eps) for d in self.droplets.values()),
        }

    def reset_counts(self) -> None:
        for d in self.droplets.values():
            d.calls.clear()
        self.total = 0


def _report_handler(service: HollowService) -> grpc.GenericRpcHandler:
    async def report(request: bytes, context: Any) -> bytes:
        q = json.loads(request or b"{}")
        if q.get("reset"):
            service.reset_counts()
        return json.dumps(service.report(q)).encode()

    return grpc.method_handlers_generic_handler(
        REPORT_SERVICE,
        {
            "Report": grpc.unary_unary_rpc_method_handler(
                report, request_deserializer=None, response_serializer=None
            )
        },
    )


class HollowTransit:
    """An embedded hollow transitd serving on ``socket`` (start/stop from an event loop)."""

    def __init__(self, socket: Path) -> None:
        self.socket = Path(socket)
        self.service = HollowService()
        self.server: Any = None

    def address(self, droplet: str) -> str:
        return f"hollow:{self.socket}#{droplet}"

    async def start(self) -> None:
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        self.server = grpc.aio.server()
        self.server.add_generic_rpc_handlers((generic_handler(self.service), _report_handler(self.service)))
        self.server.add_insecure_port(f"unix:{self.socket}")
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(grace=0.2)
            self.server = None
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()


async def report(socket: Path, query: dict[str, Any] | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """Ask a (possibly separate-process) hollow transitd for its report."""
    async with grpc.aio.insecure_channel(f"unix:{socket}") as ch:
        fn = ch.unary_unary(f"/{REPORT_SERVICE}/Report")
        out = await fn(json.dumps(query or {}).encode(), timeout=timeout)
    doc: dict[str, Any] = json.loads(out)
    return doc


async def _serve(socket: Path) -> None:
    ht = HollowTransit(socket)
    await ht.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await ht.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="centaurus.mizar.hollow", description="hollow transitd for N droplets")
    ap.add_argument("--socket", required=True)
    a = ap.parse_args(argv)
    asyncio.run(_serve(Path(a.socket)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
