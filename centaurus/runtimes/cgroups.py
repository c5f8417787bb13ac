"""Cgroup layout detection, the facts crun leaves behind, and per-container readings.

Three layouts exist in the wild: pure v2 (``/sys/fs/cgroup`` is cgroup2), pure v1, and hybrid
(v1 controllers plus a v2 tree at ``/sys/fs/cgroup/unified``). crun 1.8 refuses hybrid hosts whose
v2 tree lists any controller ("cgroups in hybrid mode not supported, drop all controllers from
cgroupv2"); the fix (see :mod:`centaurus.runtimes.spawn`) is applied only when that is the case.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
UNIFIED = ROOT / "unified"
UNIFIED_CONTROLLERS = str(UNIFIED / "cgroup.controllers")
CGROUP2_SUPER_MAGIC = 0x63677270


def _fstype(path: Path) -> str | None:
    """Filesystem type mounted exactly at ``path`` (the last mount there wins), else None."""
    found: str | None = None
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                parts = line.split()
                if parts[4] == str(path):
                    found = parts[parts.index("-", 6) + 1]
    except (OSError, ValueError, IndexError):
        return None
    return found


def mode() -> str:
    """``v2``, ``hybrid`` or ``v1``."""
    if _fstype(ROOT) == "cgroup2":
        return "v2"
    if _fstype(UNIFIED) == "cgroup2":
        return "hybrid"
    return "v1"


def needs_hybrid_fix() -> bool:
    if mode() != "hybrid":
        return False
    try:
        return bool(Path(UNIFIED_CONTROLLERS).read_text().split())
    except OSError:
        return False


def hierarchies() -> list[Path]:
    """Every mounted hierarchy a container's cgroup path appears under (for cleanup)."""
    if mode() == "v2":
        return [ROOT]
    out = []
    for d in sorted(ROOT.iterdir()):
        if d.is_dir() and not d.is_symlink() and _fstype(d) in ("cgroup", "cgroup2"):
            out.append(d)
    return out


def remove_tree(rel: str, *, up_to: str | None = None) -> list[str]:
    """rmdir ``rel`` (an absolute cgroupsPath) and the directories below it in every hierarchy,
    then its parents up to and including ``up_to`` while they are empty: crun deletes only the leaf
    and leaves the parents it created behind. A parent that still has other children (another
    pod) stops the climb. Returns directories under ``rel`` that could not be removed (busy)."""
    busy: list[str] = []
    parts = rel.strip("/").split("/")
    stop = len(up_to.strip("/").split("/")) if up_to else len(parts)
    for h in hierarchies():
        top = h.joinpath(*parts)
        if top.exists():
            for child in sorted((c for c in top.rglob("*") if c.is_dir()), key=lambda c: -len(c.parts)):
                try:
                    os.rmdir(child)
                except OSError:
                    busy.append(str(child))
        for depth in range(len(parts), stop - 1, -1):
            p = h.joinpath(*parts[:depth])
            try:
                os.rmdir(p)
            except FileNotFoundError:
                continue
            except OSError:
                if depth == len(parts):
                    busy.append(str(p))
                break
    return busy


def memory_dir(rel: str) -> Path:
    rel = rel.strip("/")
    return ROOT / rel if mode() == "v2" else ROOT / "memory" / rel


def oom_killed(rel: str) -> bool:
    """Did the kernel OOM-kill a task in this cgroup (v1 ``memory.oom_control``, v2 ``memory.events``)?"""
    d = memory_dir(rel)
    for name in ("memory.events", "memory.oom_control"):
        try:
            for line in (d / name).read_text().splitlines():
                k, _, v = line.partition(" ")
                if k == "oom_kill" and int(v) > 0:
                    return True
        except (OSError, ValueError):
            continue
    return False


def memory_usage(rel: str) -> int | None:
    d = memory_dir(rel)
    for name in ("memory.current", "memory.usage_in_bytes"):
        try:
            return int((d / name).read_text())
        except (OSError, ValueError):
            continue
    return None


def cpu_usage_seconds(rel: str) -> float | None:
    rel = rel.strip("/")
    if mode() == "v2":
        try:
            for line in (ROOT / rel / "cpu.stat").read_text().splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) / 1e6
        except (OSError, ValueError):
            return None
        return None
    for ctl in ("cpuacct", "cpu,cpuacct"):
        try:
            return int((ROOT / ctl / rel / "cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError):
            continue
    return None
