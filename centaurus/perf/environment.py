"""What a campaign ran on: machine, kernel, CPU, tool and library versions, load -- figures
mean little without them. Measurements add what they bring up (``targets``, ``dataplanes``,
``labs``, ``trafficgens``) to ``ctx.environment`` as they go; the runner adds the load average
at the end (the machine is shared: a figure taken at load 4 is not one taken at load 0).
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path
from typing import Any

from centaurus.harness import environment as harness_env

PACKAGES = ("locust", "lbr-trex-client", "scapy", "pyroute2", "matplotlib")


def load_average() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def _versions() -> dict[str, str]:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def _sysctl(name: str) -> str:
    try:
        return Path("/proc/sys/" + name.replace(".", "/")).read_text().strip()
    except OSError:
        return "?"


def capture() -> dict[str, Any]:
    env = harness_env.collect()
    env.update(
        {
            "load_average_before": load_average(),
            "cpus_usable": sorted(os.sched_getaffinity(0)),
            "python_packages": _versions(),
            "sysctl": {
                k: _sysctl(k)
                for k in (
                    "kernel.bpf_stats_enabled",
                    "net.core.netdev_max_backlog",
                    "kernel.unprivileged_bpf_disabled",
                )
            },
            "cpu_governor": _governor(),
        }
    )
    return env


def _governor() -> str:
    p = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    try:
        return p.read_text().strip()
    except OSError:
        return "n/a (no cpufreq)"
