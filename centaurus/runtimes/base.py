"""One interface for every kind of workload a node agent runs.

``process`` runs OCI containers with crun in the pod's own network namespace, ``vm`` runs qemu
guests (restored from a template snapshot, cold boot as fallback) with a tap in that namespace,
``hollow`` runs nothing and answers instantly (scale runs). The agent never knows which one it
talks to beyond :attr:`Runtime.name`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable


class RuntimeError_(RuntimeError):
    """A workload could not be started/stopped; ``reason`` is a Kubernetes-style CamelCase word
    (``ErrImagePull``, ``CreateContainerError``, ``VmBootFailed``) shown in the pod status."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason, self.message = reason, message


@dataclass
class ContainerSpec:
    name: str
    image: str
    command: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    memory_limit: int | None = None  # bytes
    cpu_limit_millis: int | None = None
    tty: bool = False
    stdin: bool = False


@dataclass
class SandboxSpec:
    """Everything a runtime needs to start one pod."""

    uid: str
    tenant: str
    namespace: str
    name: str
    netns_path: str | None  # /var/run/netns/<name>; None = host network / hollow
    log_dir: Path
    containers: list[ContainerSpec] = field(default_factory=list)
    vm: dict[str, Any] | None = None  # Arktos spec.virtualMachine, for the vm runtime
    restart_policy: str = "Always"


@dataclass
class ContainerStatus:
    name: str
    state: Literal["waiting", "running", "terminated"]
    reason: str = ""
    message: str = ""
    exit_code: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    pid: int | None = None
    restart_count: int = 0
    ready: bool = False


@dataclass
class Sandbox:
    """Handle for a started pod. ``runtime_id`` is what :meth:`Runtime.sandboxes` finds again after an
    agent restart; ``info`` holds runtime facts (VM power state, ready time, ...)."""

    uid: str
    runtime_id: str
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Runtime(Protocol):
    name: str

    async def prepare(self) -> None:
        """One-time work off the startup path (image store check, template snapshot)."""

    async def start(self, spec: SandboxSpec) -> Sandbox:
        """Start every container / the VM. Raises :class:`RuntimeError_` with a clear reason."""

    async def status(self, sandbox: Sandbox) -> list[ContainerStatus]: ...

    async def stop(self, sandbox: Sandbox, grace_seconds: float = 30.0) -> None:
        """TERM, wait ``grace_seconds``, KILL."""

    async def remove(self, sandbox: Sandbox) -> None:
        """Release everything the sandbox holds (processes, cgroups, bundles, sockets). Idempotent."""

    async def sandboxes(self) -> list[Sandbox]:
        """Sandboxes that exist on this node, including ones started before an agent restart."""

    async def restart_container(self, sandbox: Sandbox, container: str) -> None:
        """Start a terminated container again (restartPolicy)."""

    def logs(self, sandbox: Sandbox, container: str, *, follow: bool = False,
             tail_lines: int | None = None) -> AsyncIterator[bytes]: ...

    async def exec(self, sandbox: Sandbox, container: str, argv: list[str], *, tty: bool = False) -> Any:
        """Start a process in the container; returns an object with stdin/stdout/stderr streams and
        ``wait() -> exit code`` (see :mod:`centaurus.runtimes.process`)."""

    async def action(self, sandbox: Sandbox, action: str, params: dict[str, Any]) -> dict[str, Any]:
        """VM actions (reboot, stop, start, snapshot, restore); others raise RuntimeError_."""
