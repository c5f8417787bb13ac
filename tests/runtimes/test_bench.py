"""Runtime figures (measured, reported, not judged): container start, VM restore/cold start,
memory per container / VM clone / hollow pod. Written as clusterloader2-style PerfData to
``reports/out/bench-runtimes.json`` (override: ``CENTAURUS_BENCH_OUT``) and printed.

The thresholds live in conformance (PERF-POD-*), measured end to end; these are the runtime's
share of them, so a regression shows up here first.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import pytest

from centaurus.runtimes.base import ContainerSpec, SandboxSpec
from tests.runtimes.conftest import vm_pod

pytestmark = [pytest.mark.integration, pytest.mark.anyio]
RESULTS: list[dict[str, Any]] = []


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def record(name: str, values: list[float], unit: str, **labels: str) -> dict[str, Any]:
    item = {
        "data": {
            "Perc50": pct(values, 50),
            "Perc90": pct(values, 90),
            "Perc99": pct(values, 99),
            "Max": max(values),
            "Count": len(values),
        },
        "unit": unit,
        "labels": {"Metric": "runtime", "Name": name, **labels},
        "samples": [round(v, 4) for v in values],
    }
    RESULTS.append(item)
    out = Path(
        os.environ.get(
            "CENTAURUS_BENCH_OUT", Path(__file__).resolve().parents[2] / "reports/out/bench-runtimes.json"
        )
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"version": "v1", "dataItems": RESULTS}
    out.write_text(json.dumps(doc, indent=1))
    d = item["data"]
    print(
        f"\n[bench] {name}: p50 {d['Perc50']:.4g} p90 {d['Perc90']:.4g} p99 {d['Perc99']:.4g} "
        f"max {d['Max']:.4g} {unit} (n={len(values)})"
    )
    return item


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


async def test_container_start_in_netns(process_rt: Any, pod_spec: Any) -> None:
    """N=50 single-container pods in one pod netns, started one after another."""
    n = int(os.environ.get("CENTAURUS_BENCH_CONTAINERS", "50"))
    crun_s, call_s, sbs = [], [], []
    for i in range(n):
        spec = pod_spec(ContainerSpec(name="c", image="busybox", command=["sleep", "3600"]), name=f"b{i}")
        t0 = time.perf_counter()
        sb = await process_rt.start(spec)
        call_s.append((time.perf_counter() - t0) * 1000)
        crun_s.append(process_rt._pods[sb.uid].containers["c"].start_seconds * 1000)
        sbs.append(sb)
    states = [(await process_rt.status(sb))[0].state for sb in sbs]
    assert states == ["running"] * n
    record("container_start_crun_run_to_running", crun_s, "ms", N=str(n), netns="shared pod netns")
    record("container_start_runtime_call", call_s, "ms", N=str(n))
    pss = [pss_kb((await process_rt.status(sb))[0].pid) for sb in sbs]
    cg = [(await process_rt.stats(sb))["c"]["memory_bytes"] / 1024 for sb in sbs]
    record("container_memory_pss", [float(p) for p in pss], "KiB", what="PID 1 (busybox sleep)")
    record("container_memory_cgroup", cg, "KiB", what="cgroup usage incl. page cache")
    t0 = time.perf_counter()
    for sb in sbs:
        await process_rt.remove(sb)
    record("container_remove", [(time.perf_counter() - t0) * 1000 / n], "ms")
    record(
        "reference_bare_crun_run",
        await bare_crun_runs(process_rt, pod_spec, min(n, 20)),
        "ms",
        note="same run: crun run -d on a prepared read-only bundle, no runtime around it",
    )


async def bare_crun_runs(rt: Any, pod_spec: Any, n: int) -> list[float]:
    """Reference measured in the same run: crun alone (read-only image rootfs, same cgroups and
    netns), so the runtime's own overhead is the difference, whatever the machine's load."""
    import shutil

    from centaurus.runtimes import crun, linux, oci, spawn

    image = rt.images.resolve("busybox")
    spec = pod_spec(ContainerSpec(name="c", image="busybox", command=["sleep", "3600"]))
    bundle = rt.state_dir / "bare"
    bundle.mkdir()
    (bundle / "rootfs").symlink_to(image.rootfs)
    out: list[float] = []
    for i in range(n):
        cfg = oci.build_config(
            spec.containers[0],
            image,
            hostname="bare",
            netns_path=spec.netns_path,
            cgroups_path=f"{rt.cgroup_root}/bare/c{i}",
        )
        cfg["root"] = {"path": str(image.rootfs), "readonly": True}
        (bundle / "config.json").write_text(json.dumps(cfg))
        argv = [*crun.base_argv(rt.crun_root), "run", "-d", "--bundle", str(bundle), f"bare-{i}"]
        null = os.open(os.devnull, os.O_RDWR)
        t0 = time.perf_counter()
        pid = await rt.worker.call(lambda a=argv, f=null: spawn.spawn(a, stdin=f, stdout=f, stderr=f))
        await linux.wait_pid(pid)
        out.append((time.perf_counter() - t0) * 1000)
        os.close(null)
    for i in range(n):
        await crun.run_quiet(
            rt.worker, [*crun.base_argv(rt.crun_root), "delete", "-f", f"bare-{i}"], bundle / "delete.log"
        )
    from centaurus.runtimes import cgroups

    cgroups.remove_tree(f"{rt.cgroup_root}/bare", up_to=rt.cgroup_root)
    shutil.rmtree(bundle)
    return out


async def test_vm_restore_and_cold_start(vm_rt: Any, tmp_path: Path) -> None:
    from centaurus.runtimes.vm import VmRuntime

    n = int(os.environ.get("CENTAURUS_BENCH_VMS", "20"))
    # 1) isolated: one clone at a time (removed before the next)
    running, ready = [], []
    for i in range(n):
        sb = await vm_rt.start(vm_pod(tmp_path, None, name=f"r{i}", ip=None))
        await vm_rt.wait_ready(sb, 60)
        assert sb.info["startMode"] == "restore"
        running.append(sb.info["processRunningSeconds"] * 1000)
        ready.append(sb.info["guestReadySeconds"] * 1000)
        await vm_rt.remove(sb)
    record("vm_restore_process_running", running, "ms", N=str(n), accel=vm_rt.accel, clones="1 at a time")
    record("vm_restore_guest_ready", ready, "ms", N=str(n), accel=vm_rt.accel, clones="1 at a time")
    # 2) density: clones accumulate (each idle TCG clone still costs ~1.5 % of a core)
    running, ready, sbs = [], [], []
    for i in range(n):
        sb = await vm_rt.start(vm_pod(tmp_path, None, name=f"d{i}", ip=None))
        await vm_rt.wait_ready(sb, 60)
        running.append(sb.info["processRunningSeconds"] * 1000)
        ready.append(sb.info["guestReadySeconds"] * 1000)
        sbs.append(sb)
    record("vm_restore_process_running_dense", running, "ms", N=str(n), clones=f"0..{n - 1} already running")
    record("vm_restore_guest_ready_dense", ready, "ms", N=str(n), clones=f"0..{n - 1} already running")
    pss = [next(iter((await vm_rt.stats(sb)).values()))["memory_bytes"] / 2**20 for sb in sbs]
    record("vm_clone_memory_pss", pss, "MiB", N=str(n), note=f"{n} clones of one template running")
    for sb in sbs:
        await vm_rt.remove(sb)
    cold = VmRuntime(tmp_path / "cold", {"boot": "cold"})
    await cold.prepare()
    c_run, c_ready = [], []
    try:
        for i in range(int(os.environ.get("CENTAURUS_BENCH_COLD", "3"))):
            sb = await cold.start(vm_pod(tmp_path, None, name=f"c{i}", ip=None))
            await cold.wait_ready(sb, 90)
            assert sb.info["startMode"] == "cold"
            c_run.append(sb.info["processRunningSeconds"] * 1000)
            c_ready.append(sb.info["guestReadySeconds"] * 1000)
            await cold.remove(sb)
    finally:
        await cold.close()
    record("vm_cold_process_running", c_run, "ms", accel=vm_rt.accel)
    record("vm_cold_guest_ready", c_ready, "ms", accel=vm_rt.accel)
    # 3) a burst of cold boots at once: bounded boot slots (default) against unbounded, same run
    burst = int(os.environ.get("CENTAURUS_BENCH_COLD_BURST", "6"))
    for label, slots in (("bounded", None), ("unbounded", 0)):
        opts: dict[str, Any] = {"boot": "cold", "boot_slot_dir": str(tmp_path / f"slots-{label}")}
        if slots is not None:
            opts["cold_boot_slots"] = slots
        rt = VmRuntime(tmp_path / f"burst-{label}", opts)
        await rt.prepare()
        try:

            async def one(i: int, rt: Any = rt, label: str = label) -> Any:
                sb = await rt.start(vm_pod(tmp_path, None, name=f"b{label[0]}{i}", ip=None))
                await rt.wait_ready(sb, 120)
                return sb

            sbs = await asyncio.gather(*(one(i) for i in range(burst)))
            record(
                "vm_cold_burst_guest_ready",
                [sb.info["guestReadySeconds"] * 1000 for sb in sbs],
                "ms",
                N=str(burst),
                slots=str(rt.boot_slots.slots) if slots is None else "unbounded",
            )
            for sb in sbs:
                await rt.remove(sb)
        finally:
            await rt.close()


async def test_hollow_pods_per_process(tmp_path: Path) -> None:
    """10,000 hollow nodes (one runtime object each) with 10 pods each in this one process."""
    from centaurus.runtimes.hollow import HollowRuntime

    nodes, per_node = 10_000, 10
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    rts = [HollowRuntime() for _ in range(nodes)]
    after_nodes = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    uids = []
    for i, rt in enumerate(rts):
        for j in range(per_node):
            uid = str(uuid.uuid4())
            spec = SandboxSpec(
                uid=uid,
                tenant="t",
                namespace="default",
                name=f"p{i}-{j}",
                netns_path=None,
                log_dir=tmp_path,
                containers=[ContainerSpec(name="c", image="busybox")],
            )
            await rt.start(spec)
            if j == 0:
                uids.append(uid)
    start_s = time.perf_counter() - t0
    del spec  # specs belong to the agent; only what the runtime keeps is counted below
    gc.collect()
    after_pods = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    total = nodes * per_node
    assert sum(len(rt._pods) for rt in rts) == total
    st = await rts[-1].status(await _first(rts[-1]))
    assert st[0].state == "running" and st[0].ready
    record("hollow_runtime_bytes_per_node", [(after_nodes - base) / nodes], "B", nodes=str(nodes))
    record("hollow_runtime_bytes_per_pod", [(after_pods - after_nodes) / total], "B", pods=str(total))
    record("hollow_start_per_pod", [start_s * 1e6 / total], "us", pods=str(total))


async def _first(rt: Any) -> Any:
    return (await rt.sandboxes())[0]
