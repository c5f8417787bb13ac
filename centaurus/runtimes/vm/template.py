"""Template snapshots: boot the guest once, freeze it at the agent's WAIT, restore clones from it.

A template is ``<dir>/<key>/``: ``ram`` (guest RAM as a file on /dev/shm, written by the template
VM through ``share=on``), ``state`` (device state only: migrated with ``x-ignore-shared`` so RAM is
not copied) and ``meta.json`` (written last: its presence means complete). Clones map ``ram``
privately (copy-on-write), so N clones share the template's pages and a restore costs a qemu
start plus a few hundred KB of device state (~0.1 s) instead of a boot (~2 s of CPU under TCG).

The key covers everything a restore depends on (image digest, qemu binary, accelerator, memory,
vCPUs, kernel command line, machine layout version), so a rebuilt image or upgraded qemu gets a
new template and never a mismatched one. Templates live until reboot (tmpfs) or :meth:`TemplateStore.prune`.
Builds are serialised across processes with ``flock`` so parallel agents build a shape once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from centaurus.images import Image
from centaurus.runtimes import linux, spawn
from centaurus.runtimes.vm.guestctl import GuestChannel
from centaurus.runtimes.vm.qemu import QEMU, MachineConfig, Qmp, open_cloexec

LAYOUT_VERSION = "3"  # 3: own guest kernel
DEFAULT_DIR = Path("/dev/shm/centaurus-vm-templates")


class TemplateError(RuntimeError):
    pass


@dataclass(frozen=True)
class Template:
    key: str
    path: Path
    mem_mb: int
    cpus: int
    accel: str
    build_seconds: float

    @property
    def ram(self) -> Path:
        return self.path / "ram"

    @property
    def state(self) -> Path:
        return self.path / "state"


def template_key(image: Image, mem_mb: int, cpus: int, accel: str) -> str:
    st = os.stat(QEMU)
    raw = "|".join(
        [
            LAYOUT_VERSION,
            image.digest,
            f"{QEMU}:{st.st_size}:{int(st.st_mtime)}",
            accel,
            str(mem_mb),
            str(cpus),
            # the guest booted with this command line: a template must not outlive a change of it
            MachineConfig(kernel=image.kernel, initrd=image.initrd, accel=accel).cmdline(),
        ]
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


class TemplateStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else DEFAULT_DIR

    def find(self, image: Image, mem_mb: int, cpus: int, accel: str) -> Template | None:
        key = template_key(image, mem_mb, cpus, accel)
        d = self.root / key
        try:
            meta = json.loads((d / "meta.json").read_text())
        except (OSError, ValueError):
            return None
        if not (d / "ram").exists() or not (d / "state").exists():
            return None
        return Template(key, d, mem_mb, cpus, accel, float(meta.get("build_seconds", 0)))

    async def ensure(
        self, image: Image, mem_mb: int, cpus: int, accel: str, timeout: float = 120.0
    ) -> Template:
        """Find or build the template for this shape (serialised across processes)."""
        found = await asyncio.to_thread(self.find, image, mem_mb, cpus, accel)
        if found:
            return found
        key = template_key(image, mem_mb, cpus, accel)
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        lock_fd = await asyncio.to_thread(open_cloexec, self.root / f"{key}.lock", os.O_RDWR | os.O_CREAT)
        try:
            await asyncio.to_thread(fcntl.flock, lock_fd, fcntl.LOCK_EX)
            found = await asyncio.to_thread(self.find, image, mem_mb, cpus, accel)
            if found:
                return found
            return await self._build(image, key, mem_mb, cpus, accel, timeout)
        finally:
            os.close(lock_fd)

    async def _build(
        self, image: Image, key: str, mem_mb: int, cpus: int, accel: str, timeout: float
    ) -> Template:
        t0 = time.monotonic()
        tmp = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=f".{key}-", dir=self.root))
        sockdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="cl-tpl-", dir="/run/centaurus"))
        cfg = MachineConfig(
            kernel=image.kernel,
            initrd=image.initrd,
            mem_mb=mem_mb,
            cpus=cpus,
            accel=accel,
            console_log=tmp / "console.log",
            ctl_sock=str(sockdir / "ctl"),
            qmp_sock=str(sockdir / "qmp"),
            ram_file=tmp / "ram",
            ram_shared=True,
        )
        errlog = await asyncio.to_thread(open_cloexec, tmp / "qemu.log", os.O_WRONLY | os.O_CREAT)
        pid = await asyncio.to_thread(spawn.spawn, cfg.argv(), stdout=errlog, stderr=errlog)
        os.close(errlog)
        waiter = asyncio.ensure_future(linux.wait_pid(pid))
        qmp, ch = Qmp(), GuestChannel()
        ok = False
        try:
            alive = lambda: not waiter.done()  # noqa: E731
            await ch.connect(cfg.ctl_sock, alive=alive)
            await qmp.connect(cfg.qmp_sock, alive=alive)
            await ch.wait_booted(timeout)
            await qmp.execute("stop")
            await qmp.execute(
                "migrate-set-capabilities", capabilities=[{"capability": "x-ignore-shared", "state": True}]
            )
            await qmp.migrate_to(f"exec:cat > {shlex.quote(str(tmp / 'state'))}")
            with contextlib.suppress(Exception):
                await qmp.execute("quit", timeout=5)
            await asyncio.wait_for(asyncio.shield(waiter), 10)
            build_seconds = time.monotonic() - t0
            meta = {
                "key": key,
                "image": image.name,
                "digest": image.digest,
                "mem_mb": mem_mb,
                "cpus": cpus,
                "accel": accel,
                "qemu": QEMU,
                "build_seconds": build_seconds,
                "created": time.time(),
            }
            await asyncio.to_thread((tmp / "meta.json").write_text, json.dumps(meta, indent=1))
            final = self.root / key
            await asyncio.to_thread(_replace_dir, tmp, final)
            ok = True
            await asyncio.to_thread(self._prune_stale, image)
            return Template(key, final, mem_mb, cpus, accel, build_seconds)
        except (OSError, TimeoutError, RuntimeError) as exc:
            log_tail = await asyncio.to_thread(_tail, tmp / "qemu.log")
            raise TemplateError(f"building VM template {key} failed: {exc!r} {log_tail}") from exc
        finally:
            await qmp.close()
            await ch.close()
            if not waiter.done():
                linux.kill_quietly(pid, signal.SIGKILL)
                with contextlib.suppress(Exception):
                    await waiter
            await asyncio.to_thread(shutil.rmtree, sockdir, True)
            if not ok:
                await asyncio.to_thread(shutil.rmtree, tmp, True)

    def _prune_stale(self, image: Image) -> None:
        """Templates of an earlier build of this image are dead weight on /dev/shm (clones still
        running from them keep their mappings alive until they exit)."""
        for d in self.root.iterdir():
            try:
                meta = json.loads((d / "meta.json").read_text())
            except (OSError, ValueError):
                continue
            if meta.get("image") == image.name and meta.get("digest") != image.digest:
                shutil.rmtree(d, ignore_errors=True)

    def prune(self) -> list[str]:
        """Delete every template (frees /dev/shm). Running clones keep their mappings."""
        removed = []
        if self.root.exists():
            for d in self.root.iterdir():
                if d.is_dir():
                    shutil.rmtree(d, ignore_errors=True)
                    removed.append(d.name)
                elif d.suffix == ".lock":
                    with contextlib.suppress(OSError):
                        d.unlink()
        return removed


def _replace_dir(tmp: Path, final: Path) -> None:
    if final.exists():
        old = final.with_name(f".old-{final.name}-{os.getpid()}")
        final.rename(old)
        shutil.rmtree(old, ignore_errors=True)
    tmp.rename(final)


def _tail(path: Path, n: int = 400) -> str:
    try:
        return path.read_text(errors="replace")[-n:].strip()
    except OSError:
        return ""
