"""Campaign files (YAML, clusterloader2-like) and their validation.

```yaml
name: packet-rate
description: what it shows
requirements: [PERF-NET-1]          # catalog IDs the campaign reports figures for
short_note: what --short changes    # printed in the report beside every figure of a short run
tuningSets:                         # named parameter sets steps can share (rates, sizes, ...)
  pacing: {rate: 500}
steps:
  - name: sample CPU and memory
    measurements:
      - {identifier: usage, method: resource-usage, params: {action: start}}
  - name: packet rate
    measurements:
      - identifier: pps
        method: packet-rate
        tuningSet: pacing           # merged under params
        params: {sizes: [64, 512, 1518]}
        short: {rounds: 2}          # merged over params with --short
  - name: settle
    sleep: 2
thresholds:                         # judged on the figures measurements report
  - {figure: overlay_vs_plain_chain_worst, requirement: PERF-NET-1}   # bound from the catalog
  - {figure: overlay_vs_bridge_vxlan, op: ">=", value: 10, labels: {frame_size: "64"},
     source: "issue 6 target"}
```

``action`` in params: ``start`` / ``gather`` (background measurements across steps, same
``identifier``) or ``run`` (default). Every error is one line ``<file>: <where>: <problem>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from centaurus.perf.core import MeasurementError, available

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN_DIR = ROOT / "perf"
OPS = ("<", "<=", ">", ">=")
ACTIONS = ("run", "start", "gather")


class CampaignError(ValueError):
    """A campaign file is malformed (one line)."""


@dataclass
class MeasurementSpec:
    identifier: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    short: dict[str, Any] = field(default_factory=dict)
    tuning_set: str = ""

    def effective(self, short: bool, tuning: dict[str, dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = dict(tuning.get(self.tuning_set, {})) if self.tuning_set else {}
        out.update(self.params)
        if short:
            out.update(self.short)
        return out

    @property
    def action(self) -> str:
        return str(self.params.get("action", "run"))


@dataclass
class Step:
    name: str
    measurements: list[MeasurementSpec] = field(default_factory=list)
    sleep: float = 0.0


@dataclass
class ThresholdSpec:
    figure: str
    op: str = ""
    value: float | None = None
    unit: str = ""
    requirement: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    source: str = ""
    full_only: bool = False  # a figure the short run does not produce (not judged there)


@dataclass
class Campaign:
    name: str
    path: Path
    description: str = ""
    requirements: list[str] = field(default_factory=list)
    short_note: str = ""
    tuning_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    thresholds: list[ThresholdSpec] = field(default_factory=list)


def _err(path: Path, where: str, problem: str) -> CampaignError:
    return CampaignError(f"{path}: {where}: {problem}")


def _mapping(v: Any, path: Path, where: str) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise _err(path, where, f"expected a mapping, got {type(v).__name__}")
    return v


def parse(doc: Any, path: Path, *, check_methods: bool = True) -> Campaign:
    if not isinstance(doc, dict):
        raise _err(path, "top level", "expected a mapping")
    unknown = set(doc) - {
        "name",
        "description",
        "requirements",
        "short_note",
        "tuningSets",
        "steps",
        "thresholds",
    }
    if unknown:
        raise _err(path, "top level", f"unknown keys {sorted(unknown)}")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise _err(path, "name", "required, a non-empty string")
    c = Campaign(
        name,
        path,
        str(doc.get("description", "")).strip(),
        [str(x) for x in doc.get("requirements") or []],
        str(doc.get("short_note", "")).strip(),
    )
    for k, v in _mapping(doc.get("tuningSets"), path, "tuningSets").items():
        c.tuning_sets[str(k)] = _mapping(v, path, f"tuningSets.{k}")
    steps = doc.get("steps")
    if not isinstance(steps, list) or not steps:
        raise _err(path, "steps", "required, a non-empty list")
    known = available() if check_methods else {}
    started: set[str] = set()
    for i, raw in enumerate(steps):
        where = f"steps[{i}]"
        raw = _mapping(raw, path, where)
        st = Step(str(raw.get("name", f"step {i + 1}")))
        if "sleep" in raw:
            try:
                st.sleep = float(raw["sleep"])
            except (TypeError, ValueError):
                raise _err(path, f"{where}.sleep", "must be a number of seconds") from None
        for j, m in enumerate(raw.get("measurements") or []):
            mw = f"{where}.measurements[{j}]"
            m = _mapping(m, path, mw)
            ident, method = m.get("identifier"), m.get("method")
            if not isinstance(ident, str) or not isinstance(method, str):
                raise _err(path, mw, "identifier and method are required strings")
            if check_methods and method not in known:
                raise _err(path, f"{mw}.method", f"unknown measurement {method!r} (known: {sorted(known)})")
            spec = MeasurementSpec(
                ident,
                method,
                _mapping(m.get("params"), path, f"{mw}.params"),
                _mapping(m.get("short"), path, f"{mw}.short"),
                str(m.get("tuningSet", "")),
            )
            if spec.tuning_set and spec.tuning_set not in c.tuning_sets:
                raise _err(path, f"{mw}.tuningSet", f"no tuning set {spec.tuning_set!r}")
            if spec.action not in ACTIONS:
                raise _err(path, f"{mw}.params.action", f"must be one of {ACTIONS}")
            if spec.action == "start":
                started.add(ident)
            elif spec.action == "gather" and ident not in started:
                raise _err(path, mw, f"gather of {ident!r} before its start")
            st.measurements.append(spec)
        if not st.measurements and not st.sleep:
            raise _err(path, where, "a step needs measurements or a sleep")
        c.steps.append(st)
    for i, raw in enumerate(doc.get("thresholds") or []):
        where = f"thresholds[{i}]"
        raw = _mapping(raw, path, where)
        t = ThresholdSpec(
            str(raw.get("figure", "")),
            str(raw.get("op", "")),
            None if raw.get("value") is None else float(raw["value"]),
            str(raw.get("unit", "")),
            str(raw.get("requirement", "")),
            {str(k): str(v) for k, v in _mapping(raw.get("labels"), path, f"{where}.labels").items()},
            str(raw.get("source", "")),
            bool(raw.get("full_only", False)),
        )
        if not t.figure:
            raise _err(path, f"{where}.figure", "required")
        if not t.requirement and (t.op not in OPS or t.value is None):
            raise _err(path, where, f"needs a requirement ID or op (one of {OPS}) and value")
        if t.op and t.op not in OPS:
            raise _err(path, f"{where}.op", f"must be one of {OPS}")
        c.thresholds.append(t)
    return c


def load(name_or_path: str | Path, *, check_methods: bool = True) -> Campaign:
    """A campaign by file path, or by name (``perf/<name>.yaml`` in the repository)."""
    p = Path(name_or_path)
    if not p.exists() and not p.suffix:
        p = CAMPAIGN_DIR / f"{name_or_path}.yaml"
    try:
        doc = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        names = ", ".join(c.stem for c in discover()) or "none"
        raise CampaignError(f"{name_or_path}: no such campaign (known: {names})") from None
    except yaml.YAMLError as exc:
        raise CampaignError(f"{p}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return parse(doc, p, check_methods=check_methods)


def discover(directory: Path = CAMPAIGN_DIR) -> list[Path]:
    """Campaign files of the repository (``perf/*.yaml``), sorted by name."""
    return sorted(directory.glob("*.yaml"))


def validate_all() -> list[str]:
    """Problems of every shipped campaign (empty when all parse)."""
    out = []
    for p in discover():
        try:
            load(p)
        except (CampaignError, MeasurementError) as exc:
            out.append(str(exc))
    return out
