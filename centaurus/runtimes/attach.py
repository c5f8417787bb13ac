"""Container stdio for ``kubectl attach`` / ``kubectl run -it``: what the runtime holds while a
container with ``stdin``/``tty`` runs, and the attach session built on it.

* ``tty``: crun creates the pty and passes the master over ``--console-socket``; the runtime keeps
  it, copies everything the container writes to the container's log file (so ``logs`` works as
  for any container) and writes attach input into it.
* ``stdin`` without a tty: the container's stdin is a FIFO in its bundle; the runtime keeps a write
  end open so the container never sees EOF between attaches (Kubernetes ``stdinOnce: false``).

Both are held by this process: after an agent restart a tty container loses its terminal (it gets
a hangup) and a stdin container sees EOF -- the price of having no per-container shim process.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import termios
from pathlib import Path

from centaurus.runtimes import logs
from centaurus.runtimes.execio import writer_for_fd

READ_CHUNK = 64 * 1024


class ContainerIO:
    """Live stdio of one running container (``stdin_fd``: FIFO writer or pty master)."""

    def __init__(self, log_path: Path, *, master: int | None = None, stdin_fd: int | None = None) -> None:
        self.log_path, self.master, self.stdin_fd = log_path, master, stdin_fd
        self._pump: asyncio.Task[None] | None = None
        self.done = asyncio.Event()
        if master is not None:
            self._pump = asyncio.ensure_future(self._copy_to_log(master))
        else:
            self.done.set()

    async def _copy_to_log(self, master: int) -> None:
        """pty output -> log file, until the container side hangs up (EIO)."""
        loop = asyncio.get_running_loop()
        os.set_blocking(master, False)
        out = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        readable = asyncio.Event()
        loop.add_reader(master, readable.set)
        try:
            while True:
                await readable.wait()
                readable.clear()
                try:
                    data = os.read(master, READ_CHUNK)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    return
                os.write(out, data)  # local append, like a log call
        finally:
            loop.remove_reader(master)
            os.close(out)
            self.done.set()

    def writer_fd(self) -> int | None:
        fd = self.master if self.master is not None else self.stdin_fd
        return os.dup(fd) if fd is not None else None

    def resize(self, cols: int, rows: int) -> None:
        if self.master is not None:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    async def close(self) -> None:
        if self._pump is not None and not self._pump.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._pump), 2)  # drain what is left
            self._pump.cancel()
        for fd in (self.master, self.stdin_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self.stdin_fd = None


class AttachSession:
    """:class:`~centaurus.runtimes.base.ExecSession` on a running container's main process:
    output = its log from now on, input = its stdin/tty, exit = the container's."""

    def __init__(
        self,
        io: ContainerIO | None,
        log_path: Path,
        start: int,
        tty: bool,
        exited: asyncio.Future[int],
        alive: asyncio.Event,
    ) -> None:
        self.tty = tty
        self.stdin: asyncio.StreamWriter | None = None
        self.stdout = asyncio.StreamReader()
        self.stderr: asyncio.StreamReader | None = None
        self._io, self._exited, self._alive = io, exited, alive
        self._follow = asyncio.ensure_future(self._feed(log_path, start))

    async def open_stdin(self) -> None:
        fd = self._io.writer_fd() if self._io is not None else None
        if fd is not None:
            self.stdin = await writer_for_fd(fd)

    async def _feed(self, log_path: Path, start: int) -> None:
        try:
            async for chunk in logs.read_log(
                log_path, follow=True, start=start, done=lambda: not self._alive.is_set()
            ):
                self.stdout.feed_data(chunk)
        finally:
            self.stdout.feed_eof()

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    async def resize(self, cols: int, rows: int) -> None:
        if self._io is not None:
            self._io.resize(cols, rows)

    async def close_stdin(self) -> None:
        if self.stdin is not None:
            self.stdin.close()
            self.stdin = None

    async def kill(self) -> None:
        """Detach (attach never kills the container)."""
        await self.close_stdin()
        self._follow.cancel()
