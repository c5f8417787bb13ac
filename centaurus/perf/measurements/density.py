"""``pod-density``: the density campaign of H8's runner (:func:`centaurus.perf.density.run_density`),
as a campaign measurement -- hollow nodes grown in steps, pods at a fixed creation rate with
H7's clusterloader2 PodStartupLatency transitions, scheduler throughput, API latency held at
size, per-host/per-pod costs and the projection to the SCALE-* sizes. Nothing is measured
here: params go to the runner as keyword arguments (``profile`` defaults to ``short`` with
``--short``, ``full`` otherwise) and its Result comes back as is.
"""

from __future__ import annotations

from typing import Any

from centaurus.perf.core import Context, Measurement, Result


class PodDensity(Measurement):
    method = "pod-density"

    def gather(self, ctx: Context, params: dict[str, Any]) -> Result:
        from centaurus.perf.density import run_density

        kw = {k: v for k, v in params.items() if k != "action"}
        kw.setdefault("profile", "short" if ctx.short else "full")
        ctx.progress.total(1)
        res = run_density(report_dir=ctx.report_dir / "perf", state_dir=ctx.work_dir / "density", **kw)
        ctx.progress.advance(1, f"profile {kw['profile']}")
        ctx.environment.setdefault("targets", []).append(
            {"name": "builtin", "by": "density runner", "store": kw.get("store", "sqlite")}
        )
        return res
