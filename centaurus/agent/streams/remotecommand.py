"""exec/attach: a process in a container wired to a client over the Kubernetes stream protocols.

Two transports, one behaviour:

* WebSocket channel protocol (kubectl >= 1.30 default, the python client's ``stream``):
  subprotocols ``v5.channel.k8s.io`` (adds channel 255 "close stdin"), ``v4.channel.k8s.io``,
  ``v3``/``v2``/``channel.k8s.io`` and ``base64.channel.k8s.io``. Every message starts with its
  channel: 0 stdin, 1 stdout, 2 stderr, 3 error (the final Status), 4 resize. The server first
  sends an empty message on the lowest output channel (kubelet does: the client learns the
  stream is open), and ends with the Status on channel 3.
* SPDY/3.1 (kubectl <= 1.29, and newer ones when WebSockets are refused): the client opens one
  stream per channel with a ``streamtype`` header (error, stdin, stdout, stderr, resize); the
  server starts the process once every expected stream exists.

The final Status (v4+) is ``{"status":"Success"}`` or a Failure with reason ``NonZeroExitCode``
and the exit code as cause -- what kubectl turns into its own exit code.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from centaurus.agent.streams import spdy
from centaurus.runtimes.base import ExecSession, RuntimeError_

log = logging.getLogger("centaurus.agent.exec")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
# how long a tty exec waits for the client's first terminal size before starting the process
INITIAL_SIZE_WAIT = 1.0
WS_PROTOCOLS = [
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
]
SPDY_PROTOCOLS = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"]
Starter = Callable[["ExecOptions"], Awaitable[ExecSession]]


@dataclass
class ExecOptions:
    command: list[str]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


def _flag(q: Any, name: str, default: bool = False) -> bool:
    v = q.get(name)
    if v is None:
        return default
    return str(v).lower() in ("1", "true", "yes")


def options(q: Any, attach: bool = False) -> ExecOptions:
    return ExecOptions(
        command=list(q.getall("command", [])),
        stdin=_flag(q, "stdin"),
        stdout=_flag(q, "stdout", True),
        stderr=_flag(q, "stderr", not attach) and not _flag(q, "tty"),
        tty=_flag(q, "tty"),
    )


def status_bytes(code: int | None, error: str | None, proto: str) -> bytes:
    """What goes on the error channel at the end (v4+: a Status; older: text on failure)."""
    if not proto.startswith(("v4.", "v5.")):
        if error:
            return error.encode()
        return f"command terminated with non-zero exit code: {code}".encode() if code else b""
    if error:
        st: dict[str, Any] = {
            "metadata": {},
            "status": "Failure",
            "message": error,
            "reason": "InternalError",
            "code": 500,
        }
    elif code:
        st = {
            "metadata": {},
            "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command "
            f"[{code}], exit code {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
        }
    else:
        st = {"metadata": {}, "status": "Success"}
    return json.dumps(st).encode()


async def _pump(reader: asyncio.StreamReader | None, send: Callable[[bytes], Awaitable[None]]) -> None:
    if reader is None:
        return
    while True:
        data = await reader.read(32 * 1024)
        if not data:
            return
        await send(data)


async def _resize(session: ExecSession, raw: bytes) -> None:
    for line in raw.decode(errors="replace").splitlines():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            d = json.loads(line)
            await session.resize(int(d["Width"]), int(d["Height"]))


async def _finish(session: ExecSession, pumps: list[asyncio.Task[None]]) -> int:
    code = await session.wait()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.gather(*pumps, return_exceptions=True), 5.0)
    return code


# ---- WebSocket ------------------------------------------------------------------------------------
async def serve_websocket(request: web.Request, opts: ExecOptions, start: Starter) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=WS_PROTOCOLS, max_msg_size=16 << 20, heartbeat=30.0)
    await ws.prepare(request)
    proto = ws.ws_protocol or ""
    b64 = proto.startswith("base64.")
    wlock = asyncio.Lock()

    async def send(ch: int, data: bytes) -> None:
        async with wlock:
            if ws.closed:
                return
            with contextlib.suppress(ConnectionError, RuntimeError):
                if b64:
                    await ws.send_str(str(ch) + base64.b64encode(data).decode())
                else:
                    await ws.send_bytes(bytes([ch]) + data)

    await send(STDOUT if opts.stdout else STDERR if opts.stderr else ERROR, b"")

    def frame(msg: Any) -> bytes:
        if msg.type == WSMsgType.BINARY:
            return bytes(msg.data)
        if msg.type == WSMsgType.TEXT and b64 and msg.data:
            return bytes([ord(msg.data[0]) - 48]) + base64.b64decode(msg.data[1:])
        if msg.type == WSMsgType.TEXT:
            # the python client sends str stdin as text frames; Go's server reads any frame
            # type as bytes, and so do we
            return str(msg.data).encode()
        return b""

    early: list[bytes] = []  # frames that came before the process: replayed after its start
    closed_early = False
    if opts.tty:
        # the client sends its terminal's size right away: the process must start with it, or a
        # quick command (`stty size`) sees 0x0 -- a race kubelets have too
        deadline = asyncio.get_running_loop().time() + INITIAL_SIZE_WAIT
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                msg = await ws.receive(timeout=left)
            except TimeoutError:
                break
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                closed_early = True
                break
            if data := frame(msg):
                early.append(data)
                if data[0] == RESIZE:
                    break
    try:
        session = await start(opts)
    except RuntimeError_ as exc:
        await send(ERROR, status_bytes(None, exc.message, proto))
        await ws.close()
        return ws
    for data in early:
        if data[0] == RESIZE:
            await _resize(session, data[1:])
    pumps = [
        asyncio.ensure_future(_pump(session.stdout if opts.stdout else None, lambda d: send(STDOUT, d))),
        asyncio.ensure_future(_pump(session.stderr if opts.stderr else None, lambda d: send(STDERR, d))),
    ]

    async def handle(data: bytes) -> None:
        ch, payload = data[0], data[1:]
        if ch == STDIN and session.stdin is not None:
            session.stdin.write(payload)
            with contextlib.suppress(ConnectionError):
                await session.stdin.drain()
        elif ch == RESIZE:
            await _resize(session, payload)
        elif ch == CLOSE and payload[:1] == bytes([STDIN]):
            await _end_stdin(session, opts.tty)

    async def inbound() -> None:
        for data in early:
            if data[0] != RESIZE:
                await handle(data)
        if not closed_early:
            async for msg in ws:
                if data := frame(msg):
                    await handle(data)
        await _end_stdin(session, opts.tty)

    reader = asyncio.ensure_future(inbound())
    code = await _finish(session, pumps)
    await send(ERROR, status_bytes(code, None, proto))
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    await ws.close()
    return ws


# ---- SPDY ---------------------------------------------------------------------------------------
def negotiate(request: web.Request, supported: list[str]) -> str | None:
    offered = [
        p.strip() for v in request.headers.getall("X-Stream-Protocol-Version", []) for p in v.split(",")
    ]
    return next((p for p in offered if p in supported), None)


async def serve_spdy(conn: spdy.ByteConn, proto: str, opts: ExecOptions, start: Starter) -> None:
    expected = {"error"}
    if opts.stdin:
        expected.add("stdin")
    if opts.stdout:
        expected.add("stdout")
    if opts.stderr and not opts.tty:
        expected.add("stderr")
    if opts.tty and proto.startswith(("v3.", "v4.", "v5.")):
        expected.add("resize")
    streams: dict[str, spdy.Stream] = {}
    ready = asyncio.Event()

    def on_stream(st: spdy.Stream) -> None:
        streams[st.type] = st
        if expected <= set(streams):
            ready.set()

    session = spdy.Session(conn, on_stream)
    serving = asyncio.ensure_future(session.serve())
    try:
        await asyncio.wait_for(ready.wait(), 30.0)
    except TimeoutError:
        log.info("spdy exec: streams %s never arrived (have %s)", sorted(expected), sorted(streams))
        await session.close()
        serving.cancel()
        return
    err = streams["error"]
    first_size = b""
    if "resize" in streams:  # start the process with the client's terminal size (see the WS side)
        with contextlib.suppress(TimeoutError):
            first_size = await asyncio.wait_for(streams["resize"].read(), INITIAL_SIZE_WAIT)
    try:
        ex = await start(opts)
    except RuntimeError_ as exc:
        await err.write(status_bytes(None, exc.message, proto))
        await _close_all(session, streams)
        serving.cancel()
        return
    *sizes, size_rest = first_size.split(b"\n")
    for line in sizes:
        await _resize(ex, line)
    pumps = []
    if "stdout" in streams:
        pumps.append(asyncio.ensure_future(_pump(ex.stdout, streams["stdout"].write)))
    if "stderr" in streams and ex.stderr is not None:
        pumps.append(asyncio.ensure_future(_pump(ex.stderr, streams["stderr"].write)))
    side: list[asyncio.Task[None]] = []
    if "stdin" in streams:
        side.append(asyncio.ensure_future(_stdin(streams["stdin"], ex)))
    if "resize" in streams:
        side.append(asyncio.ensure_future(_resize_stream(streams["resize"], ex, size_rest)))
    code = await _finish(ex, pumps)
    await err.write(status_bytes(code, None, proto))
    for t in side:
        t.cancel()
    await _close_all(session, streams)
    serving.cancel()


async def _end_stdin(ex: ExecSession, tty: bool) -> None:
    """The client's stdin ended. Without a tty the process sees EOF; with one there is no half-close
    -- the session's end hangs the terminal up -- and a ^D typed into the terminal on the user's
    behalf races with the command (``kubectl exec -it pod -- stty size </dev/null`` must work)."""
    if not tty:
        await ex.close_stdin()


async def _stdin(st: spdy.Stream, ex: ExecSession) -> None:
    while True:
        data = await st.read()
        if not data:
            await _end_stdin(ex, ex.tty)
            return
        if ex.stdin is not None:
            ex.stdin.write(data)
            with contextlib.suppress(ConnectionError):
                await ex.stdin.drain()


async def _resize_stream(st: spdy.Stream, ex: ExecSession, buf: bytes = b"") -> None:
    while True:
        data = await st.read()
        if not data:
            return
        buf += data
        *lines, buf = buf.split(b"\n")
        for line in lines:
            await _resize(ex, line)


async def _close_all(session: spdy.Session, streams: dict[str, spdy.Stream]) -> None:
    for st in streams.values():
        await st.close()
    await session.close()
