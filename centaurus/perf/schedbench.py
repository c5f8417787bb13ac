"""Scheduler throughput at a given size: B node objects, P pending pods, then a scheduler.

The pods name a scheduler that does not run yet (``schedulerName: density-burst``), so they all
wait; a second scheduler process with that name is started once every pod exists and the time
from its first to its last bind is the throughput (kube-scheduler's scheduler_perf measures the
same way). The cluster's own scheduler keeps running beside it and ignores these pods. The nodes
are plain objects labelled ``centaurus.io/density-burst`` (no agent: the pods never start), with
leases long enough for the node lifecycle controller to leave them alone; everything is deleted
afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from centaurus.client.aio import AsyncClient
from centaurus.client.rest import ApiError
from centaurus.controllers.runtime.sharding import micro_time
from centaurus.perf.measurements.pod_startup import percentile

BURST_NS = "density-burst"
LABEL = "centaurus.io/density-burst"


def _node(name: str, zone: str) -> dict[str, Any]:
    cap = {"cpu": "32", "memory": "256Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {LABEL: "true", "topology.kubernetes.io/zone": zone}},
        "status": {"capacity": cap, "allocatable": cap, "conditions": [{"type": "Ready", "status": "True"}]},
    }


async def _gather(coros: list[Any], limit: int = 64) -> None:
    sem = asyncio.Semaphore(limit)

    async def one(c: Any) -> None:
        async with sem:
            await c

    await asyncio.gather(*(one(c) for c in coros))


async def run_burst(
    api: AsyncClient,
    kubeconfig: Path,
    work: Path,
    nodes: int,
    pods: int,
    create: Any,
    timeout: float = 600.0,
    cpu: Callable[[dict[str, int]], dict[str, float]] | None = None,
) -> dict[str, Any]:
    """``create(items, rate)`` creates the pods (the density module's open-loop creator);
    ``cpu(extra_pids)`` -> CPU seconds per process so far (the control plane's, plus ``extra``):
    when given, the CPU each process spent per bind while the burst scheduler was binding is
    reported (``cpu_ms_per_bind``): where the throughput ceiling is."""
    lease = {"holderIdentity": "density", "leaseDurationSeconds": 3600, "renewTime": micro_time()}
    names = [f"burst-{i}" for i in range(nodes)]
    await _gather([api.create("nodes", _node(n, f"az{i % 3 + 1}")) for i, n in enumerate(names)])
    with contextlib.suppress(ApiError):
        await api.create(
            "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-node-lease"}}
        )
    await _gather(
        [
            api.create(
                "leases",
                {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": n},
                    "spec": lease,
                },
                namespace="kube-node-lease",
                tenant="system",
            )
            for n in names
        ]
    )
    with contextlib.suppress(ApiError):
        await api.create(
            "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": BURST_NS}}
        )
    t0 = time.monotonic()
    await create([(BURST_NS, f"b-{i}") for i in range(pods)], 0.0)
    create_s = time.monotonic() - t0
    stats_file = work / "burst-scheduler.json"
    log = open(work / "burst-scheduler.log", "ab")  # noqa: SIM115 - closed below
    # CENTAURUS_BURST_PROFILE=<file>: the burst scheduler under cProfile (written on SIGTERM)
    prof = os.environ.get("CENTAURUS_BURST_PROFILE")
    proc = subprocess.Popen(
        [
            sys.executable,
            *(["-m", "cProfile", "-o", prof] if prof else []),
            "-m",
            "centaurus.scheduler",
            "--kubeconfig",
            str(kubeconfig),
            "--scheduler-name",
            "density-burst",
            "--stats-file",
            str(stats_file),
            *os.environ.get("CENTAURUS_BURST_ARGS", "").split(),
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    per_second: list[float] = []
    last = 0
    stats: dict[str, Any] = {}
    cpu0: tuple[int, dict[str, float]] | None = None
    cpu_per_bind: dict[str, float] = {}
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            if proc.poll() is not None:
                raise RuntimeError(
                    f"burst scheduler exited {proc.returncode}; see {work / 'burst-scheduler.log'}"
                )
            with contextlib.suppress(OSError, ValueError):
                stats = json.loads(stats_file.read_text())
            done = int(stats.get("scheduled") or 0)
            if done > last or last:
                per_second.append(float(done - last))
            last = done
            if cpu is not None and done:
                now_cpu = cpu({"burst-scheduler": proc.pid})
                if cpu0 is None:
                    cpu0 = (done, now_cpu)
                elif done > cpu0[0]:
                    n = done - cpu0[0]
                    cpu_per_bind = {
                        k: round((v - cpu0[1].get(k, v)) * 1000 / n, 4) for k, v in now_cpu.items()
                    }
            if done >= pods:
                break
        else:
            raise RuntimeError(f"burst: {last} of {pods} pods bound within {timeout:g} s")
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.poll() is None:
            proc.kill()
        log.close()
        # grace 0: the pods are bound to nodes without agents
        with contextlib.suppress(ApiError, OSError):
            await api.request(
                "DELETE",
                f"/api/v1/namespaces/{BURST_NS}/pods",
                body={"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0},
            )
        with contextlib.suppress(ApiError, OSError):
            await api.delete("namespaces", BURST_NS, missing_ok=True)
        await _gather([api.delete("nodes", n, missing_ok=True) for n in names])
        await _gather(
            [
                api.delete("leases", n, namespace="kube-node-lease", tenant="system", missing_ok=True)
                for n in names
            ]
        )
    busy = [v for v in per_second if v > 0] or [0.0]
    return {
        "nodes": nodes,
        "pods": pods,
        "create_s": round(create_s, 2),
        "pods_per_s": stats.get("bind_rate_per_s"),
        "per_second": {
            "Perc50": percentile(busy, 50),
            "Perc90": percentile(busy, 90),
            "Perc99": percentile(busy, 99),
            "Max": max(busy),
        },
        "queue_to_bound_ms": stats.get("queue_to_bound_ms"),
        "bind_errors": stats.get("bind_errors"),
        "cpu_ms_per_bind": cpu_per_bind,
    }
