"""Host side of the guest-agent control channel (protocol: :mod:`centaurus.images.guest`).

The channel is the guest's ``ttyS1``, exposed by qemu as a unix socket. One reader task per VM
turns lines into events: ``WAIT`` (a freshly booted guest wants its identity -- after a cold boot
or a guest reboot) triggers :attr:`GuestChannel.on_wait`; ``READY`` completes the readiness
future; ``O``/``R`` complete exec calls.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

from centaurus.runtimes.vm.qemu import connect_unix

PREFIX = b"@@CL "
USERDATA_CHUNK = 1024


@dataclass
class Identity:
    hostname: str
    instance_id: str
    ip_cidr: str | None  # "10.0.0.2/24"
    gateway: str | None
    mac: str | None
    public_keys: tuple[str, ...] = ()
    user_data: bytes = b""

    def messages(self, seed: bytes) -> bytes:
        """ID (+ KEY, UD lines) + GO, one write. ``seed`` re-seeds the guest RNG; the epoch resets
        its clock -- both differ per clone even though all clones share the template's memory."""
        lines = [
            " ".join(
                [
                    "ID",
                    self.hostname,
                    self.instance_id,
                    self.ip_cidr or "-",
                    self.gateway or "-",
                    self.mac or "-",
                    str(int(time.time())),
                    seed.hex(),
                ]
            )
        ]
        for key in self.public_keys:
            lines.append("KEY " + base64.b64encode(key.strip().encode() + b"\n").decode())
        ud = base64.b64encode(self.user_data).decode() if self.user_data else ""
        for i in range(0, len(ud), USERDATA_CHUNK):
            lines.append("UD " + ud[i : i + USERDATA_CHUNK])
        lines.append("GO")
        return ("\n".join(lines) + "\n").encode()


class GuestChannel:
    def __init__(
        self, on_wait: Callable[[], None] | None = None, on_ready: Callable[[str], None] | None = None
    ) -> None:
        self.on_wait = on_wait
        self.on_ready = on_ready
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event = asyncio.Event()
        self._waiting: asyncio.Event = asyncio.Event()
        self._exec: dict[str, tuple[asyncio.Future[tuple[bytes, int]], list[bytes]]] = {}
        self._ids = itertools.count(1)
        self.closed = asyncio.Event()
        self.recent: collections.deque[bytes] = collections.deque(maxlen=20)  # for error messages

    async def connect(
        self, path: str, timeout: float = 10.0, alive: Callable[[], bool] = lambda: True
    ) -> None:
        reader, self._writer = await connect_unix(path, timeout, alive)
        self._task = asyncio.ensure_future(self._read_loop(reader))

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                self.recent.append(line[:200])
                i = line.find(PREFIX)
                if i < 0:
                    continue
                parts = line[i + len(PREFIX) :].strip().split(b" ")
                kind = parts[0]
                if kind == b"WAIT":
                    self._ready.clear()
                    self._waiting.set()
                    if self.on_wait:
                        self.on_wait()
                elif kind == b"READY":
                    self._waiting.clear()
                    self._ready.set()
                    if self.on_ready:
                        self.on_ready(parts[1].decode() if len(parts) > 1 else "")
                elif kind == b"O" and len(parts) >= 2:
                    ent = self._exec.get(parts[1].decode())
                    if ent is not None:
                        ent[1].append(base64.b64decode(parts[2]) if len(parts) > 2 else b"")
                elif kind == b"R" and len(parts) >= 3:
                    ent = self._exec.pop(parts[1].decode(), None)
                    if ent is not None and not ent[0].done():
                        ent[0].set_result((b"".join(ent[1]), int(parts[2])))
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self.closed.set()
            for fut, _ in self._exec.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("guest control channel closed"))
            self._exec.clear()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def mark_unready(self) -> None:
        self._ready.clear()

    async def send(self, data: bytes) -> None:
        if self._writer is None or self._writer.is_closing() or self.closed.is_set():
            raise ConnectionError("guest control channel not connected")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except RuntimeError as exc:  # uvloop: "the handler is closed"
            raise ConnectionError(str(exc)) from exc

    async def provision(self, identity: Identity, seed: bytes) -> None:
        self._ready.clear()
        await self.send(identity.messages(seed))

    async def wait_ready(self, timeout: float) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def wait_booted(self, timeout: float) -> None:
        """Until the guest agent says WAIT (a cold boot reached userspace)."""
        await asyncio.wait_for(self._waiting.wait(), timeout)

    async def run(self, command: str, timeout: float = 60.0) -> tuple[bytes, int]:
        """Run ``sh -c command`` in the guest; (combined output, exit code)."""
        eid = str(next(self._ids))
        fut: asyncio.Future[tuple[bytes, int]] = asyncio.get_running_loop().create_future()
        self._exec[eid] = (fut, [])
        await self.send(f"X {eid} {base64.b64encode(command.encode()).decode()}\n".encode())
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"no answer to exec {eid} within {timeout} s; guest said last: {list(self.recent)[-5:]}"
            ) from None
        finally:
            self._exec.pop(eid, None)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._writer = None
