"""The requirement catalog (``conformance/requirements.yaml``) as validated data.

Every requirement of the whitepaper has an entry; tests refer to entries by ID. Loading is strict
because a typo in the catalog would silently turn a requirement into ``not-tested``: every error
is one line naming the file, the entry and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ID_RE = re.compile(r"^(PERF-(API|POD|NET)|SCALE|API|TEN|CMP|HA|NET|EDGE|SEC)-\d+$")
AREAS = {
    "PERF": "performance", "SCALE": "scale", "API": "api", "TEN": "tenancy", "CMP": "compute",
    "HA": "ha", "NET": "network", "EDGE": "edge", "SEC": "security",
}
OPS = {"<", "<=", ">", ">="}
VERIFICATIONS = {"test", "measurement", "extrapolation"}
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "conformance" / "requirements.yaml"

# Units a measurement may be recorded in, with the factor to the catalog's base unit.
UNIT_FACTORS: dict[str, tuple[str, float]] = {
    "ns": ("s", 1e-9), "us": ("s", 1e-6), "ms": ("s", 1e-3), "s": ("s", 1.0),
    "pps": ("pps", 1.0), "kpps": ("pps", 1e3), "Mpps": ("pps", 1e6),
    "ratio": ("ratio", 1.0), "%": ("ratio", 0.01),
    "B": ("B", 1.0), "KiB": ("B", 1024.0), "MiB": ("B", 1024.0**2), "GiB": ("B", 1024.0**3),
    # Counted things (scale requirements): each is its own base, so hosts never compare with pods.
    "hosts": ("hosts", 1.0), "pods": ("pods", 1.0), "endpoints": ("endpoints", 1.0),
    "count": ("count", 1.0),
}
ENTRY_FIELDS = {"id", "title", "source", "verification", "threshold", "label_thresholds", "note"}
THRESHOLD_FIELDS = {"op", "value", "unit"}


class CatalogError(ValueError):
    """The catalog file is malformed. ``str()`` is a single line fit for a terminal."""


@dataclass(frozen=True)
class Threshold:
    op: str
    value: float
    unit: str

    def met_by(self, value: float, unit: str) -> bool:
        v = convert(value, unit, self.unit)
        return {"<": v < self.value, "<=": v <= self.value,
                ">": v > self.value, ">=": v >= self.value}[self.op]

    def worst(self, values: list[float]) -> float:
        """The figure that decides: the largest for upper bounds, the smallest for lower bounds."""
        return max(values) if self.op in ("<", "<=") else min(values)

    def __str__(self) -> str:
        return f"{self.op} {self.value:g} {self.unit}"


@dataclass(frozen=True)
class LabelledThreshold:
    """A second bound of one requirement that applies to figures carrying certain labels.

    Example: PERF-API-2 holds single-object reads to < 1 s (the headline threshold) and list calls
    to < 30 s; list figures are recorded with ``labels={"verb": "list"}`` and matched here.
    """

    match: tuple[tuple[str, str], ...]
    threshold: Threshold

    def applies(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match)

    def describe(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.match)


@dataclass(frozen=True)
class Requirement:
    id: str
    title: str
    area: str
    source: str
    verification: str
    threshold: Threshold | None = None
    note: str = ""
    label_thresholds: tuple[LabelledThreshold, ...] = ()

    @property
    def needs_measurement(self) -> bool:
        return self.threshold is not None and self.verification in ("measurement", "extrapolation")

    def threshold_for(self, labels: dict[str, str] | None) -> Threshold | None:
        """The bound a figure with ``labels`` is judged by: a matching labelled one, else the main one."""
        for lt in self.label_thresholds:
            if lt.applies(labels or {}):
                return lt.threshold
        return self.threshold

    def is_headline(self, labels: dict[str, str] | None) -> bool:
        """True when a figure with ``labels`` is judged by the main threshold (it is the 'measured')."""
        return not any(lt.applies(labels or {}) for lt in self.label_thresholds)


def convert(value: float, unit: str, to: str) -> float:
    if unit == to:
        return value
    try:
        base_from, f_from = UNIT_FACTORS[unit]
        base_to, f_to = UNIT_FACTORS[to]
    except KeyError:
        raise ValueError(f"cannot convert {unit!r} to {to!r}") from None
    if base_from != base_to:
        raise ValueError(f"cannot convert {unit!r} to {to!r}")
    return value * f_from / f_to


def area_of(req_id: str) -> str:
    return AREAS[req_id.split("-", 1)[0]]


def _threshold(raw: Any, where: str, extra: frozenset[str] = frozenset()) -> Threshold | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: threshold must be a mapping with op, value, unit")
    missing = THRESHOLD_FIELDS - raw.keys()
    if missing:
        raise CatalogError(f"{where}: threshold lacks {', '.join(sorted(missing))}")
    unknown = raw.keys() - THRESHOLD_FIELDS - extra
    if unknown:
        raise CatalogError(f"{where}: threshold has unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    if raw["op"] not in OPS:
        raise CatalogError(f"{where}: threshold op {raw['op']!r} is not one of {sorted(OPS)}")
    if not isinstance(raw["value"], int | float) or isinstance(raw["value"], bool):
        raise CatalogError(f"{where}: threshold value {raw['value']!r} is not a number")
    if raw["unit"] not in UNIT_FACTORS:
        raise CatalogError(f"{where}: unknown threshold unit {raw['unit']!r}")
    return Threshold(str(raw["op"]), float(raw["value"]), str(raw["unit"]))


def _label_thresholds(raw: Any, where: str) -> tuple[LabelledThreshold, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise CatalogError(f"{where}: label_thresholds must be a list")
    out = []
    for i, item in enumerate(raw):
        w = f"{where}: label_thresholds[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("labels"), dict) or not item["labels"]:
            raise CatalogError(f"{w}: needs a non-empty 'labels' mapping plus op, value, unit")
        thr = _threshold({k: v for k, v in item.items() if k != "labels"}, w)
        assert thr is not None
        match = tuple(sorted((str(k), str(v)) for k, v in item["labels"].items()))
        out.append(LabelledThreshold(match, thr))
    return tuple(out)


def parse(doc: Any, origin: str = "requirements.yaml") -> dict[str, Requirement]:
    if not isinstance(doc, dict) or not isinstance(doc.get("requirements"), list):
        raise CatalogError(f"{origin}: top level must be a mapping with a 'requirements' list")
    if not doc["requirements"]:
        raise CatalogError(f"{origin}: the catalog lists no requirements")
    out: dict[str, Requirement] = {}
    for i, raw in enumerate(doc["requirements"]):
        where = f"{origin}: requirements[{i}]"
        if not isinstance(raw, dict):
            raise CatalogError(f"{where}: entry must be a mapping")
        rid = raw.get("id")
        if not isinstance(rid, str) or not ID_RE.match(rid):
            raise CatalogError(f"{where}: id {rid!r} is not a requirement ID like API-1 or PERF-POD-2")
        where = f"{origin}: {rid}"
        if rid in out:
            raise CatalogError(f"{where}: duplicate id")
        unknown = raw.keys() - ENTRY_FIELDS
        if unknown:
            raise CatalogError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        for fld in ("title", "source", "verification"):
            if not isinstance(raw.get(fld), str) or not raw[fld].strip():
                raise CatalogError(f"{where}: missing or empty '{fld}'")
        if raw["verification"] not in VERIFICATIONS:
            raise CatalogError(
                f"{where}: verification {raw['verification']!r} is not one of {sorted(VERIFICATIONS)}"
            )
        thr = _threshold(raw.get("threshold"), where)
        labelled = _label_thresholds(raw.get("label_thresholds"), where)
        if labelled and thr is None:
            raise CatalogError(f"{where}: label_thresholds need a main threshold too")
        if raw["verification"] in ("measurement", "extrapolation") and thr is None:
            raise CatalogError(f"{where}: verification {raw['verification']!r} needs a threshold")
        note = raw.get("note", "")
        if not isinstance(note, str):
            raise CatalogError(f"{where}: note must be text")
        out[rid] = Requirement(
            id=rid, title=raw["title"].strip(), area=area_of(rid), source=raw["source"].strip(),
            verification=raw["verification"], threshold=thr, note=" ".join(note.split()),
            label_thresholds=labelled,
        )
    return out


def load(path: str | Path | None = None) -> dict[str, Requirement]:
    p = Path(path) if path else DEFAULT_PATH
    try:
        text = p.read_text()
    except OSError as exc:
        raise CatalogError(f"cannot read requirement catalog {p}: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise CatalogError(f"{p}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    return parse(doc, str(p))
