"""Status rules of centaurus.harness.results: every branch of ``judge`` and the shape of ``build``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from centaurus.harness.catalog import LabelledThreshold, Requirement, Threshold
from centaurus.harness.results import Measurement, TestRecord, build, judge, summarise, write_json

PLAIN = Requirement("API-1", "kubectl works", "api", "seed §1", "test")
NUMERIC = Requirement("PERF-POD-1", "pods start fast", "performance", "seed §3", "measurement",
                      Threshold("<", 5000.0, "ms"))
LISTS = Requirement("PERF-API-2", "reads", "performance", "seed §3", "measurement",
                    Threshold("<", 1000.0, "ms"),
                    label_thresholds=(LabelledThreshold((("verb", "list"),), Threshold("<", 30.0, "s")),))


def t(outcome: str, msg: str = "", nodeid: str = "conformance/test_x.py::test_a") -> TestRecord:
    return TestRecord(nodeid, outcome, 0.1, [], msg)


def m(value: float, unit: str = "ms", met: bool | None = True, **labels: str) -> Measurement:
    return Measurement("PERF-POD-1", value, unit, dict(labels), "conformance/test_x.py::test_a", met)


def test_no_test_is_not_tested() -> None:
    r = judge(PLAIN, [], [])
    assert r.status == "not-tested" and r.notes == ["no test in this run"] and r.tests == []


def test_a_passing_test_is_met() -> None:
    r = judge(PLAIN, [t("passed")], [])
    assert r.status == "met" and r.tests == ["conformance/test_x.py::test_a"]


@pytest.mark.parametrize("bad", ["failed", "error"])
def test_any_failed_or_errored_test_is_not_met(bad: str) -> None:
    r = judge(PLAIN, [t("passed", nodeid="a"), t(bad, "boom", nodeid="b")], [])
    assert r.status == "not-met" and r.notes == ["b: boom"]


def test_figure_missing_threshold_is_not_met_even_when_tests_passed() -> None:
    r = judge(NUMERIC, [t("passed")], [m(4000), m(6000, met=False)])
    assert r.status == "not-met"
    assert r.measured == 6000 and r.threshold == 5000 and r.op == "<" and r.unit == "ms"
    assert r.notes == ["measured 6000 ms misses < 5000 ms"]


def test_numeric_requirement_without_figure_is_not_met() -> None:
    r = judge(NUMERIC, [t("passed")], [])
    assert r.status == "not-met" and "recorded no figure" in r.notes[0]


def test_numeric_requirement_with_figures_within_threshold_is_met_and_reports_the_worst() -> None:
    r = judge(NUMERIC, [t("passed")], [m(1.2, "s"), m(800)])
    assert r.status == "met" and r.measured == 1200.0 and r.unit == "ms"


def test_lower_bound_reports_the_smallest_figure() -> None:
    req = Requirement("PERF-NET-1", "line rate", "performance", "s", "measurement",
                      Threshold(">=", 0.8, "ratio"))
    r = judge(req, [t("passed")], [m(0.95, "ratio"), m(85, "%")])
    assert r.status == "met" and r.measured == 0.85


def test_only_not_applicable_skips_is_not_applicable() -> None:
    r = judge(PLAIN, [t("skipped", "not-applicable: target 'kubeconfig' lacks tenants")], [])
    assert r.status == "not-applicable" and r.notes == ["not-applicable: target 'kubeconfig' lacks tenants"]


def test_not_verified_skip_is_not_tested_with_reason() -> None:
    r = judge(PLAIN, [t("skipped", "not-verified: no TRex server")], [])
    assert r.status == "not-tested" and r.notes == ["not-verified: no TRex server"]


def test_mixed_skips_are_not_tested() -> None:
    r = judge(PLAIN, [t("skipped", "not-applicable: x", nodeid="a"),
                      t("skipped", "not-verified: y", nodeid="b")], [])
    assert r.status == "not-tested" and r.notes == ["not-verified: y"]


def test_a_pass_beside_a_not_applicable_skip_is_met() -> None:
    r = judge(PLAIN, [t("passed", nodeid="a"), t("skipped", "not-applicable: x", nodeid="b")], [])
    assert r.status == "met"


def test_failure_wins_over_not_applicable() -> None:
    r = judge(PLAIN, [t("failed", "bad", nodeid="a"), t("skipped", "not-applicable: x", nodeid="b")], [])
    assert r.status == "not-met"


def test_labelled_threshold_figures_are_notes_not_the_headline() -> None:
    figs = [Measurement("PERF-API-2", 40, "ms", {"verb": "get"}, "x", True),
            Measurement("PERF-API-2", 2500, "ms", {"verb": "list"}, "x", True)]
    r = judge(LISTS, [t("passed")], figs)
    assert r.status == "met" and r.measured == 40 and r.unit == "ms"
    assert r.notes == ["verb=list: measured 2.5 s (threshold < 30 s)"]


def test_labelled_threshold_miss_is_not_met() -> None:
    figs = [Measurement("PERF-API-2", 40, "ms", {"verb": "get"}, "x", True),
            Measurement("PERF-API-2", 31, "s", {"verb": "list"}, "x", False)]
    r = judge(LISTS, [t("passed")], figs)
    assert r.status == "not-met" and "measured 31 s misses < 30 s (verb=list)" in r.notes


def test_only_labelled_figures_do_not_satisfy_the_headline() -> None:
    figs = [Measurement("PERF-API-2", 2500, "ms", {"verb": "list"}, "x", True)]
    r = judge(LISTS, [t("passed")], figs)
    assert r.status == "not-met" and r.measured is None


def test_figure_of_requirement_without_threshold_is_reported_as_is() -> None:
    r = judge(PLAIN, [t("passed")], [Measurement("API-1", 3, "count", {}, "x", None)])
    assert r.status == "met" and r.measured == 3 and r.unit == "count"


def test_build_groups_by_requirement_and_flags_unknown_ids(tmp_path: Path) -> None:
    cat = {r.id: r for r in (PLAIN, NUMERIC)}
    tests = [TestRecord("a", "passed", 0.5, ["API-1", "PERF-POD-1"]),
             TestRecord("b", "passed", 0.1, ["NOPE-1"])]
    doc = build(cat, tests, [m(100)], target={"name": "builtin"}, environment={"kernel": "6"},
                perf=[{"data": {"Perc50": 1}, "unit": "ms", "labels": {}}], run={"profile": "smoke"})
    assert list(doc) == ["schema", "run", "target", "environment", "summary", "requirements", "tests",
                         "measurements", "perf", "unknown_requirement_ids"]
    assert doc["summary"] == {"met": 2, "not-met": 0, "not-tested": 0, "not-applicable": 0}
    assert [r["id"] for r in doc["requirements"]] == ["API-1", "PERF-POD-1"]
    assert doc["requirements"][1]["tests"] == ["a"] and doc["unknown_requirement_ids"] == ["NOPE-1"]
    assert summarise([judge(PLAIN, [], [])]) == {"met": 0, "not-met": 0, "not-tested": 1, "not-applicable": 0}
    out = tmp_path / "deep" / "results.json"
    write_json(out, doc)
    assert json.loads(out.read_text()) == json.loads(json.dumps(doc))
    assert [p.name for p in out.parent.iterdir()] == ["results.json"], "no temp file left behind"
