"""qemu command lines and an asyncio QMP client.

Machine: ``microvm`` with ACPI (virtio-mmio devices and the power-off are found through ACPI;
without it a guest ``poweroff`` leaves qemu running), the guest's own ELF ``vmlinux``
(:mod:`centaurus.images.guest_kernel`) booted via PVH, an uncompressed
initramfs, ``ttyS0`` = console (-> pod log file), ``ttyS1`` = guest-agent control channel
(:mod:`centaurus.runtimes.vm.guestctl`), virtio-net on a tap in the pod netns, virtio-rng fed by
the host's /dev/urandom (fresh entropy for every clone). ``tsc_early_khz`` avoids the
intermittent TSC-calibration hang of microvm+ACPI under TCG (NOTES.md).

Guest RAM is always the memory backend ``ram0`` so migration streams line up between a template
(file on /dev/shm, ``share=on``), its clones (same file, ``share=off`` = private copy-on-write
mapping) and user snapshots (anonymous RAM).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from centaurus.images.guest_kernel import HZ as GUEST_HZ

QEMU = shutil.which("qemu-system-x86_64") or "/usr/bin/qemu-system-x86_64"
INCOMING_FD = 3


class QmpError(RuntimeError):
    pass


def host_tsc_khz() -> int | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return int(float(line.split(":")[1]) * 1000)
    except (OSError, ValueError):
        return None
    return None


@dataclass
class MachineConfig:
    kernel: Path
    initrd: Path
    mem_mb: int = 128
    cpus: int = 1
    accel: str = "tcg"
    console_log: Path | None = None
    ctl_sock: str = ""
    qmp_sock: str = ""
    ram_file: Path | None = None  # None: anonymous RAM
    ram_shared: bool = False  # True only for a template being built
    tap: str | None = None  # tap name inside the netns; None: an unconnected hub port
    mac: str = "52:54:00:00:00:01"
    incoming: bool = False  # -incoming defer (restore)
    extra_cmdline: list[str] = field(default_factory=list)

    def cmdline(self) -> str:
        """The guest kernel's own configuration (``centaurus.images.guest_kernel``) decides what is
        worth saying here; each item saves boot time or noise under TCG."""
        args = [
            "console=ttyS0",
            "quiet",
            "loglevel=1",
            "tsc=reliable",
            "no_timer_check",
            "pci=off",  # microvm has no PCI bus: do not probe for one
            "panic=-1",
        ]
        khz = host_tsc_khz()
        if khz and self.accel == "tcg":
            args.append(f"tsc_early_khz={khz}")
        if self.accel == "tcg":
            # qemu's emulated APIC timer runs at 1 GHz: hand the guest kernel its calibration
            # (patched in, centaurus.images.guest_kernel) instead of a ~0.2 s busy wait per boot
            args.append(f"lapic_timer_period={1_000_000_000 // GUEST_HZ}")
        return " ".join([*args, *self.extra_cmdline])

    def argv(self) -> list[str]:
        if self.ram_file is not None:
            ram = (
                f"memory-backend-file,id=ram0,size={self.mem_mb}M,mem-path={self.ram_file},"
                f"share={'on' if self.ram_shared else 'off'}"
            )
        else:
            ram = f"memory-backend-ram,id=ram0,size={self.mem_mb}M"
        netdev = (
            f"tap,id=n0,ifname={self.tap},script=no,downscript=no" if self.tap else "hubport,id=n0,hubid=0"
        )
        console = f"file,id=con,path={self.console_log},append=on" if self.console_log else "null,id=con"
        argv = [
            QEMU,
            "-nodefaults",
            "-no-user-config",
            "-nographic",
            "-display",
            "none",
            "-monitor",
            "none",
            "-machine",
            "microvm,acpi=on,memory-backend=ram0",
            "-accel",
            self.accel,
            *(["-cpu", "host"] if self.accel == "kvm" else []),
            "-m",
            f"{self.mem_mb}M",
            "-smp",
            str(self.cpus),
            "-object",
            ram,
            "-kernel",
            str(self.kernel),
            "-initrd",
            str(self.initrd),
            "-append",
            self.cmdline(),
            "-chardev",
            console,
            "-serial",
            "chardev:con",
            "-chardev",
            f"socket,id=ctl,path={self.ctl_sock},server=on,wait=off",
            "-device",
            "isa-serial,chardev=ctl",
            "-qmp",
            f"unix:{self.qmp_sock},server=on,wait=off",
            "-netdev",
            netdev,
            "-device",
            f"virtio-net-device,netdev=n0,mac={self.mac}",
            "-object",
            "rng-random,id=rng0,filename=/dev/urandom",
            "-device",
            "virtio-rng-device,rng=rng0",
            "-global",
            "migration.x-max-bandwidth=17179869184",
        ]
        if self.incoming:
            argv += ["-incoming", "defer"]
        return argv


async def connect_unix(
    path: str, timeout: float, alive: Callable[[], bool]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to a socket qemu is about to create; retry until it exists (or qemu died)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.001
    while True:
        try:
            return await asyncio.open_unix_connection(path, limit=1 << 22)
        except (FileNotFoundError, ConnectionRefusedError):
            if loop.time() > deadline or not alive():
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.02)


class Qmp:
    """Minimal QMP client: one reader task dispatches replies (by id) and events (to a callback)."""

    def __init__(self, on_event: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        self.on_event = on_event

    async def connect(
        self, path: str, timeout: float = 10.0, alive: Callable[[], bool] = lambda: True
    ) -> None:
        self._reader, self._writer = await connect_unix(path, timeout, alive)
        greeting = await asyncio.wait_for(self._reader.readline(), timeout)
        if b"QMP" not in greeting:
            raise QmpError(f"unexpected QMP greeting {greeting[:80]!r}")
        self._task = asyncio.ensure_future(self._read_loop())
        await self.execute("qmp_capabilities")

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while line := await self._reader.readline():
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if "event" in msg:
                    if self.on_event:
                        self.on_event(msg["event"], msg.get("data", {}))
                    continue
                fut = self._pending.pop(msg.get("id", -1), None)
                if fut is not None and not fut.done():
                    if "error" in msg:
                        fut.set_exception(QmpError(msg["error"].get("desc", str(msg["error"]))))
                    else:
                        fut.set_result(msg.get("return"))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(QmpError("QMP connection closed"))
            self._pending.clear()

    async def execute(self, command: str, timeout: float = 30.0, **arguments: Any) -> Any:
        if self._writer is None:
            raise QmpError("QMP not connected")
        i = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[i] = fut
        msg: dict[str, Any] = {"execute": command, "id": i}
        if arguments:
            msg["arguments"] = arguments
        try:
            if self._writer.is_closing():
                raise QmpError("QMP connection closed")
            self._writer.write(json.dumps(msg).encode() + b"\n")
            await self._writer.drain()
        except (RuntimeError, ConnectionError) as exc:  # uvloop: "the handler is closed"
            self._pending.pop(i, None)
            raise QmpError(f"QMP connection closed: {exc}") from exc
        return await asyncio.wait_for(fut, timeout)

    async def wait_status(self, pred: Callable[[str], bool], timeout: float = 30.0) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.001
        while True:
            status = str((await self.execute("query-status"))["status"])
            if pred(status):
                return status
            if loop.time() > deadline:
                raise QmpError(f"timed out waiting for VM state (last: {status})")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.05)

    async def migrate_to(self, fd_uri: str, timeout: float = 120.0) -> dict[str, Any]:
        """Outgoing migration (the VM must be stopped for a consistent snapshot); waits for the end."""
        await self.execute("migrate", uri=fd_uri)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.002
        while True:
            info = dict(await self.execute("query-migrate"))
            if info.get("status") == "completed":
                return info
            if info.get("status") in ("failed", "cancelled"):
                raise QmpError(f"migration {info.get('status')}: {info.get('error-desc', '')}")
            if loop.time() > deadline:
                raise QmpError("migration timed out")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.05)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._writer = self._reader = None
        self._task = None


def open_cloexec(path: str | os.PathLike[str], flags: int, mode: int = 0o600) -> int:
    return os.open(path, flags | os.O_CLOEXEC, mode)
