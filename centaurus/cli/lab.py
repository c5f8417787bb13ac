"""``centaurus lab up|down|status``: bring a lab topology up and down outside the test suite.

The lab lives on after ``up`` returns (daemons run detached, the state file records everything);
``down`` and ``status`` work from any later process given the same ``--state-dir``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from centaurus.cli.common import console, fail
from centaurus.labs.base import LabError
from centaurus.plugins import PluginError, load

app = typer.Typer(help="Bring lab topologies up and down.", no_args_is_help=True)
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPEC = ROOT / "labs" / "default.yaml"
DEFAULT_STATE = Path("~/.centaurus")

StateDir = typer.Option(DEFAULT_STATE, "--state-dir", help="state dir; the lab keeps its files in D/lab")
Backend = typer.Option("netns", "--lab", help="lab backend (netns | vagrant | ssh)")


def lab_dir(state_dir: Path) -> Path:
    return state_dir.expanduser() / "lab"


def _options(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep or not k:
            fail(f"--option {p!r} is not key=value")
        out[k] = v
    return out


def make(backend: str, state_dir: Path, options: dict[str, str]) -> Any:
    try:
        cls = load("lab", backend)
        return cls(state_dir=lab_dir(state_dir), options=options)
    except (PluginError, LabError) as exc:
        fail(str(exc))


@app.command("up")
def up(
    spec: Path = typer.Option(DEFAULT_SPEC, "--spec", help="lab spec (YAML)"),
    dataplane: str = typer.Option("", "--dataplane", help="mizar-xdp | bridge-vxlan (default: the spec's)"),
    lab_id: str = typer.Option("", "--id", help="lab id used in names (default: random 4 hex)"),
    option: list[str] = typer.Option([], "--option", "-o", help="backend/dataplane option key=value"),
    state_dir: Path = StateDir,
    backend: str = Backend,
) -> None:
    """Realise a lab spec; prints what it made."""
    from centaurus.labs.spec import load_spec

    opts = _options(option)
    if dataplane:
        opts["dataplane"] = dataplane
    if lab_id:
        opts["id"] = lab_id
    try:
        parsed = load_spec(spec)
    except LabError as exc:
        fail(str(exc))
    lab = make(backend, state_dir, opts)
    t0 = time.monotonic()
    try:
        lab.up(parsed)
    except (LabError, PluginError, RuntimeError, OSError) as exc:
        fail(f"lab up failed: {exc}")
    st = lab.status()
    console.print(f"lab [bold]{st.get('id')}[/] ({parsed.name}, {backend}, "
                  f"dataplane {st.get('dataplane')}) up "
                  f"in {time.monotonic() - t0:.2f} s: {len(st.get('netns', {}))} namespaces, "
                  f"{len(st.get('processes', []))} daemons; state in {lab.state_dir}", highlight=False)


@app.command("down")
def down(state_dir: Path = StateDir, backend: str = Backend) -> None:
    """Remove everything the lab in --state-dir created (idempotent, works after a crash)."""
    lab = make(backend, state_dir, {})
    before = lab.status()
    try:
        lab.down()
    except LabError as exc:
        fail(str(exc))
    if before.get("phase") == "down":
        console.print(f"no lab up in {lab.state_dir}", highlight=False)
    else:
        console.print(f"lab {before.get('id')} removed", highlight=False)


@app.command("status")
def status(state_dir: Path = StateDir, backend: str = Backend,
           as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Show what the lab in --state-dir has: namespaces, daemons, pinned maps."""
    lab = make(backend, state_dir, {})
    st = lab.status()
    if as_json:
        print(json.dumps(st, indent=1, sort_keys=True))
        return
    if st.get("phase") == "down":
        console.print(f"no lab up in {st['state_dir']}", highlight=False)
        raise typer.Exit(3)
    ns = st.get("netns", {})
    missing = [n for n, ok in ns.items() if not ok]
    console.print(f"lab {st['id']} ({st.get('spec')}): phase {st['phase']}, dataplane {st['dataplane']}",
                  highlight=False)
    console.print(f"  namespaces: {len(ns) - len(missing)}/{len(ns)} present"
                  + (f" (missing: {', '.join(missing)})" if missing else ""), highlight=False)
    for p in st.get("processes", []):
        console.print(f"  {p['role']} on {p['host']}: pid {p['pid']} {'alive' if p['alive'] else 'DEAD'}",
                      highlight=False)
    bpf = st.get("bpffs", {})
    console.print(f"  bpffs {bpf.get('path')}: {'present' if bpf.get('exists') else 'absent'}",
                  highlight=False)
    unreal = [n for n, ok in st.get("endpoints", {}).items() if not ok]
    if unreal:
        console.print(f"  endpoints not realised by this dataplane: {', '.join(unreal)}", highlight=False)
    if missing or any(not p["alive"] for p in st.get("processes", [])):
        raise typer.Exit(1)
