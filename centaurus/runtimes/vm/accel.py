"""Which accelerator qemu can use here (KVM when it really works, TCG otherwise)."""

from __future__ import annotations

import asyncio
import fcntl
import os

from centaurus.runtimes.vm.qemu import QEMU


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


async def kvm_usable() -> bool:
    """/dev/kvm existing -- even creating a VM -- is not enough: on this machine KVM_CREATE_VM
    succeeds and qemu then aborts setting MSRs. So ask qemu itself: start a KVM microvm, run it,
    quit. ~30 ms, once per runtime."""
    if not await asyncio.to_thread(_kvm_device_ok):
        return False
    qmp = b'{"execute":"qmp_capabilities"}{"execute":"cont"}{"execute":"query-status"}{"execute":"quit"}'
    try:
        proc = await asyncio.create_subprocess_exec(
            QEMU,
            "-machine",
            "microvm",
            "-accel",
            "kvm",
            "-cpu",
            "host",
            "-nodefaults",
            "-display",
            "none",
            "-S",
            "-qmp",
            "stdio",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await asyncio.wait_for(proc.communicate(qmp), 10)
    except (OSError, TimeoutError):
        return False
    return proc.returncode == 0 and b'"running": true' in out
