"""NDR / PDR search (RFC 2544 throughput, with the partial-drop variant FD.io CSIT reports).

For one path and frame size: the highest offered rate whose trial loses at most ``loss``
(0 for NDR, 0.005 for PDR) of the frames, loss counted at the receiver. Binary search between
0 and the rate of a first trial at the generator's maximum, stopping when the bracket is narrower
than ``resolution`` (relative to the upper bound) or after ``max_iterations`` trials.

A generator that is closed-loop (``xdp-live``: one core runs the sender and every hop, so it
never offers more than the path absorbs) usually passes the maximum-rate trial: then the search
ends at once and NDR = the rate that trial delivered -- stated in the result as ``method``. An
open-loop generator (TRex at line rate) drops at the top and the search really bisects.
Trials are cached by offered rate, so NDR and PDR searches share them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from centaurus.trafficgen.base import TrialResult
from centaurus.trafficgen.frames import l1_gbps

NDR, PDR = 0.0, 0.005


@dataclass
class SearchConfig:
    """``trial_s``: duration of each trial; ``resolution``: stop when (hi - lo) / hi is below it;
    ``max_iterations``: trials after the first one; ``losses``: thresholds searched (NDR, PDR);
    ``min_rate``: below this (pps) the search gives up (the path is broken, not slow)."""

    trial_s: float = 2.0
    resolution: float = 0.02
    max_iterations: int = 10
    losses: tuple[float, ...] = (NDR, PDR)
    min_rate: float = 1000.0

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> SearchConfig:
        c = cls()
        for k in ("trial_s", "resolution", "min_rate"):
            if k in p:
                setattr(c, k, float(p[k]))
        if "max_iterations" in p:
            c.max_iterations = int(p["max_iterations"])
        if "losses" in p:
            c.losses = tuple(float(x) for x in p["losses"])
        if c.trial_s <= 0 or not 0 < c.resolution < 1 or c.max_iterations < 0:
            raise ValueError(f"bad NDR search settings: {c}")
        if any(not 0 <= x < 1 for x in c.losses):
            raise ValueError(f"loss thresholds must be fractions in [0, 1): {c.losses}")
        return c


@dataclass
class Point:
    offered_pps: float  # 0 = the generator's maximum
    sent_pps: float
    rx_pps: float
    loss: float

    @classmethod
    def of(cls, offered: float, r: TrialResult) -> Point:
        sent = r.tx_packets / r.duration_s if r.duration_s else 0.0
        return cls(offered, sent, r.rx_pps, r.loss_ratio)


@dataclass
class SearchResult:
    loss_threshold: float
    rate_pps: float  # received pps of the best passing trial (0: none passed)
    frame_size: int
    method: str  # "max-rate trial passed" | "binary search" | "no passing rate"
    iterations: int
    trials: list[Point] = field(default_factory=list)

    @property
    def mpps(self) -> float:
        return self.rate_pps / 1e6

    @property
    def gbps_l1(self) -> float:
        return l1_gbps(self.rate_pps, self.frame_size)

    @property
    def name(self) -> str:
        return "NDR" if self.loss_threshold == 0 else f"PDR{self.loss_threshold * 100:g}%"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "loss_threshold": self.loss_threshold,
            "rate_pps": round(self.rate_pps),
            "mpps": round(self.mpps, 4),
            "gbps_l1": round(self.gbps_l1, 4),
            "frame_size": self.frame_size,
            "method": self.method,
            "iterations": self.iterations,
            "trials": [vars(t) for t in self.trials],
        }


class Searcher:
    """Runs ``trial(rate_pps) -> TrialResult`` (rate 0 = as fast as the generator can) and
    bisects; one instance per (path, frame size) so trials are shared between thresholds."""

    def __init__(
        self,
        trial: Callable[[float], TrialResult],
        frame_size: int,
        cfg: SearchConfig,
        first: TrialResult | None = None,
    ) -> None:
        self.trial, self.size, self.cfg = trial, frame_size, cfg
        self.cache: dict[float, Point] = {}
        if first is not None:
            self.cache[0.0] = Point.of(0.0, first)

    def point(self, rate: float) -> Point:
        key = round(rate, 3)
        if key not in self.cache:
            self.cache[key] = Point.of(rate, self.trial(rate))
        return self.cache[key]

    def search(self, loss: float) -> SearchResult:
        top = self.point(0.0)
        seen = [top]
        if top.loss <= loss and top.rx_pps > 0:
            return SearchResult(loss, top.rx_pps, self.size, "max-rate trial passed", 1, seen)
        lo, hi = 0.0, top.sent_pps
        best: Point | None = None
        it = 0
        while (
            it < self.cfg.max_iterations and hi > self.cfg.min_rate and (hi - lo) / hi > self.cfg.resolution
        ):
            mid = (lo + hi) / 2
            p = self.point(mid)
            seen.append(p)
            it += 1
            if p.loss <= loss and p.rx_pps > 0:
                lo, best = mid, p
            else:
                hi = mid
        if best is None:
            return SearchResult(loss, 0.0, self.size, "no passing rate", it + 1, seen)
        return SearchResult(loss, best.rx_pps, self.size, "binary search", it + 1, seen)

    def run(self) -> list[SearchResult]:
        return [self.search(x) for x in self.cfg.losses]
