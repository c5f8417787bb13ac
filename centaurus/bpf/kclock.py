"""The dataplane's clock as userspace needs it: jiffies now, and jiffies per second.

Host-cache expiries are kept in jiffies because ``bpf_jiffies64()`` costs nothing per frame
while a clock read costs ~12 ns on every encapsulated packet. Userspace writing or checking an
expiry therefore asks the kernel for jiffies through ``transit.o:cl_clock`` (a BPF_PROG_RUN
that writes ``bpf_jiffies64()`` and ``bpf_ktime_get_ns()`` into its frame) and needs HZ: from
the kernel config when readable, else measured with the same program.
"""

from __future__ import annotations

import functools
import gzip
import os
import re
import struct
import time
from pathlib import Path

from centaurus.bpf.testrun import prog_test_run

_HZ_CHOICES = (100, 250, 300, 1000)


def now(clock_prog_fd: int) -> tuple[int, int]:
    """(jiffies, CLOCK_MONOTONIC ns) as BPF programs see them."""
    r = prog_test_run(clock_prog_fd, b"\0" * 64)
    j, ns = struct.unpack_from("<QQ", r.data_out)
    return j, ns


@functools.lru_cache(maxsize=1)
def _config_hz() -> int | None:
    release = os.uname().release
    for path in (Path("/proc/config.gz"), Path(f"/boot/config-{release}")):
        try:
            raw = path.read_bytes()
            text = gzip.decompress(raw).decode() if path.suffix == ".gz" else raw.decode()
        except OSError:
            continue
        m = re.search(r"^CONFIG_HZ=(\d+)$", text, re.M)
        if m:
            return int(m.group(1))
    return None


@functools.lru_cache(maxsize=1)
def _measured_hz(clock_prog_fd: int) -> int:
    j0, t0 = now(clock_prog_fd)
    time.sleep(0.2)
    j1, t1 = now(clock_prog_fd)
    rate = (j1 - j0) / ((t1 - t0) / 1e9)
    return min(_HZ_CHOICES, key=lambda hz: abs(hz - rate))


def kernel_hz(clock_prog_fd: int | None = None) -> int:
    """CONFIG_HZ of the running kernel (measured through ``cl_clock`` if the config is hidden)."""
    hz = _config_hz()
    if hz:
        return hz
    if clock_prog_fd is None:
        raise RuntimeError("kernel HZ unknown: no kernel config and no cl_clock program to measure")
    return _measured_hz(clock_prog_fd)


def ns_to_jiffies(ns: int, hz: int) -> int:
    return max(1, ns * hz // 1_000_000_000)
