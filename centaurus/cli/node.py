"""``centaurus node start|stop|list``: node agents outside the test suite.

* ``centaurus node start`` -- one real agent per droplet of the lab in ``--state-dir`` (``centaurus
  lab up`` first), joined to the control plane in the same state dir (``centaurus up``).
* ``centaurus node start --hollow --count N`` -- N hollow nodes in one process (no lab needed).
* ``centaurus node stop [--hollow]`` -- agents: their pods, node network setup and Node objects
  are removed; hollow: the fleet removes its Nodes and exits.

Agents and fleets started here outlive the command (no owner process); their pids are recorded
under the state dir, so ``stop`` works from any later shell.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import typer

from centaurus.cli.common import console, fail

app = typer.Typer(
    help="Start and stop node agents (real ones on lab droplets, or hollow ones).", no_args_is_help=True
)
DEFAULT_STATE = Path("~/.centaurus")
StateDir = typer.Option(DEFAULT_STATE, "--state-dir", help="where `centaurus up` / `lab up` keep their state")


def _server(state: Path) -> str:
    from centaurus.controlplane.supervisor import ControlPlane

    st = ControlPlane(state).load()
    if st is None or not st.server:
        fail(f"no control plane in {state} (run `centaurus up --state-dir {state}` first)")
    return st.server


def _hollow_state(state: Path) -> Path:
    return state / "hollow" / "fleet.json"


@app.command("start")
def start(
    hollow: bool = typer.Option(False, "--hollow", help="hollow nodes in one process instead of lab agents"),
    count: int = typer.Option(0, "--count", help="hollow nodes to start (with --hollow)"),
    zones: str = typer.Option("az1,az2,az3", "--zones", help="hollow nodes' zones, round-robin"),
    option: list[str] = typer.Option(
        [], "--option", "-o", help="agent option key=value (pod_cidr, node_cpu...)"
    ),
    state_dir: Path = StateDir,
) -> None:
    """Start agents and wait until their nodes are registered."""
    state = state_dir.expanduser().resolve()
    server = _server(state)
    t0 = time.monotonic()
    if hollow:
        if count <= 0:
            fail("--hollow needs --count N (N > 0)")
        f = _hollow_state(state)
        f.parent.mkdir(parents=True, exist_ok=True)
        f.unlink(missing_ok=True)
        argv = [
            sys.executable,
            "-m",
            "centaurus.agent.hollow",
            "--kubeconfig",
            str(state / "kubeconfig"),
            "--count",
            str(count),
            "--zones",
            zones,
            "--state-file",
            str(f),
        ]
        with open(f.parent / "fleet.log", "ab") as log:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        while not f.exists():
            if proc.poll() is not None:
                fail(f"the hollow fleet exited; see {f.parent / 'fleet.log'}")
            time.sleep(0.1)
        doc = json.loads(f.read_text())
        console.print(
            f"{len(doc['nodes'])} hollow nodes ({doc['prefix']}-*) up in {time.monotonic() - t0:.1f} s, "
            f"pid {doc['pid']}",
            highlight=False,
        )
        return
    from centaurus.agent.fleet import Fleet, FleetError
    from centaurus.agent.labhook import lab_agent_configs
    from centaurus.labs.netns import NetnsLab

    lab = NetnsLab(state_dir=state / "lab", options={})
    if not lab.hosts("droplet"):
        fail(f"no lab in {state / 'lab'} (run `centaurus lab up --state-dir {state}` first)")
    opts: dict[str, str] = {}
    for p in option:
        k, sep, v = p.partition("=")
        if not sep:
            fail(f"--option {p!r} is not key=value")
        opts[k] = v
    fleet = Fleet(state)
    fleet.stop(teardown=True)
    procs = [fleet.spawn(c) for c in lab_agent_configs(lab, state, server, fleet, opts)]
    try:
        started = fleet.wait_started(procs)
    except FleetError as exc:
        fleet.stop(teardown=True, timeout=5)
        fail(str(exc))
    for node, st in sorted(started.items()):
        console.print(
            f"node {node}: pid {st['pid']}, pod CIDR {st.get('podCIDR')}, endpoint {st['endpoint']}",
            highlight=False,
        )


@app.command("stop")
def stop(
    hollow: bool = typer.Option(False, "--hollow", help="the hollow fleet"), state_dir: Path = StateDir
) -> None:
    """Stop agents (removing their pods and nodes) or the hollow fleet."""
    state = state_dir.expanduser().resolve()
    if hollow:
        f = _hollow_state(state)
        if not f.exists():
            console.print("no hollow fleet running", highlight=False)
            return
        pid = int(json.loads(f.read_text())["pid"])
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            f.unlink(missing_ok=True)
            return
        deadline = time.monotonic() + 180
        while f.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        console.print("hollow fleet stopped", highlight=False)
        return
    from centaurus.agent.fleet import Fleet

    stopped = Fleet(state).stop(teardown=True)
    console.print(f"stopped {', '.join(stopped) or 'no agents'}", highlight=False)


@app.command("list")
def list_(state_dir: Path = StateDir) -> None:
    """Agents and the hollow fleet recorded under the state dir."""
    from centaurus.agent.fleet import Fleet

    state = state_dir.expanduser().resolve()
    fleet = Fleet(state)
    alive = set(fleet.alive())
    for p in fleet.procs:
        console.print(
            f"agent {p.node}: pid {p.pid} {'alive' if p.node in alive else 'DEAD'} (log {p.log})",
            highlight=False,
        )
    f = _hollow_state(state)
    if f.exists():
        doc = json.loads(f.read_text())
        console.print(f"hollow fleet: pid {doc['pid']}, {len(doc['nodes'])} nodes", highlight=False)
