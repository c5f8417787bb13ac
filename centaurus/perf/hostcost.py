"""Where CPU time and memory go on a host: /proc readers and BPF program statistics.

No kprobes on this kernel, so per-program cost comes from the kernel's own BPF statistics:
``BPF_ENABLE_STATS(BPF_STATS_RUN_TIME)`` (what ``kernel.bpf_stats_enabled`` switches on, held
through an fd so a crash switches it off again) makes every program keep ``run_cnt`` and
``run_time_ns``. Stats cost two clock reads per program run (~20-40 ns), so they are switched on
only around the phase that reads them, never during packet-rate trials.

Memory of the XDP dataplane on a host = its daemon's RSS (transitd) + the memory its BPF maps
pin (``memlock`` in the map fd's fdinfo). The kernel path (bridge + VXLAN) has no daemon and
its per-device kernel memory is not attributable from /proc; machine-wide used memory, idle and
under traffic, is reported for both.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BPF_STATS_RUN_TIME = 0
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_busy_seconds(cpu: int | None = None) -> float:
    """Busy seconds (user+nice+system+irq+softirq+steal) of one CPU, or of all CPUs."""
    tag = "cpu " if cpu is None else f"cpu{cpu} "
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(tag):
            f = [int(x) for x in line.split()[1:]]
            return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / CLK_TCK
    raise ValueError(f"{tag.strip()} not in /proc/stat")


def mem_used_bytes() -> int:
    """MemTotal - MemAvailable: what the machine uses, page cache it could drop excluded."""
    info = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        k, _, rest = line.partition(":")
        info[k] = int(rest.split()[0]) * 1024
    return info["MemTotal"] - info["MemAvailable"]


def load_average() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    f = text[text.rindex(")") + 2 :].split()
    return (int(f[11]) + int(f[12])) / CLK_TCK


def proc_rss_bytes(pid: int) -> int:
    f = Path(f"/proc/{pid}/statm").read_text().split()
    return int(f[1]) * PAGE


def netns_inode(netns: str) -> int:
    p = Path(netns) if netns.startswith("/") else Path("/var/run/netns") / netns
    return os.stat(p).st_ino


def pids_in_netns(netns: str) -> list[int]:
    """Processes whose network namespace is ``netns`` (a lab host's daemons)."""
    want = netns_inode(netns)
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.stat(d / "ns" / "net").st_ino == want:
                    out.append(int(d.name))
            except OSError:
                continue
    return out


def fd_memlock(fd: int) -> int:
    """Bytes a BPF map (or program) fd accounts as locked memory (fdinfo ``memlock``)."""
    for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines():
        if line.startswith("memlock:"):
            return int(line.split()[1])
    return 0


def pinned_maps_memlock(pin_dir: Path) -> int:
    """Summed memlock of the maps pinned under ``pin_dir`` (one droplet's overlay maps)."""
    from centaurus.bpf import _libbpf as L

    total = 0
    if not pin_dir.is_dir():
        return 0
    for p in pin_dir.iterdir():
        if p.name.startswith("prog_"):
            continue
        fd = L.lib.bpf_obj_get(str(p).encode())
        if fd < 0:
            continue
        try:
            total += fd_memlock(fd)
        finally:
            os.close(fd)
    return total


def prog_runtime(fd: int) -> tuple[int, int]:
    """(run_cnt, run_time_ns) of a program; both stay 0 unless stats are enabled."""
    from centaurus.bpf.obj import prog_info

    info = prog_info(fd)
    return info.run_cnt, info.run_time_ns


@contextmanager
def bpf_stats() -> Iterator[bool]:
    """Switch BPF run-time statistics on for the block; yields False when the kernel refuses
    (then run_time_ns stays 0 and callers say so)."""
    from centaurus.bpf import _libbpf as L

    fn = L.lib.bpf_enable_stats
    fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_int]
    fd = fn(BPF_STATS_RUN_TIME)
    try:
        yield fd >= 0
    finally:
        if fd >= 0:
            os.close(fd)
