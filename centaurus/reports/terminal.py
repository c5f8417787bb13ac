"""``centaurus report --mode summary|detailed``: the report in a terminal, like ``sonobuoy results``.

Summary: counts per status, a table per area, the IDs that are not met (with the first reason).
Detailed: every requirement with its status, figure against threshold, tests and notes.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from centaurus.reports.render import STATUS_ORDER, area_counts

STYLE = {"met": "green", "not-met": "bold red", "not-tested": "yellow", "not-applicable": "dim"}
OUTCOME_STYLE = {"passed": "green", "failed": "red", "error": "red", "skipped": "yellow"}


def _status(status: str) -> Text:
    return Text(status, style=STYLE.get(status, ""))


def num(v: float) -> str:
    """812 -> '812', 1e7 -> '10,000,000', 0.853 -> '0.853': readable, never scientific for counts."""
    return f"{int(v):,}" if float(v).is_integer() and abs(v) >= 1000 else f"{v:g}"


def figure(r: dict[str, Any]) -> str:
    unit = r.get("unit") or ""
    m, thr = r.get("measured"), r.get("threshold")
    left = f"{num(m)} {unit}" if isinstance(m, int | float) else ""
    if thr is None:
        return left
    return f"{left or 'no figure'} (threshold {r.get('op')} {num(thr)} {unit})"


def print_report(doc: dict[str, Any], detailed: bool, console: Console | None = None) -> None:
    """Print the run in ``doc`` (a parsed results.json) to ``console`` (stdout by default)."""
    con = console or Console()
    run = doc.get("run") or {}
    tgt = doc.get("target") or {}
    reqs: list[dict[str, Any]] = doc.get("requirements") or []
    counts = doc.get("summary") or {s: sum(r["status"] == s for r in reqs) for s in STATUS_ORDER}
    con.print(f"[bold]Centaurus conformance[/] target [bold]{tgt.get('name', '?')}[/]"
              f"{' (' + str(tgt['arg']) + ')' if tgt.get('arg') else ''}, profile {run.get('profile', '?')},"
              f" started {run.get('started', '?')}, {run.get('duration_s', '?')} s", highlight=False)
    line = Text(f"{len(reqs)} requirements: ")
    for i, s in enumerate(STATUS_ORDER):
        if i:
            line.append(", ")
        line.append(f"{s} {counts.get(s, 0)}", style=STYLE[s])
    con.print(line)

    table = Table(title="per area", show_lines=False, title_justify="left")
    table.add_column("area")
    for s in STATUS_ORDER:
        table.add_column(s, justify="right", style=STYLE[s])
    table.add_column("total", justify="right")
    for area, c in area_counts(reqs).items():
        table.add_row(area, *[str(c[s] or "") for s in STATUS_ORDER], str(sum(c.values())))
    con.print(table)

    if detailed:
        _detailed(con, doc, reqs)
    else:
        failing = [r for r in reqs if r["status"] == "not-met"]
        if failing:
            con.print(f"[bold red]not met ({len(failing)}):[/]")
            for r in failing:
                reason = (r.get("notes") or [""])[0]
                fig = figure(r)
                con.print(f"  {r['id']:<11} {fig + '; ' if fig else ''}{reason[:150]}", highlight=False,
                          soft_wrap=True)
        numeric = [r for r in reqs if r.get("measured") is not None and r["status"] != "not-met"]
        for r in numeric:
            con.print(Text.assemble(f"  {r['id']:<11} ", _status(r["status"]), f"  {figure(r)}"))
    ratchet = run.get("ratchet")
    if ratchet is not None:
        status = {r["id"]: r["status"] for r in reqs}
        broken = [i for i in ratchet if status.get(i) != "met"]
        con.print(f"ratchet: {len(ratchet)} required, " + ("all met" if not broken else
                                                            "NOT MET: " + ", ".join(broken)),
                  style="green" if not broken else "bold red")
    if doc.get("unknown_requirement_ids"):
        con.print(f"[yellow]tests name IDs missing from the catalog: "
                  f"{', '.join(doc['unknown_requirement_ids'])}[/]")


def _detailed(con: Console, doc: dict[str, Any], reqs: list[dict[str, Any]]) -> None:
    outcomes = {t["nodeid"]: t for t in doc.get("tests") or []}
    for r in reqs:
        head = Text.assemble((f"{r['id']}", "bold"), "  ", _status(r["status"]), f"  {r['title']}")
        con.print(head, soft_wrap=True)
        fig = figure(r)
        if fig:
            con.print(f"    figure: {fig}", highlight=False)
        con.print(f"    source: {r.get('source', '')}", style="dim", highlight=False, soft_wrap=True)
        for nodeid in r.get("tests") or []:
            oc = outcomes.get(nodeid, {}).get("outcome", "?")
            con.print(Text.assemble("    ", (f"{oc:<8}", OUTCOME_STYLE.get(oc, "")), f" {nodeid}"),
                      soft_wrap=True)
        if not r.get("tests"):
            con.print("    no test", style="yellow")
        for note in r.get("notes") or []:
            con.print(f"    - {note}", highlight=False, soft_wrap=True)
