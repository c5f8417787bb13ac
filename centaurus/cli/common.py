"""Helpers shared by CLI sub-commands: one-line errors, honest 'not built yet'."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear line on stderr and exit non-zero: users get no tracebacks for bad input."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def not_built(what: str, issue: str) -> NoReturn:
    fail(f"'{what}' is not built yet (tracked by the {issue} issue)", code=2)
