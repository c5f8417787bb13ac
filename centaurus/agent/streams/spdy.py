"""The server side of SPDY/3.1 as Kubernetes streaming uses it (exec/attach/port-forward).

kubectl up to 1.29 speaks it after an HTTP ``Upgrade: SPDY/3.1``; kubectl >= 1.30 tunnels the
same bytes inside WebSocket binary messages for port-forward (subprotocol
``SPDY/3.1+portforward.k8s.io``). Only what those clients use is implemented: the client opens
streams (SYN_STREAM with a ``streamtype`` header, plus ``port``/``requestid`` for port-forward),
the server answers each with an empty SYN_REPLY, then both sides exchange DATA frames and end a
direction with FIN; PING is echoed, SETTINGS and WINDOW_UPDATE are read and ignored (as the Go
``spdystream`` package does -- it implements no flow control), GOAWAY ends the session.

Header blocks are zlib-compressed with SPDY/3's fixed dictionary, one compression context per
direction for the whole connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import zlib
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger("centaurus.agent.spdy")

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_PROTOCOL_ERROR, RST_REFUSED_STREAM, RST_CANCEL = 1, 3, 5
MAX_FRAME = 1 << 24
DATA_CHUNK = 32 * 1024

_WORDS = [
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,"
    "deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
#: the SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00, 2.6.10.1): the
#: length-prefixed common header names followed by a run of common values
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()


class SpdyError(Exception):
    pass


class ByteConn(Protocol):
    """The bytes under the session: a hijacked TLS socket or a WebSocket tunnel."""

    async def read(self) -> bytes:
        """Next chunk; b"" at end of stream."""

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


def encode_headers(headers: dict[str, str]) -> bytes:
    out = [struct.pack(">I", len(headers))]
    for k, v in headers.items():
        kb, vb = k.lower().encode(), v.encode()
        out += [struct.pack(">I", len(kb)), kb, struct.pack(">I", len(vb)), vb]
    return b"".join(out)


def decode_headers(block: bytes) -> dict[str, str]:
    (n,) = struct.unpack_from(">I", block)
    off, out = 4, {}
    for _ in range(n):
        (kl,) = struct.unpack_from(">I", block, off)
        k = block[off + 4 : off + 4 + kl].decode("latin-1").lower()
        off += 4 + kl
        (vl,) = struct.unpack_from(">I", block, off)
        v = block[off + 4 : off + 4 + vl].decode("latin-1")
        off += 4 + vl
        out[k] = v.split("\0")[0]
    return out


class Stream:
    """One client-opened stream: its headers, incoming data (queue) and our write side."""

    def __init__(self, session: Session, sid: int, headers: dict[str, str]) -> None:
        self.session, self.id, self.headers = session, sid, headers
        self.incoming: asyncio.Queue[bytes] = asyncio.Queue()  # b"" = the client finished
        self.remote_closed = False
        self.local_closed = False

    @property
    def type(self) -> str:
        return self.headers.get("streamtype", "")

    async def read(self) -> bytes:
        if self.remote_closed and self.incoming.empty():
            return b""
        return await self.incoming.get()

    async def write(self, data: bytes) -> None:
        if self.local_closed or self.session.closed:
            return
        for i in range(0, len(data), DATA_CHUNK):
            await self.session.send_data(self.id, data[i : i + DATA_CHUNK], fin=False)

    async def close(self) -> None:
        """Half-close our direction (FIN)."""
        if not self.local_closed and not self.session.closed:
            self.local_closed = True
            await self.session.send_data(self.id, b"", fin=True)

    async def reset(self, code: int = RST_CANCEL) -> None:
        self.local_closed = True
        await self.session.send_control(RST_STREAM, 0, struct.pack(">II", self.id, code))


class Session:
    """Reads frames from ``conn``; ``on_stream(stream)`` is called for every new stream (after
    its SYN_REPLY went out), on the loop, never concurrently with itself."""

    def __init__(self, conn: ByteConn, on_stream: Callable[[Stream], Awaitable[None] | None]) -> None:
        self.conn = conn
        self.on_stream = on_stream
        self.streams: dict[int, Stream] = {}
        self.closed = False
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zdict=DICTIONARY)
        self._buf = bytearray()
        self._wlock = asyncio.Lock()
        self._last_id = 0
        self.done = asyncio.Event()

    # ---- output --------------------------------------------------------------------------------
    async def _send(self, frame: bytes) -> None:
        async with self._wlock:
            if self.closed:
                return
            try:
                await self.conn.write(frame)
            except (ConnectionError, OSError, RuntimeError):
                self.closed = True

    async def send_control(self, ftype: int, flags: int, body: bytes) -> None:
        await self._send(struct.pack(">HHI", 0x8003, ftype, (flags << 24) | len(body)) + body)

    async def send_data(self, sid: int, data: bytes, fin: bool) -> None:
        flags = FLAG_FIN if fin else 0
        await self._send(struct.pack(">II", sid & 0x7FFFFFFF, (flags << 24) | len(data)) + data)

    def _compress(self, headers: dict[str, str]) -> bytes:
        return self._deflate.compress(encode_headers(headers)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    async def goaway(self) -> None:
        await self.send_control(GOAWAY, 0, struct.pack(">II", self._last_id, 0))

    async def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                await self.goaway()
            self.closed = True
            with contextlib.suppress(Exception):
                await self.conn.close()
        for st in self.streams.values():
            st.remote_closed = True
            st.incoming.put_nowait(b"")
        self.done.set()

    # ---- input ---------------------------------------------------------------------------------
    async def serve(self) -> None:
        """Read frames until the peer goes away or the connection ends."""
        try:
            while not self.closed:
                frame = await self._frame()
                if frame is None:
                    break
                await self._handle(*frame)
        except (SpdyError, zlib.error, struct.error) as exc:
            log.info("spdy session ended: %s", exc)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            await self.close()

    async def _fill(self, n: int) -> bool:
        while len(self._buf) < n:
            chunk = await self.conn.read()
            if not chunk:
                return False
            self._buf += chunk
        return True

    async def _frame(self) -> tuple[bool, int, int, bytes] | None:
        if not await self._fill(8):
            return None
        w0, w1 = struct.unpack_from(">II", self._buf)
        length = w1 & 0xFFFFFF
        if length > MAX_FRAME:
            raise SpdyError(f"frame of {length} bytes")
        if not await self._fill(8 + length):
            return None
        body = bytes(self._buf[8 : 8 + length])
        del self._buf[: 8 + length]
        control = bool(w0 & 0x80000000)
        if control:
            version = (w0 >> 16) & 0x7FFF
            if version != 3:
                raise SpdyError(f"SPDY version {version}")
            return True, w0 & 0xFFFF, w1 >> 24, body
        return False, w0 & 0x7FFFFFFF, w1 >> 24, body

    async def _handle(self, control: bool, kind: int, flags: int, body: bytes) -> None:
        if not control:
            st = self.streams.get(kind)  # kind = stream id for data frames
            if st is None:
                return
            if body:
                st.incoming.put_nowait(body)
                await self.send_control(WINDOW_UPDATE, 0, struct.pack(">II", st.id, len(body)))
            if flags & FLAG_FIN:
                st.remote_closed = True
                st.incoming.put_nowait(b"")
            return
        if kind == SYN_STREAM:
            sid = struct.unpack_from(">I", body)[0] & 0x7FFFFFFF
            headers = decode_headers(self._inflate.decompress(body[10:]))
            st = Stream(self, sid, headers)
            self.streams[sid] = st
            self._last_id = max(self._last_id, sid)
            await self.send_control(SYN_REPLY, 0, struct.pack(">I", sid) + self._compress({}))
            if flags & FLAG_FIN:
                st.remote_closed = True
                st.incoming.put_nowait(b"")
            res = self.on_stream(st)
            if asyncio.iscoroutine(res):
                await res
        elif kind == PING:
            await self.send_control(PING, 0, body[:4])
        elif kind == RST_STREAM:
            sid = struct.unpack_from(">I", body)[0] & 0x7FFFFFFF
            st = self.streams.get(sid)
            if st is not None:
                st.remote_closed = st.local_closed = True
                st.incoming.put_nowait(b"")
        elif kind == GOAWAY:
            self.closed = True
        elif kind == HEADERS:
            self._inflate.decompress(body[4:])  # keep the compression context in step
        # SETTINGS, WINDOW_UPDATE: nothing to do (no flow control, as spdystream)


class StreamConn:
    """A :class:`ByteConn` over an asyncio reader/writer pair (a hijacked HTTP connection)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: Callable[[bytes], Awaitable[None]],
        closer: Callable[[], Awaitable[None]],
    ) -> None:
        self._reader, self._writer, self._closer = reader, writer, closer

    async def read(self) -> bytes:
        return await self._reader.read(65536)

    async def write(self, data: bytes) -> None:
        await self._writer(data)

    async def close(self) -> None:
        await self._closer()
