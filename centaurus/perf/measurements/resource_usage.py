"""``resource-usage``: CPU and memory over time, sampled from /proc in a background thread --
machine-wide and per watched process (e.g. each lab droplet's transitd, the API server).

Campaign use (clusterloader2's start/gather): a step with ``action: start`` before the work and
``action: gather`` after it. Processes to watch come from ``params.processes`` (name -> pid)
and from whatever measurements publish in ``ctx.state["watch"]`` (name -> pid) while running,
so a lab brought up later is followed from then on. ``interval_s`` (default 0.5).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from centaurus.perf import hostcost
from centaurus.perf.core import Context, Figure, Measurement, Result, Series


class Sampler:
    """Samples until stopped; ``series()`` returns machine CPU (% of all CPUs), machine memory
    used (MiB) and, per watched process, CPU (% of one CPU) and RSS (MiB)."""

    def __init__(self, interval: float = 0.5, watch: dict[str, int] | None = None) -> None:
        self.interval = interval
        self.watch = watch if watch is not None else {}
        self.samples: list[tuple[float, float, int, dict[str, tuple[float, int]]]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.t0 = 0.0
        self.marks: list[tuple[float, str]] = []

    def start(self) -> Sampler:
        self.t0 = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="usage-sampler", daemon=True)
        self._thread.start()
        return self

    def mark(self, what: str) -> None:
        """A phase boundary (idle, traffic, ...) shown on the time axis."""
        self.marks.append((round(time.monotonic() - self.t0, 3), what))

    def _sample(self) -> None:
        procs: dict[str, tuple[float, int]] = {}
        for name, pid in list(self.watch.items()):
            try:
                procs[name] = (hostcost.proc_cpu_seconds(pid), hostcost.proc_rss_bytes(pid))
            except (OSError, ValueError, IndexError):
                continue
        self.samples.append(
            (time.monotonic() - self.t0, hostcost.cpu_busy_seconds(), hostcost.mem_used_bytes(), procs)
        )

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._sample()

    def series(self, labels: dict[str, str] | None = None) -> list[Series]:
        import os

        labels = labels or {}
        ncpu = os.cpu_count() or 1
        cpu = Series("machine_cpu", "%", labels={**labels, "what": "machine", "cpus": str(ncpu)})
        mem = Series("machine_memory", "MiB", labels={**labels, "what": "machine"})
        per_cpu: dict[str, Series] = {}
        per_mem: dict[str, Series] = {}
        prev = None
        for s in self.samples:
            t, busy, used, procs = s
            mem.t.append(round(t, 3))
            mem.v.append(round(used / 2**20, 1))
            if prev is not None and t > prev[0]:
                dt = t - prev[0]
                cpu.t.append(round(t, 3))
                cpu.v.append(round(100 * (busy - prev[1]) / dt / ncpu, 2))
                for name, (c, _rss) in procs.items():
                    if name in prev[3]:
                        ps = per_cpu.setdefault(
                            name, Series("process_cpu", "%", labels={**labels, "what": name})
                        )
                        ps.t.append(round(t, 3))
                        ps.v.append(round(100 * (c - prev[3][name][0]) / dt, 2))
            for name, (_c, rss) in procs.items():
                pm = per_mem.setdefault(name, Series("process_rss", "MiB", labels={**labels, "what": name}))
                pm.t.append(round(t, 3))
                pm.v.append(round(rss / 2**20, 2))
            prev = s
        return [cpu, mem, *per_cpu.values(), *per_mem.values()]


class ResourceUsage(Measurement):
    method = "resource-usage"

    def __init__(self) -> None:
        self.sampler: Sampler | None = None

    def start(self, ctx: Context, params: dict[str, Any]) -> None:
        watch = ctx.state.setdefault("watch", {})
        watch.update({str(k): int(v) for k, v in (params.get("processes") or {}).items()})
        self.sampler = Sampler(float(params.get("interval_s", 0.5)), watch).start()
        ctx.state["sampler"] = self.sampler

    def gather(self, ctx: Context, params: dict[str, Any]) -> Result:
        if self.sampler is None:
            self.start(ctx, params)
            time.sleep(float(params.get("duration_s", 1.0)))
        assert self.sampler is not None
        self.sampler.stop()
        series = self.sampler.series()
        res = Result(
            series=series,
            details={"resource_usage": {"marks": self.sampler.marks, "interval_s": self.sampler.interval}},
        )
        for s in series:
            if s.v:
                what = s.labels.get("what", "")
                res.figures.append(Figure(f"{s.name}_max", max(s.v), s.unit, {"what": what}))
                res.perfdata.append(
                    {
                        "data": {"Max": max(s.v), "Mean": sum(s.v) / len(s.v)},
                        "unit": s.unit,
                        "labels": {"Metric": "resource_usage", "Series": s.name, "What": what},
                    }
                )
        ctx.state.pop("sampler", None)
        self.sampler = None
        return res

    def cleanup(self, ctx: Context) -> None:
        if self.sampler is not None:
            self.sampler.stop()
            self.sampler = None
