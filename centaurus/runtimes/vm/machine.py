"""One running qemu process: spawn (cold, from a template, from a snapshot), its QMP and guest
channel, its exit. The VM runtime owns policy (power states, records); this owns mechanics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from centaurus.runtimes import linux, netns
from centaurus.runtimes.vm.bootslots import BootSlot
from centaurus.runtimes.vm.guestctl import GuestChannel
from centaurus.runtimes.vm.qemu import INCOMING_FD, MachineConfig, Qmp, QmpError, open_cloexec


class BootError(RuntimeError):
    pass


class Machine:
    def __init__(
        self,
        cfg: MachineConfig,
        netns_path: str | None,
        errlog: Path,
        on_wait: Callable[[], None],
        on_ready: Callable[[str], None],
        on_event: Callable[[str, dict[str, Any]], None],
    ) -> None:
        self.cfg, self.netns_path, self.errlog = cfg, netns_path, errlog
        self.qmp = Qmp(on_event=on_event)
        self.ch = GuestChannel(on_wait=on_wait, on_ready=on_ready)
        self.pid: int | None = None
        self.pid_start: int | None = None
        self.exited: asyncio.Task[int | None] | None = None
        self.expect_exit = False
        self.t_spawn = 0.0
        self.t_queue: float | None = None  # when a cold boot started waiting for its boot slot
        self.boot_slot: BootSlot | None = None

    @property
    def t_start(self) -> float:
        """Start of the measured start time: the queue entry of a cold boot, else the spawn."""
        return self.t_queue if self.t_queue is not None else self.t_spawn

    def release_boot_slot(self) -> None:
        if self.boot_slot is not None:
            self.boot_slot.release()

    def alive(self) -> bool:
        return self.exited is not None and not self.exited.done()

    async def spawn(self, incoming: Path | None = None) -> None:
        """Start qemu (in the pod netns, so it opens the tap there); connect QMP and the channel."""

        def open_files() -> tuple[int, int | None]:
            self.errlog.parent.mkdir(parents=True, exist_ok=True)
            err = open_cloexec(self.errlog, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            inc = open_cloexec(incoming, os.O_RDONLY) if incoming is not None else None
            for sock in (self.cfg.qmp_sock, self.cfg.ctl_sock):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(sock)
            if self.cfg.console_log is not None:
                self.cfg.console_log.parent.mkdir(parents=True, exist_ok=True)
            return err, inc

        err, inc = await asyncio.to_thread(open_files)
        self.t_spawn = time.monotonic()
        try:
            self.pid = await netns.spawn_in_netns(
                self.netns_path,
                self.cfg.argv(),
                stdout=err,
                stderr=err,
                fds={INCOMING_FD: inc} if inc is not None else None,
            )
        finally:
            os.close(err)
            if inc is not None:
                os.close(inc)
        self.pid_start = linux.proc_start_time(self.pid)
        self.exited = asyncio.ensure_future(linux.wait_pid(self.pid))
        self.exited.add_done_callback(lambda _f: self.release_boot_slot())
        try:
            await self.qmp.connect(self.cfg.qmp_sock, alive=self.alive)
            await self.ch.connect(self.cfg.ctl_sock, alive=self.alive)
        except (OSError, QmpError, TimeoutError) as exc:
            raise BootError(f"qemu did not come up: {exc!r} {await self.error_tail()}") from exc

    async def adopt(self, pid: int) -> None:
        """Re-attach to a qemu started by an earlier agent (not our child: exit code unknown)."""
        self.pid, self.pid_start = pid, linux.proc_start_time(pid)
        self.exited = asyncio.ensure_future(linux.wait_pid(pid))
        await self.qmp.connect(self.cfg.qmp_sock, timeout=5, alive=self.alive)
        await self.ch.connect(self.cfg.ctl_sock, timeout=5, alive=self.alive)

    async def incoming(self, ignore_shared: bool, timeout: float = 60.0) -> None:
        """Load the state passed as fd 3 and resume (restore path)."""
        if ignore_shared:
            await self.qmp.execute(
                "migrate-set-capabilities", capabilities=[{"capability": "x-ignore-shared", "state": True}]
            )
        await self.qmp.execute("migrate-incoming", uri=f"fd:{INCOMING_FD}")
        status = await self.qmp.wait_status(lambda s: s != "inmigrate", timeout)
        if status not in ("paused", "postmigrate", "prelaunch", "running"):
            raise BootError(f"restore ended in state {status!r}: {await self.error_tail()}")
        if status != "running":
            await self.qmp.execute("cont")

    async def save(
        self, path: Path, *, ignore_shared: bool = False, timeout: float = 300.0
    ) -> dict[str, Any]:
        """Migrate to a file. The caller pauses the VM first for a consistent snapshot."""
        await self.qmp.execute(
            "migrate-set-capabilities",
            capabilities=[{"capability": "x-ignore-shared", "state": ignore_shared}],
        )
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        return await self.qmp.migrate_to(f"exec:cat > {shlex.quote(str(path))}", timeout)

    async def quit(self, grace: float = 5.0) -> None:
        """QMP quit, then SIGKILL if it lingers; waits for the process to be gone."""
        self.expect_exit = True
        if self.exited is None:
            return
        if not self.exited.done():
            with contextlib.suppress(Exception):
                await self.qmp.execute("quit", timeout=grace)
            try:
                await asyncio.wait_for(asyncio.shield(self.exited), grace)
            except TimeoutError:
                if self.pid:
                    linux.kill_quietly(self.pid, signal.SIGKILL)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self.exited), 10)
        await self.detach()

    async def detach(self) -> None:
        await self.qmp.close()
        await self.ch.close()

    async def error_tail(self) -> str:
        def read() -> str:
            try:
                return self.errlog.read_text(errors="replace")[-300:].strip()
            except OSError:
                return ""

        return await asyncio.to_thread(read)

    def pss_bytes(self) -> int | None:
        if not self.pid:
            return None
        try:
            with open(f"/proc/{self.pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def cpu_seconds(self) -> float | None:
        if not self.pid:
            return None
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None
