"""``report.html``: the compliance report of one run, one self-contained file.

Sections: summary (counts per status), per-area summary, traceability matrix (requirement ->
tests -> status -> measured vs threshold), plots (latency distributions, packet rates, figures
against thresholds), environment (machine, tools, target, lab, profile), every test.

Self-contained on purpose: the file is mailed around and archived as CI artifact, so CSS is
inline and plots are base64 PNGs; nothing is fetched when it is opened.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from collections import Counter
from html import escape
from pathlib import Path
from typing import Any

from centaurus.reports import plots

STATUS_ORDER = ("met", "not-met", "not-tested", "not-applicable")
AREA_ORDER = ("performance", "scale", "api", "tenancy", "compute", "ha", "network", "edge", "security")

CSS = """
body{font:14px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1a202c;margin:0;
background:#f7fafc}
main{max-width:1280px;margin:0 auto;padding:18px 28px 60px}
h1{font-size:22px;margin:6px 0 2px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #cbd5e0;
padding-bottom:3px}
.sub{color:#4a5568;font-size:13px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
th,td{border:1px solid #e2e8f0;padding:4px 7px;text-align:left;vertical-align:top}
th{background:#edf2f7;font-weight:600}
tr:target{outline:2px solid #3182ce}
.pill{display:inline-block;border-radius:9px;padding:1px 8px;font-size:12px;font-weight:600;
white-space:nowrap}
.met{background:#c6f6d5;color:#22543d}.not-met{background:#fed7d7;color:#822727}
.not-tested{background:#fefcbf;color:#744210}.not-applicable{background:#e2e8f0;color:#2d3748}
.passed{color:#22543d}.failed,.error{color:#9b2c2c}.skipped{color:#744210}
.cards{display:flex;gap:10px;flex-wrap:wrap;margin:10px 0}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:8px 16px;min-width:120px}
.card b{font-size:24px;display:block}
.tests{margin:0;padding-left:16px}.tests li{font-family:monospace;font-size:11.5px;word-break:break-all}
.notes{font-size:12px;color:#4a5568;margin:0;padding-left:16px;overflow-wrap:anywhere}
table.matrix{table-layout:fixed}.matrix .fig{font-family:monospace;overflow-wrap:anywhere}
.num{font-family:monospace;white-space:nowrap}
.src{font-size:11.5px;color:#718096}
.plot{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:8px;margin:10px 0}
.plot img{max-width:100%}
.warn{background:#fffaf0;border:1px solid #f6ad55;padding:8px 12px;border-radius:6px}
details summary{cursor:pointer;font-weight:600}
code{font-size:12px}
"""


def _pill(status: str) -> str:
    return f'<span class="pill {escape(status)}">{escape(status)}</span>'


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return escape(str(value))


def figure_text(r: dict[str, Any]) -> str:
    """'812 ms < 5,000 ms' -- measured against threshold, or whichever half exists."""
    unit = r.get("unit") or ""
    measured = r.get("measured")
    thr = r.get("threshold")
    left = f"{_fmt(measured)} {escape(unit)}" if measured is not None else "no figure"
    if thr is None:
        return left if measured is not None else ""
    return f"{left} / {escape(str(r.get('op')))} {_fmt(thr)} {escape(unit)}"


def _header(doc: dict[str, Any]) -> str:
    run = doc.get("run") or {}
    tgt = doc.get("target") or {}
    lab = run.get("lab") or {}
    target = escape(str(tgt.get("name", "?")))
    if tgt.get("arg"):
        target += f" ({escape(str(tgt['arg']))})"
    lab_txt = "none"
    if lab:
        lab_txt = f"{escape(str(lab.get('backend')))} ({escape(Path(str(lab.get('spec'))).name)})"
    facts = [f"target <b>{target}</b>", f"lab <b>{lab_txt}</b>",
             f"profile <b>{escape(str(run.get('profile', '?')))}</b>",
             f"started {escape(str(run.get('started', '?')))}",
             f"{escape(str(run.get('duration_s', '?')))} s", f"schema {escape(str(doc.get('schema', '?')))}"]
    return f"<h1>Centaurus conformance report</h1><div class='sub'>{' &middot; '.join(facts)}</div>"


def _summary(doc: dict[str, Any]) -> str:
    counts = doc.get("summary") or Counter(r["status"] for r in doc.get("requirements", []))
    total = sum(counts.values())
    cards = [f"<div class='card'><b>{total}</b>requirements</div>"]
    cards += [f"<div class='card'><b>{counts.get(s, 0)}</b>{_pill(s)}</div>" for s in STATUS_ORDER]
    out = "<h2 id='summary'>Summary</h2><div class='cards'>" + "".join(cards) + "</div>"
    ratchet = (doc.get("run") or {}).get("ratchet")
    if ratchet is not None:
        status = {r["id"]: r["status"] for r in doc.get("requirements", [])}
        broken = [i for i in ratchet if status.get(i) != "met"]
        out += (f"<p>Ratchet: {len(ratchet)} requirement(s) must be met; "
                + ("<b>all are</b>." if not broken else
                   "<b>not met: " + ", ".join(f"<a href='#{escape(i)}'>{escape(i)}</a>" for i in broken)
                   + "</b>.") + "</p>")
    unknown = doc.get("unknown_requirement_ids")
    if unknown:
        out += (f"<p class='warn'>Tests named requirement IDs that are not in the catalog: "
                f"{escape(', '.join(unknown))}</p>")
    failing = [r for r in doc.get("requirements", []) if r["status"] == "not-met"]
    if failing:
        out += ("<p>Not met: " + ", ".join(f"<a href='#{escape(r['id'])}'>{escape(r['id'])}</a>"
                                            for r in failing) + "</p>")
    return out


def area_counts(requirements: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    areas: dict[str, dict[str, int]] = {}
    for r in requirements:
        areas.setdefault(r["area"], dict.fromkeys(STATUS_ORDER, 0))[r["status"]] += 1
    order = {a: i for i, a in enumerate(AREA_ORDER)}
    return dict(sorted(areas.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])))


def _areas(doc: dict[str, Any]) -> str:
    rows = []
    for area, counts in area_counts(doc.get("requirements", [])).items():
        cells = "".join(f"<td class='num'>{counts[s] or ''}</td>" for s in STATUS_ORDER)
        rows.append(f"<tr><td><a href='#area-{escape(area)}'>{escape(area)}</a></td>{cells}"
                    f"<td class='num'>{sum(counts.values())}</td></tr>")
    head = "".join(f"<th>{_pill(s)}</th>" for s in STATUS_ORDER)
    return (f"<h2 id='areas'>Per area</h2><table><tr><th>area</th>{head}<th>total</th></tr>"
            + "".join(rows) + "</table>")


def _matrix(doc: dict[str, Any]) -> str:
    outcomes = {t["nodeid"]: t for t in doc.get("tests", [])}
    rows = []
    seen_area = set()
    for r in doc.get("requirements", []):
        anchor = ""
        if r["area"] not in seen_area:
            seen_area.add(r["area"])
            anchor = f"<span id='area-{escape(r['area'])}'></span>"
        tests = []
        for nodeid in r.get("tests", []):
            t = outcomes.get(nodeid, {})
            oc = t.get("outcome", "?")
            tests.append(f"<li><span class='{escape(oc)}'>{escape(oc)}</span> {escape(nodeid)}"
                         f" <span class='src'>{_fmt(t.get('duration', 0.0))} s</span></li>")
        tests_html = f"<ul class='tests'>{''.join(tests)}</ul>" if tests else "<i>none</i>"
        notes = "".join(f"<li>{escape(n)}</li>" for n in r.get("notes", [])[:12])
        more = len(r.get("notes", [])) - 12
        if more > 0:
            notes += f"<li>... {more} more</li>"
        rows.append(
            f"<tr id='{escape(r['id'])}'><td>{anchor}<b>{escape(r['id'])}</b><br>"
            f"<span class='src'>{escape(r['area'])} &middot; {escape(r.get('verification', ''))}</span></td>"
            f"<td>{escape(r['title'])}<br><span class='src'>{escape(r.get('source', ''))}</span></td>"
            f"<td>{_pill(r['status'])}</td><td class='fig'>{figure_text(r)}</td>"
            f"<td>{tests_html}</td><td><ul class='notes'>{notes}</ul></td></tr>")
    # A fixed layout with explicit widths: long test node ids and notes must wrap inside their
    # own column instead of squeezing the others to one character.
    cols = "".join(f"<col style='width:{w}%'>" for w in (9, 25, 8, 14, 24, 20))
    return ("<h2 id='matrix'>Traceability matrix</h2><table class='matrix'><colgroup>" + cols
            + "</colgroup><tr><th>requirement</th><th>title and source</th><th>status</th>"
            "<th>measured / threshold</th><th>tests</th><th>notes</th></tr>"
            + "".join(rows) + "</table>")


def _plots(doc: dict[str, Any]) -> str:
    sections = plots.all_plots(doc)
    out = ["<h2 id='plots'>Plots</h2>"]
    titles = {"latency": "Latency distributions", "packet_rate": "Packet rates",
              "headroom": "Figures against thresholds"}
    for key, title in titles.items():
        out.append(f"<h3>{title}</h3>")
        items = sections.get(key) or []
        if not items:
            out.append("<p class='sub'>no data in this run</p>")
        for p in items:
            out.append(f"<div class='plot' data-plot='{escape(key)}'><img alt='{escape(p.title)}' "
                       f"src='data:image/png;base64,{p.png_b64}'><div class='sub'>{escape(p.title)}"
                       f" &middot; {escape(p.caption)}</div></div>")
    perf = doc.get("perf") or []
    if perf:
        rows = []
        for item in perf:
            data = ", ".join(f"{k}={_fmt(v)}" for k, v in (item.get("data") or {}).items())
            n = len(item.get("samples") or [])
            rows.append(f"<tr><td>{escape(plots.label_text(item.get('labels') or {}))}</td>"
                        f"<td>{escape(str((item.get('labels') or {}).get('Metric', '')))}</td>"
                        f"<td class='num'>{data}</td><td>{escape(str(item.get('unit', '')))}</td>"
                        f"<td class='num'>{n or ''}</td></tr>")
        out.append("<details><summary>PerfData items (" + str(len(perf)) + ")</summary><table><tr>"
                   "<th>labels</th><th>Metric</th><th>data</th><th>unit</th><th>samples</th></tr>"
                   + "".join(rows) + "</table></details>")
    return "".join(out)


def _kv_table(pairs: list[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in pairs)
    return f"<table>{rows}</table>"


def _environment(doc: dict[str, Any]) -> str:
    env = doc.get("environment") or {}
    run = doc.get("run") or {}
    tgt = doc.get("target") or {}
    pairs: list[tuple[str, Any]] = [(k, env[k]) for k in ("hostname", "kernel", "os", "cpu", "cpus",
                                                          "memory_gib", "python", "centaurus", "commit")
                                    if k in env]
    pairs += [(f"tool: {k}", v) for k, v in sorted((env.get("tools") or {}).items())]
    pairs += [(f"target: {k}", v if not isinstance(v, list | dict) else ", ".join(map(str, v)))
              for k, v in tgt.items()]
    lab = run.get("lab") or {}
    pairs += [(f"lab: {k}", v) for k, v in lab.items()] or [("lab", "none")]
    pairs += [("profile", run.get("profile", "?")), ("started", run.get("started", "?")),
              ("duration (s)", run.get("duration_s", "?"))]
    return "<h2 id='environment'>Environment</h2>" + _kv_table(pairs)


def _tests(doc: dict[str, Any]) -> str:
    tests = doc.get("tests") or []
    counts = Counter(t["outcome"] for t in tests)
    rows = "".join(
        f"<tr><td><code>{escape(t['nodeid'])}</code></td><td class='{escape(t['outcome'])}'>"
        f"{escape(t['outcome'])}</td><td class='num'>{_fmt(t.get('duration', 0.0))}</td>"
        f"<td>{escape(', '.join(t.get('requirements', [])))}</td><td>{escape(t.get('message', ''))}</td></tr>"
        for t in tests)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
    return (f"<h2 id='tests'>Tests</h2><details><summary>{len(tests)} tests: {escape(summary)}"
            "</summary><table><tr><th>test</th><th>outcome</th><th>s</th><th>requirements</th>"
            f"<th>message</th></tr>{rows}</table></details>")


def render_document(doc: dict[str, Any], extra: str = "") -> str:
    """The whole HTML page as a string (used by :func:`render_html` and the tests). ``extra`` is a
    self-contained HTML fragment (the perf campaigns' section) placed after the plots."""
    links = [("summary", "summary"), ("areas", "areas"), ("matrix", "matrix"), ("plots", "plots")]
    if extra:
        links.append(("campaigns", "campaigns"))
    links += [("environment", "environment"), ("tests", "tests")]
    nav = " &middot; ".join(f"<a href='#{a}'>{t}</a>" for a, t in links)
    campaigns = f"<h2 id='campaigns'>Performance campaigns</h2>{extra}" if extra else ""
    body = "".join((_header(doc), f"<p class='sub'>{nav}</p>", _summary(doc), _areas(doc), _matrix(doc),
                    _plots(doc), campaigns, _environment(doc), _tests(doc)))
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<title>Centaurus conformance report</title>"
            f"<style>{CSS}</style></head><body><main>{body}</main></body></html>\n")


def campaigns_html(report_dir: Path) -> str:
    """The perf campaigns' section (``centaurus.perf.report.campaigns_html``, owned by the perf
    campaigns) for ``report_dir``, or "" when that module or its data does not exist."""
    try:
        mod = importlib.import_module("centaurus.perf.report")
    except ImportError:
        return ""
    return str(mod.campaigns_html(Path(report_dir)) or "")


def render_html(report_dir: Path, doc: dict[str, Any]) -> Path:
    """Write ``report_dir/report.html`` atomically and return its path."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    out = report_dir / "report.html"
    text = render_document(doc, campaigns_html(report_dir))
    fd, tmp = tempfile.mkstemp(dir=report_dir, prefix=".report-", suffix=".html")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
    return out
