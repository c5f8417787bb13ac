"""What every measurement shares: the figures it reports, the context it runs in, the registry
that finds it by name (clusterloader2's measurement factory, with entry points).

A measurement is a class constructed with no arguments, with ``start(ctx, params)`` and
``gather(ctx, params) -> Result`` (clusterloader2's two actions) and ``cleanup(ctx)``;
``run`` = start + gather for the ones that just do their work. A :class:`Result` carries
named scalar :class:`Figure` s (judged by the campaign's thresholds, each with its same-run
reference), clusterloader2 PerfData items (with raw samples) and time series (CPU/memory over
time).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

PerfData = dict[str, Any]
ENTRY_POINT_GROUP = "centaurus.perf_measurements"

#: Measurements shipped with the project (method name -> "module:Class"). Others register
#: under the ``centaurus.perf_measurements`` entry-point group.
BUILTIN: dict[str, str] = {
    "packet-rate": "centaurus.perf.measurements.packet_rate:PacketRate",
    "net-overhead": "centaurus.perf.measurements.net_overhead:NetOverhead",
    "resource-usage": "centaurus.perf.measurements.resource_usage:ResourceUsage",
    "api-latency": "centaurus.perf.measurements.api_latency:ApiLatency",
    "pod-density": "centaurus.perf.measurements.density:PodDensity",
    "pod-startup": "centaurus.perf.measurements.startup:PodStartup",
    "provisioning": "centaurus.perf.measurements.provisioning:Provisioning",
}


class MeasurementError(RuntimeError):
    """A measurement could not produce its figures (one line: what and why)."""


@dataclass
class Figure:
    """One scalar the campaign may judge: ``value`` in ``unit``, with the same-run reference it
    was compared with (``reference``: name and value) and labels that say which case it is."""

    name: str
    value: float
    unit: str
    labels: dict[str, str] = field(default_factory=dict)
    reference: dict[str, Any] | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "", {})}


@dataclass
class Series:
    """A time series (CPU or memory over time): ``t`` seconds since the series started."""

    name: str
    unit: str
    t: list[float] = field(default_factory=list)
    v: list[float] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    figures: list[Figure] = field(default_factory=list)
    perfdata: list[PerfData] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # anything else worth keeping (JSON)
    notes: list[str] = field(default_factory=list)

    def extend(self, other: Result) -> None:
        self.figures += other.figures
        self.perfdata += other.perfdata
        self.series += other.series
        self.details.update(other.details)
        self.notes += other.notes


class Progress:
    """What a measurement may tell the runner about its progress (a no-op by default)."""

    def total(self, n: int) -> None:
        """Announce ``n`` units of work (trials, requests, ...)."""

    def advance(self, n: int = 1, what: str = "") -> None:
        """``n`` more units done; ``what`` is a short status text."""


@dataclass
class Context:
    """What the runner hands a measurement: run size, where outputs go, shared state between
    steps (labs, targets), environment facts to record, a progress sink and a log."""

    short: bool
    report_dir: Path
    work_dir: Path
    state: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    progress: Progress = field(default_factory=Progress)
    log: Callable[[str], None] = print

    def pick(self, short: Any, full: Any) -> Any:
        return short if self.short else full


class Measurement:
    """Base class; subclasses override :meth:`gather` (and :meth:`start` when they run in the
    background across steps)."""

    method = "measurement"

    def start(self, ctx: Context, params: dict[str, Any]) -> None:
        """Begin (background measurements); the default does nothing."""

    def gather(self, ctx: Context, params: dict[str, Any]) -> Result:
        raise NotImplementedError

    def run(self, ctx: Context, params: dict[str, Any]) -> Result:
        self.start(ctx, params)
        return self.gather(ctx, params)

    def cleanup(self, ctx: Context) -> None:
        """Release whatever is still held (called after errors too; idempotent)."""


def available() -> dict[str, str]:
    """Every known measurement method -> where it lives."""
    out = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        out[ep.name] = ep.value
    return out


def load(method: str) -> type[Measurement]:
    """The class registered as ``method`` (clear error when unknown or not importable)."""
    known = available()
    if method not in known:
        raise MeasurementError(f"unknown measurement {method!r} (known: {', '.join(sorted(known))})")
    mod, _, attr = known[method].partition(":")
    try:
        cls = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as exc:
        raise MeasurementError(
            f"measurement {method!r} cannot be loaded from {known[method]}: {exc}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Measurement)):
        raise MeasurementError(f"{known[method]} is not a Measurement subclass")
    return cls
