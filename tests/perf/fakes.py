"""Measurements for the framework tests (registered by monkeypatching the registry)."""

from __future__ import annotations

from typing import Any

from centaurus.perf.core import Context, Figure, Measurement, Result, Series

EVENTS: list[str] = []


class Fixed(Measurement):
    """Reports the figures its params name: ``figures: {name: value}``."""

    def gather(self, ctx: Context, params: dict[str, Any]) -> Result:
        EVENTS.append(f"gather {params.get('tag', '')} short={ctx.short}")
        ctx.progress.total(2)
        ctx.progress.advance(2, "ok")
        figs = [
            Figure(n, float(v), params.get("unit", "ratio"), {"case": str(params.get("case", "a"))})
            for n, v in (params.get("figures") or {}).items()
        ]
        item = {
            "data": {"Perc50": 1.0, "Perc90": 2.0, "Perc99": 3.0},
            "unit": "ms",
            "labels": {"Metric": "fake_latency"},
            "samples": [float(i) for i in range(12_000)],
        }
        return Result(figures=figs, perfdata=[item], series=[Series("fake_cpu", "%", [0.0, 1.0], [5.0, 7.0])])

    def cleanup(self, ctx: Context) -> None:
        EVENTS.append("cleanup fixed")


class Background(Measurement):
    def start(self, ctx: Context, params: dict[str, Any]) -> None:
        EVENTS.append("start bg")

    def gather(self, ctx: Context, params: dict[str, Any]) -> Result:
        EVENTS.append("gather bg")
        return Result(figures=[Figure("bg_seen", 1.0, "count")])


class Broken(Measurement):
    def gather(self, ctx: Context, params: dict[str, Any]) -> Result:
        ctx.state.setdefault("exit", __import__("contextlib").ExitStack()).callback(
            lambda: EVENTS.append("teardown ran")
        )
        raise RuntimeError("the lab caught fire")


class Unavailable(Measurement):
    def gather(self, ctx: Context, params: dict[str, Any]) -> Result:
        from centaurus.trafficgen.base import GeneratorUnavailable

        raise GeneratorUnavailable("no TRex server configured")


class OpenLoopGen:
    """A generator over two fake paths: 'link' forwards everything, 'overlay' up to 6 Mpps;
    rate 0 offers 14.88 Mpps (10G at 64 B)."""

    name = "fake"
    cfg = {"line_rate_gbps": 10}

    def __init__(self) -> None:
        self.trials: list[tuple[str, float]] = []

    def run_trial(self, path: dict[str, Any], trial: Any) -> Any:
        from centaurus.trafficgen.base import TrialResult

        offered = trial.rate_pps or 14_880_952.0
        cap = 6e6 if path["kind"] == "overlay" else 1e12
        self.trials.append((path["kind"], trial.rate_pps))
        tx = int(offered * trial.duration_s)
        rx = int(min(offered, cap) * trial.duration_s)
        return TrialResult(tx, rx, trial.duration_s, extra={"pps_per_core": rx / trial.duration_s})
