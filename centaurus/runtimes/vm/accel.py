"""Which accelerator qemu can use here (KVM when it really works, TCG otherwise)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
from pathlib import Path

from centaurus.runtimes.vm.qemu import QEMU

# A guest kernel prints its banner within ~0.1 s of starting under working KVM (and ~0.5 s even
# under TCG); a machine whose KVM cannot run a guest prints nothing at all.
PROBE_TIMEOUT_S = 3.0
# Verdicts outlive the process (every node agent would pay the probe otherwise); /run is cleared
# on reboot and the key holds the boot id and the kernel file's identity.
VERDICT_DIR = Path("/run/centaurus/kvm-probe")
_verdicts: dict[str, bool] = {}


def _kvm_device_ok() -> bool:
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if fcntl.ioctl(fd, 0xAE00, 0) != 12:  # KVM_GET_API_VERSION
            return False
        vm = fcntl.ioctl(fd, 0xAE01, 0)  # KVM_CREATE_VM
        os.close(vm)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


async def _qemu_starts() -> bool:
    """qemu itself accepts KVM: start a microvm paused, resume it, quit (~30 ms)."""
    qmp = b'{"execute":"qmp_capabilities"}{"execute":"cont"}{"execute":"query-status"}{"execute":"quit"}'
    try:
        proc = await asyncio.create_subprocess_exec(
            QEMU, "-machine", "microvm", "-accel", "kvm", "-cpu", "host", "-nodefaults",
            "-display", "none", "-S", "-qmp", "stdio",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await asyncio.wait_for(proc.communicate(qmp), 10)
    except (OSError, TimeoutError):
        return False
    return proc.returncode == 0 and b'"running": true' in out


async def _guest_runs(kernel: Path) -> bool:
    """Boot the guest kernel under KVM until it prints its banner on the serial console.

    Needed because a nested-virtualisation host can hand out a /dev/kvm that creates VMs and
    starts qemu, yet cannot run the guest: it stops at its first instructions ("KVM internal
    error ... emulation failure", or nothing at all) while qemu keeps running, so every boot
    would hang until its timeout.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            QEMU, "-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
            "-machine", "microvm", "-accel", "kvm", "-cpu", "host", "-m", "96M", "-smp", "1",
            "-kernel", str(kernel), "-append", "console=ttyS0 earlyprintk=ttyS0 panic=-1",
            "-serial", "stdio", "-no-reboot",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return False
    assert proc.stdout is not None
    seen = b""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            while b"Linux version" not in seen:
                chunk = await proc.stdout.read(4096)
                if not chunk:
                    break
                seen = seen[-64:] + chunk
    except TimeoutError:
        pass
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    return b"Linux version" in seen


def _verdict_file(kernel: Path) -> Path | None:
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        st = kernel.stat()
    except OSError:
        return None
    ident = f"{boot}:{kernel.resolve()}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
    return VERDICT_DIR / hashlib.sha256(ident.encode()).hexdigest()[:16]


def _read_verdict(path: Path | None) -> bool | None:
    if path is None:
        return None
    try:
        return {"kvm": True, "tcg": False}.get(path.read_text().strip())
    except OSError:
        return None


def _write_verdict(path: Path | None, ok: bool) -> None:
    if path is None:
        return
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text("kvm" if ok else "tcg")
        tmp.replace(path)


async def kvm_usable(kernel: Path | None = None) -> bool:
    """Whether qemu can run guests under KVM here; with ``kernel``, proven by booting it.

    /dev/kvm existing -- even creating a VM, even qemu starting one -- is not enough (see
    _guest_runs). A verdict about a kernel is kept per process and in VERDICT_DIR.
    """
    key = str(kernel or "")
    if key in _verdicts:
        return _verdicts[key]
    vfile = _verdict_file(kernel) if kernel is not None else None
    ok = await asyncio.to_thread(_read_verdict, vfile)
    if ok is None:
        ok = await asyncio.to_thread(_kvm_device_ok) and await _qemu_starts()
        if ok and kernel is not None:
            ok = await _guest_runs(kernel)
            await asyncio.to_thread(_write_verdict, vfile, ok)
    _verdicts[key] = ok
    return ok
