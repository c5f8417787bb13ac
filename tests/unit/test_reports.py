"""report.html and the terminal report, from a synthetic results document over the real catalog."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from centaurus.harness import catalog
from centaurus.harness.results import Measurement, TestRecord, build
from centaurus.reports import plots, render, terminal

CAT = catalog.load()


def make_doc(perf: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    rng = random.Random(7)
    tests = [
        TestRecord("conformance/test_api.py::test_kubectl[1.33]", "passed", 1.5, ["API-1"]),
        TestRecord("conformance/test_tenancy.py::test_leak", "failed", 0.3, ["TEN-2"],
                   "AssertionError: tenant <b> saw <script>alert(1)</script>"),
        TestRecord("conformance/test_perf.py::test_pod_startup", "passed", 9.0, ["PERF-POD-1"]),
        TestRecord("conformance/test_tenancy.py::test_vpc", "skipped", 0.0, ["TEN-3"],
                   "not-applicable: target 'kubeconfig' lacks mizar"),
    ]
    meas = [Measurement("PERF-POD-1", 812.0, "ms", {"kind": "container"},
                        "conformance/test_perf.py::test_pod_startup", True)]
    if perf is None:
        perf = [
            {"data": {"Perc50": 600, "Perc90": 750, "Perc99": 812}, "unit": "ms",
             "labels": {"Metric": "pod_startup", "kind": "container"},
             "samples": [rng.gauss(600, 90) for _ in range(300)]},
            {"data": {"Perc50": 4, "Perc90": 9, "Perc99": 20}, "unit": "ms",
             "labels": {"Metric": "api_latency", "verb": "create", "resource": "pods"}},
            {"data": {"Rate": 2.1}, "unit": "Mpps",
             "labels": {"Metric": "packet_rate", "Path": "direct", "FrameSize": "64"}},
            {"data": {"Rate": 170000}, "unit": "pps",
             "labels": {"Metric": "packet_rate", "Path": "bridge-vxlan", "FrameSize": "64"}},
        ]
    run = {"started": "2026-01-01T00:00:00+00:00", "duration_s": 12.5, "profile": "smoke",
           "lab": {"backend": "netns", "spec": "/x/labs/default.yaml"}, "ratchet": ["API-1"]}
    return build(CAT, tests, meas, target={"name": "builtin", "arg": None, "server": "https://127.0.0.1:6443"},
                 environment={"kernel": "6.18.0", "cpu": "Test CPU", "cpus": 2, "tools": {"etcd": "3.4.23"}},
                 perf=perf, run=run)


def test_html_has_a_matrix_row_per_requirement_with_status_and_figure(tmp_path: Path) -> None:
    doc = make_doc()
    out = render.render_html(tmp_path / "rep", doc)
    assert out == tmp_path / "rep" / "report.html"
    html = out.read_text()
    rows = re.findall(r"<tr id='([A-Z0-9-]+)'>", html)
    assert rows == list(CAT), "one matrix row per catalog requirement, in catalog order"
    row = html.split("<tr id='PERF-POD-1'>")[1].split("</tr>")[0]
    assert "pill met" in row and "812 ms / &lt; 5,000 ms" in row and "test_pod_startup" in row
    row = html.split("<tr id='TEN-2'>")[1].split("</tr>")[0]
    assert "pill not-met" in row and "test_leak" in row
    row = html.split("<tr id='TEN-3'>")[1].split("</tr>")[0]
    assert "pill not-applicable" in row and "lacks mizar" in row
    assert "<script>" not in html and "&lt;script&gt;" in html, "test messages are escaped"
    assert "Ratchet: 1 requirement(s) must be met; <b>all are</b>" in html
    for section in ("Summary", "Per area", "Traceability matrix", "Plots", "Environment", "Tests"):
        assert f">{section}</h2>" in html
    for fact in ("6.18.0", "Test CPU", "tool: etcd", "https://127.0.0.1:6443", "netns (default.yaml)"):
        assert fact in html
    assert [p.name for p in out.parent.iterdir()] == ["report.html"], "atomic write leaves no temp file"


def test_html_is_self_contained(tmp_path: Path) -> None:
    html = render.render_html(tmp_path, make_doc()).read_text()
    assert "<link" not in html and "<script" not in html
    assert not re.search(r"src=['\"]https?:", html)


def test_plots_present_with_perf_data(tmp_path: Path) -> None:
    html = render.render_html(tmp_path, make_doc()).read_text()
    kinds = re.findall(r"data-plot='(\w+)'><img alt='([^']+)' "
                       r"src='data:image/png;base64,([A-Za-z0-9+/=]{100,})'", html)
    titles = [(k, t) for k, t, _ in kinds]
    assert ("latency", "pod_startup latency CDF") in titles
    assert ("latency", "pod_startup percentiles") in titles
    assert ("latency", "api_latency percentiles") in titles
    assert ("packet_rate", "packet rates") in titles
    assert ("headroom", "figures vs thresholds") in titles
    assert all(b64.startswith("iVBOR") for _, _, b64 in kinds), "PNG magic"


def test_no_plots_without_perf_data(tmp_path: Path) -> None:
    html = render.render_html(tmp_path, make_doc(perf=[])).read_text()
    assert "data-plot='latency'" not in html and "data-plot='packet_rate'" not in html
    assert html.count("no data in this run") == 2


def test_packet_rates_are_normalised_to_pps() -> None:
    assert plots.rate_of({"data": {"Rate": 2.1}, "unit": "Mpps"}) == pytest.approx(2.1e6)
    assert plots.rate_of({"data": {"Perc50": 5}, "unit": "kpps"}) == 5000
    assert plots.rate_of({"data": {"Perc50": 5}, "unit": "ms"}) is None
    assert plots.latency_items([{"data": {}, "unit": "s", "labels": {"Metric": "x"}},
                                {"data": {}, "unit": "pps"}]).keys() == {"x"}


def test_figure_text() -> None:
    assert render.figure_text({"measured": 0.91, "threshold": 0.8, "op": ">=", "unit": "ratio"}) == \
        "0.91 ratio / &gt;= 0.8 ratio"
    assert render.figure_text({"measured": None, "threshold": 3e5, "op": ">=", "unit": "hosts"}) == \
        "no figure / &gt;= 300,000 hosts"
    assert render.figure_text({"measured": None, "threshold": None, "unit": None}) == ""


def _console() -> Console:
    return Console(record=True, width=220, force_terminal=False, color_system=None)


def test_terminal_summary() -> None:
    con = _console()
    terminal.print_report(make_doc(), detailed=False, console=con)
    text = con.export_text()
    assert "54 requirements: met 2, not-met 1, not-tested 50, not-applicable 1" in text
    assert "per area" in text and "tenancy" in text
    assert "not met (1):" in text and "TEN-2" in text and "tenant <b> saw" in text
    assert "PERF-POD-1" in text and "812 ms (threshold < 5,000 ms)" in text
    assert "ratchet: 1 required, all met" in text
    assert "test_kubectl" not in text, "summary does not list tests"


def test_terminal_detailed_lists_every_requirement_with_tests() -> None:
    con = _console()
    terminal.print_report(make_doc(), detailed=True, console=con)
    text = con.export_text()
    for rid in CAT:
        assert re.search(rf"^{re.escape(rid)}\s", text, re.M), rid
    assert "passed   conformance/test_api.py::test_kubectl[1.33]" in text
    assert "failed   conformance/test_tenancy.py::test_leak" in text
    assert "figure: no figure (threshold >= 300,000 hosts)" in text
    assert "source: 001_875bf6187504a798.txt" in text


def test_empty_document_renders() -> None:
    """``make perf`` re-renders from ``{}`` when no conformance run exists yet."""
    html = render.render_document({})
    assert "Traceability matrix" in html and "campaigns" not in html
    assert "Performance campaigns" in render.render_document({}, extra="<p>x</p>")
