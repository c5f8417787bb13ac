"""``hollow`` runtime: no workload; pods are Running the instant they start (KWOK/kubemark-like).

Used to run thousands of nodes in one process for scale runs, so its cost is what matters: one
small object per node (``__slots__``, no task, no file, no state dir written) and one tuple per
pod. Containers "run" until stopped; ``exec`` answers with an empty successful result and
``logs`` with nothing, so agents and clients that touch them still get well-formed answers.
Nothing survives the process: a restarted hollow node starts empty, as a recreated KWOK node does.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from centaurus.runtimes.base import (
    Connection,
    ContainerStatus,
    ExecSession,
    Listener,
    Listeners,
    Runtime,
    RuntimeError_,
    Sandbox,
    SandboxSpec,
)
from centaurus.runtimes.execio import BufferedExec


class HollowRuntime:
    name = "hollow"
    __slots__ = ("_listeners", "_pods")

    def __init__(self, state_dir: Path | None = None, options: Mapping[str, Any] | None = None) -> None:
        # pod uid -> (started_at, container names, stopped_at or 0.0, restart counts or None)
        self._pods: dict[str, tuple[float, tuple[str, ...], float, dict[str, int] | None]] = {}
        self._listeners = Listeners()

    async def prepare(self) -> None:
        return None

    def add_listener(self, fn: Listener) -> None:
        self._listeners.add(fn)

    def _notify(self, uid: str, names: tuple[str, ...]) -> None:
        for n in names:
            self._listeners(uid, n)

    async def start(self, spec: SandboxSpec) -> Sandbox:
        names = tuple(c.name for c in spec.containers) or ((spec.vm or {}).get("name", "vm"),)
        self._pods[spec.uid] = (time.time(), names, 0.0, None)
        self._notify(spec.uid, names)
        return Sandbox(uid=spec.uid, runtime_id=spec.uid, info={"runtime": "hollow"})

    def _get(self, sandbox: Sandbox) -> tuple[float, tuple[str, ...], float, dict[str, int] | None]:
        try:
            return self._pods[sandbox.uid]
        except KeyError:
            raise RuntimeError_("NotFound", f"no hollow sandbox {sandbox.uid}") from None

    async def status(self, sandbox: Sandbox) -> list[ContainerStatus]:
        started, names, stopped, restarts = self._get(sandbox)
        out = []
        for n in names:
            rc = (restarts or {}).get(n, 0)
            if stopped:
                out.append(
                    ContainerStatus(
                        n,
                        "terminated",
                        reason="Completed",
                        exit_code=0,
                        started_at=started,
                        finished_at=stopped,
                        restart_count=rc,
                        container_id=f"hollow://{sandbox.uid}-{n}",
                    )
                )
            else:
                out.append(
                    ContainerStatus(
                        n,
                        "running",
                        started_at=started,
                        ready=True,
                        restart_count=rc,
                        container_id=f"hollow://{sandbox.uid}-{n}",
                    )
                )
        return out

    async def stop(self, sandbox: Sandbox, grace_seconds: float = 30.0) -> None:
        started, names, _, restarts = self._get(sandbox)
        self._pods[sandbox.uid] = (started, names, time.time(), restarts)
        self._notify(sandbox.uid, names)

    async def remove(self, sandbox: Sandbox) -> None:
        self._pods.pop(sandbox.uid, None)

    async def sandboxes(self) -> list[Sandbox]:
        return [Sandbox(uid=u, runtime_id=u, info={"runtime": "hollow"}) for u in self._pods]

    async def restart_container(self, sandbox: Sandbox, container: str) -> None:
        _, names, _, restarts = self._get(sandbox)
        if container not in names:
            raise RuntimeError_("NotFound", f"no container {container!r}")
        counts = dict(restarts or {})
        counts[container] = counts.get(container, 0) + 1
        self._pods[sandbox.uid] = (time.time(), names, 0.0, counts)
        self._notify(sandbox.uid, (container,))

    async def _no_logs(self) -> AsyncIterator[bytes]:
        return
        yield b""  # pragma: no cover - makes this an async generator

    def logs(
        self,
        sandbox: Sandbox,
        container: str,
        *,
        follow: bool = False,
        tail_lines: int | None = None,
        previous: bool = False,
    ) -> AsyncIterator[bytes]:
        self._get(sandbox)
        return self._no_logs()

    async def exec(
        self, sandbox: Sandbox, container: str, argv: list[str], *, tty: bool = False, stdin: bool = True
    ) -> ExecSession:
        self._get(sandbox)
        return BufferedExec(b"", 0)

    async def attach(self, sandbox: Sandbox, container: str) -> ExecSession:
        self._get(sandbox)
        return BufferedExec(b"", 0)

    async def port_forward(self, sandbox: Sandbox, port: int) -> Connection:
        raise RuntimeError_("NotSupported", "hollow pods have no network endpoint to forward to")

    async def action(self, sandbox: Sandbox, action: str, params: dict[str, Any]) -> dict[str, Any]:
        self._get(sandbox)
        return {"action": action, "powerState": "running" if action != "stop" else "shutdown"}

    async def stats(self, sandbox: Sandbox) -> dict[str, dict[str, float]]:
        _, names, _, _ = self._get(sandbox)
        return {n: {"memory_bytes": 0.0, "cpu_seconds": 0.0} for n in names}

    async def close(self) -> None:
        return None


if TYPE_CHECKING:  # mypy proves the class implements the protocol the agent codes against
    _conforms: Runtime = HollowRuntime(Path("/"))
