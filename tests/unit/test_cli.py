"""The ``centaurus`` command: report modes, one-line errors, honest 'not built yet'."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from centaurus.cli import main
from centaurus.harness import catalog
from centaurus.harness.results import TestRecord, build

runner = CliRunner()


def results_dir(tmp_path: Path) -> Path:
    cat = catalog.load()
    doc = build(cat, [TestRecord("conformance/test_api.py::test_discovery", "passed", 0.2, ["API-1"]),
                      TestRecord("conformance/test_tenancy.py::test_isolation", "failed", 0.2, ["TEN-2"],
                                 "AssertionError: leak")],
                [], target={"name": "builtin", "arg": None}, environment={"kernel": "6"}, perf=[],
                run={"profile": "smoke", "started": "2026-01-01T00:00:00", "duration_s": 1.0, "lab": None,
                     "ratchet": None})
    d = tmp_path / "out"
    d.mkdir()
    (d / "results.json").write_text(json.dumps(doc))
    return d


def one_error_line(result: object) -> str:
    out = result.output  # type: ignore[attr-defined]
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, out
    assert "Traceback" not in out
    assert lines[0].startswith("error: ")
    return lines[0]


def test_report_summary(tmp_path: Path) -> None:
    d = results_dir(tmp_path)
    res = runner.invoke(main.app, ["report", "--dir", str(d), "--mode", "summary"])
    assert res.exit_code == 0, res.output
    assert "54 requirements: met 1, not-met 1, not-tested 52, not-applicable 0" in res.output
    assert "TEN-2" in res.output and "test_discovery" not in res.output


def test_report_detailed(tmp_path: Path) -> None:
    res = runner.invoke(main.app, ["report", "--dir", str(results_dir(tmp_path)), "--mode", "detailed"])
    assert res.exit_code == 0, res.output
    assert "conformance/test_api.py::test_discovery" in res.output and "SEC-3" in res.output


def test_report_html(tmp_path: Path) -> None:
    d = results_dir(tmp_path)
    res = runner.invoke(main.app, ["report", "--dir", str(d), "--mode", "html"])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == str(d / "report.html")
    assert "<tr id='TEN-2'>" in (d / "report.html").read_text()


def test_report_without_results_json_is_one_line(tmp_path: Path) -> None:
    res = runner.invoke(main.app, ["report", "--dir", str(tmp_path), "--mode", "summary"])
    assert res.exit_code != 0
    line = one_error_line(res)
    assert "results.json does not exist" in line and "make conformance" in line


def test_report_with_broken_json_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text("{half")
    res = runner.invoke(main.app, ["report", "--dir", str(tmp_path)])
    assert res.exit_code != 0 and "is not valid JSON" in one_error_line(res)


def test_report_unknown_mode(tmp_path: Path) -> None:
    res = runner.invoke(main.app, ["report", "--dir", str(tmp_path), "--mode", "fancy"])
    assert res.exit_code != 0 and "unknown mode 'fancy'" in one_error_line(res)


@pytest.mark.parametrize(("args", "text"), [
    (["--target", "nosuch"], "unknown target 'nosuch' (available: "),
    (["--lab", "nosuch"], "unknown lab 'nosuch' (available: "),
    (["--profile", "huge"], "unknown profile 'huge'"),
    (["--target", "builtin,oops"], "option 'oops' is not key=value"),
])
def test_conformance_run_bad_choice_is_one_line(args: list[str], text: str) -> None:
    res = runner.invoke(main.app, ["conformance", "run", *args])
    assert res.exit_code != 0
    assert text in one_error_line(res)


def test_conformance_run_bad_catalog_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "cat.yaml"
    bad.write_text("requirements: [{id: NOPE}]\n")
    res = runner.invoke(main.app, ["conformance", "run", "--catalog", str(bad)])
    assert res.exit_code != 0 and "id 'NOPE' is not a requirement ID" in one_error_line(res)


def _commands(app: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    out: list[tuple[tuple[str, ...], object]] = []
    for info in app.registered_commands:
        name = info.name or (info.callback.__name__.replace("_", "-") if info.callback else "")
        out.append(((*prefix, name), info.callback))
    for group in app.registered_groups:
        assert group.typer_instance is not None and group.name is not None
        out += _commands(group.typer_instance, (*prefix, group.name))
    return out


UNBUILT = [(path, cb) for path, cb in _commands(main.app)
           if cb is not None and "not_built(" in inspect.getsource(cb)]  # type: ignore[arg-type]


@pytest.mark.parametrize(("path", "callback"), UNBUILT or [((), None)], ids=lambda p: " ".join(p) if
                         isinstance(p, tuple) else "")
def test_unbuilt_subcommands_say_so_and_fail(path: tuple[str, ...], callback: object) -> None:
    """Every sub-command whose body still calls ``not_built`` exits 2 with one 'not built yet'
    line and prints nothing else (no fake output). Built commands are not run here."""
    if callback is None:
        return  # every sub-command is built
    res = runner.invoke(main.app, list(path))
    assert res.exit_code == 2, res.output
    assert "is not built yet" in one_error_line(res)


def test_not_built_helper() -> None:
    from centaurus.cli.common import not_built

    app = typer.Typer()

    @app.command()
    def thing() -> None:
        not_built("thing", "Some")

    res = runner.invoke(app, [])
    assert res.exit_code == 2
    assert one_error_line(res) == "error: 'thing' is not built yet (tracked by the Some issue)"
