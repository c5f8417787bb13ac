"""Prometheus text exposition for /metrics, without a client library: request latency
histograms per (resource, verb, code), open watches per resource, store latency per operation.

Names follow the upstream apiserver (``apiserver_request_duration_seconds``,
``apiserver_registered_watchers``, ``etcd_request_duration_seconds``) so existing dashboards and
clusterloader2's api-latency measurement can read them.
"""

from __future__ import annotations

import bisect
from collections import defaultdict

BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.2,
    0.4,
    0.6,
    0.8,
    1.0,
    1.25,
    1.5,
    2.0,
    3.0,
    4.0,
    5.0,
    6.0,
    8.0,
    10.0,
    15.0,
    20.0,
    30.0,
    45.0,
    60.0,
)
Labels = tuple[tuple[str, str], ...]


class Histogram:
    def __init__(self, name: str, help_: str) -> None:
        self.name, self.help = name, help_
        self.series: dict[Labels, list[float]] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        s = self.series.get(key)
        if s is None:
            s = self.series[key] = [0.0] * (len(BUCKETS) + 2)  # buckets..., count, sum
        i = bisect.bisect_left(BUCKETS, value)
        if i < len(BUCKETS):
            s[i] += 1
        s[-2] += 1
        s[-1] += value

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for key, s in sorted(self.series.items()):
            lab = ",".join(f'{k}="{v}"' for k, v in key)
            acc = 0.0
            for b, c in zip(BUCKETS, s, strict=False):
                acc += c
                out.append(f'{self.name}_bucket{{{lab},le="{b}"}} {acc:g}')
            out.append(f'{self.name}_bucket{{{lab},le="+Inf"}} {s[-2]:g}')
            out.append(f"{self.name}_count{{{lab}}} {s[-2]:g}")
            out.append(f"{self.name}_sum{{{lab}}} {s[-1]:.6f}")
        return out


class Gauge:
    def __init__(self, name: str, help_: str, label: str) -> None:
        self.name, self.help, self.label = name, help_, label
        self.values: dict[str, float] = defaultdict(float)

    def inc(self, key: str) -> None:
        self.values[key] += 1

    def dec(self, key: str) -> None:
        self.values[key] -= 1

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge"]
        out += [f'{self.name}{{{self.label}="{k}"}} {v:g}' for k, v in sorted(self.values.items())]
        return out


class Counter(Gauge):
    def render(self) -> list[str]:
        return [
            line.replace("# TYPE " + self.name + " gauge", "# TYPE " + self.name + " counter")
            for line in super().render()
        ]


class Metrics:
    def __init__(self) -> None:
        self.requests = Histogram(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, group, resource.",
        )
        self.store = Histogram(
            "etcd_request_duration_seconds",
            "Store request latency in seconds for each operation and partition.",
        )
        self.watchers = Gauge(
            "apiserver_registered_watchers", "Number of currently open watches.", "resource"
        )
        self.watch_events = Counter("apiserver_watch_events_total", "Watch events sent.", "resource")

    def render(self) -> bytes:
        lines: list[str] = []
        for m in (self.requests, self.store, self.watchers, self.watch_events):
            lines += m.render()
        return ("\n".join(lines) + "\n").encode()


METRICS = Metrics()
