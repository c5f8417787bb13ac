"""Asynchronous access to the droplets' transit daemons, for the operators.

One gRPC channel per droplet address, created on first use: ``unix:/path`` (netns lab),
``host:port`` (real hosts) or ``hollow:/path#<droplet>`` -- many hollow droplets behind one
hollow transitd (:mod:`.hollow`), told apart by the ``x-droplet`` call metadata. The method
table comes from the proto descriptor (:data:`centaurus.transitd.rpc.METHODS`), as in transitd.

Every call is recorded per (droplet, method): the operators report what they touched and the
fan-out measurement (PERF-NET-3) checks it against what the daemons hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import grpc

from centaurus.transitd.rpc import METHODS, SERVICE, TransitError, pb

HOLLOW_PREFIX = "hollow:"
DROPLET_METADATA = "x-droplet"
#: codes after which a call may succeed later (daemon restarting, overloaded)
TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNKNOWN,
    }
)


def parse_address(address: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """(gRPC target, call metadata) of a droplet's transitd address."""
    if address.startswith(HOLLOW_PREFIX):
        path, _, droplet = address[len(HOLLOW_PREFIX) :].partition("#")
        if not path or not droplet:
            raise ValueError(f"hollow transitd address {address!r} is not hollow:/path#droplet")
        return f"unix:{path}", ((DROPLET_METADATA, droplet),)
    if not address:
        raise ValueError("empty transitd address")
    return address, ()


class _Channel:
    def __init__(self, target: str) -> None:
        self.channel = grpc.aio.insecure_channel(target, options=[("grpc.enable_retries", 0)])
        self.calls: dict[str, Callable[..., Any]] = {
            m: self.channel.unary_unary(
                f"/{SERVICE}/{m}",
                request_serializer=req.SerializeToString,
                response_deserializer=resp.FromString,
            )
            for m, (req, resp) in METHODS.items()
        }


class TransitPool:
    """Channels to every droplet this process talks to, plus the call record."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._channels: dict[str, _Channel] = {}
        self.calls: Counter[tuple[str, str]] = Counter()
        self.failures: Counter[tuple[str, str]] = Counter()
        self.seconds = 0.0

    def _channel(self, target: str) -> _Channel:
        ch = self._channels.get(target)
        if ch is None:
            ch = self._channels[target] = _Channel(target)
        return ch

    async def call(
        self, droplet: str, address: str, method: str, request: Any = None, timeout: float | None = None
    ) -> Any:
        """One RPC to ``droplet``'s transitd; :class:`TransitError` (with ``.code``) on failure."""
        if method not in METHODS:
            raise TransitError(f"{droplet}: unknown transitd method {method!r}")
        try:
            target, metadata = parse_address(address)
        except ValueError as exc:
            raise TransitError(f"{droplet}: {exc}", grpc.StatusCode.INVALID_ARGUMENT) from None
        req = request if request is not None else METHODS[method][0]()
        self.calls[(droplet, method)] += 1
        t0 = time.perf_counter()
        try:
            return await self._channel(target).calls[method](
                req, timeout=timeout or self.timeout, metadata=metadata or None
            )
        except grpc.aio.AioRpcError as exc:
            self.failures[(droplet, method)] += 1
            raise TransitError(
                f"{droplet}: {method}: {exc.code().name}: {exc.details()}", exc.code()
            ) from None
        finally:
            self.seconds += time.perf_counter() - t0

    def touched(self) -> set[str]:
        return {d for d, _ in self.calls}

    async def close(self) -> None:
        chans = list(self._channels.values())
        self._channels.clear()
        for ch in chans:
            with contextlib.suppress(Exception):
                await ch.channel.close()


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TransitError) and (exc.code is None or exc.code in TRANSIENT)


def not_found(exc: BaseException) -> bool:
    return isinstance(exc, TransitError) and exc.code == grpc.StatusCode.NOT_FOUND


def precondition(exc: BaseException) -> bool:
    return isinstance(exc, TransitError) and exc.code == grpc.StatusCode.FAILED_PRECONDITION


# ---- request builders (one place that knows the proto field names) --------------------------
def vpc_msg(vni: int, cidr: str, dividers: list[str], name: str = "", tenant: str = "") -> Any:
    return pb.Vpc(vni=vni, cidr=cidr, dividers=dividers, name=name, tenant=tenant)


def net_msg(vni: int, cidr: str, bouncers: list[str], net_id: int, name: str = "", gateway: str = "") -> Any:
    return pb.Net(vni=vni, cidr=cidr, bouncers=bouncers, net_id=net_id, name=name, gateway=gateway)


def ep_msg(vni: int, ip: str, mac: str, host_ip: str, veth: str = "", name: str = "") -> Any:
    return pb.Endpoint(vni=vni, ip=ip, mac=mac, host_ip=host_ip, kind="simple", veth=veth, name=name)


def ep_key(vni: int, ip: str) -> Any:
    return pb.EpKey(vni=vni, ip=ip)


def net_key(vni: int, cidr: str) -> Any:
    return pb.NetKey(vni=vni, cidr=cidr)


async def gather_calls(*coros: Any) -> list[BaseException | None]:
    """Run calls concurrently; the exceptions (or None) in order -- callers decide what is fatal."""
    res = await asyncio.gather(*coros, return_exceptions=True)
    return [r if isinstance(r, BaseException) else None for r in res]
