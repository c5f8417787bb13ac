"""Campaign files and the runner: validation errors are one line, thresholds are judged on the
reported figures (from the campaign or the catalog), failures are recorded and the run goes on,
resources are released, outputs land in <report_dir>/perf/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from centaurus.perf import campaign as cmod
from centaurus.perf import core, runner
from tests.perf import fakes


@pytest.fixture(autouse=True)
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(core.BUILTIN, "fixed", "tests.perf.fakes:Fixed")
    monkeypatch.setitem(core.BUILTIN, "background", "tests.perf.fakes:Background")
    monkeypatch.setitem(core.BUILTIN, "broken", "tests.perf.fakes:Broken")
    fakes.EVENTS.clear()


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    p = tmp_path / f"{doc.get('name', 'c')}.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def test_shipped_campaigns_are_valid() -> None:
    assert cmod.discover(), "no campaigns in perf/"
    assert cmod.validate_all() == []


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"name": "x"}, "steps: required"),
        ({"name": "x", "steps": [{"name": "s"}]}, "a step needs measurements or a sleep"),
        (
            {"name": "x", "steps": [{"measurements": [{"identifier": "a", "method": "nope"}]}]},
            "unknown measurement",
        ),
        (
            {
                "name": "x",
                "steps": [
                    {
                        "measurements": [
                            {"identifier": "a", "method": "background", "params": {"action": "gather"}}
                        ]
                    }
                ],
            },
            "before its start",
        ),
        (
            {"name": "x", "steps": [{"sleep": 1}], "thresholds": [{"figure": "f", "op": "~", "value": 1}]},
            "op",
        ),
        ({"name": "x", "steps": [{"sleep": 1}], "bogus": 1}, "unknown keys"),
        (
            {
                "name": "x",
                "steps": [{"measurements": [{"identifier": "a", "method": "fixed", "tuningSet": "q"}]}],
            },
            "no tuning set",
        ),
    ],
)
def test_malformed_campaigns_fail_with_one_line(tmp_path: Path, doc: dict[str, Any], message: str) -> None:
    with pytest.raises(cmod.CampaignError) as e:
        cmod.load(write(tmp_path, doc))
    assert message in str(e.value) and "\n" not in str(e.value) and str(tmp_path) in str(e.value)


def test_each_measurement_is_registered_once() -> None:
    """Built-ins live in core.BUILTIN; the entry-point group is for measurements of other
    packages: a name in both would be two registrations of one thing."""
    import tomllib

    root = Path(__file__).resolve().parents[2]
    eps = tomllib.loads((root / "pyproject.toml").read_text())["project"].get("entry-points", {})
    assert not set(core.BUILTIN) & set(eps.get(core.ENTRY_POINT_GROUP, {}))
    assert "provisioning" in core.available()


def test_unknown_campaign_name_lists_the_known_ones() -> None:
    with pytest.raises(cmod.CampaignError, match=r"no such campaign.*packet-rate"):
        cmod.load("no-such-campaign")


def test_run_judges_thresholds_records_errors_and_cleans_up(tmp_path: Path) -> None:
    doc = {
        "name": "demo",
        "requirements": ["PERF-NET-1"],
        "short_note": "tiny",
        "tuningSets": {"base": {"case": "b", "figures": {"speed": 0.5}}},
        "steps": [
            {
                "name": "bg",
                "measurements": [{"identifier": "bg", "method": "background", "params": {"action": "start"}}],
            },
            {
                "name": "work",
                "measurements": [
                    {
                        "identifier": "f",
                        "method": "fixed",
                        "tuningSet": "base",
                        "params": {"tag": "full", "figures": {"speed": 0.85, "other": 3}},
                        "short": {"tag": "short"},
                    },
                    {"identifier": "x", "method": "broken"},
                ],
            },
            {
                "name": "end",
                "measurements": [
                    {"identifier": "bg", "method": "background", "params": {"action": "gather"}}
                ],
            },
        ],
        "thresholds": [
            {"figure": "speed", "requirement": "PERF-NET-1"},  # >= 0.8 from the catalog
            {"figure": "speed", "op": ">=", "value": 0.9, "source": "stricter goal"},
            {"figure": "other", "op": "<", "value": 5, "labels": {"case": "b"}},
            {"figure": "missing", "op": ">", "value": 0},
        ],
    }
    c = cmod.load(write(tmp_path, doc))
    out = runner.run(c, short=True, report_dir=tmp_path / "out")
    assert fakes.EVENTS[:3] == ["start bg", "gather short short=True", "gather bg"]
    assert "cleanup fixed" in fakes.EVENTS and "teardown ran" in fakes.EVENTS
    assert [e["identifier"] for e in out["errors"]] == ["x"] and "the lab caught fire" in out["errors"][0][
        "error"
    ]
    figs = {(f["name"], f["status"]) for f in out["figures"]}
    assert ("speed", "not-met") in figs  # meets the catalog's 0.8, misses 0.9
    speed = next(f for f in out["figures"] if f["name"] == "speed")
    assert [t["met"] for t in speed["thresholds"]] == [True, False]
    assert speed["thresholds"][0]["value"] == 0.8 and speed["labels"]["case"] == "b"
    assert ("other", "met") in figs and ("missing", "no-figure") in figs and ("bg_seen", "reported") in figs
    assert out["short"] and out["short_note"] == "tiny"
    assert out["environment"]["kernel"] and out["environment"]["load_average_after"]
    files = sorted(p.name for p in (tmp_path / "out" / "perf").iterdir())
    assert files == ["demo.json", "demo.perfdata.json", "demo.samples.jsonl"]
    pd = json.loads((tmp_path / "out" / "perf" / "demo.perfdata.json").read_text())
    assert pd["version"] == "v1" and pd["dataItems"][0]["labels"]["Campaign"] == "demo"
    assert len(pd["dataItems"][0]["samples"]) == runner.MAX_SAMPLES
    raw = [json.loads(x) for x in (tmp_path / "out" / "perf" / "demo.samples.jsonl").read_text().splitlines()]
    assert len(raw[0]["samples"]) == 12_000  # uncapped beside the capped PerfData


def test_report_section_shows_figures_thresholds_and_plots(tmp_path: Path) -> None:
    from centaurus.perf.report import campaigns_html
    from centaurus.reports.render import render_html

    assert campaigns_html(tmp_path) == ""
    doc = {
        "name": "demo",
        "steps": [
            {"measurements": [{"identifier": "f", "method": "fixed", "params": {"figures": {"speed": 0.7}}}]}
        ],
        "thresholds": [{"figure": "speed", "requirement": "PERF-NET-1"}],
    }
    out = tmp_path / "out"
    runner.run(cmod.load(write(tmp_path, doc)), short=False, report_dir=out)
    html = campaigns_html(out)
    assert "campaign-demo" in html and "not-met" in html and "&gt;= 0.8" in html
    assert html.count("data:image/png;base64,") == 2  # latency CDF + CPU/memory over time
    assert "fake_latency latency CDF" in html and "CPU and memory over time" in html
    page = render_html(out, {}).read_text()
    assert "Performance campaigns" in page and "campaign-demo" in page


def test_cli_lists_campaigns_and_refuses_bad_input(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from centaurus.cli.main import app

    r = CliRunner().invoke(app, ["perf", "list"])
    assert r.exit_code == 0 and "packet-rate" in r.output and "api-latency" in r.output
    r = CliRunner().invoke(app, ["perf", "run", "no-such-campaign"])
    assert r.exit_code == 1 and "no such campaign" in r.output
    r = CliRunner().invoke(app, ["perf", "run"])
    assert r.exit_code == 1 and "--all" in r.output
    r = CliRunner().invoke(app, ["perf", "run", "packet-rate", "--set", "nodot=1"])
    assert r.exit_code == 1 and "IDENTIFIER.param=value" in r.output


def test_cli_runs_a_campaign_and_exits_1_on_errors_and_with_strict(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from centaurus.cli.main import app

    ok = write(
        tmp_path,
        {
            "name": "ok",
            "steps": [
                {
                    "measurements": [
                        {"identifier": "f", "method": "fixed", "params": {"figures": {"speed": 0.7}}}
                    ]
                }
            ],
            "thresholds": [{"figure": "speed", "op": ">=", "value": 0.8}],
        },
    )
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["perf", "run", str(ok), "--report-dir", str(out)])
    assert r.exit_code == 0, r.output  # a missed threshold is reported, not an error
    r = CliRunner().invoke(app, ["perf", "run", str(ok), "--report-dir", str(out), "--strict"])
    assert r.exit_code == 1
    r = CliRunner().invoke(
        app, ["perf", "run", str(ok), "--report-dir", str(out), "--set", "f.figures={speed: 0.9}", "--strict"]
    )
    assert r.exit_code == 0, r.output
    bad = write(
        tmp_path, {"name": "bad", "steps": [{"measurements": [{"identifier": "x", "method": "broken"}]}]}
    )
    r = CliRunner().invoke(app, ["perf", "run", str(bad), "--report-dir", str(out)])
    assert r.exit_code == 1 and (out / "perf" / "bad.json").exists() and (out / "report.html").exists()


def test_unavailable_generator_is_not_verified_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(core.BUILTIN, "unavailable", "tests.perf.fakes:Unavailable")
    doc = {
        "name": "nv",
        "steps": [{"measurements": [{"identifier": "t", "method": "unavailable"}]}],
        "thresholds": [{"figure": "ndr_vs_line_rate", "requirement": "PERF-NET-1"}],
    }
    out = runner.run(cmod.load(write(tmp_path, doc)), short=True, report_dir=tmp_path / "out")
    assert out["errors"] == [] and "not-verified" in out["not_verified"][0]["reason"]
    assert out["figures"][0]["status"] == "not-verified"


def test_packet_rate_bisects_an_open_loop_generator_and_judges_line_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from centaurus.perf import shared

    gen = fakes.OpenLoopGen()
    monkeypatch.setattr(shared, "generator", lambda ctx, name, options=None: gen)
    doc = {
        "name": "nic",
        "steps": [
            {
                "measurements": [
                    {
                        "identifier": "pps",
                        "method": "packet-rate",
                        "params": {
                            "generator": "fake",
                            "sizes": [64],
                            "rounds": 1,
                            "trial_s": 1.0,
                            "rate_basis": "wall",
                            "paths": [
                                {"name": "link", "kind": "link"},
                                {"name": "overlay", "kind": "overlay"},
                            ],
                            "comparisons": [
                                {"figure": "overlay_vs_link", "path": "overlay", "reference": "link"}
                            ],
                            "worst": [],
                            "ndr": {"trial_s": 1.0, "resolution": 0.01, "max_iterations": 12},
                        },
                    }
                ]
            }
        ],
        "thresholds": [
            {"figure": "ndr_vs_line_rate", "requirement": "PERF-NET-1", "labels": {"path": "overlay"}}
        ],
    }
    out = runner.run(cmod.load(write(tmp_path, doc)), short=False, report_dir=tmp_path / "out")
    assert out["errors"] == []
    figs = {(f["name"], f["labels"].get("path")): f for f in out["figures"]}
    ndr = figs["ndr_mpps", "overlay"]
    assert 5.9 <= ndr["value"] <= 6.0 and "binary search" in ndr["note"]
    assert figs["ndr_mpps", "link"]["value"] == pytest.approx(14.881, abs=0.001)
    line = figs["ndr_vs_line_rate", "overlay"]
    assert (
        line["status"] == "not-met" and 0.39 < line["value"] <= 0.41 and line["reference"]["mpps"] == 14.881
    )
    assert figs["ndr_vs_line_rate", "link"]["value"] == pytest.approx(1.0, abs=0.001)
    assert figs["overlay_vs_link", None]["value"] == pytest.approx(6e6 / 14_880_952, abs=0.001)
    assert any(rate > 0 for kind, rate in gen.trials if kind == "overlay")  # it really bisected
