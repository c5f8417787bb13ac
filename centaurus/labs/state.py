"""The lab state file (``<state_dir>/lab.json``): written BEFORE each thing is created.

``down`` trusts only this file (plus the kernel: which of the recorded namespaces exist, which
processes live in them), so a lab whose owner was killed with SIGKILL is still removed
completely. Writes are atomic (temp file + rename): a crash never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from centaurus.labs.base import LabError

STATE_FILE = "lab.json"
VERSION = 1


@dataclass
class ProcRecord:
    pid: int
    starttime: int | None
    role: str  # "transitd" | "popen"
    host: str


@dataclass
class LabState:
    id: str
    backend: str
    dataplane: str
    spec: dict[str, Any]
    options: dict[str, str] = field(default_factory=dict)
    phase: str = "creating"  # creating | up | down | failed
    netns: list[str] = field(default_factory=list)
    procs: list[ProcRecord] = field(default_factory=list)
    bpffs: str = ""
    sockets: dict[str, str] = field(default_factory=dict)  # droplet -> transitd address
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> realised facts
    notes: list[str] = field(default_factory=list)
    remote: dict[str, Any] = field(default_factory=dict)  # remote backends: hosts, veths, macs
    version: int = VERSION

    def save(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / STATE_FILE
        tmp = path.with_suffix(".json.tmp")
        with open(tmp, "w") as f:
            json.dump(asdict(self), f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, state_dir: Path) -> LabState | None:
        path = state_dir / STATE_FILE
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise LabError(f"{path}: unreadable lab state ({exc})") from None
        if not isinstance(doc, dict) or doc.get("version") != VERSION:
            raise LabError(f"{path}: not a lab state file of version {VERSION}")
        procs = [ProcRecord(**p) for p in doc.pop("procs", [])]
        try:
            return cls(procs=procs, **doc)
        except TypeError as exc:
            raise LabError(f"{path}: malformed lab state ({exc})") from None

    @staticmethod
    def remove(state_dir: Path) -> None:
        try:
            (state_dir / STATE_FILE).unlink()
        except FileNotFoundError:
            pass


def resolve_state_dir(path: Path) -> Path:
    """Accept either the lab's own dir or a parent ``--state-dir`` holding ``lab/``."""
    if (path / STATE_FILE).exists():
        return path
    if (path / "lab" / STATE_FILE).exists():
        return path / "lab"
    return path
