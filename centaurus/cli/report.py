"""``centaurus report``: show or re-render a run's compliance report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from centaurus.cli.common import fail

ROOT = Path(__file__).resolve().parents[2]


def report(
    report_dir: Annotated[Path, typer.Option("--dir", help="report directory")] = ROOT / "reports" / "out",
    mode: Annotated[str, typer.Option(help="summary | detailed | html")] = "summary",
) -> None:
    """Print the compliance summary (like ``sonobuoy results``) or re-render report.html."""
    if mode not in ("summary", "detailed", "html"):
        fail(f"unknown mode {mode!r} (summary | detailed | html)")
    path = report_dir / "results.json"
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        fail(f"{path} does not exist: run 'make conformance' first")
    except json.JSONDecodeError as exc:
        fail(f"{path} is not valid JSON: {exc}")
    from centaurus.reports.render import render_html
    from centaurus.reports.terminal import print_report

    if mode == "html":
        out = render_html(report_dir, doc)
        typer.echo(str(out))
    else:
        print_report(doc, detailed=(mode == "detailed"))
