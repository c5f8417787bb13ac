"""Entry point of the ``centaurus`` command.

Sub-commands are thin: they parse, call a component, and print a short result. A sub-command
whose component is not built yet says so and exits 2 -- never fake output.
"""

from __future__ import annotations

import typer

from centaurus.cli import conformance, controlplane, report
from centaurus.cli import lab as lab_cli
from centaurus.cli import node as node_cli
from centaurus.cli import perf as perf_cli
from centaurus.cli import transit as transit_cli

app = typer.Typer(
    name="centaurus",
    help="Centaurus Lab: conformance suite, benchmarks and a compact Centaurus implementation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(conformance.app, name="conformance")
app.command("report")(report.report)

app.add_typer(lab_cli.app, name="lab")
app.add_typer(node_cli.app, name="node")
app.add_typer(perf_cli.app, name="perf")
app.add_typer(transit_cli.app, name="transit")
app.add_typer(controlplane.tenant_app, name="tenant")


app.command("up")(controlplane.up)
app.command("down")(controlplane.down)
app.command("status")(controlplane.status)
app.command("kubeconfig")(controlplane.kubeconfig)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
