"""One interface for every kind of workload a node agent runs.

``process`` runs OCI containers with crun in the pod's own network namespace, ``vm`` runs qemu
guests (restored from a template snapshot, cold boot as fallback) with a tap in that namespace,
``hollow`` runs nothing and answers instantly (scale runs). The agent never knows which one it
talks to beyond :attr:`Runtime.name`.

Contract every implementation keeps (the agent relies on it):

* Construction: ``Cls(state_dir: Path, options: Mapping[str, Any] | None = None)`` -- looked up by
  name in the ``centaurus.runtimes`` entry-point group. ``state_dir`` is private to one runtime
  instance (one node): :meth:`Runtime.sandboxes` returns exactly what was started under it, also
  by an earlier process (agent restart).
* Division of labour: the runtime starts, watches, stops and cleans up workloads and reports what
  it sees. Policy -- restartPolicy, back-off, probes, pod phase -- is the agent's: after a
  container terminates, the agent decides whether and when to call :meth:`Runtime.restart_container`.
* Every method is a coroutine that never blocks the event loop (subprocesses and file work run in
  threads or as asyncio subprocesses); :meth:`Runtime.logs` is an async iterator.
* Errors that belong in the pod status are :class:`RuntimeError_` with a Kubernetes-style reason.
* Change notifications: listeners added with :meth:`Runtime.add_listener` are called on the loop
  with ``(sandbox uid, container name)`` whenever a container/VM changes state, so the agent need
  not poll. :meth:`Runtime.status` is cheap (in-memory) and always current.
* :meth:`Runtime.close` detaches (stops watching, closes sockets) and leaves workloads running; a
  new instance on the same ``state_dir`` picks them up. :meth:`Runtime.remove` is the only call that
  destroys a sandbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
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
    command: list[str] = field(default_factory=list)  # overrides the image Entrypoint
    args: list[str] = field(default_factory=list)  # overrides the image Cmd
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    memory_limit: int | None = None  # bytes
    cpu_limit_millis: int | None = None
    cpu_request_millis: int | None = None  # relative weight (cpu shares)
    pids_limit: int | None = None
    run_as_user: int | None = None
    run_as_group: int | None = None
    tty: bool = False
    stdin: bool = False


@dataclass
class PodNetwork:
    """What the agent's network hook configured for the pod (the VM runtime hands it to the
    guest; the process runtime writes /etc/hosts from it)."""

    ip: str
    prefix_len: int = 24
    gateway: str | None = None
    mac: str | None = None
    interface: str = "eth0"  # the pod-side interface inside the netns


@dataclass
class SandboxSpec:
    """Everything a runtime needs to start one pod."""

    uid: str
    tenant: str
    namespace: str
    name: str
    netns_path: str | None  # /var/run/netns/<name>; None = host network / hollow
    log_dir: Path  # <log_dir>/<container>/<restartCount>.log
    containers: list[ContainerSpec] = field(default_factory=list)
    init_containers: list[ContainerSpec] = field(default_factory=list)  # run in order, before containers
    vm: dict[str, Any] | None = None  # Arktos spec.virtualMachine, for the vm runtime
    restart_policy: str = "Always"
    hostname: str | None = None  # default: the pod name
    network: PodNetwork | None = None


@dataclass
class ContainerStatus:
    name: str
    state: Literal["waiting", "running", "terminated"]
    reason: str = ""
    message: str = ""
    exit_code: int | None = None
    signal: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    pid: int | None = None
    restart_count: int = 0
    ready: bool = False
    init: bool = False
    image: str = ""
    image_id: str = ""
    container_id: str = ""  # "crun://<id>", "qemu://<id>", "hollow://<id>"


@dataclass
class Sandbox:
    """Handle for a started pod. ``runtime_id`` is what :meth:`Runtime.sandboxes` finds again after an
    agent restart; ``info`` holds runtime facts (VM power state, ready time, ...)."""

    uid: str
    runtime_id: str
    info: dict[str, Any] = field(default_factory=dict)


class ExecSession(Protocol):
    """A process started by :meth:`Runtime.exec`. Shaped for the Kubernetes exec/attach channel
    protocol: channel 0 -> ``stdin``, 1 <- ``stdout``, 2 <- ``stderr`` (None with a tty: the tty
    merges both into ``stdout``), 3 <- the exit status from :meth:`wait`, 4 -> :meth:`resize`."""

    stdin: asyncio.StreamWriter | None
    stdout: asyncio.StreamReader
    stderr: asyncio.StreamReader | None
    tty: bool

    async def wait(self) -> int:
        """Exit code (128+signal when killed)."""

    async def resize(self, cols: int, rows: int) -> None: ...

    async def close_stdin(self) -> None: ...

    async def kill(self) -> None: ...


Listener = Callable[[str, str], None]
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Listeners:
    """A runtime's change listeners (:meth:`Runtime.add_listener`): called in order with
    ``(sandbox uid, container name)``; one that raises is logged and the others still run, so a
    buggy subscriber cannot stall the runtime's own bookkeeping."""

    __slots__ = ("_fns",)

    def __init__(self) -> None:
        self._fns: list[Listener] = []

    def add(self, fn: Listener) -> None:
        self._fns.append(fn)

    def __call__(self, uid: str, name: str) -> None:
        for fn in self._fns:
            try:
                fn(uid, name)
            except Exception:
                logging.getLogger("centaurus.runtime").exception("runtime listener failed")


@runtime_checkable
class Runtime(Protocol):
    name: str

    async def prepare(self) -> None:
        """One-time work off the startup path (image store check, template snapshot)."""

    async def start(self, spec: SandboxSpec) -> Sandbox:
        """Start every container / the VM. Raises :class:`RuntimeError_` with a clear reason
        (nothing is left behind when it does)."""

    async def status(self, sandbox: Sandbox) -> list[ContainerStatus]: ...

    async def stop(self, sandbox: Sandbox, grace_seconds: float = 30.0) -> None:
        """TERM, wait ``grace_seconds``, KILL. Leaves the sandbox (logs, status) for inspection."""

    async def remove(self, sandbox: Sandbox) -> None:
        """Release everything the sandbox holds (processes, cgroups, bundles, sockets). Idempotent."""

    async def sandboxes(self) -> list[Sandbox]:
        """Sandboxes that exist on this node, including ones started before an agent restart."""

    async def restart_container(self, sandbox: Sandbox, container: str) -> None:
        """Start a terminated container again (restartPolicy; back-off is the agent's)."""

    def logs(
        self,
        sandbox: Sandbox,
        container: str,
        *,
        follow: bool = False,
        tail_lines: int | None = None,
        previous: bool = False,
    ) -> AsyncIterator[bytes]: ...

    async def exec(
        self, sandbox: Sandbox, container: str, argv: list[str], *, tty: bool = False, stdin: bool = True
    ) -> ExecSession:
        """Start a process in the container (see :class:`ExecSession`)."""

    async def attach(self, sandbox: Sandbox, container: str) -> ExecSession:
        """Attach to the container's main process: output from now on (its log), input into its
        stdin/tty when the container was started with ``stdin``/``tty``; ``wait()`` = its exit."""

    async def port_forward(self, sandbox: Sandbox, port: int) -> Connection:
        """A TCP connection to ``port`` inside the pod (its netns loopback / the guest)."""

    async def action(self, sandbox: Sandbox, action: str, params: dict[str, Any]) -> dict[str, Any]:
        """VM actions (reboot, stop, start, pause, resume, snapshot, restore); others raise RuntimeError_."""

    async def stats(self, sandbox: Sandbox) -> dict[str, dict[str, float]]:
        """Per container: ``memory_bytes`` (cgroup usage or qemu PSS), ``cpu_seconds``."""

    def add_listener(self, fn: Listener) -> None: ...

    async def close(self) -> None:
        """Detach from the workloads without stopping them (agent shutdown/restart)."""


RuntimeFactory = Callable[[Path, Mapping[str, Any] | None], Runtime]
