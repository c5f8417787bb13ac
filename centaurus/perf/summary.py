"""The one-screen terminal summary of a campaign run: judged figures first (value, threshold,
same-run reference), then errors and the machine's load."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

STYLE = {"met": "green", "not-met": "bold red", "no-figure": "bold red", "reported": "dim",
         "not-verified": "yellow"}


def labels_text(labels: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "measurement")


def threshold_text(f: dict[str, Any]) -> str:
    return "; ".join(
        f"{t['op']} {t['value']:g}{' ' + t['unit'] if t.get('unit') and t['unit'] != 'ratio' else ''}"
        f" ({t.get('requirement') or t.get('source') or 'campaign'})"
        for t in f.get("thresholds", [])
        if t.get("value") is not None
    )


def reference_text(f: dict[str, Any]) -> str:
    ref = f.get("reference") or {}
    return ", ".join(f"{k} {v}" for k, v in ref.items())


def value_text(f: dict[str, Any]) -> str:
    v = f.get("value")
    if v is None:
        return "no figure"
    return f"{v:g} {f.get('unit', '')}".strip()


def print_campaign(doc: dict[str, Any], console: Console | None = None, *, everything: bool = False) -> None:
    console = console or Console()
    env = doc.get("environment") or {}
    title = (
        f"{doc['campaign']}{' (short)' if doc.get('short') else ''}: {doc.get('duration_s')} s, load "
        f"{' '.join(str(x) for x in env.get('load_average_before', []))} -> "
        f"{' '.join(str(x) for x in env.get('load_average_after', []))}, kernel {env.get('kernel', '?')}, "
        f"{env.get('cpus', '?')} CPUs"
    )
    t = Table(title=title, title_justify="left", show_lines=False)
    for col in ("figure", "labels", "value", "threshold", "same-run reference", "status"):
        t.add_column(col, overflow="fold")
    judged = [f for f in doc.get("figures", []) if everything or f.get("status") != "reported"]
    for f in judged:
        st = f.get("status", "")
        t.add_row(
            f["name"],
            labels_text(f.get("labels") or {}),
            value_text(f),
            threshold_text(f),
            reference_text(f),
            f"[{STYLE.get(st, '')}]{st}[/]",
        )
    console.print(t)
    if doc.get("short_note"):
        console.print(f"[dim]short run: {doc['short_note']}[/]")
    for n in doc.get("notes", [])[:10]:
        console.print(f"[yellow]note:[/] {n}")
    for v in doc.get("not_verified", []):
        console.print(f"[yellow]{v.get('identifier')}: {v.get('reason')}[/]")
    for e in doc.get("errors", []):
        console.print(f"[bold red]error[/] in {e.get('step')} / {e.get('identifier')}: {e.get('error')}")
