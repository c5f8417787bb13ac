"""The transitd gRPC service table and a typed synchronous client.

The method table comes from the ``.proto`` descriptor itself (no generated ``_pb2_grpc``): one
source of truth for names and message types, and fully typed code on both sides.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from centaurus.transitd.protos import load

pb: Any = load("transit")

SERVICE = "centaurus.transit.v1.Transit"
_M = TypeVar("_M", bound=Message)


def _methods() -> dict[str, tuple[type[Message], type[Message]]]:
    svc = pb.DESCRIPTOR.services_by_name["Transit"]
    return {m.name: (getattr(pb, m.input_type.name), getattr(pb, m.output_type.name)) for m in svc.methods}


METHODS = _methods()


class TransitError(RuntimeError):
    """A transitd call failed; one line: ``<droplet>: <METHOD>: <CODE>: <details>``."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


def generic_handler(servicer: Any) -> grpc.GenericRpcHandler:
    """Server side: route each method of the table to ``servicer.<Method>(request, context)``."""
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for name, (req, resp) in METHODS.items():
        fn = getattr(servicer, name, None)
        if fn is None:
            raise TypeError(f"servicer {type(servicer).__name__} lacks {name}")
        handlers[name] = grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=req.FromString, response_serializer=resp.SerializeToString)
    return grpc.method_handlers_generic_handler(SERVICE, handlers)


class TransitClient:
    """Blocking client of one droplet's transitd (``unix:/path`` or ``host:port``)."""

    def __init__(self, address: str, name: str = "", timeout: float = 10.0) -> None:
        self.address = address
        self.name = name or address
        self.timeout = timeout
        self.channel = grpc.insecure_channel(address, options=[("grpc.enable_retries", 0)])
        self._calls: dict[str, Callable[..., Any]] = {
            m: self.channel.unary_unary(f"/{SERVICE}/{m}", request_serializer=req.SerializeToString,
                                        response_deserializer=resp.FromString)
            for m, (req, resp) in METHODS.items()
        }

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> TransitClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, request: Message | None = None, timeout: float | None = None,
             wait_ready: bool = False) -> Message:
        if method not in METHODS:
            raise TransitError(f"{self.name}: unknown transitd method {method!r}")
        req = request if request is not None else METHODS[method][0]()
        try:
            result: Message = self._calls[method](req, timeout=timeout or self.timeout,
                                                  wait_for_ready=wait_ready)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            details = exc.details() if hasattr(exc, "details") else str(exc)
            cname = code.name if code is not None else "ERROR"
            raise TransitError(f"{self.name}: {method}: {cname}: {details}", code) from None
        return result

    def typed(self, method: str, request: Message | None, kind: type[_M], **kw: Any) -> _M:
        out = self.call(method, request, **kw)
        assert isinstance(out, kind)
        return out

    # ---- typed conveniences ------------------------------------------------------------------
    def status(self, timeout: float | None = None, wait_ready: bool = False) -> Any:
        return self.typed("Status", None, pb.StatusReply, timeout=timeout, wait_ready=wait_ready)

    def stats(self) -> dict[str, int]:
        return dict(self.typed("Stats", pb.StatsRequest(), pb.StatsReply).counters)

    def dump(self) -> Any:
        return self.typed("Dump", None, pb.DumpReply)

    def update(self, obj: Message) -> Any:
        method = {pb.Vpc: "UpdateVpc", pb.Net: "UpdateNet", pb.Endpoint: "UpdateEp",
                  pb.Droplet: "UpdateDroplet", pb.Bouncer: "UpdateBouncer",
                  pb.Divider: "UpdateDivider"}[type(obj)]
        return self.typed(method, obj, pb.Reply)

    def shutdown(self, cleanup: bool = True) -> Any:
        return self.typed("Shutdown", pb.ShutdownRequest(cleanup=cleanup), pb.Reply)
