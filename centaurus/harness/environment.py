"""Facts about the machine a run happened on, for the report: figures mean little without them."""

from __future__ import annotations

import functools
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import centaurus

TOOLS: dict[str, list[str]] = {
    "kubectl": ["kubectl", "version", "--client", "-o", "yaml"],
    "etcd": ["etcd", "--version"],
    "crun": ["crun", "--version"],
    "qemu": ["qemu-system-x86_64", "--version"],
    "clang": ["clang", "--version"],
    "bpftool": ["bpftool", "version"],
}


def _first_version(text: str) -> str:
    m = re.search(r"v?(\d+\.\d+(\.\d+)?)", text)
    return m.group(1) if m else text.strip().splitlines()[0][:60] if text.strip() else "?"


@functools.lru_cache(maxsize=1)
def tool_versions() -> dict[str, str]:
    """Versions of the external tools (one subprocess each: asked once per process)."""
    out: dict[str, str] = {}
    for name, argv in TOOLS.items():
        if not shutil.which(argv[0]):
            out[name] = "not installed"
            continue
        try:
            cp = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            out[name] = _first_version(cp.stdout + cp.stderr)
        except (OSError, subprocess.TimeoutExpired):
            out[name] = "unknown"
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit(root: Path) -> str:
    try:
        cp = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, timeout=5)
        return cp.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def collect() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[2]
    try:
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kib = 0
    return {
        "hostname": platform.node(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "centaurus": centaurus.__version__,
        "commit": git_commit(root),
        "tools": dict(tool_versions()),
    }
