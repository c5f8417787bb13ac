"""Process supervision of the builtin control plane under one state dir.

``up`` starts (in this order) the etcd clusters of the data partitions (``--store etcd``), the
API server, the controllers and whatever :data:`COMPONENT_HOOKS` add (the scheduler and node
components of later issues), each as its own process in its own session, logs under
``D/logs/``. Pids, ports and the store layout go to ``D/controlplane.json``; ``down`` stops
everything listed there by pid (SIGTERM, then SIGKILL), stops etcd from its own state file, and
is idempotent -- also after a crash of the supervisor or any component.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from centaurus.controlplane.credentials import mint_kubeconfig
from centaurus.runtimes.linux import pid_alive

STATE_FILE = "controlplane.json"


class ControlPlaneError(RuntimeError):
    """The control plane cannot be started or reached; one line says why."""


@dataclass
class Component:
    name: str
    argv: list[str]
    pid: int | None = None
    log: str = ""
    #: what it is for fault injection (``store``, ``scheduler``, ``network-operator``, ...);
    #: empty = derived from the name
    kind: str = ""


@dataclass
class ControlPlaneState:
    state_dir: str
    server: str = ""
    port: int = 0
    store: str = "sqlite"
    partitions: int = 1
    etcd: list[str] = field(default_factory=list)  # per partition, comma-separated endpoints
    components: list[Component] = field(default_factory=list)


#: Later issues append callables that return extra components to start after the API server
#: (they receive the state with ``server`` set and the system kubeconfig at ``D/kubeconfig``).
COMPONENT_HOOKS: list[Callable[[ControlPlaneState], list[Component]]] = []


def _entry_point_hooks() -> list[Callable[[ControlPlaneState], list[Component]]]:
    """Component hooks registered by other packages under the ``centaurus.components``
    entry-point group (``name = "pkg.module:fn"``, ``fn(state) -> list[Component]``)."""
    from importlib.metadata import entry_points

    hooks = []
    for ep in sorted(entry_points(group="centaurus.components"), key=lambda e: e.name):
        try:
            hooks.append(ep.load())
        except ImportError as exc:
            raise ControlPlaneError(f"component hook {ep.name!r} cannot be loaded: {exc}") from exc
    return hooks


def _alive(pid: int | None) -> bool:
    return pid is not None and pid > 0 and pid_alive(pid)


def _stop(pid: int, timeout: float = 5.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


class ControlPlane:
    def __init__(self, state_dir: Path | str) -> None:
        self.dir = Path(state_dir).expanduser().resolve()
        self.state_path = self.dir / STATE_FILE
        self.kubeconfig = self.dir / "kubeconfig"

    # ---- state ---------------------------------------------------------------------------------
    def load(self) -> ControlPlaneState | None:
        if not self.state_path.exists():
            return None
        doc = json.loads(self.state_path.read_text())
        comps = [Component(**c) for c in doc.pop("components", [])]
        return ControlPlaneState(**doc, components=comps)

    def _save(self, st: ControlPlaneState) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(st), indent=1))
        tmp.replace(self.state_path)

    def running(self) -> bool:
        st = self.load()
        return st is not None and any(_alive(c.pid) for c in st.components)

    # ---- up ------------------------------------------------------------------------------------
    def _spawn(self, st: ControlPlaneState, comp: Component, env: dict[str, str] | None = None) -> None:
        logs = self.dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        comp.log = str(logs / f"{comp.name}.log")
        with open(comp.log, "ab") as fh:
            proc = subprocess.Popen(
                comp.argv,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=fh,
                start_new_session=True,
                cwd=str(self.dir),
                env={**os.environ, **env} if env else None,
            )
        comp.pid = proc.pid
        st.components.append(comp)
        self._save(st)

    def up(
        self,
        *,
        store: str = "sqlite",
        partitions: int = 1,
        port: int = 0,
        host: str = "127.0.0.1",
        controllers: bool = True,
        controller_instances: int = 2,
        timeout: float = 30.0,
        apiserver_env: dict[str, str] | None = None,
    ) -> ControlPlaneState:
        if self.running():
            raise ControlPlaneError(f"a control plane already runs under {self.dir} (centaurus down first)")
        self.down()  # leftovers of a crash
        if store not in ("sqlite", "etcd"):
            raise ControlPlaneError(f"unknown store {store!r} (sqlite | etcd)")
        if partitions < 1:
            raise ControlPlaneError("--partitions must be at least 1")
        st = ControlPlaneState(state_dir=str(self.dir), store=store, partitions=partitions)
        self._save(st)
        try:
            if store == "etcd":
                from centaurus.store.etcdproc import EtcdCluster

                for i in range(partitions):
                    cluster = EtcdCluster(self.dir, 1, name=f"etcd-{i}").start()
                    st.etcd.append(",".join(cluster.endpoints))
                self._save(st)
            port_file = self.dir / "apiserver.port"
            port_file.unlink(missing_ok=True)
            argv = [
                sys.executable,
                "-m",
                "centaurus.api",
                "--state-dir",
                str(self.dir),
                "--host",
                host,
                "--port",
                str(port),
                "--port-file",
                str(port_file),
                "--store",
                store,
                "--partitions",
                str(partitions),
            ]
            if st.etcd:
                argv += ["--etcd-endpoints", ";".join(st.etcd)]
            api = Component("apiserver", argv)
            self._spawn(st, api, apiserver_env)
            st.port = self._wait_port(port_file, api, timeout)
            st.server = f"https://{host}:{st.port}"
            self._save(st)
            self._wait_healthy(st.server, timeout)
            mint_kubeconfig(self.dir, st.server, "system", "admin", self.kubeconfig, method="both")
            for i in range(controller_instances if controllers else 0):
                name = f"controllers-{i}"
                argv = [
                    sys.executable,
                    "-m",
                    "centaurus.controllers",
                    "--kubeconfig",
                    str(self.kubeconfig),
                    "--instance",
                    name,
                    "--log-level",
                    "INFO",
                ]
                self._spawn(st, Component(name, argv))
            for hook in [*COMPONENT_HOOKS, *_entry_point_hooks()]:
                for comp in hook(st):
                    self._spawn(st, comp)
        except BaseException:
            self.down()
            raise
        return st

    def _wait_port(self, port_file: Path, api: Component, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_file.exists() and port_file.read_text().strip().isdigit():
                return int(port_file.read_text())
            if not _alive(api.pid):
                raise ControlPlaneError(
                    f"the API server exited at start; see {api.log}: {self._tail(api.log)}"
                )
            time.sleep(0.05)
        raise ControlPlaneError(f"the API server did not start within {timeout:g} s; see {api.log}")

    def _wait_healthy(self, server: str, timeout: float) -> None:
        ctx = ssl.create_default_context(cafile=str(self.dir / "pki" / "ca.crt"))
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{server}/healthz", context=ctx, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.05)
        raise ControlPlaneError(f"the API server at {server} is not healthy: {last}")

    @staticmethod
    def _tail(path: str, n: int = 3) -> str:
        with contextlib.suppress(OSError):
            return " | ".join(Path(path).read_text().strip().splitlines()[-n:])
        return ""

    # ---- fault injection ---------------------------------------------------------------------------
    def _component(self, name: str) -> tuple[ControlPlaneState, Component]:
        st = self.load()
        comp = next((c for c in st.components if c.name == name), None) if st else None
        if st is None or comp is None:
            raise ControlPlaneError(f"no component {name!r}")
        return st, comp

    def kill(self, name: str) -> None:
        """SIGKILL one component (a crash); ``start(name)`` brings it back with the same argv."""
        _, comp = self._component(name)
        if comp.pid and _alive(comp.pid):
            os.kill(comp.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(comp.pid, 0)

    def start(self, name: str, timeout: float = 30.0) -> None:
        st, comp = self._component(name)
        if comp.pid and _alive(comp.pid):
            return
        argv = list(comp.argv)
        if name == "apiserver" and "--port" in argv:
            argv[argv.index("--port") + 1] = str(st.port)  # same URL as before the crash
        st.components = [c for c in st.components if c.name != name]
        self._spawn(st, Component(name, argv, kind=comp.kind))
        if name == "apiserver":
            self._wait_healthy(st.server, timeout)

    # ---- down / status ---------------------------------------------------------------------------
    def down(self) -> list[str]:
        """Stop everything; returns what was stopped. Safe when nothing runs."""
        stopped = []
        st = self.load()
        if st is not None:
            for comp in reversed(st.components):
                if comp.pid and _alive(comp.pid):
                    _stop(comp.pid)
                    stopped.append(f"{comp.name} (pid {comp.pid})")
        from centaurus.store.etcdproc import EtcdCluster

        for etcd_dir in sorted(self.dir.glob("etcd-*")) if self.dir.exists() else []:
            if EtcdCluster.cleanup(self.dir, name=etcd_dir.name):
                stopped.append(etcd_dir.name)
        self.state_path.unlink(missing_ok=True)
        return stopped

    def status(self) -> dict[str, Any]:
        st = self.load()
        if st is None:
            return {"running": False, "state_dir": str(self.dir)}
        return {
            "running": any(_alive(c.pid) for c in st.components),
            "state_dir": str(self.dir),
            "server": st.server,
            "store": st.store,
            "partitions": st.partitions,
            "kubeconfig": str(self.kubeconfig),
            "components": [
                {"name": c.name, "pid": c.pid, "alive": _alive(c.pid), "log": c.log} for c in st.components
            ],
            "etcd": st.etcd,
        }
