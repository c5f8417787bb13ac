"""``centaurus conformance run``: the suite, through pytest with the harness plugin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from centaurus.cli.common import fail
from centaurus.harness import catalog as catalog_mod
from centaurus.harness.selection import parse_choice
from centaurus.plugins import PluginError

ROOT = Path(__file__).resolve().parents[2]
app = typer.Typer(help="Run the conformance suite.", no_args_is_help=True)


@app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    target: Annotated[str, typer.Option(help="builtin | kubeconfig=PATH")] = "builtin",
    lab: Annotated[str, typer.Option(help="netns | vagrant | ssh | none")] = "netns",
    lab_spec: Annotated[Path, typer.Option(help="lab topology")] = ROOT / "labs" / "default.yaml",
    profile: Annotated[str, typer.Option(help="smoke | full")] = "smoke",
    report_dir: Annotated[Path, typer.Option(help="output directory")] = ROOT / "reports" / "out",
    ratchet: Annotated[Path | None, typer.Option(help="IDs that must be met (exit status)")] = None,
    catalog: Annotated[Path | None, typer.Option(help="requirement catalog")] = None,
) -> None:
    """Bring up target (and lab), run conformance/, write results.json, junit.xml, report.html.

    Extra arguments go to pytest (e.g. ``-k tenancy -x``)."""
    if profile not in ("smoke", "full"):
        fail(f"unknown profile {profile!r} (smoke | full)")
    try:
        catalog_mod.load(catalog)
        parse_choice(target, "target")
        if lab != "none":
            parse_choice(lab, "lab")
    except (catalog_mod.CatalogError, PluginError) as exc:
        fail(str(exc))
    argv = [
        sys.executable, "-m", "pytest", str(ROOT / "conformance"), "-p", "no:cacheprovider",
        f"--target={target}", f"--lab={lab}", f"--lab-spec={lab_spec}", f"--profile={profile}",
        f"--report-dir={report_dir}", f"--junitxml={report_dir / 'junit.xml'}", "-rfEs",
    ]
    if ratchet:
        argv.append(f"--ratchet={ratchet}")
    if catalog:
        argv.append(f"--catalog={catalog}")
    argv += list(ctx.args)
    rc = subprocess.call(argv, cwd=ROOT)
    raise typer.Exit(rc)
