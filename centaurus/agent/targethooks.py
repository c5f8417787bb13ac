"""What the node side adds to the builtin target: hollow nodes on demand (conformance hook
``hollow-nodes``), the node agents as fault-injection components, and ``resource_usage()``.

Hollow nodes live in one fleet process (:mod:`centaurus.agent.hollow`) started on the first
``add_hollow_nodes`` and stopped (its nodes removed) with the target; the agents are the
:class:`~centaurus.agent.fleet.Fleet` processes: ``stop_component("agent-d1")`` is a SIGKILL (a
node failure: its pods keep running, the Lease stops), ``start_component`` restarts it and the
agent adopts its pods.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from centaurus.agent.fleet import Fleet, FleetError
from centaurus.agent.hollow import HollowClient


class HollowNodes:
    def __init__(
        self,
        state_dir: Path,
        kubeconfig: Path,
        options: dict[str, str] | None = None,
        network: Callable[[], str] = lambda: "none",
    ) -> None:
        self.dir = Path(state_dir) / "hollow"
        self.kubeconfig = kubeconfig
        self.options = dict(options or {})
        self.network = network  # asked when the fleet starts: every node hook has run by then
        self.proc: subprocess.Popen[bytes] | None = None
        self.client: HollowClient | None = None

    @property
    def state_file(self) -> Path:
        return self.dir / "fleet.json"

    def _ensure(self) -> HollowClient:
        if self.client is not None and self.proc is not None and self.proc.poll() is None:
            return self.client
        self.dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
        argv = [
            sys.executable,
            "-m",
            "centaurus.agent.hollow",
            "--kubeconfig",
            str(self.kubeconfig),
            "--state-file",
            str(self.state_file),
            "--owner-pid",
            str(os.getpid()),
            "--lease-duration",
            self.options.get("hollow_lease_duration", "240"),
            "--lease-renew",
            self.options.get("hollow_lease_renew", "60"),
            "--network",
            self.network(),
        ]
        log = open(self.dir / "fleet.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        finally:
            log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.state_file.exists():
                with contextlib.suppress(ValueError, OSError):
                    doc = json.loads(self.state_file.read_text())
                    self.client = HollowClient(doc["socket"])
                    return self.client
            if self.proc.poll() is not None:
                raise FleetError(f"hollow fleet exited at start; see {self.dir / 'fleet.log'}")
            time.sleep(0.05)
        raise FleetError(f"hollow fleet did not start within 60 s; see {self.dir / 'fleet.log'}")

    def add_hollow_nodes(self, n: int) -> list[str]:
        return self._ensure().add(int(n))

    def remove_hollow_nodes(self, names: list[str]) -> None:
        if self.client is not None and names:
            self.client.remove(list(names))

    def stats(self) -> dict[str, Any]:
        return self.client.stats() if self.client is not None else {}

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # removes its Nodes and Leases, then exits
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class AgentComponents:
    """The node agents as fault-injection components (kind ``agent``)."""

    def __init__(self, fleet: Fleet, zones: dict[str, str]) -> None:
        self.fleet, self.zones = fleet, zones

    def components(self) -> list[dict[str, Any]]:
        return [
            {
                "name": f"agent-{p.node}",
                "kind": "agent",
                "zone": self.zones.get(p.node),
                "partition": None,
                "node": p.node,
                "pid": p.pid,
            }
            for p in self.fleet.procs
        ]

    def _node(self, name: str) -> str:
        return name.removeprefix("agent-")

    def stop_component(self, name: str) -> None:
        self.fleet.kill(self._node(name))

    def start_component(self, name: str) -> None:
        p = self.fleet.restart(self._node(name))
        self.fleet.wait_started([p], timeout=60)


def resource_usage(state_dir: Path) -> dict[str, Any]:
    """Control-plane usage (CPU seconds, RSS, store bytes) -- H8's /proc reader."""
    from centaurus.perf.usage import control_plane_usage

    usage: dict[str, Any] = control_plane_usage(state_dir)
    return usage
