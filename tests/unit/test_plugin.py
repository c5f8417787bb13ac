"""The conformance pytest plugin, run for real on small synthetic suites (pytester, in process).

What is proven: markers map tests to requirements, unknown IDs and names are usage errors, a
figure that misses its threshold fails its test, skips are classified, the ratchet alone decides
the exit status, results.json / junit.xml / report.html are written, and a planned but unbuilt
lab makes its tests error instead of aborting the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

# Imported here so the in-process inner runs find matplotlib/numpy already loaded: pytester
# restores sys.modules after each run and numpy cannot be imported twice in one process.
import centaurus.reports.render  # noqa: F401
from centaurus.harness import selection
from centaurus.harness.plugin import MAX_SAMPLES, cap_samples

pytest_plugins = ["pytester"]

CATALOG = {"requirements": [
    {"id": "API-1", "title": "kubectl works", "source": "s.txt §1", "verification": "test"},
    {"id": "API-2", "title": "tenants API", "source": "s.txt §1", "verification": "test"},
    {"id": "TEN-1", "title": "short path", "source": "s.txt §2", "verification": "test"},
    {"id": "TEN-2", "title": "isolation", "source": "s.txt §2", "verification": "test"},
    {"id": "NET-6", "title": "transitd", "source": "s.txt §5", "verification": "test"},
    {"id": "PERF-POD-1", "title": "pod startup", "source": "s.txt §3", "verification": "measurement",
     "threshold": {"op": "<", "value": 5000, "unit": "ms"}},
    {"id": "PERF-API-2", "title": "reads", "source": "s.txt §3", "verification": "measurement",
     "threshold": {"op": "<", "value": 1000, "unit": "ms"},
     "label_thresholds": [{"labels": {"verb": "list"}, "op": "<", "value": 30000, "unit": "ms"}]},
]}

CONFTEST = '''
import pytest

class FakeTarget:
    name = "fake"
    def capabilities(self):
        return frozenset({"api"})

@pytest.fixture(scope="session")
def target():
    return FakeTarget()
'''

SUITE = '''
import pytest

@pytest.mark.requirement("API-1")
def test_ok():
    pass

@pytest.mark.requirement("TEN-1")
def test_leak():
    pytest.fail("tenant b saw tenant a's configmap")

@pytest.mark.requirement("PERF-POD-1")
def test_fast(record_measurement, record_perfdata):
    record_measurement("PERF-POD-1", 812, "ms", {"kind": "container"})
    record_perfdata({"data": {"Perc50": 500, "Perc90": 700, "Perc99": 812}, "unit": "ms",
                     "labels": {"Metric": "pod_startup"}, "samples": [400.0, 500.0, 812.0]})

@pytest.mark.requirement("PERF-API-2")
def test_reads(record_measurement):
    record_measurement("PERF-API-2", 35, "ms", {"verb": "get"})
    record_measurement("PERF-API-2", 2.5, "s", {"verb": "list"})

@pytest.mark.requirement("API-2")
def test_tenants(requires):
    requires("tenants")
    raise AssertionError("never reached: the fake target lacks tenants")

@pytest.mark.requirement("NET-6")
def test_trex():
    pytest.skip("not-verified: no TRex server on this machine")

def test_unmarked():
    pass
'''


class Suite:
    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.catalog = pytester.path / "catalog.yaml"
        self.catalog.write_text(yaml.safe_dump(CATALOG))
        self.out = pytester.path / "out"
        pytester.makeconftest(CONFTEST)

    def run(self, *args: str, lab: str = "none") -> pytest.RunResult:
        return self.pytester.runpytest(
            "-p", "centaurus.harness.plugin", "-p", "no:cacheprovider",
            "-W", "ignore::pytest.PytestAssertRewriteWarning", f"--catalog={self.catalog}",
            f"--report-dir={self.out}", f"--lab={lab}", *args)

    def doc(self) -> dict[str, Any]:
        return json.loads((self.out / "results.json").read_text())  # type: ignore[no-any-return]

    def status(self) -> dict[str, str]:
        return {r["id"]: r["status"] for r in self.doc()["requirements"]}


@pytest.fixture
def suite(pytester: pytest.Pytester) -> Suite:
    return Suite(pytester)


def test_statuses_files_and_exit_status(suite: Suite) -> None:
    suite.pytester.makepyfile(test_suite=SUITE)
    res = suite.run()
    assert res.ret == pytest.ExitCode.TESTS_FAILED
    assert suite.status() == {
        "API-1": "met", "API-2": "not-applicable", "TEN-1": "not-met", "TEN-2": "not-tested",
        "NET-6": "not-tested", "PERF-POD-1": "met", "PERF-API-2": "met",
    }
    doc = suite.doc()
    reqs = {r["id"]: r for r in doc["requirements"]}
    assert reqs["TEN-1"]["notes"] == ["test_suite.py::test_leak: Failed: tenant b saw tenant a's configmap"]
    assert reqs["API-2"]["notes"] == ["not-applicable: target 'fake' lacks tenants"]
    assert reqs["NET-6"]["notes"] == ["not-verified: no TRex server on this machine"]
    assert reqs["PERF-POD-1"]["measured"] == 812
    assert reqs["PERF-POD-1"]["tests"] == ["test_suite.py::test_fast"]
    assert reqs["PERF-API-2"]["measured"] == 35
    assert reqs["PERF-API-2"]["notes"] == ["verb=list: measured 2500 ms (threshold < 30000 ms)"]
    tests = {t["nodeid"]: t for t in doc["tests"]}
    assert tests["test_suite.py::test_unmarked"]["requirements"] == []
    assert tests["test_suite.py::test_leak"]["outcome"] == "failed"
    assert doc["perf"][0]["samples"] == [400.0, 500.0, 812.0]
    assert doc["run"]["profile"] == "smoke" and doc["run"]["lab"] is None and doc["run"]["ratchet"] is None
    assert doc["target"] == {"name": "builtin", "arg": None}
    assert (suite.out / "junit.xml").read_text().count("<testcase") == 7
    html = (suite.out / "report.html").read_text()
    assert all(f"id='{rid}'" in html for rid in reqs)
    res.stdout.fnmatch_lines(["*centaurus conformance*",
                              "requirements: met 3, not-met 1, not-tested 2, not-applicable 1",
                              "*PERF-POD-1*met*measured 812 ms (threshold < 5000 ms)*"])


def test_missed_threshold_fails_the_test_with_both_numbers(suite: Suite) -> None:
    suite.pytester.makepyfile(test_slow='''
import pytest

@pytest.mark.requirement("PERF-POD-1")
def test_slow(record_measurement):
    record_measurement("PERF-POD-1", 6.5, "s")
    raise AssertionError("not reached: record_measurement fails first")

@pytest.mark.requirement("PERF-API-2")
def test_unchecked(record_measurement):
    record_measurement("PERF-API-2", 31, "s", {"verb": "list"}, check=False)
    record_measurement("PERF-API-2", 10, "ms", {"verb": "get"})
''')
    res = suite.run()
    assert res.ret == pytest.ExitCode.TESTS_FAILED
    res.assert_outcomes(failed=1, passed=1)
    res.stdout.fnmatch_lines(["*PERF-POD-1: measured 6.5 s, threshold < 5000 ms*"])
    reqs = {r["id"]: r for r in suite.doc()["requirements"]}
    assert reqs["PERF-POD-1"]["status"] == "not-met" and reqs["PERF-POD-1"]["measured"] == 6500
    assert reqs["PERF-API-2"]["status"] == "not-met"
    assert "measured 31 s misses < 30000 ms (verb=list)" in reqs["PERF-API-2"]["notes"]


def test_numeric_test_without_figure_is_not_met(suite: Suite) -> None:
    suite.pytester.makepyfile(test_lazy='''
import pytest

@pytest.mark.requirement("PERF-POD-1")
def test_lazy():
    pass
''')
    suite.run()
    assert suite.status()["PERF-POD-1"] == "not-met"


def test_module_and_multi_id_markers(suite: Suite) -> None:
    suite.pytester.makepyfile(test_marks='''
import pytest

pytestmark = pytest.mark.requirement("TEN-2")

@pytest.mark.requirement("API-1", "TEN-1")
def test_both():
    pass
''')
    suite.run()
    doc = suite.doc()
    assert doc["tests"][0]["requirements"] == ["API-1", "TEN-1", "TEN-2"]
    assert {k: v for k, v in suite.status().items() if v == "met"} == {"API-1": "met", "TEN-1": "met",
                                                                       "TEN-2": "met"}


def test_ratchet_alone_decides_exit_status(suite: Suite) -> None:
    suite.pytester.makepyfile(test_suite=SUITE)
    good = suite.pytester.path / "good.yaml"
    good.write_text("met: [API-1, PERF-POD-1]\n")
    res = suite.run(f"--ratchet={good}")
    assert res.ret == pytest.ExitCode.OK, "TEN-1 fails but is not in the ratchet"
    res.stdout.fnmatch_lines(["*ratchet held: 2 requirement(s) met*"])
    bad = suite.pytester.path / "bad.yaml"
    bad.write_text("met: [API-1, TEN-1, NET-6]\n")
    res = suite.run(f"--ratchet={bad}")
    assert res.ret == pytest.ExitCode.TESTS_FAILED
    res.stdout.fnmatch_lines(["*RATCHET FAILED: TEN-1 is not-met; NET-6 is not-tested*"])
    assert suite.doc()["run"]["ratchet"] == ["API-1", "TEN-1", "NET-6"]


def test_empty_ratchet_passes_a_failing_suite(suite: Suite) -> None:
    suite.pytester.makepyfile(test_suite=SUITE)
    empty = suite.pytester.path / "empty.yaml"
    empty.write_text("met: []\n")
    assert suite.run(f"--ratchet={empty}").ret == pytest.ExitCode.OK


def _usage_error(res: pytest.RunResult, text: str) -> None:
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    lines = [ln for ln in res.errlines if text in ln]
    assert lines, res.errlines
    assert "Traceback" not in "\n".join(res.errlines)


def test_unknown_requirement_id_is_a_usage_error(suite: Suite) -> None:
    suite.pytester.makepyfile(test_typo='''
import pytest

@pytest.mark.requirement("TEN-99")
def test_typo():
    pass
''')
    _usage_error(suite.run(), "test_typo.py::test_typo: unknown requirement ID(s) TEN-99")


@pytest.mark.parametrize(("args", "text"), [
    (("--target=nosuch",), "unknown target 'nosuch' (available: "),
    (("--target=kubeconfig=/x,ctx",), "option 'ctx' is not key=value"),
    (("--ratchet=missing.yaml",), "cannot read ratchet missing.yaml"),
])
def test_bad_options_are_usage_errors(suite: Suite, args: tuple[str, ...], text: str) -> None:
    suite.pytester.makepyfile(test_suite=SUITE)
    _usage_error(suite.run(*args), text)


def test_unknown_lab_is_a_usage_error(suite: Suite) -> None:
    suite.pytester.makepyfile(test_suite=SUITE)
    _usage_error(suite.run(lab="netsn"), "unknown lab 'netsn' (available: ")


def test_ratchet_with_unknown_id_is_a_usage_error(suite: Suite) -> None:
    suite.pytester.makepyfile(test_suite=SUITE)
    r = suite.pytester.path / "r.yaml"
    r.write_text("met: [API-1, XYZ-1]\n")
    _usage_error(suite.run(f"--ratchet={r}"), "unknown requirement IDs XYZ-1")


def test_malformed_catalog_is_a_usage_error(suite: Suite) -> None:
    suite.pytester.makepyfile(test_suite=SUITE)
    suite.catalog.write_text("requirements: [{id: API-1}]\n")
    _usage_error(suite.run(), "API-1: missing or empty 'title'")


def test_planned_but_unbuilt_lab_errors_its_tests_and_still_reports(
        suite: Suite, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lab named by the design but not registered: tests that need it error, others still run,
    and the three report files are written (``make conformance`` before the lab exists)."""
    monkeypatch.setitem(selection.PLANNED, "lab", selection.PLANNED["lab"] | {"cl-planned"})
    suite.pytester.makepyfile(test_lab='''
import pytest

@pytest.mark.requirement("TEN-2")
def test_needs_lab(lab):
    pass

@pytest.mark.requirement("API-1")
def test_no_lab():
    pass
''')
    empty = suite.pytester.path / "empty.yaml"
    empty.write_text("met: [API-1]\n")
    res = suite.run(f"--ratchet={empty}", lab="cl-planned")
    assert res.ret == pytest.ExitCode.OK
    res.assert_outcomes(passed=1, errors=1)
    reqs = {r["id"]: r for r in suite.doc()["requirements"]}
    assert reqs["TEN-2"]["status"] == "not-met"
    assert "lab 'cl-planned' is not built yet" in reqs["TEN-2"]["notes"][0]
    assert reqs["API-1"]["status"] == "met"
    assert {p.name for p in suite.out.iterdir()} >= {"results.json", "junit.xml", "report.html"}
    assert suite.doc()["run"]["lab"]["backend"] == "cl-planned"


def test_record_measurement_rejects_unknown_id_and_unit(suite: Suite) -> None:
    suite.pytester.makepyfile(test_rec='''
import pytest

@pytest.mark.requirement("PERF-POD-1")
def test_unknown(record_measurement):
    record_measurement("PERF-POD-9", 1, "ms")

@pytest.mark.requirement("PERF-POD-1")
def test_unit(record_measurement):
    record_measurement("PERF-POD-1", 1, "pps")

@pytest.mark.requirement("PERF-POD-1")
def test_perfdata(record_perfdata):
    record_perfdata({"unit": "ms"})
''')
    res = suite.run()
    res.assert_outcomes(failed=3)
    res.stdout.fnmatch_lines(["*unknown requirement ID 'PERF-POD-9'*",
                              "*record_measurement('PERF-POD-1'): cannot convert 'pps' to 'ms'*",
                              "*PerfData item needs 'data' (mapping) and 'unit'*"])


def test_profile_fixture(suite: Suite) -> None:
    suite.pytester.makepyfile(test_prof='''
def test_pick(profile):
    assert profile.pick(1, 100) == (100 if profile.full else 1)
    assert profile.name in ("smoke", "full")
''')
    assert suite.run("--profile=full").ret == pytest.ExitCode.OK
    assert suite.doc()["run"]["profile"] == "full"


def test_cap_samples_keeps_shape() -> None:
    values = [float(i) for i in range(25_000, 0, -1)]
    capped = cap_samples(values)
    assert len(capped) == MAX_SAMPLES
    assert capped[0] == 1.0 and capped[-1] == 25_000.0 and capped == sorted(capped)
    assert cap_samples([3.0, 1.0]) == [3.0, 1.0]


# ---- golden results.json ------------------------------------------------------------------------
GOLDEN = Path(__file__).parent / "golden" / "results.json"


def normalise(doc: dict[str, Any]) -> dict[str, Any]:
    """Drop what legitimately changes between runs: machine facts, clock, durations."""
    out = json.loads(json.dumps(doc))
    out["environment"] = sorted(out["environment"])  # the keys are the contract, values vary
    out["run"]["started"] = "<timestamp>"
    out["run"]["duration_s"] = "<seconds>"
    for t in out["tests"]:
        t["duration"] = "<seconds>"
    return out


def test_results_json_matches_golden(suite: Suite) -> None:
    """results.json of a fixed synthetic run, compared key by key with tests/unit/golden/results.json.

    The golden file is the DESIGN.md contract in concrete form; regenerate it deliberately with
    ``CENTAURUS_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_plugin.py -k golden``.
    """
    import os

    suite.pytester.makepyfile(test_suite=SUITE)
    suite.run()
    got = normalise(suite.doc())
    if os.environ.get("CENTAURUS_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=2) + "\n")
    want = json.loads(GOLDEN.read_text())
    assert list(got) == list(want), "top-level keys or their order changed"
    for key in want:
        assert got[key] == want[key], f"results.json section {key!r} differs from the golden file"
    # The DESIGN.md contract fields, spelled out so a golden regeneration cannot silently drop them.
    for r in got["requirements"]:
        assert {"id", "status", "measured", "threshold", "unit", "tests"} <= r.keys()
    assert {"hostname", "kernel", "cpu", "tools", "python", "commit"} <= set(got["environment"])


def test_promised_but_missing_capability_fails_instead_of_not_applicable(suite: Suite) -> None:
    """The builtin target promises every capability: lacking one is not-met, not not-applicable."""
    suite.pytester.makeconftest(CONFTEST.replace("    name = \"fake\"\n",
                                                 "    name = \"fake\"\n    promised_capabilities = "
                                                 "frozenset({\"tenants\"})\n"))
    suite.pytester.makepyfile(test_promise='''
import pytest

@pytest.mark.requirement("API-2")
def test_tenants(requires):
    requires("tenants")

@pytest.mark.requirement("TEN-2")
def test_nodes(requires):
    requires("nodes")
''')
    res = suite.run()
    res.assert_outcomes(failed=1, skipped=1)
    res.stdout.fnmatch_lines(["*target 'fake' does not provide tenants yet*"])
    assert suite.status()["API-2"] == "not-met" and suite.status()["TEN-2"] == "not-applicable"
