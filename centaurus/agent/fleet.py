"""Starting and stopping real node agents: one process per node, configs and credentials made
here, pids recorded so a later ``down`` (also after a crash of whoever started them) finds them.

Used by the builtin target's node hook (one agent per lab droplet, see :mod:`.labhook`) and by
``centaurus node``. Agents run in the root network namespace; their pods' veths go into the
droplet's namespace (``netns`` in the config), so the droplet is the node as the network sees it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from centaurus.agent.config import AgentConfig

STATE = "agents.json"


class FleetError(RuntimeError):
    pass


@dataclass
class AgentProc:
    node: str
    config: str
    pid: int
    start_time: int | None
    log: str
    state_dir: str = ""

    @property
    def state_file(self) -> Path:
        return Path(self.state_dir) / "agent.json"


def _starttime(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(p: AgentProc) -> bool:
    st = _starttime(p.pid)
    if st is None or (p.start_time is not None and st != p.start_time):
        return False
    try:
        with open(f"/proc/{p.pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def agent_credentials(pki_dir: Path, out_dir: Path, hosts: list[str]) -> tuple[str, str, str]:
    """Serving certificate for an agent's endpoint, signed by the cluster CA (cert, key, ca)."""
    from centaurus.auth.pki import CA, _write

    ca = CA(pki_dir)
    crt, key = out_dir / "agent.crt", out_dir / "agent.key"
    if not crt.exists() or not key.exists():
        pair = ca.server_cert(hosts)
        _write(key, pair.key_pem)
        _write(crt, pair.cert_pem, 0o644)
    return str(crt), str(key), str(ca.cert_path)


class Fleet:
    """The agents of one control plane, under ``<state_dir>/agents``."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir) / "agents"
        self.procs: list[AgentProc] = self._load()

    def _load(self) -> list[AgentProc]:
        try:
            return [AgentProc(**p) for p in json.loads((self.dir / STATE).read_text())]
        except (OSError, ValueError, TypeError):
            return []

    def _save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / (STATE + ".tmp")
        tmp.write_text(json.dumps([p.__dict__ for p in self.procs], indent=1))
        tmp.replace(self.dir / STATE)

    def node_dir(self, node: str) -> Path:
        return self.dir / node

    def spawn(self, cfg: AgentConfig) -> AgentProc:
        d = self.node_dir(cfg.node_name)
        d.mkdir(parents=True, exist_ok=True)
        path = d / "config.json"
        cfg.dump(path)
        log = d / "agent.log"
        with open(log, "ab") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "centaurus.agent", "--config", str(path)],
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=fh,
                start_new_session=True,
                cwd=str(d),
            )
        p = AgentProc(cfg.node_name, str(path), proc.pid, _starttime(proc.pid), str(log), cfg.state_dir)
        self.procs = [q for q in self.procs if q.node != cfg.node_name] + [p]
        self._save()
        return p

    def wait_started(self, procs: list[AgentProc], timeout: float = 120.0) -> dict[str, Any]:
        """Until each agent wrote its state file (registered, endpoint listening)."""
        deadline = time.monotonic() + timeout
        pending = {p.node: p for p in procs}
        out: dict[str, Any] = {}
        while pending and time.monotonic() < deadline:
            for node, p in list(pending.items()):
                f = p.state_file
                if f.exists():
                    with contextlib.suppress(ValueError, OSError):
                        out[node] = json.loads(f.read_text())
                        del pending[node]
                        continue
                if not _alive(p):
                    raise FleetError(f"node agent {node} exited at start; see {p.log}: {_tail(p.log)}")
            time.sleep(0.05)
        if pending:
            raise FleetError(
                f"node agents {sorted(pending)} not up within {timeout:g} s; see "
                f"{next(iter(pending.values())).log}"
            )
        return out

    def signal(self, node: str, sig: int) -> None:
        for p in self.procs:
            if p.node == node and _alive(p):
                os.kill(p.pid, sig)

    def stop(self, node: str | None = None, *, teardown: bool = True, timeout: float = 30.0) -> list[str]:
        """SIGUSR2 (teardown: remove pods, node network, Node object) or SIGTERM (detach, pods keep
        running), SIGKILL after ``timeout``, then an offline cleanup of whatever is left."""
        chosen = [p for p in self.procs if node is None or p.node == node]
        for p in chosen:
            if _alive(p):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGUSR2 if teardown else signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(_alive(p) for p in chosen) and time.monotonic() < deadline:
            for p in chosen:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(p.pid, os.WNOHANG)
            time.sleep(0.05)
        for p in chosen:
            if _alive(p):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(p.pid, 0)
        if teardown:
            self.cleanup([p.config for p in chosen])
            self.procs = [p for p in self.procs if p not in chosen]
            self._save()
        return [p.node for p in chosen]

    def kill(self, node: str) -> None:
        """SIGKILL (a crash): workloads stay, ``restart(node)`` adopts them."""
        for p in self.procs:
            if p.node == node and _alive(p):
                os.kill(p.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(p.pid, 0)

    def restart(self, node: str) -> AgentProc:
        p = next((q for q in self.procs if q.node == node), None)
        if p is None:
            raise FleetError(f"no agent for node {node}")
        if _alive(p):
            return p
        cfg = AgentConfig.load(Path(p.config))
        with contextlib.suppress(FileNotFoundError):
            p.state_file.unlink()
        return self.spawn(cfg)

    def cleanup(self, configs: list[str]) -> None:
        """``--cleanup`` per agent (in parallel): pods, namespaces, cgroups, node network."""
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "centaurus.agent", "--config", c, "--cleanup"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for c in configs
            if Path(c).exists()
        ]
        for proc in procs:
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()

    def alive(self) -> list[str]:
        return [p.node for p in self.procs if _alive(p)]


def _tail(path: str, n: int = 3) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(Path(path).read_text().strip().splitlines()[-n:])
    return ""
