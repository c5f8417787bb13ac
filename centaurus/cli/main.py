"""Entry point of the ``centaurus`` command.

Sub-commands are thin: they parse, call a component, and print a short result. A sub-command
whose component is not built yet says so and exits 2 -- never fake output.
"""

from __future__ import annotations

import typer

from centaurus.cli import conformance, report
from centaurus.cli import lab as lab_cli
from centaurus.cli.common import not_built

app = typer.Typer(
    name="centaurus",
    help="Centaurus Lab: conformance suite, benchmarks and a compact Centaurus implementation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(conformance.app, name="conformance")
app.command("report")(report.report)

perf_app = typer.Typer(help="Performance campaigns.", no_args_is_help=True)
transit_app = typer.Typer(help="Talk to a droplet's transitd.", no_args_is_help=True)
tenant_app = typer.Typer(help="Manage tenants of the running control plane.", no_args_is_help=True)
app.add_typer(lab_cli.app, name="lab")
app.add_typer(perf_app, name="perf")
app.add_typer(transit_app, name="transit")
app.add_typer(tenant_app, name="tenant")


@perf_app.command("run")
def perf_run() -> None:
    """Run a campaign."""
    not_built("perf run", "Performance campaigns")


@app.command("up")
def up() -> None:
    """Start the builtin control plane in the background."""
    not_built("up", "Control plane")


@app.command("down")
def down() -> None:
    """Stop the builtin control plane."""
    not_built("down", "Control plane")


@app.command("status")
def status() -> None:
    """Report what runs."""
    not_built("status", "Control plane")


@app.command("kubeconfig")
def kubeconfig() -> None:
    """Write a kubeconfig for a tenant user."""
    not_built("kubeconfig", "Control plane")


@tenant_app.command("create")
def tenant_create() -> None:
    """Create a tenant."""
    not_built("tenant create", "Control plane")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
