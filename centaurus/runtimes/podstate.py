"""What the process runtime remembers about a pod, persisted so a restarted agent finds it.

One JSON file per pod (``<state_dir>/pods/<uid>/sandbox.json``), rewritten atomically
(write + rename) on every state change: the spec it was started with and, per container, the
crun id, cgroup, pid (+ start time, so a recycled pid is never adopted) and the last known state
with exit code. Exit codes observed while the agent runs are written here the moment they are
reaped, so they survive an agent restart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from centaurus.runtimes.base import ContainerSpec, ContainerStatus, PodNetwork, SandboxSpec


@dataclass
class ContainerRecord:
    name: str
    init: bool
    spec: ContainerSpec
    image_name: str = ""
    image_ref: str = ""
    image_id: str = ""
    crun_id: str = ""
    cgroup: str = ""
    restart_count: int = 0
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"
    message: str = ""
    exit_code: int | None = None
    signal: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    pid: int | None = None
    pid_start: int | None = None
    start_seconds: float | None = None  # crun run -> process running, last start

    def status(self) -> ContainerStatus:
        return ContainerStatus(
            name=self.name,
            state=self.state,  # type: ignore[arg-type]
            reason=self.reason,
            message=self.message,
            exit_code=self.exit_code,
            signal=self.signal,
            started_at=self.started_at,
            finished_at=self.finished_at,
            pid=self.pid if self.state == "running" else None,
            restart_count=self.restart_count,
            ready=self.state == "running",
            init=self.init,
            image=self.image_ref or self.spec.image,
            image_id=self.image_id,
            container_id=f"crun://{self.crun_id}" if self.crun_id else "",
        )


@dataclass
class PodRecord:
    spec: SandboxSpec
    containers: dict[str, ContainerRecord] = field(default_factory=dict)
    stopped: bool = False  # stop() was called: no more init-chain progress
    created_at: float = 0.0

    @property
    def uid(self) -> str:
        return self.spec.uid

    def ordered(self) -> list[ContainerRecord]:
        return [
            *(c for c in self.containers.values() if c.init),
            *(c for c in self.containers.values() if not c.init),
        ]


def spec_to_json(spec: SandboxSpec) -> dict[str, Any]:
    d = dataclasses.asdict(spec)
    d["log_dir"] = str(spec.log_dir)
    return d


def spec_from_json(d: dict[str, Any]) -> SandboxSpec:
    d = dict(d)
    d["log_dir"] = Path(d["log_dir"])
    d["containers"] = [ContainerSpec(**c) for c in d.get("containers", [])]
    d["init_containers"] = [ContainerSpec(**c) for c in d.get("init_containers", [])]
    if d.get("network"):
        d["network"] = PodNetwork(**d["network"])
    return SandboxSpec(**d)


def dump(rec: PodRecord) -> str:
    ctrs = []
    for c in rec.containers.values():
        cd = dataclasses.asdict(c)
        ctrs.append(cd)
    return json.dumps(
        {
            "version": 1,
            "spec": spec_to_json(rec.spec),
            "containers": ctrs,
            "stopped": rec.stopped,
            "created_at": rec.created_at,
        },
        indent=1,
    )


def load(text: str) -> PodRecord:
    doc = json.loads(text)
    rec = PodRecord(
        spec=spec_from_json(doc["spec"]),
        stopped=doc.get("stopped", False),
        created_at=doc.get("created_at", 0.0),
    )
    for cd in doc.get("containers", []):
        cd = dict(cd)
        cd["spec"] = ContainerSpec(**cd["spec"])
        c = ContainerRecord(**cd)
        rec.containers[c.name] = c
    return rec


def write_atomic(path: Path, text: str) -> None:
    """Write + rename: a reader (or a crash) sees the old or the new file, never half of one.
    The directory must exist (it is never recreated: a removed sandbox stays removed)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
