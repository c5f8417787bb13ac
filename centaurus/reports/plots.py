"""Plots of a run's PerfData for the HTML report, as base64 PNG (self-contained report).

Uses :class:`matplotlib.figure.Figure` directly, never ``pyplot``: no global figure state, no
display backend, safe inside a pytest session. Every function returns a list of
:class:`Plot` (title + PNG as base64) and is happy with no data (returns ``[]``).

PerfData items follow clusterloader2 (``{"data": {"Perc50", "Perc90", "Perc99"}, "unit", "labels":
{"Metric": ...}}``), optionally with raw ``samples``. Packet-rate items carry the rate in
``data["Rate"]`` (or ``Perc50`` when a campaign reports a distribution of trial rates) and
``labels`` ``Path``/``FrameSize`` (lower-case ``path``/``frame_size`` are accepted too).
"""

from __future__ import annotations

import base64
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure

TIME_UNITS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}  # factor to ms
RATE_UNITS = {"pps": 1.0, "kpps": 1e3, "Mpps": 1e6}  # factor to pps
PERCENTILES = ("Perc50", "Perc90", "Perc99")
COLORS = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795", "#b7791f", "#4a5568")
#: Label keys that only repeat what the plot title says.
_QUIET_LABELS = {"Metric", "metric"}


@dataclass(frozen=True)
class Plot:
    title: str
    png_b64: str
    caption: str = ""


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def label_text(labels: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in sorted(labels.items()) if k not in _QUIET_LABELS]
    return ", ".join(parts) or "all"


def _metric(item: dict[str, Any]) -> str:
    labels = item.get("labels") or {}
    return str(labels.get("Metric") or labels.get("metric") or "unlabelled")


def _to_ms(value: float, unit: str) -> float:
    return value * TIME_UNITS[unit]


def latency_items(perf: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """PerfData items with a time unit, grouped by their ``Metric`` label."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in perf:
        if item.get("unit") in TIME_UNITS and isinstance(item.get("data"), dict):
            groups[_metric(item)].append(item)
    return dict(groups)


def latency_plots(perf: Sequence[dict[str, Any]]) -> list[Plot]:
    """Per Metric: a CDF of the raw samples when any item has them, else p50/p90/p99 bars."""
    plots: list[Plot] = []
    for metric, items in sorted(latency_items(perf).items()):
        with_samples = [i for i in items if i.get("samples")]
        if with_samples:
            plots.append(_cdf(metric, with_samples))
        plots.append(_percentile_bars(metric, items))
    return plots


def _cdf(metric: str, items: list[dict[str, Any]]) -> Plot:
    fig = Figure(figsize=(7.5, 3.6))
    ax = fig.add_subplot()
    total = 0
    for n, item in enumerate(items[: len(COLORS) * 2]):
        values = sorted(_to_ms(float(v), item["unit"]) for v in item["samples"])
        total += len(values)
        ys = [(k + 1) / len(values) for k in range(len(values))]
        ax.step(values, ys, where="post", color=COLORS[n % len(COLORS)],
                linestyle="-" if n < len(COLORS) else "--",
                label=f"{label_text(item.get('labels') or {})} (n={len(values)})")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("fraction of samples")
    ax.set_ylim(0, 1.02)
    for q in (0.5, 0.9, 0.99):
        ax.axhline(q, color="#a0aec0", linewidth=0.6, linestyle=":")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"{metric}: latency distribution (CDF)", fontsize=10)
    return Plot(f"{metric} latency CDF", _png(fig), f"{len(items)} series, {total} samples")


def _percentile_bars(metric: str, items: list[dict[str, Any]]) -> Plot:
    items = items[:24]
    fig = Figure(figsize=(7.5, 0.5 + 0.38 * len(items) * 1.2 + 1.0))
    ax = fig.add_subplot()
    names = [label_text(i.get("labels") or {}) for i in items]
    height = 0.8 / len(PERCENTILES)
    for k, perc in enumerate(PERCENTILES):
        vals = [_to_ms(float(i["data"].get(perc, 0.0)), i["unit"]) for i in items]
        ax.barh([n + k * height for n in range(len(items))], vals, height=height,
                color=COLORS[k], label=perc)
    ax.set_yticks([n + height for n in range(len(items))], names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("latency (ms)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"{metric}: p50 / p90 / p99", fontsize=10)
    return Plot(f"{metric} percentiles", _png(fig), f"{len(items)} series")


def rate_of(item: dict[str, Any]) -> float | None:
    """Packets per second of a packet-rate item, or None when it carries no rate."""
    data = item.get("data") or {}
    unit = item.get("unit")
    if unit not in RATE_UNITS:
        return None
    for key in ("Rate", "rate", "Perc50"):
        if isinstance(data.get(key), int | float):
            return float(data[key]) * RATE_UNITS[unit]
    return None


def _label(labels: dict[str, Any], *keys: str) -> str:
    for k in keys:
        if k in labels:
            return str(labels[k])
    return "-"


def packet_rate_plot(perf: Sequence[dict[str, Any]]) -> list[Plot]:
    """One grouped bar chart: packet rate (Mpps) per path, one bar per frame size."""
    rows: dict[str, dict[str, float]] = defaultdict(dict)
    for item in perf:
        rate = rate_of(item)
        if rate is None:
            continue
        labels = item.get("labels") or {}
        path = _label(labels, "Path", "path", "Dataplane", "dataplane")
        extra = _label(labels, "Dataplane", "dataplane")
        if extra != "-" and extra != path:
            path = f"{extra}: {path}"
        size = _label(labels, "FrameSize", "frame_size", "frameSize")
        rows[path][size] = rate
    if not rows:
        return []
    sizes = sorted({s for r in rows.values() for s in r}, key=lambda s: (not s.isdigit(), int(s) if
                                                                          s.isdigit() else 0, s))
    paths = sorted(rows)
    fig = Figure(figsize=(7.5, 0.8 + 0.45 * len(paths) * max(1, len(sizes)) * 0.6 + 1.0))
    ax = fig.add_subplot()
    height = 0.8 / max(1, len(sizes))
    for k, size in enumerate(sizes):
        vals = [rows[p].get(size, 0.0) / 1e6 for p in paths]
        ax.barh([n + k * height for n in range(len(paths))], vals, height=height,
                color=COLORS[k % len(COLORS)], label=f"{size} B" if size.isdigit() else size)
    ax.set_yticks([n + height * (len(sizes) - 1) / 2 for n in range(len(paths))], paths, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("received packet rate (Mpps)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=7, title="frame size", title_fontsize=7, loc="lower right")
    ax.set_title("packet rate per path and frame size", fontsize=10)
    return [Plot("packet rates", _png(fig), f"{len(paths)} paths, {len(sizes)} frame sizes")]


def headroom_plot(requirements: Sequence[dict[str, Any]]) -> list[Plot]:
    """Measured figure relative to its threshold for every numeric requirement with a figure.

    1.0 is the threshold; for upper bounds (``<``) below 1 is good, for lower bounds (``>=``)
    above 1 is good -- the bar colour says which side it is on.
    """
    rows = [r for r in requirements if r.get("measured") is not None and r.get("threshold")]
    if not rows:
        return []
    fig = Figure(figsize=(7.5, 0.8 + 0.32 * len(rows) + 0.6))
    ax = fig.add_subplot()
    ratios, colors = [], []
    for r in rows:
        ratio = float(r["measured"]) / float(r["threshold"])
        ok = ratio < 1 if r["op"] == "<" else ratio <= 1 if r["op"] == "<=" else \
            ratio > 1 if r["op"] == ">" else ratio >= 1
        ratios.append(ratio)
        colors.append("#38a169" if ok else "#e53e3e")
    ax.barh(range(len(rows)), ratios, color=colors)
    ax.axvline(1.0, color="#1a202c", linewidth=1)
    ax.set_yticks(range(len(rows)), [f"{r['id']} ({r['op']})" for r in rows], fontsize=7)
    ax.invert_yaxis()
    if ratios and max(ratios) / max(min(ratios), 1e-12) > 100:
        ax.set_xscale("log")
    ax.set_xlabel("measured / threshold")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title("figures against their thresholds (green: within)", fontsize=10)
    return [Plot("figures vs thresholds", _png(fig), f"{len(rows)} numeric requirements")]


def all_plots(doc: dict[str, Any]) -> dict[str, list[Plot]]:
    perf = [p for p in doc.get("perf") or [] if isinstance(p, dict)]
    return {
        "latency": latency_plots(perf),
        "packet_rate": packet_rate_plot(perf),
        "headroom": headroom_plot(doc.get("requirements") or []),
    }
