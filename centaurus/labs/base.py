"""A lab turns a topology spec (``labs/*.yaml``) into hosts the suite can use.

Backends: ``netns`` (one network namespace per droplet and per endpoint on this machine, the
embedded default), ``vagrant`` (VMs), ``ssh`` (real hosts, e.g. NIC testbeds). The spec format
lives in :mod:`centaurus.labs.spec`; every backend reads the same one.

Process placement in the ``netns`` backend: control-plane processes and node agents run in the
root namespace and talk over loopback; per-droplet daemons (transitd) run inside their droplet's
namespace and serve gRPC on a unix socket under the lab's state dir. A lab records everything it
creates in ``<state_dir>/lab.json`` before creating it, so ``down`` can remove all of it after a
crash.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@dataclass
class Host:
    """One machine of the lab as the suite sees it."""

    name: str
    role: str  # "droplet" | "switch" | "endpoint" | "control"
    address: str | None = None  # substrate IPv4
    netns: str | None = None  # netns backend: namespace name
    zone: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


class LabError(RuntimeError):
    """The lab cannot be brought up or torn down; the message says why in one line."""


@runtime_checkable
class Lab(Protocol):
    name: str
    state_dir: Path

    def up(self, spec: Any) -> None:
        """Realise ``spec`` (a :class:`centaurus.labs.spec.LabSpec`). Tears down what it made on failure."""

    def down(self) -> None:
        """Remove everything this lab created, using the state file; idempotent, crash-safe."""

    def status(self) -> dict[str, Any]:
        """What exists right now (hosts, links, processes), for ``centaurus lab status``."""

    def hosts(self, role: str | None = None) -> list[Host]: ...

    def run(
        self, host: str, argv: Sequence[str], *, timeout: float = 30.0, check: bool = True,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command on ``host`` (inside its netns / over ssh) and wait for it."""

    def popen(self, host: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start a command on ``host`` without waiting (servers, long transfers)."""
