"""From test outcomes and measurements to requirement statuses and ``results.json``.

The rules are the contract of the report, so they live in one place:

* a requirement with no collected test is ``not-tested``;
* any failed or errored test makes it ``not-met``; so does any recorded figure that misses the
  catalog threshold, or a numeric requirement whose passing tests recorded no figure at all;
* tests skipped as ``not-applicable: ...`` (the target lacks the feature) make it
  ``not-applicable`` when nothing else ran; ``not-verified: ...`` (e.g. no TRex server) leaves it
  ``not-tested`` with the reason as a note;
* otherwise (at least one passing test, thresholds held) it is ``met``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from centaurus.harness.catalog import Requirement, convert

SCHEMA = "centaurus-lab/results/v1"
STATUSES = ("met", "not-met", "not-tested", "not-applicable")
NA_PREFIX = "not-applicable:"
NV_PREFIX = "not-verified:"


@dataclass
class TestRecord:
    __test__ = False  # not a pytest test class, despite the name

    nodeid: str
    outcome: str  # passed | failed | error | skipped
    duration: float = 0.0
    requirements: list[str] = field(default_factory=list)
    message: str = ""


@dataclass
class Measurement:
    id: str
    value: float
    unit: str
    labels: dict[str, str] = field(default_factory=dict)
    test: str = ""
    met: bool | None = None  # None: the requirement has no numeric threshold


@dataclass
class RequirementResult:
    id: str
    title: str
    area: str
    status: str
    verification: str
    source: str
    tests: list[str]
    measured: float | None = None
    threshold: float | None = None
    op: str | None = None
    unit: str | None = None
    notes: list[str] = field(default_factory=list)


def judge(req: Requirement, tests: list[TestRecord], figures: list[Measurement]) -> RequirementResult:
    thr = req.threshold
    res = RequirementResult(
        id=req.id, title=req.title, area=req.area, status="not-tested",
        verification=req.verification, source=req.source, tests=[t.nodeid for t in tests],
        threshold=thr.value if thr else None, op=thr.op if thr else None, unit=thr.unit if thr else None,
    )
    # The headline figure ("measured") comes from figures judged by the main threshold; figures
    # that a labelled threshold judges (e.g. list calls of PERF-API-2) are reported as notes.
    headline = [m for m in figures if req.is_headline(m.labels)]
    if thr and headline:
        values = [convert(m.value, m.unit, thr.unit) for m in headline]
        res.measured = round(thr.worst(values), 6)
    elif headline:
        res.measured = headline[-1].value
        res.unit = headline[-1].unit
    for lt in req.label_thresholds:
        mine = [m for m in figures if lt.applies(m.labels)]
        if mine:
            worst = lt.threshold.worst([convert(m.value, m.unit, lt.threshold.unit) for m in mine])
            res.notes.append(f"{lt.describe()}: measured {worst:g} {lt.threshold.unit} "
                             f"(threshold {lt.threshold})")
    if not tests:
        res.notes.append("no test in this run")
        return res
    failed = [t for t in tests if t.outcome in ("failed", "error")]
    passed = [t for t in tests if t.outcome == "passed"]
    na = [t for t in tests if t.outcome == "skipped" and t.message.startswith(NA_PREFIX)]
    nv = [t for t in tests if t.outcome == "skipped" and not t.message.startswith(NA_PREFIX)]
    missed = [m for m in figures if m.met is False]
    if failed:
        res.status = "not-met"
        res.notes += [f"{t.nodeid}: {t.message}" for t in failed]
    elif missed:
        res.status = "not-met"
        res.notes += [f"measured {m.value:g} {m.unit} misses {req.threshold_for(m.labels)}"
                      + (f" ({_labels(m.labels)})" if m.labels else "") for m in missed]
    elif passed and req.needs_measurement and not headline:
        res.status = "not-met"
        res.notes.append("tests passed but recorded no figure for a numeric requirement")
    elif passed:
        res.status = "met"
    elif na and not nv:
        res.status = "not-applicable"
        res.notes += [t.message for t in na]
    else:
        res.status = "not-tested"
        res.notes += [t.message for t in nv]
    return res


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def summarise(results: list[RequirementResult]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for r in results:
        counts[r.status] += 1
    return counts


def build(
    catalog: dict[str, Requirement],
    tests: list[TestRecord],
    measurements: list[Measurement],
    *,
    target: dict[str, Any],
    environment: dict[str, Any],
    perf: list[dict[str, Any]],
    run: dict[str, Any],
) -> dict[str, Any]:
    by_req: dict[str, list[TestRecord]] = {rid: [] for rid in catalog}
    unknown: set[str] = set()
    for t in tests:
        for rid in t.requirements:
            if rid in by_req:
                by_req[rid].append(t)
            else:
                unknown.add(rid)
    figs: dict[str, list[Measurement]] = {}
    for m in measurements:
        figs.setdefault(m.id, []).append(m)
    reqs = [judge(catalog[rid], by_req[rid], figs.get(rid, [])) for rid in catalog]
    doc = {
        "schema": SCHEMA,
        "run": run,
        "target": target,
        "environment": environment,
        "summary": summarise(reqs),
        "requirements": [asdict(r) for r in reqs],
        "tests": [asdict(t) for t in tests],
        "measurements": [asdict(m) for m in measurements],
        "perf": perf,
    }
    if unknown:
        doc["unknown_requirement_ids"] = sorted(unknown)
    return doc


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Atomic write: a report directory never holds half a results.json."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results-")
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=2, sort_keys=False, default=str)
        fh.write("\n")
    os.chmod(tmp, 0o644)  # a report, readable like report.html (mkstemp makes 0600)
    os.replace(tmp, path)
