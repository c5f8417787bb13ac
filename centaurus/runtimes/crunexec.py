"""``crun exec`` as an :class:`~centaurus.runtimes.base.ExecSession`: pipes, or a pty whose master
crun hands over through ``--console-socket``. The exec'd process's own pid comes from crun's
``--pid-file`` so ``kill()`` reaches it (killing crun alone would orphan it in the container)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from centaurus.runtimes import crun, linux, spawn
from centaurus.runtimes.base import ExecSession, RuntimeError_
from centaurus.runtimes.execio import ConsoleSocket, ProcessExec, pump_fd, writer_for_fd
from centaurus.runtimes.spawn import PrivateMountWorker


async def crun_exec(
    worker: PrivateMountWorker,
    root: Path,
    cid: str,
    argv: list[str],
    *,
    tty: bool,
    stdin: bool,
    pidfile: Path,
    console_path: str,
) -> ExecSession:
    cmd = [*crun.base_argv(root), "exec", "--pid-file", str(pidfile)]
    console: ConsoleSocket | None = None
    if tty:
        console = ConsoleSocket(console_path)
        cmd += ["--tty", "--console-socket", console.path]
    cmd += [cid, *argv]
    loop_fds: list[int] = []
    child_fds: list[int] = []
    try:
        if tty:
            null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            child_fds.append(null)
            pid = await worker.call(lambda: spawn.spawn(cmd, stdin=null, stdout=null, stderr=null))
            assert console is not None
            try:
                master = await console.receive()
            except (TimeoutError, OSError) as exc:
                linux.kill_quietly(pid, signal.SIGKILL)
                await linux.wait_pid(pid)
                raise RuntimeError_("ExecError", f"no terminal from crun exec: {exc}") from exc
            out = asyncio.StreamReader()
            session = _PidFileExec(
                pid, pidfile, stdout=out, stderr=None, stdin=None, tty=True, master_fd=master
            )
            pump_fd(os.dup(master), out)  # after ProcessExec holds the pty peer open
            if stdin:
                session.stdin = await writer_for_fd(os.dup(master))
            return session
        if stdin:
            in_r, in_w = os.pipe2(os.O_CLOEXEC)
        else:
            in_r, in_w = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), -1
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        child_fds += [in_r, out_w, err_w]
        loop_fds += [fd for fd in (in_w, out_r, err_r) if fd >= 0]
        pid = await worker.call(lambda: spawn.spawn(cmd, stdin=in_r, stdout=out_w, stderr=err_w))
        out, err = asyncio.StreamReader(), asyncio.StreamReader()
        pump_fd(out_r, out)
        pump_fd(err_r, err)
        w = await writer_for_fd(in_w) if in_w >= 0 else None
        loop_fds.clear()
        return _PidFileExec(pid, pidfile, stdout=out, stderr=err, stdin=w, tty=False)
    except BaseException:
        for fd in loop_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        raise
    finally:
        for fd in child_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        if console is not None:
            console.close()


class _PidFileExec(ProcessExec):
    """Learns the in-container pid from crun's pid file when it is first needed (kill)."""

    def __init__(self, pid: int, pidfile: Path, **kw: Any) -> None:
        super().__init__(pid, **kw)
        self._pidfile = pidfile

    async def kill(self) -> None:
        if self.target_pid is None:
            with contextlib.suppress(OSError, ValueError):
                self.target_pid = int((await asyncio.to_thread(self._pidfile.read_text)).strip())
        await super().kill()

    async def wait(self) -> int:
        code = await super().wait()
        with contextlib.suppress(OSError):
            self._pidfile.unlink()
        return code
