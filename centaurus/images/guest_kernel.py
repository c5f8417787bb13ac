"""The VM guest's own kernel: Debian's kernel source (``linux-source-<major.minor>``, the version of
the cloud kernel) built with a small configuration made for the guest.

Why not Debian's cloud kernel: under TCG every guest instruction is translated the first time it
runs, so a cold boot costs roughly what the kernel *executes once* -- and the cloud kernel runs
~600 initcalls (ftrace, BPF/BTF, kprobes, crypto self-tests, LSMs, IPv6, ACPI namespace,
module signature checks for the virtio modules...). That was ~1.7-2.8 s of CPU per boot on
this machine (NOTES.md). This configuration is ``tinyconfig`` plus exactly what the guest uses:
64-bit SMP, PVH entry (qemu boots the ELF ``vmlinux`` directly, no decompression), ACPI (microvm
lists its virtio-mmio devices and its power-off through ACPI), 8250 serial (console + agent
channel), initramfs, devtmpfs/tmpfs/devpts/proc/sysfs, IPv4 + unix + packet sockets,
virtio-net and virtio-rng built in (no modules to load), KVM guest support for hosts where KVM
works. No speculation mitigations: the guest runs only the pod's workload. ``CONFIG_PCI`` stays on
although microvm has no PCI bus (``pci=off``): without it, ACPICA 20220331 fails to install its
default PCI_Config region handler and rejects the whole DSDT (``AE_BAD_PARAMETER, During Region
initialization``) -- no virtio-mmio devices, no ACPI power-off.

Built once per (source package, configuration) into the image cache (a few minutes on 2 cores);
the extracted tree is removed afterwards, the ``vmlinux`` kept.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

#: Merged over ``make tinyconfig`` (x86_64). Every line is checked after ``olddefconfig``.
CONFIG = """
CONFIG_64BIT=y
CONFIG_SMP=y
CONFIG_NR_CPUS=8
CONFIG_PRINTK=y
CONFIG_BUG=y
CONFIG_MULTIUSER=y
CONFIG_FUTEX=y
CONFIG_EPOLL=y
CONFIG_SIGNALFD=y
CONFIG_TIMERFD=y
CONFIG_EVENTFD=y
CONFIG_SHMEM=y
CONFIG_AIO=y
CONFIG_FILE_LOCKING=y
CONFIG_POSIX_TIMERS=y
CONFIG_BLK_DEV_INITRD=y
CONFIG_RD_GZIP=n
CONFIG_RD_BZIP2=n
CONFIG_RD_LZMA=n
CONFIG_RD_XZ=n
CONFIG_RD_LZO=n
CONFIG_RD_LZ4=n
CONFIG_RD_ZSTD=n
CONFIG_BINFMT_ELF=y
CONFIG_BINFMT_SCRIPT=y
CONFIG_PROC_FS=y
CONFIG_PROC_SYSCTL=y
CONFIG_SYSFS=y
CONFIG_DEVTMPFS=y
CONFIG_TMPFS=y
CONFIG_TTY=y
CONFIG_UNIX98_PTYS=y
CONFIG_LEGACY_PTYS=n
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y
CONFIG_SERIAL_8250_NR_UARTS=4
CONFIG_SERIAL_8250_RUNTIME_UARTS=4
CONFIG_HYPERVISOR_GUEST=y
CONFIG_PARAVIRT=y
CONFIG_KVM_GUEST=y
CONFIG_PVH=y
CONFIG_ACPI=y
CONFIG_NET=y
CONFIG_UNIX=y
CONFIG_PACKET=y
CONFIG_INET=y
CONFIG_IPV6=n
CONFIG_NETDEVICES=y
CONFIG_NET_CORE=y
CONFIG_VIRTIO_MENU=y
CONFIG_VIRTIO=y
CONFIG_VIRTIO_MMIO=y
CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y
CONFIG_VIRTIO_NET=y
CONFIG_HW_RANDOM=y
CONFIG_HW_RANDOM_VIRTIO=y
CONFIG_SPECULATION_MITIGATIONS=n
CONFIG_RETPOLINE=n
CONFIG_PCI=y
CONFIG_MODULES=n
CONFIG_VT=n
CONFIG_INPUT=n
CONFIG_SERIO=n
CONFIG_NO_HZ_IDLE=y
CONFIG_HZ_250=y
CONFIG_HIGH_RES_TIMERS=y
CONFIG_RTC_CLASS=n
CONFIG_CRYPTO=n
CONFIG_IKCONFIG=n
"""

#: Source edits (file, old, new): each one is why a cold TCG boot is shorter. Applied only when the
#: text matches exactly, else the build fails loudly (a new kernel version needs a look).
PATCHES = (
    # The freed __init sections were *executed*: under TCG every page of them holds translated
    # code, so poisoning them (a memset of ~0.7 MB) takes the self-modifying-code slow path and
    # cost ~0.2 s of a ~0.9 s boot (RIP samples of the guest). Free them without the poison.
    (
        "arch/x86/mm/init.c",
        "free_reserved_area((void *)begin, (void *)end,\n\t\t\t\t   POISON_FREE_INITMEM, what);",
        "free_reserved_area((void *)begin, (void *)end, -1, what);",
    ),
    # The local APIC timer is calibrated against the PIT for ~0.2 s at every boot (a busy wait
    # under TCG). qemu's APIC timer runs at a fixed 1 GHz, so the runtime passes the result
    # (``lapic_timer_period=`` = 1e9 / HZ) and the kernel skips the calibration.
    (
        "arch/x86/kernel/apic/apic.c",
        "unsigned int lapic_timer_period = 0;\n",
        "unsigned int lapic_timer_period = 0;\n"
        "static int __init parse_lapic_timer_period(char *arg)\n"
        "{\n\treturn kstrtouint(arg, 0, &lapic_timer_period);\n}\n"
        "early_param(\"lapic_timer_period\", parse_lapic_timer_period);\n",
    ),
)

#: The tick rate ``CONFIG`` pins (``CONFIG_HZ_250``): the runtime derives ``lapic_timer_period`` from it.
HZ = 250

#: Host tools the build needs besides a C toolchain (``ci/bootstrap.d/20-images.sh`` installs them).
TOOLS = ("gcc", "make", "flex", "bison", "bc", "perl")


class KernelBuildError(RuntimeError):
    pass


def source_package(kernel_package: str) -> str:
    """``linux-image-6.1.0-57-cloud-amd64_...deb`` -> ``linux-source-6.1``: same kernel version."""
    m = re.match(r"linux-image-(\d+)\.(\d+)\.", kernel_package)
    if not m:
        raise KernelBuildError(f"cannot tell the kernel version of {kernel_package!r}")
    return f"linux-source-{m.group(1)}.{m.group(2)}"


def config_stamp(source_deb: Path) -> str:
    return hashlib.sha256(f"{source_deb.name}\n{CONFIG}\n{PATCHES!r}".encode()).hexdigest()[:16]


def apply_patches(src: Path) -> None:
    for rel, old, new in PATCHES:
        f = src / rel
        text = f.read_text()
        if text.count(old) != 1:
            raise KernelBuildError(f"guest kernel patch does not apply to {rel}: {old[:60]!r}")
        f.write_text(text.replace(old, new))


def _check_config(dot_config: str) -> None:
    have = {}
    for line in dot_config.splitlines():
        if line.startswith("CONFIG_"):
            k, _, v = line.partition("=")
            have[k] = v
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            have[line[2:].split()[0]] = "n"
    wrong = []
    for line in CONFIG.split():
        k, _, v = line.partition("=")
        if have.get(k, "n") != v:
            wrong.append(f"{k}={have.get(k, 'n')} (wanted {v})")
    if wrong:
        raise KernelBuildError("guest kernel configuration did not take: " + ", ".join(wrong))


def build_kernel(source_deb: Path, cache: Path, log: Path | None = None) -> Path:
    """Build (once) and return the cached ELF ``vmlinux`` for ``source_deb``'s kernel source."""
    out = cache / f"guest-vmlinux-{config_stamp(source_deb)}"
    if out.exists():
        return out
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        raise KernelBuildError(f"guest kernel build needs {', '.join(missing)} (apt-get install them)")
    cache.mkdir(parents=True, exist_ok=True)
    logf = open(log or cache / "guest-kernel-build.log", "w")  # noqa: SIM115 -- closed below
    try:
        with tempfile.TemporaryDirectory(prefix=".kbuild-", dir=cache) as d:
            tmp = Path(d)

            def run(argv: list[str], cwd: Path = tmp) -> None:
                logf.write(f"$ {' '.join(argv)}\n")
                logf.flush()
                p = subprocess.run(argv, cwd=cwd, stdout=logf, stderr=subprocess.STDOUT, check=False)
                if p.returncode != 0:
                    raise KernelBuildError(f"{' '.join(argv[:3])} failed ({p.returncode}); see {logf.name}")

            run(["dpkg-deb", "-x", str(source_deb), "deb"])
            tarballs = sorted((tmp / "deb" / "usr" / "src").glob("linux-source-*.tar.*"))
            if not tarballs:
                raise KernelBuildError(f"{source_deb.name} has no /usr/src/linux-source-*.tar.*")
            run(["tar", "xf", str(tarballs[0])])
            shutil.rmtree(tmp / "deb")
            src = next(p for p in tmp.iterdir() if p.is_dir() and p.name.startswith("linux-source-"))
            apply_patches(src)
            (tmp / "guest.config").write_text(CONFIG.lstrip())
            make = ["make", "ARCH=x86_64", f"-j{(os.cpu_count() or 1) + 1}"]
            run([*make, "tinyconfig"], cwd=src)
            run(["scripts/kconfig/merge_config.sh", "-m", ".config", str(tmp / "guest.config")], cwd=src)
            run([*make, "olddefconfig"], cwd=src)
            _check_config((src / ".config").read_text())
            run([*make, "vmlinux"], cwd=src)
            part = out.with_suffix(".part")
            run(["strip", "--strip-debug", "-o", str(part), str(src / "vmlinux")], cwd=src)
            part.replace(out)
    finally:
        logf.close()
    return out
