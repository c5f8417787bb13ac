"""Exec sessions: streams + exit status of a process started inside a workload.

:class:`ProcessExec` wraps a ``crun exec`` child with pipes or a pty (the pty master arrives over
crun's ``--console-socket`` as SCM_RIGHTS). :class:`BufferedExec` presents an already finished
command (the VM guest agent runs commands to completion) through the same interface.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import struct
import termios

from centaurus.runtimes import linux

READ_CHUNK = 64 * 1024
TIOCGPTPEER = 0x5441


def pump_fd(fd: int, reader: asyncio.StreamReader) -> None:
    """Feed ``reader`` from a non-blocking fd until EOF (EIO from a pty master whose slave side
    closed is EOF too); closes ``fd`` at the end."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)

    def readable() -> None:
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            reader.feed_data(data)
            return
        loop.remove_reader(fd)
        os.close(fd)
        reader.feed_eof()

    loop.add_reader(fd, readable)


class _WriteProtocol(asyncio.streams.FlowControlMixin):
    """Flow control plus the close waiter ``StreamWriter.wait_closed`` needs."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop=loop)
        self._closed: asyncio.Future[None] = loop.create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self._closed.done():
            self._closed.set_result(None)

    def _get_close_waiter(self, stream: asyncio.StreamWriter) -> asyncio.Future[None]:
        return self._closed


class _FdWriteTransport(asyncio.WriteTransport):
    """Write side of a non-blocking fd (pipe or pty master) using only ``add_writer``.

    Not ``loop.connect_write_pipe``: uvloop's pipe transport watches the fd for readability to
    detect the peer closing, which on a pty master *consumes the terminal output*."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, protocol: _WriteProtocol) -> None:
        super().__init__()
        self._loop, self._fd, self._protocol = loop, fd, protocol
        self._buf = bytearray()
        self._closing = False
        self._paused = False
        loop.call_soon(protocol.connection_made, self)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._fd < 0:
            return
        if not self._buf:
            try:
                n = os.write(self._fd, data)
            except BlockingIOError:
                n = 0
            except OSError as exc:
                self._fatal(exc)
                return
            data = data[n:]
            if not data:
                return
            self._loop.add_writer(self._fd, self._flush)
        self._buf += data
        if len(self._buf) > 256 * 1024 and not self._paused:
            self._paused = True
            self._protocol.pause_writing()

    def _flush(self) -> None:
        try:
            n = os.write(self._fd, self._buf)
        except BlockingIOError:
            return
        except OSError as exc:
            self._fatal(exc)
            return
        del self._buf[:n]
        if self._paused and len(self._buf) < 64 * 1024:
            self._paused = False
            self._protocol.resume_writing()
        if not self._buf:
            self._loop.remove_writer(self._fd)
            if self._closing:
                self._finish(None)

    def _fatal(self, exc: Exception | None) -> None:
        self._buf.clear()
        self._finish(exc)

    def _finish(self, exc: Exception | None) -> None:
        if self._fd >= 0:
            self._loop.remove_writer(self._fd)
            os.close(self._fd)
            self._fd = -1
            self._loop.call_soon(self._protocol.connection_lost, exc)

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if not self._buf:
            self._finish(None)

    def is_closing(self) -> bool:
        return self._closing

    def get_write_buffer_size(self) -> int:
        return len(self._buf)

    def abort(self) -> None:
        self._closing = True
        self._fatal(None)


async def writer_for_fd(fd: int) -> asyncio.StreamWriter:
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    protocol = _WriteProtocol(loop)
    transport = _FdWriteTransport(loop, fd, protocol)
    await asyncio.sleep(0)  # let connection_made run
    return asyncio.StreamWriter(transport, protocol, None, loop)


class ProcessExec:
    """A ``crun exec`` child process (pid = crun's; ``target_pid`` = the process in the container)."""

    def __init__(
        self,
        pid: int,
        *,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader | None,
        stdin: asyncio.StreamWriter | None,
        tty: bool,
        master_fd: int | None = None,
        target_pid: int | None = None,
    ) -> None:
        self.pid, self.stdout, self.stderr, self.stdin, self.tty = pid, stdout, stderr, stdin, tty
        self.target_pid = target_pid
        self._master = master_fd
        self._code: int | None = None
        self._waiter: asyncio.Task[int | None] = asyncio.ensure_future(linux.wait_pid(pid))
        self._peer: int | None = None
        if master_fd is not None:
            # Hold the slave side open ourselves until the process is gone: a pty master reads EIO
            # (= EOF for us) whenever no slave is open, which includes the instant before the
            # exec'd process opens it. Closing our peer after exit turns the final EIO into EOF.
            with contextlib.suppress(OSError):
                self._peer = fcntl.ioctl(master_fd, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
            self._waiter.add_done_callback(lambda _t: self._close_peer())

    def _close_peer(self) -> None:
        if self._peer is not None:
            with contextlib.suppress(OSError):
                os.close(self._peer)
            self._peer = None

    async def wait(self) -> int:
        if self._code is None:
            status = await asyncio.shield(self._waiter)
            self._code = linux.exit_code_from_status(status) if status is not None else 255
            if self._master is not None:
                with contextlib.suppress(OSError):
                    os.close(self._master)
                self._master = None
        return self._code

    async def resize(self, cols: int, rows: int) -> None:
        if self._master is not None:
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    async def close_stdin(self) -> None:
        if self.stdin is None:
            return
        if self.tty:  # a tty has no half-close: send EOF (^D) like a terminal user would
            self.stdin.write(b"\x04")
            with contextlib.suppress(ConnectionError):
                await self.stdin.drain()
            return
        self.stdin.close()
        with contextlib.suppress(ConnectionError, BrokenPipeError):
            await self.stdin.wait_closed()

    async def kill(self) -> None:
        if self.target_pid:
            linux.kill_quietly(self.target_pid, signal.SIGKILL)
        linux.kill_quietly(self.pid, signal.SIGKILL)


class BufferedExec:
    """A command that already ran to completion; its output is served as a finished stream."""

    def __init__(self, output: bytes, code: int) -> None:
        self.stdin: asyncio.StreamWriter | None = None
        self.stdout = asyncio.StreamReader()
        self.stdout.feed_data(output)
        self.stdout.feed_eof()
        self.stderr: asyncio.StreamReader | None = asyncio.StreamReader()
        self.stderr.feed_eof()
        self.tty = False
        self._code = code

    async def wait(self) -> int:
        return self._code

    async def resize(self, cols: int, rows: int) -> None:
        return None

    async def close_stdin(self) -> None:
        return None

    async def kill(self) -> None:
        return None


class ConsoleSocket:
    """The listening end of crun's ``--console-socket``: crun connects and passes the pty master."""

    def __init__(self, path: str) -> None:
        self.path = path
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.sock.setblocking(False)

    async def receive(self, timeout: float = 10.0) -> int:
        loop = asyncio.get_running_loop()
        conn, _ = await asyncio.wait_for(loop.sock_accept(self.sock), timeout)
        with conn:
            conn.setblocking(False)
            ready: asyncio.Future[None] = loop.create_future()

            def wake() -> None:
                if not ready.done():
                    ready.set_result(None)

            loop.add_reader(conn.fileno(), wake)
            try:
                await asyncio.wait_for(ready, timeout)
            finally:
                loop.remove_reader(conn.fileno())
            fds = array.array("i")
            _, ancdata, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
            for level, kind, data in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
            if not fds:
                raise OSError("console socket: no pty file descriptor received")
            return fds[0]

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
