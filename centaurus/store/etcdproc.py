"""Start and stop real etcd processes (Debian's etcd 3.4) on loopback for tests, labs and
``centaurus up``.

One :class:`EtcdCluster` is one etcd cluster of 1 or N members, each with its own data dir and
free loopback ports, under ``<state_dir>/<name>/``. A state file there records ports and pids,
so a restart reuses the same ports (etcd remembers its peers' URLs in its data dir) and a
crashed run can be cleaned up by :meth:`EtcdCluster.cleanup`. Processes are only ever ended by
pid, and only when ``/proc/<pid>/cmdline`` still names our data dir (pids get reused).

The API is synchronous (spawning and polling); async callers use ``asyncio.to_thread``.
Timings on this machine (NOTES.md): a single member is healthy 0.2-1 s after start, 3 members
elect a leader in 0.6-2.5 s, a killed leader is replaced in ~2 s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

STATE_FILE = "etcd-state.json"


class EtcdProcessError(RuntimeError):
    """etcd could not be started, or did not become healthy in time (the log tail says why)."""


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    data_dir: str
    log_path: str
    pid: int | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"


def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports (held open together so the OS gives distinct ones)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _pid_is_ours(pid: int, data_dir: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return data_dir.encode() in cmdline


def _stop_pid(pid: int, data_dir: str, timeout: float, sig: int = signal.SIGTERM) -> None:
    """Signal ``pid`` (if it is still our etcd) and wait for it to go, SIGKILL after ``timeout``."""
    if not _pid_is_ours(pid, data_dir):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not _pid_is_ours(pid, data_dir):
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while _pid_is_ours(pid, data_dir):
        _reap(pid)
        time.sleep(0.01)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


class EtcdCluster:
    """A 1- or N-member etcd cluster on loopback.

    ``heartbeat_ms``/``election_ms`` are etcd's raft timings (defaults 100/1000 as in etcd).
    """

    def __init__(
        self,
        state_dir: Path | str,
        members: int = 1,
        *,
        name: str = "etcd",
        binary: str | None = None,
        heartbeat_ms: int = 100,
        election_ms: int = 1000,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        if members < 1:
            raise ValueError("an etcd cluster needs at least one member")
        self.dir = Path(state_dir).resolve() / name
        self.name = name
        self.size = members
        self.binary = binary or shutil.which("etcd") or "/usr/bin/etcd"
        self.heartbeat_ms, self.election_ms = heartbeat_ms, election_ms
        self.extra_args = extra_args
        self.token = f"cl-{name}-{os.urandom(3).hex()}"
        self.members: list[Member] = []
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._load_or_plan()

    # ---- state ---------------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.dir / STATE_FILE

    def _load_or_plan(self) -> None:
        if self.state_file.exists():
            state = json.loads(self.state_file.read_text())
            members = [Member(**m) for m in state["members"]]
            if len(members) == self.size:
                self.members, self.token = members, state["token"]
                return
            raise EtcdProcessError(
                f"{self.dir} holds a {len(members)}-member etcd, not {self.size}; remove it or use another"
            )
        ports = free_ports(2 * self.size)
        self.members = [
            Member(
                name=f"m{i}",
                client_port=ports[2 * i],
                peer_port=ports[2 * i + 1],
                data_dir=str(self.dir / f"m{i}.data"),
                log_path=str(self.dir / f"m{i}.log"),
            )
            for i in range(self.size)
        ]

    def _save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        state = {"token": self.token, "members": [asdict(m) for m in self.members]}
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.state_file)

    # ---- what callers need ---------------------------------------------------------------------

    @property
    def endpoints(self) -> list[str]:
        """``host:port`` of every member's client (gRPC) listener."""
        return [m.endpoint for m in self.members]

    @property
    def pids(self) -> list[int | None]:
        return [m.pid for m in self.members]

    def alive(self, i: int) -> bool:
        m = self.members[i]
        if m.pid is None:
            return False
        proc = self._procs.get(i)
        if proc is not None and proc.pid == m.pid:
            # Our child: poll() reaps it; its cmdline is python's until exec, so don't look there.
            return proc.poll() is None
        _reap(m.pid)
        return _pid_is_ours(m.pid, m.data_dir)

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self, timeout: float = 30) -> EtcdCluster:
        """Start every member that is not running and wait until the cluster is healthy."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for i in range(self.size):
            if not self.alive(i):
                self._spawn(i)
        self._save()
        self.wait_healthy(timeout=timeout)
        return self

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM every member (SIGKILL after ``timeout``); data dirs and ports are kept."""
        # Followers first (together), the leader last, once it has stepped down: a leader told to
        # stop hands leadership to a peer it believes connected and, if that peer is gone, waits
        # etcd's request timeout (5 s + 2 elections) before exiting. Without quorum it steps
        # down after one election timeout (check-quorum) and then exits at once.
        leader = self._leader_now()
        followers = [i for i in range(self.size) if i != leader]
        for i in followers:
            self._signal(i, signal.SIGTERM)
        for i in followers:
            self._stop_member(i, signal.SIGTERM, timeout)
        if leader is not None:
            deadline = time.monotonic() + 3 * self.election_ms / 1000 + 1
            while time.monotonic() < deadline and self._is_leader(leader):
                time.sleep(0.05)
            self._stop_member(leader, signal.SIGTERM, timeout)
        self._procs.clear()
        if self.dir.exists():
            self._save()

    def destroy(self) -> None:
        """Stop and remove the data dirs and state file."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def kill(self, i: int) -> None:
        """SIGKILL member ``i`` (a crash: no graceful leader hand-off)."""
        if self.members[i].pid is not None:
            self._stop_member(i, signal.SIGKILL, 5)
            self._save()

    def restart(self, i: int, timeout: float = 30) -> None:
        """Start member ``i`` again from its data dir and wait until it serves."""
        if not self.alive(i):
            self._spawn(i)
            self._save()
        self.wait_healthy(timeout=timeout, members=[i])

    @classmethod
    def cleanup(cls, state_dir: Path | str, name: str = "etcd") -> int:
        """Kill whatever a previous (possibly crashed) run left running; returns how many."""
        state_file = Path(state_dir).resolve() / name / STATE_FILE
        if not state_file.exists():
            return 0
        killed = 0
        for m in json.loads(state_file.read_text()).get("members", []):
            pid = m.get("pid")
            if pid and _pid_is_ours(pid, m["data_dir"]):
                _stop_pid(pid, m["data_dir"], timeout=5)
                killed += 1
        return killed

    # ---- health --------------------------------------------------------------------------------

    def wait_healthy(self, timeout: float = 30, members: list[int] | None = None) -> None:
        """Until each member in ``members`` (default: all running) answers ``/health`` true
        (etcd 3.4 checks it has a leader and can serve a quorum read)."""
        idx = members if members is not None else [i for i in range(self.size) if self.members[i].pid]
        deadline = time.monotonic() + timeout
        pending = set(idx)
        while pending:
            for i in sorted(pending):
                if not self.alive(i):
                    raise EtcdProcessError(f"etcd member {self.name}/{self.members[i].name} exited:\n"
                                           + self._log_tail(i))
                if self.healthy(i):
                    pending.discard(i)
            if not pending:
                return
            if time.monotonic() > deadline:
                i = min(pending)
                raise EtcdProcessError(
                    f"etcd member {self.name}/{self.members[i].name} not healthy after {timeout}s:\n"
                    + self._log_tail(i)
                )
            time.sleep(0.05)

    def healthy(self, i: int) -> bool:
        try:
            with urllib.request.urlopen(self.members[i].client_url + "/health", timeout=2) as r:
                return bool(json.loads(r.read()).get("health") == "true")
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def status(self, i: int) -> dict[str, int]:
        """Member ``i``'s view: its own id and the leader's id (0 = no leader)."""
        req = urllib.request.Request(
            self.members[i].client_url + "/v3/maintenance/status", data=b"{}", method="POST"
        )
        with urllib.request.urlopen(req, timeout=2) as r:
            body = json.loads(r.read())
        return {"member_id": int(body["header"]["member_id"]), "leader": int(body.get("leader", 0))}

    def leader(self, timeout: float = 10) -> int:
        """Index of the current leader (waits for an election)."""
        deadline = time.monotonic() + timeout
        while True:
            ids: dict[int, int] = {}
            leader_id = 0
            for i in range(self.size):
                if not self.alive(i):
                    continue
                try:
                    st = self.status(i)
                except (OSError, ValueError, KeyError):
                    continue
                ids[st["member_id"]] = i
                leader_id = st["leader"] or leader_id
            if leader_id in ids:
                return ids[leader_id]
            if time.monotonic() > deadline:
                raise EtcdProcessError(f"etcd cluster {self.name} has no leader after {timeout}s")
            time.sleep(0.05)

    # ---- internals -----------------------------------------------------------------------------

    def _argv(self, m: Member) -> list[str]:
        initial = ",".join(f"{x.name}={x.peer_url}" for x in self.members)
        return [
            self.binary,
            "--name", m.name,
            "--data-dir", m.data_dir,
            "--listen-client-urls", m.client_url,
            "--advertise-client-urls", m.client_url,
            "--listen-peer-urls", m.peer_url,
            "--initial-advertise-peer-urls", m.peer_url,
            "--initial-cluster", initial,
            "--initial-cluster-state", "new",
            "--initial-cluster-token", self.token,
            "--heartbeat-interval", str(self.heartbeat_ms),
            "--election-timeout", str(self.election_ms),
            "--logger", "zap",
            "--log-outputs", "stderr",
            "--log-level", "warn",
            # Raft entries kept in memory between snapshots: 3.4's default of 100k would hold
            # ~300 MB of 3-KiB pods; 10k is what etcd 3.6 defaults to.
            "--snapshot-count", "10000",
            # Room for 100k+ objects plus history between compactions (the default is 2 GiB).
            "--quota-backend-bytes", str(8 * 1024**3),
            # The API server accepts bodies up to 3 MiB; etcd's default request limit is 1.5 MiB.
            "--max-request-bytes", str(4 * 1024**2),
            *self.extra_args,
        ]

    def _leader_now(self) -> int | None:
        if self.size == 1 or not any(self.alive(i) for i in range(self.size)):
            return None
        try:
            return self.leader(timeout=0)
        except EtcdProcessError:
            return None

    def _is_leader(self, i: int) -> bool:
        try:
            st = self.status(i)
        except (OSError, ValueError, KeyError):
            return False
        return st["leader"] == st["member_id"]

    def _signal(self, i: int, sig: int) -> None:
        m = self.members[i]
        proc = self._procs.get(i)
        if proc is not None and proc.pid == m.pid:
            if proc.poll() is None:
                proc.send_signal(sig)
        elif m.pid is not None and _pid_is_ours(m.pid, m.data_dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(m.pid, sig)

    def _stop_member(self, i: int, sig: int, timeout: float) -> None:
        m = self.members[i]
        proc = self._procs.pop(i, None)
        if proc is not None and proc.pid == m.pid:
            # Our own child: signal it through Popen (which also reaps it). Its cmdline reads
            # python's until it has exec'd etcd, so the cmdline check is for foreign pids only.
            if proc.poll() is None:
                proc.send_signal(sig)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        elif m.pid is not None:
            _stop_pid(m.pid, m.data_dir, timeout, sig)
        m.pid = None

    def _spawn(self, i: int) -> None:
        m = self.members[i]
        Path(m.data_dir).parent.mkdir(parents=True, exist_ok=True)
        with open(m.log_path, "ab") as logf:
            proc = subprocess.Popen(
                self._argv(m),
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=logf,
                start_new_session=True,  # a Ctrl-C in the terminal must not take etcd down half-way
            )
        self._procs[i] = proc
        m.pid = proc.pid
        log.debug("started etcd %s/%s pid %d on %s", self.name, m.name, proc.pid, m.endpoint)

    def _log_tail(self, i: int, lines: int = 15) -> str:
        try:
            return "\n".join(Path(self.members[i].log_path).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
