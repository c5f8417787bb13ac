"""From measured growth points to per-object costs and the whitepaper's scale (SCALE-1..4).

Pure functions: the density campaign feeds them points ``{"nodes", "pods", "components":
{name: {"cpu_cores", "rss_bytes", "pss_bytes"}}, "store_bytes"}`` measured at several sizes;
nothing here measures.

Method (also written into the report data, :func:`extrapolate` ``["method"]``):

1. *Per-object cost by least squares.* The campaign grows the hosts first (pods fixed at 0) and
   then the pods (hosts fixed), each over 3+ sizes. The slope of each cost against the count is
   the marginal cost per host / per pod, per component; R^2 says how linear it is (memory and
   store bytes of caches are linear in the objects they hold; CPU follows the heartbeat and
   create rates, not the stored count).
2. *A partition is a machine like this one*: budget = its cores x 70 % busy, its memory, and
   8 GiB of store (etcd's maximum quota) per data partition -- the same budget test_scale uses.
3. *Arktos scale-out*: hosts are served by resource partitions (node objects, leases, node
   lifecycle), pods by tenant partitions (API server + store + controllers); the scheduler of a
   cluster sees all hosts and the pods it places. Capacity per partition = the tightest budget /
   per-object cost; partitions needed = target / capacity. A host's cost includes CPU (its lease
   renewals never stop); a stored pod's does not (its CPU is spent when it is created and
   scheduled, reported per created pod), so pods per partition are bound by memory or store.
   A region is clusters side by side (SCALE-1: 300k hosts = 3 clusters of 100k); endpoints cost
   what a pod costs at most (one object of similar size in the same caches and store).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

STORE_BUDGET = 8 * 1024**3
CPU_BUSY = 0.7
TARGETS = {
    "SCALE-1": ("hosts per region", 300_000),
    "SCALE-2": ("hosts per physical cluster", 100_000),
    "SCALE-3": ("network endpoints per region", 10_000_000),
    "SCALE-4": ("pods per physical cluster", 10_000_000),
}
METRICS = ("cpu_cores", "rss_bytes", "pss_bytes")


def fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """(slope, intercept, r2) of the least-squares line; r2 = 1 for a perfect line."""
    n = len(xs)
    if n < 2 or len(set(xs)) < 2:
        return 0.0, ys[0] if ys else 0.0, 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    icpt = my - slope * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - (icpt + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return slope, icpt, r2


def per_object(points: list[dict[str, Any]], axis: str) -> dict[str, Any]:
    """Marginal cost per host (``axis="nodes"``) or per pod (``"pods"``): per component and
    metric, plus store bytes, from the points where only ``axis`` varied."""
    comps = sorted({c for p in points for c in p["components"]})
    xs = [float(p[axis]) for p in points]
    out: dict[str, Any] = {"components": {}, "points": len(points)}
    for c in comps:
        out["components"][c] = {}
        for m in METRICS:
            ys = [float(p["components"].get(c, {}).get(m, 0.0)) for p in points]
            slope, _, r2 = fit(xs, ys)
            out["components"][c][m] = {"per_object": max(slope, 0.0), "r2": round(r2, 4)}
    s, _, r2 = fit(xs, [float(p["store_bytes"]) for p in points])
    out["store_bytes"] = {"per_object": max(s, 0.0), "r2": round(r2, 4)}
    out["total"] = {m: sum(v[m]["per_object"] for v in out["components"].values()) for m in METRICS}
    return out


def machine_budget(partitions: int = 1) -> dict[str, float]:
    mem = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    return {
        "cpu_cores": (os.cpu_count() or 1) * CPU_BUSY,
        "memory_bytes": float(mem),
        "store_bytes": float(STORE_BUDGET * partitions),
    }


def capacity(budget: dict[str, float], cost: dict[str, float]) -> tuple[float, str]:
    limits = {k: budget[k] / cost[k] for k in budget if cost.get(k, 0.0) > 0}
    if not limits:
        return math.inf, "none"
    bound = min(limits, key=lambda k: limits[k])
    return limits[bound], bound


def _cost(per: dict[str, Any], components: list[str] | None = None, *, cpu: bool = True) -> dict[str, float]:
    chosen = (
        per["components"]
        if components is None
        else {c: v for c, v in per["components"].items() if any(c.startswith(p) for p in components)}
    )
    return {
        "cpu_cores": sum(v["cpu_cores"]["per_object"] for v in chosen.values()) if cpu else 0.0,
        "memory_bytes": sum(v["pss_bytes"]["per_object"] for v in chosen.values()),
        "store_bytes": per["store_bytes"]["per_object"],
    }


def extrapolate(
    per_host: dict[str, Any],
    per_pod: dict[str, Any],
    *,
    measured: dict[str, int],
    partitions: int = 1,
    budget: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Capacity per partition and the partitions each SCALE target needs."""
    budget = budget or machine_budget(partitions)
    # a host costs CPU all the time (lease renewals); a stored pod costs memory and store bytes,
    # its CPU goes with creation (reported per created pod by the campaign), not with its count
    host_cost, pod_cost = _cost(per_host), _cost(per_pod, cpu=False)
    hosts_pp, host_bound = capacity(budget, host_cost)
    pods_pp, pod_bound = capacity(budget, pod_cost)
    sched_budget = {"memory_bytes": budget["memory_bytes"]}
    sched_host = _cost(per_host, ["scheduler"])
    sched_pod = _cost(per_pod, ["scheduler"])
    sched_hosts, _ = capacity(sched_budget, {"memory_bytes": sched_host["memory_bytes"]})
    sched_pods, _ = capacity(sched_budget, {"memory_bytes": sched_pod["memory_bytes"]})

    def parts(target: float, per: float) -> int:
        return 1 if per == math.inf else max(1, math.ceil(target / per))

    projections = {}
    for rid, (what, target) in TARGETS.items():
        if rid in ("SCALE-1", "SCALE-2"):
            per, bound = hosts_pp, host_bound
        else:
            per, bound = pods_pp, pod_bound
        clusters = 3 if rid == "SCALE-1" else 1
        projections[rid] = {
            "what": what,
            "target": target,
            "per_partition": per,
            "bound": bound,
            "partitions_needed": parts(target, per),
            "clusters": clusters,
        }
    return {
        "measured": measured,
        "budget_per_partition": budget,
        "cost_per_host": host_cost,
        "cost_per_pod": pod_cost,
        "hosts_per_partition": hosts_pp,
        "pods_per_partition": pods_pp,
        "scheduler_ceiling": {
            "hosts": sched_hosts,
            "pods": sched_pods,
            "note": "one scheduler process holds every host and pod it places",
        },
        "projections": projections,
        "method": __doc__.split("Method", 1)[1].strip() if __doc__ else "",
    }
