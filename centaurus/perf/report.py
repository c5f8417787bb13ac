"""The "Performance campaigns" section of report.html, from ``<report_dir>/perf/*.json``.

Per campaign: what it ran on (kernel, CPU, load before/after, dataplanes, generators), every
judged figure next to its threshold(s) and same-run reference, then plots -- latency CDFs (API
calls, store, pod-startup transitions), packet rate vs frame size per path, CPU and memory over
time -- notes and errors. Self-contained like the rest of the report: inline PNGs from
matplotlib's ``Figure`` (no pyplot state), no external assets. ``render_html`` in
:mod:`centaurus.reports.render` calls :func:`campaigns_html`.
"""

from __future__ import annotations

import base64
import io
import json
from collections import defaultdict
from html import escape
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from centaurus.perf.summary import labels_text, reference_text, threshold_text, value_text

COLORS = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795", "#b7791f", "#4a5568", "#e53e3e")
PILL = {"met": "met", "not-met": "not-met", "no-figure": "not-met", "reported": "not-applicable",
        "not-verified": "not-tested"}


def load_campaigns(report_dir: Path) -> list[dict[str, Any]]:
    out = []
    for p in sorted((Path(report_dir) / "perf").glob("*.json")):
        if p.name.endswith(".perfdata.json"):
            continue
        try:
            doc = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("schema", "").startswith("centaurus-lab/perf-campaign"):
            out.append(doc)
    return out


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(title: str, png: str, caption: str = "") -> str:
    return (
        f"<div class='plot'><img alt='{escape(title)}' src='data:image/png;base64,{png}'>"
        f"<div class='sub'>{escape(title)}{' &middot; ' + escape(caption) if caption else ''}</div></div>"
    )


def pps_vs_frame_size(doc: dict[str, Any]) -> str:
    """Mpps (per core of the generator thread when known) and layer-1 Gbps against frame size."""
    rows: dict[str, dict[int, tuple[float, float]]] = defaultdict(dict)
    for it in doc.get("dataItems", []):
        lab = it.get("labels") or {}
        if lab.get("Metric") != "packet_rate" or not str(lab.get("FrameSize", "")).isdigit():
            continue
        d = it.get("data") or {}
        rate = float(d.get("RatePerCore") or d.get("Rate") or 0.0)
        size = int(lab["FrameSize"])
        rows[str(lab.get("Path", "?"))][size] = (rate / 1e6, rate * (size + 20) * 8 / 1e9)
    if not rows:
        return ""
    fig = Figure(figsize=(9.5, 3.8))
    ax1, ax2 = fig.subplots(1, 2)
    for n, (path, pts) in enumerate(sorted(rows.items())):
        xs = sorted(pts)
        style = {"color": COLORS[n % len(COLORS)], "marker": "o", "markersize": 3, "label": path}
        ax1.plot(xs, [pts[x][0] for x in xs], **style)
        ax2.plot(xs, [pts[x][1] for x in xs], **style)
    for ax, ylabel in ((ax1, "Mpps"), (ax2, "Gbps (layer 1: +20 B preamble/IFG)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks([64, 128, 256, 512, 1024, 1518], ["64", "128", "256", "512", "1024", "1518"])
        ax.set_xlabel("frame size (bytes, incl. FCS)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    ax1.set_yscale("log")
    ax1.legend(fontsize=6.5, loc="lower left")
    fig.suptitle("packet rate vs frame size, per path (receiver's count)", fontsize=10)
    return _img("packet rate vs frame size", _png(fig), f"{len(rows)} paths")


def series_plot(doc: dict[str, Any]) -> str:
    """CPU (%) and memory (MiB) over time, phase marks as vertical lines."""
    series = [s for s in doc.get("series", []) if s.get("t")]
    if not series:
        return ""
    fig = Figure(figsize=(9.5, 4.2))
    ax1, ax2 = fig.subplots(1, 2)
    n1 = n2 = 0
    for s in series:
        label = f"{s['name']} {s.get('labels', {}).get('what', '')}".strip()
        if s.get("unit") == "%":
            ax1.plot(s["t"], s["v"], color=COLORS[n1 % len(COLORS)], label=label, linewidth=1)
            n1 += 1
        else:
            ax2.plot(s["t"], s["v"], color=COLORS[n2 % len(COLORS)], label=label, linewidth=1)
            n2 += 1
    marks: list[Any] = []
    for v in (doc.get("details") or {}).values():
        if isinstance(v, dict) and isinstance(v.get("marks"), list):
            marks += v["marks"]
    for t, what in marks:
        for ax in (ax1, ax2):
            ax.axvline(float(t), color="#a0aec0", linestyle=":", linewidth=0.8)
        ax1.text(float(t), ax1.get_ylim()[1] * 0.95, str(what), fontsize=6, rotation=90, va="top")
    ax1.set_ylabel("CPU (% of all CPUs / of one CPU per process)")
    ax2.set_ylabel("memory (MiB)")
    for ax in (ax1, ax2):
        ax.set_xlabel("seconds")
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6.5)
    fig.suptitle("CPU and memory over time", fontsize=10)
    return _img("CPU and memory over time", _png(fig), f"{len(series)} series")


TIME_UNITS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
_QUIET = {"Metric", "Campaign", "Count", "Errors"}


def _short_labels(items: list[dict[str, Any]]) -> list[str]:
    """Per item, only the labels that differ between the items of one plot."""
    keys = sorted({k for i in items for k in (i.get("labels") or {}) if k not in _QUIET})
    varying = [k for k in keys if len({str((i.get("labels") or {}).get(k)) for i in items}) > 1]
    return [", ".join(f"{k}={(i.get('labels') or {}).get(k)}" for k in varying) or "all" for i in items]


def latency_plots(doc: dict[str, Any]) -> str:
    """Per Metric (api_latency, store_latency, pod_startup, provisioning, ...): a CDF of the raw
    samples of every series (log time axis when the spread is wide), legend below the plot."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for it in doc.get("dataItems", []):
        if isinstance(it, dict) and it.get("samples") and it.get("unit") in TIME_UNITS:
            groups[str((it.get("labels") or {}).get("Metric", "?"))].append(it)
    out = []
    for metric, items in sorted(groups.items()):
        items = items[:24]
        names = _short_labels(items)
        fig = Figure(figsize=(9.5, 3.6 + 0.17 * len(items)))
        ax = fig.add_subplot()
        lo, hi = float("inf"), 0.0
        for n, (it, name) in enumerate(zip(items, names, strict=True)):
            xs = sorted(float(v) * TIME_UNITS[it["unit"]] for v in it["samples"])
            lo, hi = min(lo, xs[0]), max(hi, xs[-1])
            ax.step(xs, [(k + 1) / len(xs) for k in range(len(xs))], where="post", linewidth=1.1,
                    color=COLORS[n % len(COLORS)], linestyle="-" if n < len(COLORS) else "--",
                    label=f"{name} (n={len(xs)}, p99 {it['data'].get('Perc99', 0):.3g} {it['unit']})")
        if lo > 0 and hi / lo > 50:
            ax.set_xscale("log")
        for q in (0.5, 0.9, 0.99):
            ax.axhline(q, color="#a0aec0", linewidth=0.6, linestyle=":")
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("fraction of samples")
        ax.set_ylim(0, 1.02)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
        ax.set_title(f"{metric}: latency distribution (CDF)", fontsize=10)
        out.append(_img(f"{metric} latency CDF", _png(fig), f"{len(items)} series"))
    return "".join(out)


def _figures_table(doc: dict[str, Any]) -> str:
    judged = [f for f in doc.get("figures", []) if f.get("status") != "reported"]
    others = [f for f in doc.get("figures", []) if f.get("status") == "reported"]

    def rows(figs: list[dict[str, Any]]) -> str:
        out = []
        for f in figs:
            st = str(f.get("status", ""))
            labels, value, thr = labels_text(f.get("labels") or {}), value_text(f), threshold_text(f)
            out.append(
                f"<tr><td>{escape(f['name'])}</td><td class='src'>{escape(labels)}</td>"
                f"<td class='num'>{escape(value)}</td><td class='num'>{escape(thr)}</td>"
                f"<td class='src'>{escape(reference_text(f))}</td>"
                f"<td><span class='pill {PILL.get(st, '')}'>{escape(st)}</span></td>"
                f"<td class='src'>{escape(f.get('note', ''))}</td></tr>"
            )
        return "".join(out)

    head = (
        "<tr><th>figure</th><th>labels</th><th>measured</th><th>threshold</th><th>same-run reference</th>"
        "<th>status</th><th>how</th></tr>"
    )
    out = (
        f"<table>{head}{rows(judged)}</table>"
        if judged
        else "<p class='sub'>no thresholds in this campaign</p>"
    )
    if others:
        out += (
            f"<details><summary>all {len(others)} other figures</summary><table>{head}{rows(others)}"
            "</table></details>"
        )
    return out


def _environment(doc: dict[str, Any]) -> str:
    env = doc.get("environment") or {}
    facts = [
        ("kernel", env.get("kernel")),
        ("CPU", f"{env.get('cpu')} x {env.get('cpus')}"),
        (
            "load average before / after",
            f"{env.get('load_average_before')} / {env.get('load_average_after')}",
        ),
        ("commit", env.get("commit")),
        ("dataplanes", ", ".join(env.get("dataplanes", [])) or "-"),
        ("traffic generators", ", ".join(env.get("trafficgens", [])) or "-"),
        ("targets", ", ".join(str(t) for t in env.get("targets", [])) or "-"),
        (
            "labs",
            "; ".join(
                f"{x.get('spec')} {x.get('dataplane')} ({x.get('backend')})" for x in env.get("labs", [])
            )
            or "-",
        ),
        ("tools", ", ".join(f"{k} {v}" for k, v in sorted((env.get("tools") or {}).items()))),
        (
            "python packages",
            ", ".join(f"{k} {v}" for k, v in sorted((env.get("python_packages") or {}).items())),
        ),
    ]
    return (
        "<table>"
        + "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in facts)
        + "</table>"
    )


def campaign_html(doc: dict[str, Any]) -> str:
    name = escape(str(doc.get("campaign")))
    counts: dict[str, int] = defaultdict(int)
    for f in doc.get("figures", []):
        counts[f.get("status", "")] += 1
    head = (
        f"<h3 id='campaign-{name}'>{name}{' (short)' if doc.get('short') else ''}</h3>"
        f"<p class='sub'>{escape(str(doc.get('description', '')))}</p>"
        f"<p class='sub'>started {escape(str(doc.get('started')))} &middot; {doc.get('duration_s')} s"
        f" &middot; {counts['met']} met, {counts['not-met'] + counts['no-figure']} not met,"
        f" {counts['reported']} reported"
        f" &middot; <code>{escape(str(doc.get('file', '')))}</code></p>"
    )
    if doc.get("short_note"):
        head += f"<p class='warn'>Short run: {escape(doc['short_note'])}</p>"
    parts = [head, _figures_table(doc), pps_vs_frame_size(doc), latency_plots(doc), series_plot(doc)]
    notes = doc.get("notes") or []
    if notes:
        parts.append("<ul class='notes'>" + "".join(f"<li>{escape(n)}</li>" for n in notes[:30]) + "</ul>")
    for v in doc.get("not_verified") or []:
        who, why = escape(str(v.get("identifier"))), escape(str(v.get("reason")))
        parts.append(f"<p class='warn'>{who}: {why}</p>")
    for e in doc.get("errors") or []:
        parts.append(
            f"<p class='warn'>error in {escape(str(e.get('step')))} / {escape(str(e.get('identifier')))}:"
            f" {escape(str(e.get('error')))}</p>"
        )
    parts.append(f"<details><summary>environment</summary>{_environment(doc)}</details>")
    return "".join(parts)


def campaigns_html(report_dir: Path) -> str:
    """The whole section for every campaign document under ``report_dir/perf`` ("" if none)."""
    docs = load_campaigns(report_dir)
    if not docs:
        return ""
    index = " &middot; ".join(
        f"<a href='#campaign-{escape(str(d['campaign']))}'>{escape(str(d['campaign']))}</a>" for d in docs
    )
    return f"<p class='sub'>{index}</p>" + "".join(campaign_html(d) for d in docs)
