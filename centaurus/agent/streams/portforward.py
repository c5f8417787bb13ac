"""port-forward: TCP connections into a pod, over SPDY (kubectl; tunneled in a WebSocket by
kubectl >= 1.30) or the WebSocket channel protocol (the python client).

SPDY: per forwarded connection the client opens an ``error`` and a ``data`` stream carrying the
same ``port`` and ``requestid`` headers; once both exist the agent connects to the pod's port
(inside the pod's network namespace) and copies bytes both ways; a connect failure is written as
text to the error stream. WebSocket: ``?ports=a,b`` gives each port a data channel (2i) and an
error channel (2i+1); each channel first carries the port as 2 little-endian bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from centaurus.agent.streams import spdy
from centaurus.runtimes.base import Connection, RuntimeError_

log = logging.getLogger("centaurus.agent.portforward")
Dial = Callable[[int], Awaitable[Connection]]
PROTOCOL = "portforward.k8s.io"
TUNNEL_PREFIX = "SPDY/3.1+"
WS_PROTOCOLS = [
    "v4.channel.k8s.io",
    "v5.channel.k8s.io",
    "channel.k8s.io",
    PROTOCOL,
    f"{TUNNEL_PREFIX}{PROTOCOL}",
]


async def _copy_to_stream(reader: asyncio.StreamReader, st: spdy.Stream) -> None:
    while True:
        data = await reader.read(32 * 1024)
        if not data:
            return
        await st.write(data)


async def _copy_from_stream(st: spdy.Stream, writer: asyncio.StreamWriter) -> None:
    while True:
        data = await st.read()
        if not data:
            with contextlib.suppress(OSError, RuntimeError):
                if writer.can_write_eof():
                    writer.write_eof()
            return
        writer.write(data)
        await writer.drain()


async def _forward(dial: Dial, port: int, data: spdy.Stream, err: spdy.Stream) -> None:
    try:
        reader, writer = await dial(port)
    except (RuntimeError_, OSError, ValueError) as exc:
        msg = exc.message if isinstance(exc, RuntimeError_) else str(exc)
        await err.write(f"error forwarding port {port} to pod: {msg}".encode())
        await err.close()
        await data.close()
        return
    up = asyncio.ensure_future(_copy_from_stream(data, writer))
    try:
        await _copy_to_stream(reader, data)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(up), 1.0)
    except (ConnectionError, OSError):
        pass
    finally:
        up.cancel()
        writer.close()
        await data.close()
        await err.close()


async def serve_spdy(conn: spdy.ByteConn, dial: Dial) -> None:
    pairs: dict[str, dict[str, spdy.Stream]] = {}
    tasks: set[asyncio.Task[None]] = set()

    def on_stream(st: spdy.Stream) -> None:
        rid = st.headers.get("requestid") or st.headers.get("port", "")
        pair = pairs.setdefault(rid, {})
        pair[st.type] = st
        if "data" in pair and "error" in pair:
            pairs.pop(rid, None)
            try:
                port = int(st.headers.get("port", ""))
            except ValueError:
                t = asyncio.ensure_future(_bad_port(pair["error"], st.headers.get("port", "")))
            else:
                t = asyncio.ensure_future(_forward(dial, port, pair["data"], pair["error"]))
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    session = spdy.Session(conn, on_stream)
    await session.serve()
    for t in list(tasks):
        t.cancel()


async def _bad_port(err: spdy.Stream, port: str) -> None:
    await err.write(f"invalid port {port!r}".encode())
    await err.close()


class WsTunnel:
    """A :class:`spdy.ByteConn` over WebSocket binary messages (SPDY tunneled by kubectl >= 1.30)."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws

    async def read(self) -> bytes:
        while True:
            msg = await self.ws.receive()
            if msg.type == WSMsgType.BINARY:
                if msg.data:
                    return bytes(msg.data)
                continue
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR):
                return b""

    async def write(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def close(self) -> None:
        await self.ws.close()


async def serve_websocket(request: web.Request, dial: Dial) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=WS_PROTOCOLS, max_msg_size=16 << 20, heartbeat=30.0)
    await ws.prepare(request)
    if (ws.ws_protocol or "").startswith(TUNNEL_PREFIX):
        await serve_spdy(WsTunnel(ws), dial)
        return ws
    try:
        ports = [int(p) for v in request.rel_url.query.getall("ports", []) for p in v.split(",") if p]
    except ValueError:
        await ws.close(message=b"invalid ports")
        return ws
    lock = asyncio.Lock()

    async def send(ch: int, data: bytes) -> None:
        async with lock:
            if not ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_bytes(bytes([ch]) + data)

    writers: dict[int, asyncio.StreamWriter] = {}
    pumps: list[asyncio.Task[None]] = []
    for i, port in enumerate(ports):
        pb = struct.pack("<H", port)
        await send(2 * i, pb)
        await send(2 * i + 1, pb)
        try:
            reader, writer = await dial(port)
        except (RuntimeError_, OSError) as exc:
            msg = exc.message if isinstance(exc, RuntimeError_) else str(exc)
            await send(2 * i + 1, f"error forwarding port {port} to pod: {msg}".encode())
            continue
        writers[i] = writer

        async def pump(i: int = i, reader: asyncio.StreamReader = reader) -> None:
            while True:
                data = await reader.read(32 * 1024)
                if not data:
                    return
                await send(2 * i, data)

        pumps.append(asyncio.ensure_future(pump()))

    async def close_when_done() -> None:
        # kubelet ends the stream once every forwarded connection has ended (the channel
        # protocol has no per-channel close), so the client sees EOF
        await asyncio.gather(*pumps, return_exceptions=True)
        await asyncio.sleep(0.05)
        await ws.close()

    closer = asyncio.ensure_future(close_when_done())
    async for frame in ws:
        if frame.type not in (WSMsgType.BINARY, WSMsgType.TEXT) or not frame.data:
            continue
        raw = bytes(frame.data) if frame.type == WSMsgType.BINARY else str(frame.data).encode()
        ch, payload = raw[0], raw[1:]
        w = writers.get(ch // 2) if ch % 2 == 0 else None
        if w is not None and payload:
            w.write(payload)
            with contextlib.suppress(ConnectionError):
                await w.drain()
    closer.cancel()
    for t in pumps:
        t.cancel()
    for w in writers.values():
        w.close()
    return ws
