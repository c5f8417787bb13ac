"""``api-latency``: API call latency per (resource, verb) under a sustained, fixed offered load
(PERF-API-1 mutating calls, PERF-API-2 reads and lists), with the raw store's latency at the
same rate measured in the same run -- the figure the API server adds on top of its store.

1. bring the target up (``centaurus.targets``; builtin by default), create ``tenants`` tenants
   with a ``perf`` namespace each and ``preload`` pods per tenant (lists then have something to
   return);
2. raw store reference: :func:`centaurus.store.bench.probe` on a fresh store of the target's kind
   in the run's work dir, at the offered rate (H2/H3's probe, unchanged);
3. locust headless (``perf/locust_api.py``: pods, deployments, configmaps create/get/patch/
   update/list/delete across the tenants, watchers timing create -> watch event) shaped as a
   ramp-up stage (not counted) and a hold stage, with ``--csv`` files kept in the report dir;
4. the Kubernetes SLI: p99 latency per (resource, verb) over windows of ``window_s`` (300 s in
   the SLO; short runs use shorter windows and say so); the figure per pair is the worst
   window's p99, the headline is the worst mutating pair (PERF-API-1), and the worst get / list
   (PERF-API-2). Errors (non-2xx, timeouts) are counted per pair, never dropped silently.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from centaurus.perf import shared
from centaurus.perf.core import Context, Figure, Measurement, MeasurementError, Result
from centaurus.store.bench import percentile, perfdata

ROOT = Path(__file__).resolve().parents[3]
LOCUSTFILE = ROOT / "perf" / "locust_api.py"
MUTATING = ("create", "update", "patch", "delete")
#: API verb -> the raw store operation it boils down to (the reference shown beside it)
STORE_VERB = {
    "create": "create",
    "update": "update",
    "patch": "update",
    "delete": "update",
    "get": "get",
    "list": "list",
}


def windows(samples: list[tuple[float, float]], t0: float, window_s: float) -> list[list[float]]:
    """Latencies (ms) grouped by window of ``window_s`` from ``t0``; ``samples`` = (unix t, ms)."""
    out: dict[int, list[float]] = defaultdict(list)
    for t, ms in samples:
        out[int((t - t0) // window_s)].append(ms)
    return [out[k] for k in sorted(out)]


def slo_p99(samples: list[tuple[float, float]], t0: float, window_s: float, min_count: int = 20) -> float:
    """The worst window's p99 (windows with fewer than ``min_count`` calls are merged into the
    whole-run figure instead of deciding on a handful of samples)."""
    ws = [sorted(w) for w in windows(samples, t0, window_s) if len(w) >= min_count]
    if not ws:
        return percentile(sorted(ms for _, ms in samples), 0.99)
    return max(percentile(w, 0.99) for w in ws)


def _preload(client: Any, ns: str, n: int) -> None:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"labels": {"app": "preload"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"]}]},
    }

    def one(i: int) -> None:
        client.create(
            "pods", {**body, "metadata": {**body["metadata"], "name": f"pre-{i:06d}"}}, namespace=ns
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(n)))


def store_reference(kind: str, work: Path, rate: float, duration: float) -> list[dict[str, Any]]:
    """Raw store p50/p90/p99 per operation at ``rate`` ops/s, on a fresh store of ``kind``."""
    from centaurus.store import bench

    async def run() -> list[dict[str, Any]]:
        if kind == "etcd":
            from centaurus.store.etcd import EtcdStore
            from centaurus.store.etcdproc import EtcdCluster

            cluster = EtcdCluster(work / "ref-etcd", members=1, name="etcd-ref")
            cluster.start()
            try:
                store: Any = EtcdStore(endpoints=cluster.endpoints)
                await store.start()
                try:
                    return await bench.probe(store, rate=rate, duration=duration, kind="etcd")
                finally:
                    await store.close()
            finally:
                cluster.destroy()
        from centaurus.store.sqlite import SqliteStore

        store = await SqliteStore.open_partition(0, work / "ref-sqlite", {})
        try:
            return await bench.probe(store, rate=rate, duration=duration, kind="sqlite")
        finally:
            await store.close()

    return asyncio.run(run())


class ApiLatency(Measurement):
    method = "api-latency"

    def gather(self, ctx: Context, params: dict[str, Any]) -> Result:
        p = params
        tenants = int(p.get("tenants", 3))
        preload = int(p.get("preload", ctx.pick(200, 2000)))
        users = int(p.get("users", ctx.pick(20, 50)))
        watchers = int(p.get("watchers", 3))
        rate = float(p.get("rate", ctx.pick(100.0, 300.0)))
        ramp = float(p.get("rampup_s", ctx.pick(10.0, 30.0)))
        hold = float(p.get("duration_s", ctx.pick(60.0, 900.0)))
        window = float(p.get("window_s", ctx.pick(20.0, 300.0)))
        tgt = shared.target(
            ctx,
            str(p.get("target", "builtin")),
            {k: str(v) for k, v in (p.get("target_options") or {}).items()},
        )
        ctx.progress.total(5)
        names = [f"perf{i}" for i in range(tenants)]
        kubeconfigs = []
        for t in names:
            tgt.ensure_tenant(t)
            c = tgt.client(t, "admin")
            try:
                c.create(
                    "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "perf"}}
                )
            except Exception as exc:
                if "AlreadyExists" not in str(exc) and "409" not in str(exc):
                    raise
            kubeconfigs.append(str(tgt.kubeconfig(t, "admin")))
        ctx.progress.advance(1, "tenants")
        with ThreadPoolExecutor(len(names)) as pool:
            list(pool.map(lambda t: _preload(tgt.client(t, "admin"), "perf", preload), names))
        ctx.progress.advance(1, f"{preload * tenants} pods preloaded")
        kind = str((tgt.describe() or {}).get("store") or "sqlite")
        ref = store_reference(kind, ctx.work_dir, rate, float(p.get("store_probe_s", ctx.pick(5.0, 20.0))))
        ctx.progress.advance(1, f"raw {kind} store probed")
        samples, csv_prefix, t_hold = self._locust(ctx, kubeconfigs, users, watchers, rate, ramp, hold)
        ctx.progress.advance(1, f"locust: {len(samples)} samples")
        res = self._figures(samples, ref, t_hold, window, hold, rate, kind, tenants, preload)
        res.details["api_latency"].update(
            csv=[str(x) for x in sorted(csv_prefix.parent.glob(csv_prefix.name + "*"))],
            users=users,
            watchers=watchers,
            rampup_s=ramp,
        )
        ctx.progress.advance(1, "figures")
        return res

    def _locust(
        self,
        ctx: Context,
        kubeconfigs: list[str],
        users: int,
        watchers: int,
        rate: float,
        ramp: float,
        hold: float,
    ) -> tuple[list[tuple[str, float, bool, float]], Path, float]:
        out = ctx.report_dir / "perf"
        out.mkdir(parents=True, exist_ok=True)
        prefix = out / "api-latency"
        sample_file = ctx.work_dir / "locust-samples"
        stages = [
            {
                "duration": ramp,
                "users": users + watchers,
                "spawn_rate": max(1.0, (users + watchers) / max(ramp / 2, 1)),
            },
            {"duration": hold, "users": users + watchers, "spawn_rate": users + watchers},
        ]
        server = _server(kubeconfigs[0])
        env = {
            **os.environ,
            "CL_KUBECONFIGS": ",".join(kubeconfigs),
            "CL_NAMESPACE": "perf",
            "CL_USER_RATE": f"{rate / users:g}",
            "CL_STAGES": json.dumps(stages),
            "CL_WATCHERS": str(watchers),
            "CL_SAMPLES": str(sample_file),
        }
        argv = [
            str(Path(sys.executable).parent / "locust"),
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--host",
            server,
            "--csv",
            str(prefix),
            "--csv-full-history",
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--stop-timeout",
            "10",
        ]
        t_start = time.time()
        with open(ctx.work_dir / "locust.log", "w") as log:
            try:
                cp = subprocess.run(
                    argv,
                    env=env,
                    cwd=ctx.work_dir,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    timeout=ramp + hold + 120,
                )
            except subprocess.TimeoutExpired:
                raise MeasurementError("locust did not finish in time (see its log)") from None
        rows: list[tuple[str, float, bool, float]] = []
        for f in sorted(ctx.work_dir.glob("locust-samples.*")):
            rows += [tuple(json.loads(x)) for x in f.read_text().splitlines()]
        if not rows:
            tail = (ctx.work_dir / "locust.log").read_text()[-600:]
            raise MeasurementError(
                f"locust produced no samples (exit {cp.returncode}): {tail.strip()[-300:]}"
            )
        return rows, prefix, t_start + ramp

    def _figures(
        self,
        rows: list[tuple[str, float, bool, float]],
        ref: list[dict[str, Any]],
        t_hold: float,
        window: float,
        hold: float,
        rate: float,
        kind: str,
        tenants: int,
        preload: int,
    ) -> Result:
        res = Result()
        store = {str(it["labels"].get("Verb", "")).lower(): it for it in ref}
        by: dict[str, list[tuple[float, float]]] = defaultdict(list)
        errors: dict[str, int] = defaultdict(int)
        counted = [r for r in rows if r[3] >= t_hold]
        for name, ms, ok, at in counted:
            if ok:
                by[name].append((at, ms))
            else:
                errors[name] += 1
        span = max((r[3] for r in counted), default=t_hold) - t_hold
        achieved = len([r for r in counted if not r[0].startswith("watch ")]) / max(span, 1e-6)
        worst: dict[str, tuple[float, dict[str, str]]] = {}
        for name, pts in sorted(by.items()):
            verb, _, resource = name.partition(" ")
            scope = "watch" if verb == "watch" else "namespace" if verb == "list" else "resource"
            if "(watch)" in resource:
                resource, scope = resource.replace(" (watch)", ""), "watch-relist"
            p99 = slo_p99(pts, t_hold, window)
            labels = {"resource": resource, "verb": verb, "scope": scope}
            sref = store.get(STORE_VERB.get(verb, ""))
            reference = None
            if sref is not None:
                reference = {
                    "name": f"raw {kind} store {STORE_VERB[verb]}",
                    "p99_ms": round(sref["data"]["Perc99"], 3),
                }
            res.figures.append(
                Figure(
                    "api_p99_ms",
                    round(p99, 2),
                    "ms",
                    labels,
                    reference=reference,
                    note=f"worst {window:g}-s window's p99 of {len(pts)} calls, {errors.get(name, 0)} errors",
                )
            )
            res.perfdata.append(
                perfdata(
                    [ms for _, ms in pts],
                    {
                        "Metric": "api_latency",
                        "Resource": resource,
                        "Verb": verb.upper(),
                        "Scope": scope,
                        "OfferedRate": f"{rate:g}",
                        "Window": f"{window:g}s",
                        "Errors": str(errors.get(name, 0)),
                        "Store": kind,
                        "Tenants": str(tenants),
                    },
                )
            )
            group = (
                "mutating"
                if verb in MUTATING
                else "get"
                if verb == "get"
                else "list"
                if verb == "list"
                else ""
            )
            if group and scope != "watch-relist" and (group not in worst or p99 > worst[group][0]):
                worst[group] = (p99, labels)
        for group, name in (
            ("mutating", "api_mutating_p99_worst"),
            ("get", "api_get_p99_worst"),
            ("list", "api_list_p99_worst"),
        ):
            if group in worst:
                v, labels = worst[group]
                res.figures.append(
                    Figure(
                        name,
                        round(v, 2),
                        "ms",
                        dict(labels),
                        note=f"worst (resource, verb) of the {group} calls",
                    )
                )
        for it in ref:
            it["labels"].update(OfferedRate=f"{rate:g}")
            res.perfdata.append(it)
            res.figures.append(
                Figure(
                    "store_p99_ms",
                    round(it["data"]["Perc99"], 3),
                    "ms",
                    {"store": kind, "verb": str(it["labels"].get("Verb", "")).lower()},
                    note="raw store at the same offered rate, same run",
                )
            )
        total = sum(len(v) for v in by.values()) + sum(errors.values())
        res.figures.append(
            Figure(
                "api_error_ratio",
                round(sum(errors.values()) / max(total, 1), 5),
                "ratio",
                {"calls": str(total)},
                note=", ".join(f"{k}: {v}" for k, v in errors.items()),
            )
        )
        res.figures.append(Figure("api_achieved_rate", round(achieved, 1), "1/s", {"offered": f"{rate:g}"}))
        res.details["api_latency"] = {
            "window_s": window,
            "hold_s": hold,
            "offered_rate": rate,
            "achieved_rate": achieved,
            "tenants": tenants,
            "preload_per_tenant": preload,
            "store": kind,
            "errors": dict(errors),
            "warmup_samples": len(rows) - len(counted),
        }
        if window < 300:
            res.notes.append(
                f"SLO windows are {window:g} s here (Kubernetes SLI: 5-minute windows): short run"
            )
        return res


def _server(kubeconfig: str) -> str:
    import yaml

    kc = yaml.safe_load(Path(kubeconfig).read_text())
    return str(kc["clusters"][0]["cluster"]["server"])
