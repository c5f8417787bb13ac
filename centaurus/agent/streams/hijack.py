"""Taking over an aiohttp server connection after ``101 Switching Protocols``.

aiohttp owns WebSockets; for anything else that upgrades (SPDY/3.1 from kubectl, or a raw relay
in the API server's proxy) we answer 101 ourselves and install a parser that hands every later
byte to an :class:`asyncio.StreamReader` -- the same mechanism aiohttp uses for its WebSocket
reader. Writes go straight to the transport with aiohttp's own write back-pressure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiohttp import web


class _RawParser:
    """Stands in for aiohttp's payload parser: every byte goes to ``reader``."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.reader.feed_data(data)
        return False, b""

    def feed_eof(self) -> None:
        self.reader.feed_eof()


class Hijacked:
    """The raw byte stream of an upgraded server connection."""

    def __init__(self, request: web.Request, reader: asyncio.StreamReader) -> None:
        self.request = request
        self.reader = reader
        self.closed = False

    async def read(self) -> bytes:
        return await self.reader.read(65536)

    async def write(self, data: bytes) -> None:
        transport = self.request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("connection closed")
        transport.write(data)
        proto: Any = self.request.protocol
        await proto._drain_helper()

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            transport = self.request.transport
            if transport is not None:
                transport.close()


async def upgrade(request: web.Request, headers: Mapping[str, str]) -> tuple[web.StreamResponse, Hijacked]:
    """Answer 101 with ``headers`` and return the connection's raw byte stream."""
    resp = web.StreamResponse(status=101, reason="Switching Protocols", headers=dict(headers))
    resp.force_close()
    await resp.prepare(request)
    reader = asyncio.StreamReader(limit=1 << 22)
    proto: Any = request.protocol
    proto.set_parser(_RawParser(reader))
    proto.keep_alive(False)
    return resp, Hijacked(request, reader)


def wants_upgrade(request: web.Request, kind: str | None = None) -> bool:
    conn = ",".join(request.headers.getall("Connection", [])).lower()
    up = request.headers.get("Upgrade", "").lower()
    return "upgrade" in conn and bool(up) and (kind is None or up.startswith(kind.lower()))
