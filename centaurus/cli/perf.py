"""``centaurus perf``: run performance campaigns (``perf/*.yaml``) and list what exists."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from centaurus.cli.common import fail

ROOT = Path(__file__).resolve().parents[2]
app = typer.Typer(
    help="Performance campaigns (perf/*.yaml): `centaurus perf run NAME [--short]`.", no_args_is_help=True
)


def _overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    """``--set IDENT.key=value`` (value parsed as YAML: numbers, lists, booleans)."""
    out: dict[str, dict[str, Any]] = {}
    for it in items:
        left, eq, value = it.partition("=")
        ident, dot, key = left.partition(".")
        if not eq or not dot or not ident or not key:
            fail(f"--set {it!r}: expected IDENTIFIER.param=value (e.g. pps.sizes=[64,1518])")
        out.setdefault(ident, {})[key] = yaml.safe_load(value)
    return out


@app.command("run")
def run(
    campaigns: Annotated[
        list[str] | None, typer.Argument(help="campaign names (perf/NAME.yaml) or files")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="every campaign in perf/")] = False,
    short: Annotated[bool, typer.Option("--short", help="the short version (what `make perf` runs)")] = False,
    report_dir: Annotated[Path, typer.Option("--report-dir", help="where outputs go")] = ROOT
    / "reports"
    / "out",
    set_: Annotated[list[str] | None, typer.Option("--set", help="IDENT.param=value override")] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="exit 1 when a figure misses its threshold")
    ] = False,
) -> None:
    """Run campaigns; write PerfData and raw samples to REPORT_DIR/perf/ and re-render report.html.
    Exit 1 when a measurement failed (with --strict also when a threshold is missed)."""
    from rich.console import Console

    from centaurus.perf import campaign as cmod
    from centaurus.perf import runner, summary
    from centaurus.perf.core import MeasurementError

    names: list[str | Path] = list(campaigns or [])
    if all_:
        names += cmod.discover()
    if not names:
        fail("name a campaign or give --all (known: " + ", ".join(p.stem for p in cmod.discover()) + ")")
    try:
        loaded = [cmod.load(n) for n in names]
    except (cmod.CampaignError, MeasurementError) as exc:
        fail(str(exc))
    overrides = _overrides(list(set_ or []))
    console = Console(stderr=True)
    bad = False
    docs = []
    for c in loaded:
        doc = runner.run(c, short=short, report_dir=report_dir, console=console, overrides=overrides)
        docs.append(doc)
        summary.print_campaign(doc, console)
        bad = (
            bad
            or bool(doc["errors"])
            or (strict and any(f["status"] in ("not-met", "no-figure") for f in doc["figures"]))
        )
    html = runner.rerender_report(report_dir)
    console.print(f"outputs: {report_dir / 'perf'}" + (f"; report: {html}" if html else ""))
    raise typer.Exit(1 if bad else 0)


@app.command("list")
def list_() -> None:
    """Campaigns in perf/ and the measurement methods they can use."""
    from centaurus.perf import campaign as cmod
    from centaurus.perf.core import available

    for p in cmod.discover():
        try:
            c = cmod.load(p)
            first = c.description.splitlines()[0] if c.description else ""
            typer.echo(f"{c.name:16s} {p.relative_to(ROOT)}  {first}")
        except Exception as exc:
            typer.echo(f"{p.stem:16s} INVALID: {exc}")
    typer.echo("measurements: " + ", ".join(sorted(available())))
