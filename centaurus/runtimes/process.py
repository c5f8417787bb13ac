"""``process`` runtime: OCI containers run by crun in the pod's network namespace.

Start path of one container (what the ~10-30 ms go into): in the private-mount-namespace worker
(:mod:`centaurus.runtimes.spawn`) write ``config.json``, mount an overlay (image rootfs read-only
below, a fresh per-start upper dir) on the bundle's ``rootfs``, open the log file and
``posix_spawn`` ``crun run -d``; on the loop, wait for crun through a pidfd. The container's
init is then our child (we are a child subreaper), so a pidfd on it tells us when it exits and
``waitpid`` gives the exit code; the OOM counter of its memory cgroup tells OOMKilled apart.

Layout under ``state_dir``: ``crun/`` (crun ``--root``), ``pods/<uid>/sandbox.json`` (see
:mod:`centaurus.runtimes.podstate`), ``pods/<uid>/<container>/`` (bundle: config.json, upper/,
work/, rootfs/ mount point, crun.log). Cgroups: ``/cl-<tag>/<uid>/<container>`` where ``tag``
names this runtime's ``state_dir``, so parallel nodes never collide and teardown finds its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from centaurus.images import ImageError, ImageStore
from centaurus.runtimes import cgroups, crun, linux, logs, netns, oci, spawn
from centaurus.runtimes.attach import AttachSession, ContainerIO
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
from centaurus.runtimes.crunexec import crun_exec
from centaurus.runtimes.execio import ConsoleSocket
from centaurus.runtimes.podstate import ContainerRecord, PodRecord, dump, load, write_atomic
from centaurus.runtimes.spawn import PrivateMountWorker

log = logging.getLogger("centaurus.runtime.process")


class ProcessRuntime:
    name = "process"

    def __init__(self, state_dir: Path, options: Mapping[str, Any] | None = None) -> None:
        opts = dict(options or {})
        self.state_dir = Path(state_dir).resolve()
        self.crun_root = self.state_dir / "crun"
        self.pods_dir = self.state_dir / "pods"
        self.images = ImageStore(opts.get("image_dir"))
        self.tag = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:8]
        self.cgroup_root = f"/cl-{self.tag}"
        self._pods: dict[str, PodRecord] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._watchers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._listeners = Listeners()
        self._worker: PrivateMountWorker | None = None
        self._exec_seq = 0
        self._io: dict[tuple[str, str], ContainerIO] = {}
        self._attached: dict[tuple[str, str], list[tuple[asyncio.Future[int], asyncio.Event]]] = {}

    # ---- lifecycle of the runtime ------------------------------------------------------------
    async def prepare(self) -> None:
        if not Path(crun.CRUN).exists():
            raise RuntimeError_("RuntimeNotReady", "crun is not installed (apt-get install crun)")
        try:
            self._worker = await asyncio.to_thread(PrivateMountWorker.get)
        except spawn.SpawnError as exc:
            raise RuntimeError_("RuntimeNotReady", str(exc)) from exc
        linux.set_child_subreaper()
        await asyncio.to_thread(self._init_dirs)

    def _init_dirs(self) -> None:
        Path("/run/centaurus").mkdir(parents=True, exist_ok=True)
        self.crun_root.mkdir(parents=True, exist_ok=True)
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self.images.list()  # warm the manifest cache off the start path

    @property
    def worker(self) -> PrivateMountWorker:
        if self._worker is None:
            raise RuntimeError_("RuntimeNotReady", "ProcessRuntime.prepare() was not awaited")
        return self._worker

    def add_listener(self, fn: Listener) -> None:
        self._listeners.add(fn)

    async def close(self) -> None:
        tasks = list(self._watchers.values())
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._watchers.clear()
        for io in self._io.values():
            await io.close()
        self._io.clear()

    # ---- start ---------------------------------------------------------------------------------
    async def start(self, spec: SandboxSpec) -> Sandbox:
        if spec.uid in self._pods:
            raise RuntimeError_("CreateContainerError", f"sandbox {spec.uid} already exists")
        rec = PodRecord(spec=spec, created_at=time.time())
        pairs = [*((c, True) for c in spec.init_containers), *((c, False) for c in spec.containers)]
        for cspec, init in pairs:
            if cspec.name in rec.containers:
                raise RuntimeError_("CreateContainerError", f"duplicate container name {cspec.name!r}")
            try:
                image = self.images.resolve(cspec.image)
            except ImageError as exc:
                raise RuntimeError_(exc.reason, f"container {cspec.name!r}: {exc.message}") from None
            rec.containers[cspec.name] = ContainerRecord(
                name=cspec.name,
                init=init,
                spec=cspec,
                image_name=image.name,
                image_ref=image.reference,
                image_id=image.image_id,
                crun_id=f"{spec.uid}-{cspec.name}",
                cgroup=f"{self.cgroup_root}/{spec.uid}/{cspec.name}",
            )
        if not rec.containers:
            raise RuntimeError_("CreateContainerError", "pod has no containers")
        self._pods[spec.uid] = rec
        await asyncio.to_thread((self.pods_dir / spec.uid).mkdir, parents=True, exist_ok=True)
        sandbox = Sandbox(uid=spec.uid, runtime_id=spec.uid, info={"runtime": self.name})
        try:
            async with self._lock(spec.uid):
                first = [c for c in rec.ordered() if c.init][:1] or [c for c in rec.ordered() if not c.init]
                await asyncio.gather(*(self._start_container(rec, c) for c in first))
        except BaseException:
            await self.remove(sandbox)
            raise
        return sandbox

    def _lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    def _bundle(self, rec: PodRecord, c: ContainerRecord) -> Path:
        return self.pods_dir / rec.uid / c.name

    def _log_path(self, rec: PodRecord, c: ContainerRecord, restart: int | None = None) -> Path:
        return rec.spec.log_dir / c.name / f"{c.restart_count if restart is None else restart}.log"

    async def _persist(self, rec: PodRecord) -> None:
        if self._pods.get(rec.uid) is not rec:
            return
        text = dump(rec)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(write_atomic, self.pods_dir / rec.uid / "sandbox.json", text)

    async def _start_container(self, rec: PodRecord, c: ContainerRecord) -> None:
        image = self.images.get(c.image_name)
        hostname = (rec.spec.hostname or rec.spec.name)[:63]
        config = oci.build_config(
            c.spec, image, hostname=hostname, netns_path=rec.spec.netns_path, cgroups_path=c.cgroup
        )
        bundle = self._bundle(rec, c)
        log_path = self._log_path(rec, c)
        net = rec.spec.network
        hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        if net:
            hosts += f"{net.ip}\t{hostname}\n"
        argv = [
            *crun.base_argv(self.crun_root, bundle / "crun.log"),
            "run",
            "-d",
            "--bundle",
            str(bundle),
            c.crun_id,
        ]
        console: ConsoleSocket | None = None
        if c.spec.tty:  # crun hands the pty master over this socket
            short = hashlib.sha256(c.crun_id.encode()).hexdigest()[:12]
            console = ConsoleSocket(f"/run/centaurus/tty-{self.tag}-{short}.sock")
            argv[-1:-1] = ["--console-socket", console.path]
        fifo = bundle / "stdin" if c.spec.stdin and not c.spec.tty else None

        def launch() -> tuple[int, int | None]:
            _reset_bundle(bundle, image.rootfs, config, {"etc/hosts": hosts, "etc/hostname": hostname + "\n"})
            log_path.parent.mkdir(parents=True, exist_ok=True)
            out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
            keep: int | None = None
            if fifo is not None:  # stdin: a FIFO whose write end we keep (no EOF between attaches)
                with contextlib.suppress(FileNotFoundError):
                    fifo.unlink()
                os.mkfifo(fifo, 0o600)
                inp = os.open(fifo, os.O_RDWR | os.O_CLOEXEC)
                keep = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            else:
                inp = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            try:
                return spawn.spawn(argv, stdin=inp, stdout=out, stderr=out), keep
            finally:
                os.close(out)
                os.close(inp)

        c.state, c.reason, c.message = "waiting", "ContainerCreating", ""
        t0 = time.monotonic()
        try:
            crun_pid, keep = await self.worker.call(launch)
            status = await linux.wait_pid(crun_pid)
            code = linux.exit_code_from_status(status) if status is not None else 255
            io: ContainerIO | None = None
            if code == 0 and console is not None:
                try:
                    io = ContainerIO(log_path, master=await console.receive())
                except (OSError, TimeoutError) as exc:
                    code, c.message = 255, f"no terminal from crun: {exc}"
            elif keep is not None:
                io = ContainerIO(log_path, stdin_fd=keep) if code == 0 else None
                if code != 0:
                    os.close(keep)
        finally:
            if console is not None:
                console.close()
        if io is not None:
            self._io[(rec.uid, c.name)] = io
        if code != 0:
            err = await asyncio.to_thread(crun.last_error, bundle / "crun.log")
            await self._teardown_container(rec, c)
            c.state, c.reason = "waiting", "CreateContainerError"
            c.message = err or c.message or f"crun exited {code}"
            await self._persist(rec)
            raise RuntimeError_("CreateContainerError", f"container {c.name!r}: {c.message}")
        st = crun.state(self.crun_root, c.crun_id) or {}
        pid = int(str(st.get("pid", 0)))
        c.start_seconds = time.monotonic() - t0
        c.pid, c.pid_start = pid, linux.proc_start_time(pid)
        c.state, c.reason, c.exit_code, c.signal = "running", "", None, None
        c.started_at, c.finished_at = time.time(), None
        self._reap_strays()
        await self._persist(rec)
        self._watch(rec, c)
        self._listeners(rec.uid, c.name)

    def _watch(self, rec: PodRecord, c: ContainerRecord) -> None:
        key = (rec.uid, c.name)
        old = self._watchers.get(key)
        if old is not None and not old.done():
            old.cancel()
        if c.pid is None:
            return
        try:
            pidfd = os.pidfd_open(c.pid)
        except ProcessLookupError:
            pidfd = None
        self._watchers[key] = asyncio.ensure_future(self._monitor(rec, c, c.pid, pidfd))

    async def _monitor(self, rec: PodRecord, c: ContainerRecord, pid: int, pidfd: int | None) -> None:
        try:
            status = await linux.wait_pid(pid, pidfd) if pidfd is not None else linux._reap(pid)
        finally:
            if pidfd is not None:
                os.close(pidfd)
        if c.pid != pid:  # restarted meanwhile
            return
        io = self._io.pop((rec.uid, c.name), None)
        if io is not None:
            await io.close()  # the last terminal output reaches the log first
        oom = await asyncio.to_thread(cgroups.oom_killed, c.cgroup)
        c.finished_at, c.state, c.pid = time.time(), "terminated", None
        if status is None:
            c.exit_code, c.reason = 137, "ContainerStatusUnknown"
            c.message = "the container exited while no agent was watching; its exit code is lost"
        else:
            c.exit_code = linux.exit_code_from_status(status)
            c.signal = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            # OOMKilled means the container died of it: a child killed by the OOM killer while
            # PID 1 went on to exit 0 is a completed container.
            oom = oom and c.exit_code != 0
            c.reason = "OOMKilled" if oom else ("Completed" if c.exit_code == 0 else "Error")
            c.message = "memory limit exceeded" if oom else ""
        async with self._lock(rec.uid):
            await self._teardown_container(rec, c)
            await self._persist(rec)
        for fut, alive in self._attached.pop((rec.uid, c.name), []):
            alive.clear()
            if not fut.done():
                fut.set_result(c.exit_code if c.exit_code is not None else 255)
        self._listeners(rec.uid, c.name)
        if c.init and c.exit_code == 0 and not rec.stopped:
            await self._advance_init(rec)

    async def _advance_init(self, rec: PodRecord) -> None:
        """Init containers run one at a time, in order; app containers start when all succeeded."""
        async with self._lock(rec.uid):
            batch: list[ContainerRecord] = []
            for c in (c for c in rec.ordered() if c.init):
                if c.started_at is None:
                    batch = [c]
                    break
                if c.state != "terminated" or c.exit_code != 0:
                    return  # still running, or failed: restarting it is the agent's decision
            else:
                batch = [c for c in rec.ordered() if not c.init and c.started_at is None]
            for c in batch:
                try:
                    await self._start_container(rec, c)
                except RuntimeError_:
                    self._listeners(rec.uid, c.name)

    def _reap_strays(self) -> None:
        """crun's abandoned intermediates (one per start) are our zombies: reap them, sparing
        every container init we know of."""
        inits = frozenset(c.pid for p in self._pods.values() for c in p.containers.values() if c.pid)
        linux.reap_strays(exclude=inits)

    async def _teardown_container(self, rec: PodRecord, c: ContainerRecord) -> None:
        """After exit (or a failed start): drop crun's record (frees the leaf cgroup) and unmount
        the rootfs. Logs stay; the upper dir is discarded on the next start."""
        bundle = self._bundle(rec, c)
        await crun.run_quiet(
            self.worker,
            [*crun.base_argv(self.crun_root), "delete", "-f", c.crun_id],
            bundle / "crun-delete.log",
        )
        await self.worker.call(lambda: _unmount(bundle / "rootfs"))

    # ---- queries -----------------------------------------------------------------------------
    def _pod(self, sandbox: Sandbox) -> PodRecord:
        rec = self._pods.get(sandbox.uid)
        if rec is None:
            raise RuntimeError_("NotFound", f"no sandbox {sandbox.uid} in {self.state_dir}")
        return rec

    def _ctr(self, sandbox: Sandbox, name: str) -> tuple[PodRecord, ContainerRecord]:
        rec = self._pod(sandbox)
        c = rec.containers.get(name)
        if c is None:
            raise RuntimeError_("NotFound", f"pod {rec.spec.name}: no container {name!r}")
        return rec, c

    async def status(self, sandbox: Sandbox) -> list[ContainerStatus]:
        return [c.status() for c in self._pod(sandbox).ordered()]

    async def stats(self, sandbox: Sandbox) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for c in self._pod(sandbox).ordered():
            if c.state != "running":
                continue
            mem = await asyncio.to_thread(cgroups.memory_usage, c.cgroup)
            cpu = await asyncio.to_thread(cgroups.cpu_usage_seconds, c.cgroup)
            out[c.name] = {"memory_bytes": float(mem or 0), "cpu_seconds": float(cpu or 0.0)}
        return out

    async def sandboxes(self) -> list[Sandbox]:
        """Pods in memory plus pods on disk from an earlier agent (adopted: running containers are
        watched again through pidfds; exits that happened meanwhile are reported)."""
        names = await asyncio.to_thread(
            lambda: sorted(p.name for p in self.pods_dir.glob("*") if (p / "sandbox.json").is_file())
        )
        for uid in names:
            if uid in self._pods:
                continue
            try:
                text = await asyncio.to_thread((self.pods_dir / uid / "sandbox.json").read_text)
                rec = load(text)
            except (OSError, ValueError, TypeError) as exc:
                log.warning("skipping unreadable pod state %s: %s", uid, exc)
                continue
            self._pods[uid] = rec
            for c in rec.ordered():
                if c.state != "running" or c.pid is None:
                    continue
                alive = linux.pid_alive(c.pid) and linux.proc_start_time(c.pid) == c.pid_start
                st = crun.state(self.crun_root, c.crun_id)
                if alive and st is not None:
                    self._watch(rec, c)
                else:
                    # Exited while nobody watched: if it is still our zombie, we get the code.
                    self._watchers[(uid, c.name)] = asyncio.ensure_future(self._monitor(rec, c, c.pid, None))
        return [Sandbox(uid=u, runtime_id=u, info={"runtime": self.name}) for u in self._pods]

    # ---- stop / restart / remove ---------------------------------------------------------------
    async def stop(self, sandbox: Sandbox, grace_seconds: float = 30.0) -> None:
        rec = self._pod(sandbox)
        rec.stopped = True
        running = [c for c in rec.ordered() if c.state == "running" and c.pid]
        for c in running:
            assert c.pid is not None
            linux.kill_quietly(c.pid, signal.SIGTERM)
        waits = [self._watchers[(rec.uid, c.name)] for c in running if (rec.uid, c.name) in self._watchers]
        if waits and grace_seconds > 0:
            await asyncio.wait(waits, timeout=grace_seconds)
        for c in running:
            if c.state == "running" and c.pid:
                linux.kill_quietly(c.pid, signal.SIGKILL)
        if waits:
            await asyncio.wait(waits, timeout=10)
        await self._persist(rec)

    async def restart_container(self, sandbox: Sandbox, container: str) -> None:
        rec, c = self._ctr(sandbox, container)
        async with self._lock(rec.uid):
            if c.state == "running":
                raise RuntimeError_("ContainerRunning", f"container {container!r} is still running")
            if c.started_at is not None:
                c.restart_count += 1
            rec.stopped = False
            await self._start_container(rec, c)

    async def remove(self, sandbox: Sandbox) -> None:
        rec = self._pods.get(sandbox.uid)
        if rec is not None:
            if any(c.state == "running" for c in rec.containers.values()):
                await self.stop(sandbox, grace_seconds=0)
            for key in [k for k in self._watchers if k[0] == sandbox.uid]:
                self._watchers.pop(key).cancel()
            for key in [k for k in self._io if k[0] == sandbox.uid]:
                await self._io.pop(key).close()
        cids = [c.crun_id for c in rec.containers.values()] if rec else []
        if not cids:  # unknown to us: clean whatever crun has under this uid
            cids = await asyncio.to_thread(lambda: [p.name for p in self.crun_root.glob(f"{sandbox.uid}-*")])
        pod_dir = self.pods_dir / sandbox.uid
        for cid in cids:
            if crun.state(self.crun_root, cid) is not None:
                await crun.run_quiet(
                    self.worker,
                    [*crun.base_argv(self.crun_root), "delete", "-f", cid],
                    pod_dir / "crun-remove.log",
                )

        def wipe() -> list[str]:
            if pod_dir.exists():
                for mnt in pod_dir.glob("*/rootfs"):
                    _unmount(mnt)
            busy = cgroups.remove_tree(f"{self.cgroup_root}/{sandbox.uid}", up_to=self.cgroup_root)
            shutil.rmtree(pod_dir, ignore_errors=True)
            return busy

        busy = await self.worker.call(wipe)
        if busy:
            log.warning("cgroups still busy after removing %s: %s", sandbox.uid, busy)
        self._pods.pop(sandbox.uid, None)
        self._locks.pop(sandbox.uid, None)

    # ---- logs / exec / port-forward ----------------------------------------------------------
    def logs(
        self,
        sandbox: Sandbox,
        container: str,
        *,
        follow: bool = False,
        tail_lines: int | None = None,
        previous: bool = False,
    ) -> AsyncIterator[bytes]:
        rec, c = self._ctr(sandbox, container)
        return logs.read_instance(
            lambda n: self._log_path(rec, c, n),
            c.restart_count,
            previous=previous,
            follow=follow,
            tail_lines=tail_lines,
            writing=lambda n: c.state == "running" and c.restart_count == n,
            what=f"container {container!r}",
        )

    async def exec(
        self, sandbox: Sandbox, container: str, argv: list[str], *, tty: bool = False, stdin: bool = True
    ) -> ExecSession:
        rec, c = self._ctr(sandbox, container)
        if c.state != "running":
            raise RuntimeError_("ContainerNotRunning", f"container {container!r} is {c.state}")
        if not argv:
            raise RuntimeError_("InvalidArgument", "exec needs a command")
        self._exec_seq += 1
        bundle = self._bundle(rec, c)
        return await crun_exec(
            self.worker,
            self.crun_root,
            c.crun_id,
            argv,
            tty=tty,
            stdin=stdin,
            pidfile=bundle / f"exec-{self._exec_seq}.pid",
            console_path=f"/run/centaurus/cs-{self.tag}-{os.getpid()}-{self._exec_seq}.sock",
        )

    async def attach(self, sandbox: Sandbox, container: str) -> ExecSession:
        rec, c = self._ctr(sandbox, container)
        if c.state != "running":
            raise RuntimeError_("ContainerNotRunning", f"container {container!r} is {c.state}")
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        alive = asyncio.Event()
        alive.set()
        self._attached.setdefault((rec.uid, c.name), []).append((fut, alive))
        log_path = self._log_path(rec, c)
        start = await asyncio.to_thread(lambda: log_path.stat().st_size if log_path.exists() else 0)
        session = AttachSession(self._io.get((rec.uid, c.name)), log_path, start, c.spec.tty, fut, alive)
        await session.open_stdin()
        return session

    async def port_forward(self, sandbox: Sandbox, port: int) -> Connection:
        rec = self._pod(sandbox)
        try:
            return await netns.open_connection(rec.spec.netns_path, "127.0.0.1", port)
        except OSError as exc:
            raise RuntimeError_("PortForwardError", f"pod {rec.spec.name} port {port}: {exc}") from exc

    async def action(self, sandbox: Sandbox, action: str, params: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError_("NotSupported", f"action {action!r} applies to VM pods only")


def _reset_bundle(bundle: Path, lower: Path, config: dict[str, Any], files: dict[str, str]) -> None:
    """Fresh writable layer for this start, overlay-mounted over the image (runs in the worker)."""
    import json

    rootfs, upper, work = bundle / "rootfs", bundle / "upper", bundle / "work"
    _unmount(rootfs)
    for d in (upper, work):
        if d.exists():
            shutil.rmtree(d)
    for d in (rootfs, upper, work):
        d.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        p = upper / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    (bundle / "config.json").write_text(json.dumps(config))
    with contextlib.suppress(FileNotFoundError):
        (bundle / "crun.log").unlink()
    linux.mount("overlay", str(rootfs), "overlay", 0, f"lowerdir={lower},upperdir={upper},workdir={work}")


def _unmount(path: Path) -> None:
    with contextlib.suppress(OSError):
        linux.umount(str(path))


if TYPE_CHECKING:  # mypy proves the class implements the protocol the agent codes against
    _conforms: Runtime = ProcessRuntime(Path("/"))
