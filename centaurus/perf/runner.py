"""Run a campaign: steps in order, measurements by identifier (start/gather across steps),
rich progress, thresholds judged on the reported figures, outputs written to
``<report_dir>/perf/``:

- ``<name>.json``: the campaign document (environment, figures with threshold, reference and
  status, notes, errors, PerfData ``dataItems`` incl. samples, time series, details);
- ``<name>.perfdata.json``: clusterloader2's ``{"version": "v1", "dataItems": [...]}``;
- ``<name>.samples.jsonl``: every raw sample series uncapped (one JSON object per line).

A failing measurement is recorded as an error (with its step) and the campaign goes on with
the next step; resources (labs, generators, control planes) are released at the end in every
case. ``report.html`` is re-rendered afterwards so the campaign shows up beside the
conformance results.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from centaurus.perf import environment
from centaurus.perf.campaign import Campaign, ThresholdSpec
from centaurus.perf.core import Context, Figure, Measurement, Progress, Result, load
from centaurus.trafficgen.base import GeneratorUnavailable

SCHEMA = "centaurus-lab/perf-campaign/v1"
MAX_SAMPLES = 10_000


class _RichProgress(Progress):
    def __init__(self, bar: Any, task: Any) -> None:
        self.bar, self.task = bar, task

    def total(self, n: int) -> None:
        self.bar.update(self.task, total=n, completed=0)

    def advance(self, n: int = 1, what: str = "") -> None:
        self.bar.update(self.task, advance=n, **({"status": what[:60]} if what else {}))


def judge(
    figures: list[Figure], thresholds: list[ThresholdSpec], short: bool = False, unverified: bool = False
) -> list[dict[str, Any]]:
    """Every figure as a dict; those a threshold names get ``threshold`` and ``status``
    (met / not-met). A threshold no figure matched is reported as ``no-figure`` (except a
    ``full_only`` one in a short run)."""
    from centaurus.harness import catalog as cat

    reqs = cat.load()
    out = [dict(f.as_dict(), status="reported") for f in figures]
    for t in thresholds:
        hits = [
            d
            for d in out
            if d["name"] == t.figure
            and d.get("value") is not None
            and all(str(d.get("labels", {}).get(k)) == v for k, v in t.labels.items())
        ]
        for d in hits:
            op, value, unit = t.op, t.value, t.unit or d["unit"]
            if t.requirement:
                thr = reqs[t.requirement].threshold_for(d.get("labels")) if t.requirement in reqs else None
                if thr is not None and not op:
                    op, value, unit = thr.op, thr.value, thr.unit
            if not op or value is None:
                continue
            try:
                met = cat.Threshold(op, value, unit).met_by(float(d["value"]), d["unit"])
            except ValueError:
                met = False
            judged = d.setdefault("thresholds", [])
            judged.append(
                {
                    "op": op,
                    "value": value,
                    "unit": unit,
                    "requirement": t.requirement,
                    "source": t.source or (f"catalog {t.requirement}" if t.requirement else ""),
                    "met": met,
                }
            )
            d["status"] = "met" if all(j["met"] for j in judged) else "not-met"
        if not hits and not (short and t.full_only):
            out.append(
                {
                    "name": t.figure,
                    "labels": t.labels,
                    "status": "not-verified" if unverified else "no-figure",
                    "value": None,
                    "unit": t.unit,
                    "thresholds": [
                        {
                            "op": t.op,
                            "value": t.value,
                            "requirement": t.requirement,
                            "source": t.source,
                            "met": False,
                        }
                    ],
                }
            )
    return out


def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def write_outputs(doc: dict[str, Any], report_dir: Path, raw: list[dict[str, Any]]) -> Path:
    out = report_dir / "perf"
    out.mkdir(parents=True, exist_ok=True)
    name = doc["campaign"]
    _write(out / f"{name}.json", json.dumps(doc, indent=1, default=str))
    _write(
        out / f"{name}.perfdata.json", json.dumps({"version": "v1", "dataItems": doc["dataItems"]}, indent=1)
    )
    _write(out / f"{name}.samples.jsonl", "".join(json.dumps(r) + "\n" for r in raw))
    return out / f"{name}.json"


def rerender_report(report_dir: Path) -> Path | None:
    """report.html from results.json when a conformance run left one, else from an empty run:
    the renderer adds the campaigns found under ``<report_dir>/perf/``."""
    from centaurus.reports.render import render_html

    try:
        doc = json.loads((report_dir / "results.json").read_text())
    except (OSError, ValueError):
        doc = {}
    try:
        return render_html(report_dir, doc)
    except Exception:
        return None


def run(
    c: Campaign,
    *,
    short: bool,
    report_dir: Path,
    console: Any = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console(stderr=True)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    env = environment.capture()
    work = Path(tempfile.mkdtemp(prefix=f"cl-perf-{c.name}-"))
    ctx = Context(
        short=short,
        report_dir=report_dir,
        work_dir=work,
        environment=env,
        log=lambda s: console.log(f"[dim]{c.name}:[/] {s}"),
    )
    instances: dict[str, Measurement] = {}
    result = Result()
    errors: list[dict[str, str]] = []
    skipped: list[dict[str, str]] = []
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
    )
    try:
        with Progress(*columns, console=console, transient=False) as bar:
            steps = bar.add_task(f"{c.name}{' (short)' if short else ''}", total=len(c.steps), status="")
            for i, step in enumerate(c.steps):
                bar.update(steps, status=step.name)
                if step.sleep:
                    time.sleep(step.sleep)
                for m in step.measurements:
                    params = m.effective(short, c.tuning_sets)
                    params.update((overrides or {}).get(m.identifier, {}))
                    task = bar.add_task(f"  {m.identifier} ({m.method})", total=None, status="")
                    ctx.progress = _RichProgress(bar, task)
                    try:
                        inst = instances.get(m.identifier)
                        if inst is None:
                            inst = instances[m.identifier] = load(m.method)()
                        if m.action == "start":
                            inst.start(ctx, params)
                        else:
                            r = inst.gather(ctx, params) if m.action == "gather" else inst.run(ctx, params)
                            for f in r.figures:
                                f.labels.setdefault("measurement", m.identifier)
                            result.extend(r)
                        bar.update(task, status="[green]done")
                    except GeneratorUnavailable as exc:
                        # what cannot run on this machine (no TRex server): not-verified, not an error
                        skipped.append(
                            {
                                "step": step.name,
                                "identifier": m.identifier,
                                "method": m.method,
                                "reason": f"not-verified: {exc}",
                            }
                        )
                        bar.update(task, status=f"[yellow]not-verified: {str(exc)[:40]}")
                    except Exception as exc:
                        errors.append(
                            {
                                "step": step.name,
                                "identifier": m.identifier,
                                "method": m.method,
                                "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:500],
                                "traceback": traceback.format_exc()[-3000:],
                            }
                        )
                        bar.update(task, status=f"[red]failed: {str(exc)[:50]}")
                bar.update(steps, completed=i + 1)
    finally:
        for ident, inst in instances.items():
            try:
                inst.cleanup(ctx)
            except Exception as exc:
                errors.append({"step": "cleanup", "identifier": ident, "error": str(exc)[:300]})
        st = ctx.state.get("exit")
        if st is not None:
            try:
                st.close()
            except Exception as exc:
                errors.append({"step": "teardown", "identifier": "-", "error": str(exc)[:300]})
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    env["load_average_after"] = environment.load_average()
    raw = []
    for item in result.perfdata:
        samples = item.get("samples")
        if samples:
            raw.append({"labels": item.get("labels", {}), "unit": item.get("unit"), "samples": samples})
            if len(samples) > MAX_SAMPLES:
                item["samples"] = samples[:MAX_SAMPLES]
        item.setdefault("labels", {})["Campaign"] = c.name
    doc = {
        "schema": SCHEMA,
        "campaign": c.name,
        "file": str(c.path),
        "description": c.description,
        "requirements": c.requirements,
        "short": short,
        "short_note": c.short_note if short else "",
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - t0, 1),
        "environment": env,
        "figures": judge(result.figures, c.thresholds, short, unverified=bool(skipped)),
        "notes": result.notes,
        "errors": errors,
        "not_verified": skipped,
        "dataItems": result.perfdata,
        "series": [vars(s) for s in result.series],
        "details": result.details,
    }
    write_outputs(doc, report_dir, raw)
    return doc
