"""Density campaign: N hollow nodes, M pods created at a fixed rate, measured as clusterloader2
does, and the growth curve that the scale projection (SCALE-1..4) rests on.

One run, on a fresh builtin control plane under ``state_dir``:

1. *Scheduler throughput* (burst): B node objects and P pending pods for a second scheduler
   process (its own schedulerName, started only once every pod exists), pods/s from its first
   to its last bind, plus the per-second distribution.
2. *Hosts* grow in ``steps`` (hollow fleet: the node agent's hollow mode, or the stand-in of
   :mod:`standin_fleet` when that is not installed); at each size the control plane's CPU rate,
   RSS/PSS per component and store bytes are sampled over ``window`` seconds.
3. *Pods* grow in ``steps`` at ``rate`` pods/s (open loop), with the PodStartupLatency
   transitions of every pod (:mod:`centaurus.perf.measurements.pod_startup`), the API probe's
   latencies (PERF-API-1 held while the pods come), the scheduler's own figures, and a usage
   sample at each size.
4. Per-host and per-pod costs by least squares over the sizes, and the projection to 100k hosts
   / 10M pods / 300k hosts per region / 10M endpoints (:mod:`scale_model`, method in the data).

``run_density(...)`` returns a :class:`centaurus.perf.core.Result` (figures, PerfData, details)
and writes ``<report_dir>/density.json``; ``python -m centaurus.perf.density`` is the CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from centaurus.client.aio import AsyncClient
from centaurus.client.rest import ApiError
from centaurus.controlplane.supervisor import ControlPlane
from centaurus.perf import scale_model
from centaurus.perf.apiprobe import ApiProbe
from centaurus.perf.core import Figure, Result
from centaurus.perf.fleetproc import FleetProc, wait_fleet
from centaurus.perf.measurements.pod_startup import perfdata
from centaurus.perf.podwatch import PodStartupWatch
from centaurus.perf.usage import CLK_TCK, components, control_plane_usage

Obj = dict[str, Any]
HOLLOW = {"centaurus.io/hollow": "true"}


@dataclass
class Profile:
    nodes: int
    pods: int
    rate: float
    steps: int = 3
    window: float = 5.0
    burst_nodes: int = 1000
    burst_pods: int = 10000
    probe_rate: float = 5.0
    pods_per_ns: int = 5000
    lease_renew: float = 60.0


PROFILES = {
    "smoke": Profile(nodes=30, pods=300, rate=50.0, window=3.0, burst_nodes=100, burst_pods=1000),
    "short": Profile(nodes=100, pods=2000, rate=100.0, window=5.0),
    # the hollow-node target rate (>= 100 pods/s) at the size
    "full": Profile(nodes=10000, pods=100000, rate=100.0, window=20.0, pods_per_ns=10000),
}


def _log(msg: str) -> None:
    print(f"[density {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- usage ------------------------------------------------------------------------------------
async def _sample(state_dir: Path, window: float, extra: dict[str, int]) -> dict[str, Any]:
    u0 = control_plane_usage(state_dir, extra)
    await asyncio.sleep(window)
    u1 = control_plane_usage(state_dir, extra)
    comps = {}
    for name, c in u1["components"].items():
        before = u0["components"].get(name, {}).get("cpu_seconds", c["cpu_seconds"])
        comps[name] = {
            "cpu_cores": (c["cpu_seconds"] - before) / window,
            "rss_bytes": c["rss_bytes"],
            "pss_bytes": c["pss_bytes"],
        }
    return {"components": comps, "store_bytes": u1["store_bytes"], "stores": u1["stores"]}


def _cpu_by_component(state_dir: Path, fleet_pid: int) -> dict[str, float]:
    u = control_plane_usage(state_dir, {"fleet": fleet_pid, "campaign": os.getpid()})
    return {k: float(v["cpu_seconds"]) for k, v in u["components"].items()}


async def _cpu_timeline(
    state_dir: Path, extra: dict[str, int], out: list[dict[str, Any]], every: float
) -> None:
    """CPU cores per process over each ``every`` seconds, appended to ``out`` until cancelled:
    what was busy when pods stalled (compare with ``slowest_seconds``)."""
    prev, t_prev = _cpu_by_pid(state_dir, extra), time.time()
    while True:
        await asyncio.sleep(every)
        cur, now = _cpu_by_pid(state_dir, extra), time.time()
        dt = max(1e-6, now - t_prev)
        out.append({"t": round(now, 1), **{k: round((v - prev.get(k, v)) / dt, 3) for k, v in cur.items()}})
        prev, t_prev = cur, now


def _cpu_by_pid(state_dir: Path, extra: dict[str, int]) -> dict[str, float]:
    """CPU seconds per component from /proc/<pid>/stat only (no smaps: cheap every second),
    plus the machine's (``machine_busy``: all CPUs, so other work on the box shows as the gap to
    the components' sum) and the kernel's pressure stall seconds (``psi_io``/``psi_cpu``: some
    task waited on I/O / for a CPU), which tell an I/O stall from CPU starvation."""
    procs = {**components(state_dir), **extra}
    out: dict[str, float] = {}
    with contextlib.suppress(OSError, ValueError, IndexError):
        f = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        out["machine_busy"] = (sum(int(x) for x in f) - int(f[3]) - int(f[4])) / CLK_TCK
    for res in ("io", "cpu"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            some = Path(f"/proc/pressure/{res}").read_text().split("\n", 1)[0]
            out[f"psi_{res}"] = int(some.rsplit("total=", 1)[1]) / 1e6
    for name, pid in procs.items():
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            f = stat[stat.rindex(")") + 2 :].split()
            out[name] = (int(f[11]) + int(f[12])) / CLK_TCK
    return out


def slowest_seconds(stamps: dict[str, Any], t0: float, top: int = 10) -> dict[str, Any]:
    """Pods grouped by the second they were created in; the ``top`` seconds with the slowest
    pod (create -> seen Running), with that pod's transitions, and how many pods took > 1 s:
    a stall shows up as a run of adjacent seconds here."""
    per: dict[int, tuple[float, dict[str, float]]] = {}
    over = 0
    for st in stamps.values():
        if st.create is None:
            continue
        tr = st.transitions()
        c2w = tr.get("create_to_watch")
        if c2w is None:
            continue
        over += c2w > 1000.0
        sec = int(st.create - t0)
        if sec not in per or c2w > per[sec][0]:
            per[sec] = (c2w, tr)
    worst = sorted(per.items(), key=lambda kv: -kv[1][0])[:top]
    return {
        "pods_over_1s": over,
        "seconds": [
            {"second": sec, "worst_ms": round(v, 1), **{k: round(x, 1) for k, x in tr.items()}}
            for sec, (v, tr) in sorted(worst)
        ],
    }


def _cpu_total(state_dir: Path) -> float:
    """CPU seconds of the control plane so far (the fleet is not part of it)."""
    return float(control_plane_usage(state_dir)["cpu_seconds"])


def _point(nodes: int, pods: int, sample: dict[str, Any], fleet: str = "fleet") -> dict[str, Any]:
    control = {k: v for k, v in sample["components"].items() if k != fleet}
    return {
        "nodes": nodes,
        "pods": pods,
        "components": control,
        "fleet": sample["components"].get(fleet),
        "store_bytes": sample["store_bytes"],
    }


# ---- pods -------------------------------------------------------------------------------------
def pod_manifest(
    name: str,
    scheduler: str = "default-scheduler",
    selector: dict[str, str] | None = None,
    app: str = "density",
) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {
            "schedulerName": scheduler,
            "nodeSelector": selector or HOLLOW,
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "pause",
                    "image": "busybox:1.36",
                    "command": ["sleep", "3600"],
                    "resources": {"requests": {"cpu": "10m", "memory": "10Mi"}},
                }
            ],
        },
    }


async def _create_at_rate(
    api: AsyncClient,
    items: list[tuple[str, str]],
    rate: float,
    watch: PodStartupWatch | None = None,
) -> float:
    """Open-loop creation at ``rate`` pods/s (0: as fast as 64 in flight allow); achieved rate."""
    sem = asyncio.Semaphore(64)
    tasks: list[asyncio.Task[None]] = []
    errors: list[str] = []

    async def one(ns: str, name: str) -> None:
        try:
            for attempt in range(5):
                try:
                    await api.create(
                        "pods",
                        pod_manifest(name)
                        if watch is not None
                        else pod_manifest(
                            name, "density-burst", {"centaurus.io/density-burst": "true"}, "density-burst"
                        ),
                        namespace=ns,
                    )
                    return
                except ApiError as exc:
                    if exc.code == 409 or attempt == 4:
                        raise
                    await asyncio.sleep(0.2 * 2**attempt)
        except (ApiError, OSError, TimeoutError) as exc:
            errors.append(str(exc))
        finally:
            sem.release()

    t0 = time.monotonic()
    for i, (ns, name) in enumerate(items):
        if rate > 0:
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await sem.acquire()
        if watch is not None:
            watch.created(ns, name)
        tasks.append(asyncio.create_task(one(ns, name)))
    await asyncio.gather(*tasks)
    if errors:
        raise RuntimeError(f"{len(errors)} pod creates failed, e.g. {errors[0]}")
    return len(items) / max(1e-9, time.monotonic() - t0)


async def _ensure_ns(api: AsyncClient, name: str) -> None:
    with contextlib.suppress(ApiError):
        await api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


# ---- the run ----------------------------------------------------------------------------------
async def _settle(api: AsyncClient, timeout: float = 60.0) -> None:
    """Until the controller instances and the scheduler are working (fresh control plane)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ApiError, OSError):
            cis = (await api.request("GET", "/api/v1/controllerinstances"))["items"]
            if cis and not any(c.get("isLocked") for c in cis):
                return
        await asyncio.sleep(0.5)


def _sched_stats(state_dir: Path) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        doc: dict[str, Any] = json.loads((state_dir / "scheduler-stats.json").read_text())
        return doc
    return {}


async def _density(p: Profile, state_dir: Path, work: Path, store: str, partitions: int) -> Result:
    cp = ControlPlane(state_dir)
    cp.down()
    _log(f"control plane up ({store} x{partitions}) under {state_dir}")
    cp.up(store=store, partitions=partitions, port=0)
    api = AsyncClient.from_kubeconfig(str(cp.kubeconfig), pool=96)
    fleet: FleetProc | None = None
    watch: PodStartupWatch | None = None
    res = Result()
    details: dict[str, Any] = {"profile": asdict(p), "store": store, "partitions": partitions}
    try:
        await _settle(api)
        # 1. scheduler throughput
        _log(f"scheduler burst: {p.burst_nodes} node objects, {p.burst_pods} pending pods")
        burst = await run_burst_wrapper(api, cp.kubeconfig, work, p, state_dir)
        details["scheduler_burst"] = burst
        # 2. hosts
        points_nodes = [_point(0, 0, await _sample(state_dir, p.window, {}))]
        sizes = [max(1, p.nodes * k // p.steps) for k in range(1, p.steps + 1)]
        for k, n in enumerate(sizes):
            if fleet is None:
                fleet = FleetProc(cp.kubeconfig, work, n, p.lease_renew)
                details["fleet"] = fleet.kind
            else:
                await asyncio.to_thread(fleet.grow, n)
            _log(f"hosts: growing the fleet to {n} ({fleet.kind})")
            await wait_fleet(api, fleet, n, timeout=120 + n / 20)
            points_nodes.append(_point(n, 0, await _sample(state_dir, p.window, {"fleet": fleet.proc.pid})))
            _log(f"hosts: {n} Ready; sampled step {k + 1}/{p.steps}")
        assert fleet is not None
        # 3. pods
        n_ns = max(1, -(-p.pods // p.pods_per_ns))
        for i in range(n_ns):
            await _ensure_ns(api, f"density-{i}")
        await _ensure_ns(api, "density-probe")
        watch = await PodStartupWatch(api, "app=density", kind="hollow").start()
        probe = ApiProbe(api, "density-probe", p.probe_rate).start()
        points_pods = [points_nodes[-1]]
        made = 0
        rates = []
        idle_rate = sum(c["cpu_cores"] for c in points_nodes[-1]["components"].values())
        details["idle_cpu_cores_at_full_hosts"] = idle_rate
        cpu0, t_cpu0 = _cpu_total(state_dir), time.monotonic()
        per0 = _cpu_by_component(state_dir, fleet.proc.pid)
        t_wall0 = time.time()
        timeline: list[dict[str, Any]] = []
        sampler = asyncio.create_task(
            _cpu_timeline(state_dir, {"fleet": fleet.proc.pid, "campaign": os.getpid()}, timeline, 2.0)
        )
        for k in range(1, p.steps + 1):
            target = p.pods * k // p.steps
            items = [(f"density-{i // p.pods_per_ns}", f"p-{i}") for i in range(made, target)]
            _log(f"pods: creating {len(items)} at {p.rate:g}/s (to {target})")
            rates.append(await _create_at_rate(api, items, p.rate, watch))
            await watch.wait([f"{ns}/{n}" for ns, n in items], 120 + len(items) / 10)
            made = target
            points_pods.append(
                _point(p.nodes, made, await _sample(state_dir, p.window, {"fleet": fleet.proc.pid}))
            )
            _log(f"pods: {made} Running; sampled step {k}/{p.steps}")
        await probe.stop()
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        details["cpu_timeline"] = {"t0": round(t_wall0, 1), "every_s": 2.0, "samples": timeline}
        details["slowest_seconds"] = slowest_seconds(watch.stamps, t_wall0)
        details["achieved_rates"] = rates
        # gross: everything the control plane spent while the pods were created and started
        details["cpu_seconds_per_pod_created"] = (_cpu_total(state_dir) - cpu0) / max(1, p.pods)
        per1 = _cpu_by_component(state_dir, fleet.proc.pid)
        details["cpu_ms_per_pod_created_by_component"] = {
            k: round((v - per0.get(k, 0.0)) * 1000 / max(1, p.pods), 3) for k, v in per1.items()
        }
        details["pod_phase_seconds"] = time.monotonic() - t_cpu0
        details["scheduler"] = _sched_stats(state_dir)
        # startup latency over every pod of every namespace
        await watch.stop()
        per = watch.transitions()
        labels = {"Nodes": str(p.nodes), "Pods": str(p.pods), "Rate": f"{p.rate:g}/s"}
        res.perfdata += watch.gather(labels)
        res.perfdata += probe.perfdata({"Phase": "density", **labels})
        _figures(res, p, per, probe, burst, labels)
        # 4. costs and the projection
        per_host = scale_model.per_object(points_nodes, "nodes")
        per_pod = scale_model.per_object(points_pods, "pods")
        proj = scale_model.extrapolate(
            per_host, per_pod, measured={"hosts": p.nodes, "pods": p.pods}, partitions=partitions
        )
        details.update(
            growth={"hosts": points_nodes, "pods": points_pods},
            per_host=per_host,
            per_pod=per_pod,
            extrapolation=proj,
            probe_errors=probe.errors[:5],
        )
        _cost_items(res, per_host, per_pod, proj, labels)
        res.figures.append(
            Figure(
                "cpu_seconds_per_pod_created",
                details["cpu_seconds_per_pod_created"],
                "s",
                dict(labels),
                note="control plane CPU over the pod phase (incl. its idle rate) / pods created",
            )
        )
        res.details["density"] = details
        return res
    finally:
        if watch is not None:
            await watch.stop()
        if fleet is not None:
            fleet.stop()
        await api.close()
        cp.down()


async def run_burst_wrapper(
    api: AsyncClient, kubeconfig: Path, work: Path, p: Profile, state_dir: Path
) -> dict[str, Any]:
    from centaurus.perf.schedbench import run_burst

    async def create(items: list[tuple[str, str]], rate: float) -> float:
        return await _create_at_rate(api, items, rate)

    def cpu(extra: dict[str, int]) -> dict[str, float]:
        u = control_plane_usage(state_dir, {**extra, "campaign": os.getpid()})
        return {k: float(v["cpu_seconds"]) for k, v in u["components"].items()}

    return await run_burst(api, kubeconfig, work, p.burst_nodes, p.burst_pods, create, cpu=cpu)


def _figures(
    res: Result,
    p: Profile,
    per: dict[str, list[float]],
    probe: ApiProbe,
    burst: dict[str, Any],
    labels: dict[str, str],
) -> None:
    c2w = per.get("create_to_watch") or []
    if c2w:
        res.figures.append(
            Figure("pod_startup_p99_ms", perfdata(c2w, {})["data"]["Perc99"], "ms", dict(labels))
        )
    p99 = probe.p99_mutating()
    if p99 is not None:
        res.figures.append(
            Figure(
                "api_mutating_p99_ms",
                p99,
                "ms",
                dict(labels),
                note="create/patch/delete probe while the pods were created",
            )
        )
    if burst.get("pods_per_s"):
        bl = {"Nodes": str(burst["nodes"]), "Pods": str(burst["pods"])}
        res.figures.append(Figure("scheduler_throughput", float(burst["pods_per_s"]), "pods/s", bl))
        res.perfdata.append(
            {
                "data": burst["per_second"],
                "unit": "pods/s",
                "labels": {"Metric": "scheduling_throughput", **bl},
            }
        )


def _cost_items(
    res: Result,
    per_host: dict[str, Any],
    per_pod: dict[str, Any],
    proj: dict[str, Any],
    labels: dict[str, str],
) -> None:
    for per_name, per in (("host", per_host), ("pod", per_pod)):
        for comp, m in per["components"].items():
            for metric, unit in (("pss_bytes", "bytes"), ("cpu_cores", "cores")):
                v = m[metric]["per_object"]
                res.perfdata.append(
                    {
                        "data": {"Perc50": v, "Perc90": v, "Perc99": v, "R2": m[metric]["r2"]},
                        "unit": unit,
                        "labels": {
                            "Metric": "resource_usage",
                            "Component": comp,
                            "Resource": metric,
                            "Per": per_name,
                            **labels,
                        },
                    }
                )
        res.figures.append(
            Figure(f"store_bytes_per_{per_name}", per["store_bytes"]["per_object"], "bytes", dict(labels))
        )
        res.figures.append(
            Figure(
                f"memory_bytes_per_{per_name}",
                per["total"]["pss_bytes"],
                "bytes",
                dict(labels),
                note="PSS, summed over the control-plane processes",
            )
        )
    for rid, pr in proj["projections"].items():
        note = (
            f"{pr['what']}: {pr['per_partition']:,.0f} per partition ({pr['bound']}-bound); "
            f"{pr['target']:,} need {pr['partitions_needed']} partition(s) x {pr['clusters']} cluster(s)"
        )
        plabels = {
            "requirement": rid,
            "bound": pr["bound"],
            "target": str(pr["target"]),
            "partitions_needed": str(pr["partitions_needed"]),
            **labels,
        }
        res.figures.append(Figure("scale_per_partition", pr["per_partition"], "objects", plabels, note=note))


def run_density(
    *,
    nodes: int | None = None,
    pods: int | None = None,
    rate: float | None = None,
    profile: str = "short",
    report_dir: Path | None = None,
    state_dir: Path | None = None,
    store: str = "sqlite",
    partitions: int = 1,
    **overrides: Any,
) -> Result:
    base = PROFILES[profile]
    p = Profile(
        **{
            **asdict(base),
            **{
                k: v
                for k, v in {"nodes": nodes, "pods": pods, "rate": rate, **overrides}.items()
                if v is not None
            },
        }
    )
    work = Path(tempfile.mkdtemp(prefix="cl-density-"))
    own_state = state_dir is None
    sd = Path(state_dir) if state_dir is not None else work / "cp"
    try:
        import uvloop

        res = uvloop.run(_density(p, sd, work, store, partitions))
    finally:
        if own_state:
            shutil.rmtree(work, ignore_errors=True)
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        doc = {
            "version": "v1",
            "dataItems": res.perfdata,
            "figures": [f.as_dict() for f in res.figures],
            "details": res.details,
        }
        (report_dir / "density.json").write_text(json.dumps(doc, indent=1, default=str))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(
        prog="centaurus-density", description=__doc__.split("\n\n")[0] if __doc__ else ""
    )
    ap.add_argument("--profile", default="short", choices=sorted(PROFILES))
    ap.add_argument("--nodes", type=int)
    ap.add_argument("--pods", type=int)
    ap.add_argument("--rate", type=float)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--burst-nodes", type=int)
    ap.add_argument("--burst-pods", type=int)
    ap.add_argument("--store", default="sqlite", choices=("sqlite", "etcd"))
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--report-dir", type=Path, default=Path("reports/out"))
    ap.add_argument("--state-dir", type=Path)
    a = ap.parse_args()
    res = run_density(
        nodes=a.nodes,
        pods=a.pods,
        rate=a.rate,
        profile=a.profile,
        report_dir=a.report_dir,
        state_dir=a.state_dir,
        store=a.store,
        partitions=a.partitions,
        steps=a.steps,
        burst_nodes=a.burst_nodes,
        burst_pods=a.burst_pods,
    )
    for f in res.figures:
        print(f"{f.name:28s} {f.value:>16,.4g} {f.unit:8s} {json.dumps(f.labels)}")
    print(f"PerfData: {a.report_dir / 'density.json'}")


if __name__ == "__main__":
    main()
