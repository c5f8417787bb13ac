"""The hollow-node fleet process of the density campaign: the node agent's hollow mode
(``python -m centaurus.agent.hollow``, grown through its control socket) or, when that is not
installed, :mod:`centaurus.perf.standin_fleet` (grown by ``<state>.want`` + SIGUSR1); and the
wait until N hollow nodes are Ready as the API sees them."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from centaurus.client.aio import AsyncClient


class FleetProc:
    """The hollow fleet process: grown by writing ``<state>.want`` and sending SIGUSR1."""

    def __init__(self, kubeconfig: Path, work: Path, count: int, renew: float) -> None:
        real = importlib.util.find_spec("centaurus.agent.hollow") is not None
        self.kind = "centaurus.agent.hollow" if real else "centaurus.perf.standin_fleet"
        self.state = work / "fleet.json"
        self.log = work / "fleet.log"
        argv = [
            sys.executable,
            "-m",
            self.kind,
            "--kubeconfig",
            str(kubeconfig),
            "--count",
            str(count),
            "--prefix",
            "hollow",
            "--zones",
            "az1,az2,az3",
            "--cpu",
            "32",
            "--memory",
            "256Gi",
            "--pods",
            "110",
            "--lease-duration",
            str(int(renew * 4)),
            "--lease-renew",
            str(renew),
            "--state-file",
            str(self.state),
        ]
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(argv, stdout=fh, stderr=fh, start_new_session=True)
        self.count = count

    def nodes(self) -> int:
        with contextlib.suppress(OSError, ValueError):
            doc = json.loads(self.state.read_text())
            return len(doc.get("nodes") or ()) if doc.get("ready") else 0
        return 0

    def grow(self, count: int) -> None:
        """The agent's fleet adds nodes through its control socket; the stand-in re-reads
        ``<state>.want`` on SIGUSR1."""
        if self.kind == "centaurus.agent.hollow":
            from centaurus.agent.hollow import HollowClient

            sock = json.loads(self.state.read_text())["socket"]
            HollowClient(sock).add(count - self.count)
        else:
            Path(str(self.state) + ".want").write_text(str(count))
            os.kill(self.proc.pid, signal.SIGUSR1)
        self.count = count

    def check(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log.read_text()[-600:] if self.log.exists() else ""
            raise RuntimeError(f"hollow fleet ({self.kind}) exited {self.proc.returncode}: {tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def ready_hollow(api: AsyncClient) -> int:
    nodes = await api.list("nodes", label_selector="centaurus.io/hollow=true")
    return sum(
        1
        for n in nodes["items"]
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (n.get("status") or {}).get("conditions") or ()
        )
    )


async def wait_fleet(api: AsyncClient, fleet: FleetProc, want: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fleet.check()
        if fleet.nodes() >= want and await ready_hollow(api) >= want:
            return
        await asyncio.sleep(1.0)
    raise RuntimeError(f"{want} hollow nodes not Ready within {timeout:g} s (fleet has {fleet.nodes()})")
