"""The requirement catalog: the shipped one is complete and valid; malformed ones fail in one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from centaurus.harness import catalog

ROOT = Path(__file__).resolve().parents[2]
REQ_MD = ROOT / "conformance" / "REQUIREMENTS.md"
SHARED_REQ_MD = Path("/work/shared/REQUIREMENTS.md")
ROW_ID = re.compile(r"^\| *((?:PERF-(?:API|POD|NET)|SCALE|API|TEN|CMP|HA|NET|EDGE|SEC)-\d+) *\|", re.M)


def ids_of_requirements_md(path: Path) -> set[str]:
    return set(ROW_ID.findall(path.read_text()))


def test_catalog_has_exactly_the_ids_of_requirements_md() -> None:
    want = ids_of_requirements_md(REQ_MD)
    assert len(want) == 54, "REQUIREMENTS.md parse went wrong"
    have = set(catalog.load())
    assert have == want, f"missing: {sorted(want - have)}; invented: {sorted(have - want)}"


@pytest.mark.skipif(not SHARED_REQ_MD.exists(), reason="the shared copy exists on the team machine only")
def test_vendored_requirements_md_matches_the_shared_one() -> None:
    """conformance/REQUIREMENTS.md is a copy (CI clones have no /work/shared): keep it current."""
    assert ids_of_requirements_md(SHARED_REQ_MD) == ids_of_requirements_md(REQ_MD)


def test_shipped_catalog_fields() -> None:
    cat = catalog.load()
    for req in cat.values():
        assert req.source.split()[0].endswith(".txt"), f"{req.id}: source must name a seed file"
        assert "§" in req.source or "Release" in req.source or "issue" in req.source, req.id
        if req.verification in ("measurement", "extrapolation"):
            assert req.threshold is not None, req.id
    assert cat["PERF-API-1"].threshold == catalog.Threshold("<", 1000.0, "ms")
    assert cat["PERF-POD-1"].threshold == catalog.Threshold("<", 5000.0, "ms")
    assert cat["PERF-POD-2"].threshold == catalog.Threshold("<", 5000.0, "ms")
    assert cat["PERF-NET-1"].threshold == catalog.Threshold(">=", 0.8, "ratio")
    assert cat["SCALE-1"].threshold == catalog.Threshold(">=", 300000.0, "hosts")
    assert cat["SCALE-2"].threshold == catalog.Threshold(">=", 100000.0, "hosts")
    assert cat["SCALE-3"].threshold == catalog.Threshold(">=", 1e7, "endpoints")
    assert cat["SCALE-4"].threshold == catalog.Threshold(">=", 1e7, "pods")
    assert cat["SCALE-4"].verification == "extrapolation"
    api2 = cat["PERF-API-2"]
    assert api2.threshold_for({"verb": "get"}) == catalog.Threshold("<", 1000.0, "ms")
    assert api2.threshold_for({"verb": "list", "resource": "pods"}) == catalog.Threshold("<", 30000.0, "ms")
    assert api2.is_headline({"verb": "get"}) and not api2.is_headline({"verb": "list"})
    assert {r.area for r in cat.values()} == set(catalog.AREAS.values())


def test_threshold_conversion_and_worst() -> None:
    thr = catalog.Threshold("<", 1.0, "s")
    assert thr.met_by(999, "ms") and not thr.met_by(1000, "ms") and not thr.met_by(1.5, "s")
    assert catalog.Threshold(">=", 0.8, "ratio").met_by(80, "%")
    assert catalog.Threshold(">=", 1e6, "pps").met_by(1.2, "Mpps")
    assert thr.worst([1, 5, 3]) == 5 and catalog.Threshold(">", 1, "pps").worst([1, 5, 3]) == 1
    with pytest.raises(ValueError, match="cannot convert"):
        thr.met_by(1, "pps")
    with pytest.raises(ValueError, match="cannot convert"):
        catalog.convert(3, "hosts", "pods")
    assert str(thr) == "< 1 s"


GOOD = {"id": "API-1", "title": "t", "source": "001.txt §1", "verification": "test"}


def write(tmp_path: Path, doc: object) -> Path:
    p = tmp_path / "requirements.yaml"
    p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return p


@pytest.mark.parametrize(("doc", "message"), [
    ("requirements: [", "not valid YAML at line"),
    ("- a\n- b\n", "top level must be a mapping with a 'requirements' list"),
    ({"requirements": []}, "no requirements"),
    ({"requirements": ["API-1"]}, "requirements[0]: entry must be a mapping"),
    ({"requirements": [{**GOOD, "id": "api-1"}]}, "id 'api-1' is not a requirement ID"),
    ({"requirements": [{**GOOD, "id": "FOO-1"}]}, "id 'FOO-1' is not a requirement ID"),
    ({"requirements": [GOOD, GOOD]}, "API-1: duplicate id"),
    ({"requirements": [{k: v for k, v in GOOD.items() if k != "title"}]}, "API-1: missing or empty 'title'"),
    ({"requirements": [{**GOOD, "source": "  "}]}, "API-1: missing or empty 'source'"),
    ({"requirements": [{**GOOD, "verification": "vibes"}]}, "verification 'vibes' is not one of"),
    ({"requirements": [{**GOOD, "treshold": 1}]}, "API-1: unknown field(s) treshold"),
    ({"requirements": [{**GOOD, "threshold": 5}]}, "threshold must be a mapping"),
    ({"requirements": [{**GOOD, "threshold": {"op": "<", "value": 1}}]}, "threshold lacks unit"),
    ({"requirements": [{**GOOD, "threshold": {"op": "~", "value": 1, "unit": "ms"}}]}, "threshold op '~'"),
    ({"requirements": [{**GOOD, "threshold": {"op": "<", "value": "1s", "unit": "ms"}}]},
     "threshold value '1s' is not a number"),
    ({"requirements": [{**GOOD, "threshold": {"op": "<", "value": True, "unit": "ms"}}]},
     "threshold value True is not a number"),
    ({"requirements": [{**GOOD, "threshold": {"op": "<", "value": 1, "unit": "parsecs"}}]},
     "unknown threshold unit 'parsecs'"),
    ({"requirements": [{**GOOD, "threshold": {"op": "<", "value": 1, "unit": "ms", "x": 1}}]},
     "threshold has unknown field(s) x"),
    ({"requirements": [{**GOOD, "verification": "measurement"}]},
     "verification 'measurement' needs a threshold"),
    ({"requirements": [{**GOOD, "label_thresholds": [{"labels": {"verb": "list"}, "op": "<", "value": 1,
                                                         "unit": "ms"}]}]},
     "label_thresholds need a main threshold"),
    ({"requirements": [{**GOOD, "threshold": {"op": "<", "value": 1, "unit": "ms"},
                        "label_thresholds": {"verb": "list"}}]}, "label_thresholds must be a list"),
    ({"requirements": [{**GOOD, "threshold": {"op": "<", "value": 1, "unit": "ms"},
                        "label_thresholds": [{"op": "<", "value": 1, "unit": "ms"}]}]},
     "label_thresholds[0]: needs a non-empty 'labels' mapping"),
    ({"requirements": [{**GOOD, "note": ["a"]}]}, "note must be text"),
])
def test_malformed_catalog_is_one_clear_line(tmp_path: Path, doc: object, message: str) -> None:
    path = write(tmp_path, doc)
    with pytest.raises(catalog.CatalogError) as exc:
        catalog.load(path)
    text = str(exc.value)
    assert message in text
    assert "\n" not in text
    assert str(path) in text


def test_missing_catalog_file(tmp_path: Path) -> None:
    with pytest.raises(catalog.CatalogError, match=r"cannot read requirement catalog .*nope\.yaml"):
        catalog.load(tmp_path / "nope.yaml")


def test_valid_small_catalog(tmp_path: Path) -> None:
    path = write(tmp_path, {"requirements": [
        GOOD,
        {"id": "PERF-API-2", "title": "reads", "source": "x.txt §3", "verification": "measurement",
         "threshold": {"op": "<", "value": 1000, "unit": "ms"},
         "label_thresholds": [{"labels": {"verb": "list"}, "op": "<", "value": 30, "unit": "s"}],
         "note": "a\n  b"},
    ]})
    cat = catalog.load(path)
    assert list(cat) == ["API-1", "PERF-API-2"]
    assert cat["API-1"].area == "api" and cat["PERF-API-2"].area == "performance"
    assert cat["PERF-API-2"].needs_measurement and not cat["API-1"].needs_measurement
    assert cat["PERF-API-2"].note == "a b"
    assert cat["PERF-API-2"].threshold_for({"verb": "list"}) == catalog.Threshold("<", 30.0, "s")
