"""``vm`` runtime: Arktos VM pods as qemu guests (KVM when usable, TCG otherwise).

Start = restore a clone from the template snapshot of the VM's shape (:mod:`.template`), then
re-seed what clones share (hostname, instance id, MAC, address, clock, RNG) over the guest
channel; cold boot when no template exists or a restore fails. :meth:`VmRuntime.start` returns
when the qemu process runs; the guest becomes *ready* when its agent answers READY
(``Sandbox.info``: ``processRunningSeconds`` / ``guestReadySeconds``, ``startMode``).

Power: ``powerState`` follows Arktos (running, paused, shutdown, crashed, suspended); actions
reboot, stop/start, pause/resume, snapshot/restore, suspend move between them. A user stop is
reported as a terminated container with reason ``VmShutdown`` and ``info["powerSpec"] ==
"Shutdown"`` -- the agent must not apply restartPolicy to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import hashlib
import logging
import os
import secrets
import shlex
import shutil
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from centaurus.images import ImageError, ImageStore
from centaurus.runtimes import linux, logs, netns
from centaurus.runtimes.base import (
    Connection,
    ContainerStatus,
    ExecSession,
    Listener,
    RuntimeError_,
    Sandbox,
    SandboxSpec,
)
from centaurus.runtimes.execio import BufferedExec
from centaurus.runtimes.podstate import spec_from_json, spec_to_json, write_atomic
from centaurus.runtimes.vm import net as vmnet
from centaurus.runtimes.vm.guestctl import Identity
from centaurus.runtimes.vm.machine import BootError, Machine
from centaurus.runtimes.vm.qemu import QEMU, MachineConfig, QmpError
from centaurus.runtimes.vm.spec import DEFAULT_MEM_MB, VM_STATE, VmRecord, parse
from centaurus.runtimes.vm.template import TemplateError, TemplateStore

log = logging.getLogger("centaurus.runtime.vm")
SOCK_DIR = Path("/run/centaurus/vm")
READY_TIMEOUT = 60.0


def _kvm_device_ok() -> bool:
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if fcntl.ioctl(fd, 0xAE00, 0) != 12:  # KVM_GET_API_VERSION
            return False
        vm = fcntl.ioctl(fd, 0xAE01, 0)  # KVM_CREATE_VM
        os.close(vm)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


async def kvm_usable() -> bool:
    """/dev/kvm existing -- even creating a VM -- is not enough: on this machine KVM_CREATE_VM
    succeeds and qemu then aborts setting MSRs. So ask qemu itself: start a KVM microvm, run it,
    quit. ~30 ms, once per runtime."""
    if not await asyncio.to_thread(_kvm_device_ok):
        return False
    qmp = b'{"execute":"qmp_capabilities"}{"execute":"cont"}{"execute":"query-status"}{"execute":"quit"}'
    try:
        proc = await asyncio.create_subprocess_exec(
            QEMU,
            "-machine",
            "microvm",
            "-accel",
            "kvm",
            "-cpu",
            "host",
            "-nodefaults",
            "-display",
            "none",
            "-S",
            "-qmp",
            "stdio",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await asyncio.wait_for(proc.communicate(qmp), 10)
    except (OSError, TimeoutError):
        return False
    return proc.returncode == 0 and b'"running": true' in out


class VmRuntime:
    name = "vm"

    def __init__(self, state_dir: Path, options: Mapping[str, Any] | None = None) -> None:
        opts = dict(options or {})
        self.state_dir = Path(state_dir).resolve()
        self.vms_dir = self.state_dir / "vms"
        self.images = ImageStore(opts.get("image_dir"))
        self.templates = TemplateStore(opts.get("template_dir"))
        self.build_templates = bool(opts.get("build_template", True))
        self.boot_mode = str(opts.get("boot", "auto"))  # auto | cold
        self.accel = str(opts.get("accel") or "")
        self.tag = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:8]
        self._recs: dict[str, VmRecord] = {}
        self._specs: dict[str, SandboxSpec] = {}
        self._machines: dict[str, Machine] = {}
        self._info: dict[str, dict[str, Any]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listeners: list[Listener] = []

    # ---- runtime lifecycle ---------------------------------------------------------------------
    async def prepare(self) -> None:
        if not self.accel:
            self.accel = "kvm" if await kvm_usable() else "tcg"
        linux.set_child_subreaper()
        await asyncio.to_thread(self._init_dirs)
        if self.build_templates and self.boot_mode != "cold":
            try:
                image = self.images.resolve("centaurus/guest", "vm")
                await self.templates.ensure(image, DEFAULT_MEM_MB, 1, self.accel)
            except (ImageError, TemplateError) as exc:
                log.warning("no VM template (cold boots only): %s", exc)

    def _init_dirs(self) -> None:
        SOCK_DIR.mkdir(parents=True, exist_ok=True)
        self.vms_dir.mkdir(parents=True, exist_ok=True)
        self.images.list()

    def add_listener(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def _notify(self, uid: str) -> None:
        rec = self._recs.get(uid)
        if rec is None:
            return
        self._refresh_info(rec)
        for fn in self._listeners:
            try:
                fn(uid, rec.name)
            except Exception:
                log.exception("runtime listener failed")

    def _spawn_task(self, coro: Any) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for m in list(self._machines.values()):
            await m.detach()
            if m.exited is not None:
                m.exited.cancel()
        self._machines.clear()

    # ---- records -------------------------------------------------------------------------------
    def _lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    async def _persist(self, rec: VmRecord) -> None:
        if self._recs.get(rec.uid) is not rec:
            return  # removed meanwhile: never resurrect its directory
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(write_atomic, self.vms_dir / rec.uid / "vm.json", rec.dump())

    def _refresh_info(self, rec: VmRecord) -> dict[str, Any]:
        info = self._info.setdefault(rec.uid, {"runtime": self.name})
        net = rec.net or {}
        info.update(
            powerState=rec.power_state,
            vmState=VM_STATE.get(rec.power_state, ""),
            powerSpec=rec.power_spec,
            startMode=rec.start_mode,
            accel=rec.accel,
            processRunningSeconds=rec.process_running_s,
            guestReadySeconds=rec.guest_ready_s,
            ready=rec.ready,
            ip=(net.get("ip_cidr") or "").split("/")[0] or None,
            mac=net.get("mac"),
            qemuPid=rec.pid,
            templateKey=rec.template_key,
            snapshots=sorted(rec.snapshots),
            memoryMB=rec.mem_mb,
            cpus=rec.cpus,
        )
        return info

    def _rec(self, sandbox: Sandbox) -> VmRecord:
        rec = self._recs.get(sandbox.uid)
        if rec is None:
            raise RuntimeError_("NotFound", f"no VM sandbox {sandbox.uid} in {self.state_dir}")
        sandbox.info = self._refresh_info(rec)
        return rec

    def _identity(self, rec: VmRecord) -> Identity:
        spec = self._specs[rec.uid]
        shape = parse(spec.vm)
        net = rec.net or {}
        return Identity(
            hostname=(spec.hostname or spec.name)[:63],
            instance_id=f"i-{rec.uid}",
            ip_cidr=net.get("ip_cidr"),
            gateway=net.get("gateway"),
            mac=net.get("mac"),
            public_keys=shape.public_keys,
            user_data=shape.user_data,
        )

    # ---- start ---------------------------------------------------------------------------------
    async def start(self, spec: SandboxSpec) -> Sandbox:
        if spec.uid in self._recs:
            raise RuntimeError_("VmBootFailed", f"sandbox {spec.uid} already exists")
        shape = parse(spec.vm)
        try:
            image = self.images.resolve(shape.image, "vm")
        except ImageError as exc:
            raise RuntimeError_(exc.reason, f"virtualMachine {shape.name!r}: {exc.message}") from None
        short = hashlib.sha256(f"{self.state_dir}/{spec.uid}".encode()).hexdigest()[:12]
        rec = VmRecord(
            uid=spec.uid,
            name=shape.name,
            spec_json=spec_to_json(spec),
            image_name=image.name,
            image_ref=image.reference,
            image_id=image.image_id,
            mem_mb=shape.mem_mb,
            cpus=shape.cpus,
            accel=self.accel or "tcg",
            qmp_sock=str(SOCK_DIR / f"{short}.qmp"),
            ctl_sock=str(SOCK_DIR / f"{short}.ctl"),
            power_spec=shape.power_spec,
        )
        self._recs[spec.uid], self._specs[spec.uid] = rec, spec
        sandbox = Sandbox(uid=spec.uid, runtime_id=spec.uid, info=self._refresh_info(rec))
        try:
            async with self._lock(spec.uid):
                await asyncio.to_thread((self.vms_dir / spec.uid).mkdir, parents=True, exist_ok=True)
                if spec.netns_path:
                    gnet = await vmnet.setup(spec.netns_path, spec.uid, spec.network)
                    rec.net = dataclasses.asdict(gnet)
                else:
                    rec.net = {"mac": vmnet.mac_for(spec.uid), "ip_cidr": None, "gateway": None}
                await self._persist(rec)
                if shape.power_spec == "Shutdown":
                    rec.power_state, rec.reason = "shutdown", "VmShutdown"
                else:
                    await self._boot(rec)
                    if shape.power_spec == "Paused":
                        await self._machines[rec.uid].qmp.execute("stop")
                        rec.power_state = "paused"
                await self._persist(rec)
        except (BootError, QmpError, vmnet.NetError, OSError, TimeoutError) as exc:
            await self.remove(sandbox)
            raise RuntimeError_("VmBootFailed", f"virtualMachine {shape.name!r}: {exc}") from exc
        except BaseException:
            await self.remove(sandbox)
            raise
        self._notify(spec.uid)
        return sandbox

    def _machine_config(self, rec: VmRecord, *, ram_file: Path | None, incoming: bool) -> MachineConfig:
        image = self.images.get(rec.image_name)
        spec = self._specs[rec.uid]
        return MachineConfig(
            kernel=image.kernel,
            initrd=image.initrd,
            mem_mb=rec.mem_mb,
            cpus=rec.cpus,
            accel=rec.accel,
            console_log=spec.log_dir / rec.name / f"{rec.restart_count}.log",
            ctl_sock=rec.ctl_sock,
            qmp_sock=rec.qmp_sock,
            ram_file=ram_file,
            tap=vmnet.TAP if spec.netns_path else None,
            mac=(rec.net or {}).get("mac") or vmnet.mac_for(rec.uid),
            incoming=incoming,
        )

    def _new_machine(self, rec: VmRecord, cfg: MachineConfig) -> Machine:
        uid = rec.uid
        m = Machine(
            cfg,
            self._specs[uid].netns_path,
            self.vms_dir / uid / "qemu.log",
            on_wait=lambda: self._spawn_task(self._provision(uid, None)),
            on_ready=lambda _iid: self._on_ready(uid),
            on_event=lambda ev, data: self._on_event(uid, ev, data),
        )
        return m

    async def _boot(self, rec: VmRecord, snapshot: Path | None = None) -> None:
        """Bring a qemu up (snapshot > template > cold); returns when the process runs."""
        image = self.images.get(rec.image_name)
        if snapshot is None and self.boot_mode != "cold":
            tpl = await asyncio.to_thread(self.templates.find, image, rec.mem_mb, rec.cpus, rec.accel)
            if tpl is None and self.build_templates:
                self._spawn_task(self._build_template_quietly(rec))
            if tpl is not None:
                try:
                    await self._launch(
                        rec,
                        self._machine_config(rec, ram_file=tpl.ram, incoming=True),
                        incoming=tpl.state,
                        ignore_shared=True,
                        mode="restore",
                    )
                    rec.template_key = tpl.key
                    return
                except (BootError, QmpError, OSError, TimeoutError) as exc:
                    log.warning("restore of %s from template %s failed, cold boot: %s", rec.uid, tpl.key, exc)
        if snapshot is not None:
            await self._launch(
                rec,
                self._machine_config(rec, ram_file=None, incoming=True),
                incoming=snapshot,
                ignore_shared=False,
                mode="snapshot",
            )
            return
        await self._launch(
            rec,
            self._machine_config(rec, ram_file=None, incoming=False),
            incoming=None,
            ignore_shared=False,
            mode="cold",
        )

    async def _launch(
        self, rec: VmRecord, cfg: MachineConfig, *, incoming: Path | None, ignore_shared: bool, mode: str
    ) -> None:
        m = self._new_machine(rec, cfg)
        rec.ready, rec.guest_ready_s, rec.start_mode = False, None, mode
        try:
            await m.spawn(incoming)
            if incoming is not None:
                await m.incoming(ignore_shared)
            else:
                await m.qmp.wait_status(lambda s: s == "running", 30)
        except BaseException:
            await m.quit(grace=1)
            raise
        rec.process_running_s = time.monotonic() - m.t_spawn
        rec.pid, rec.pid_start, rec.power_state = m.pid, m.pid_start, "running"
        rec.started_at, rec.finished_at, rec.reason, rec.message, rec.exit_code = (
            time.time(),
            None,
            "",
            "",
            None,
        )
        self._machines[rec.uid] = m
        self._spawn_task(self._watch_exit(rec.uid, m))
        if incoming is not None:  # restored guests are past WAIT: re-seed them now
            self._spawn_task(self._provision(rec.uid, m))

    async def _build_template_quietly(self, rec: VmRecord) -> None:
        try:
            await self.templates.ensure(self.images.get(rec.image_name), rec.mem_mb, rec.cpus, rec.accel)
        except (TemplateError, ImageError) as exc:
            log.warning("background template build failed: %s", exc)

    async def _provision(self, uid: str, m: Machine | None) -> None:
        rec, m = self._recs.get(uid), m or self._machines.get(uid)
        if rec is None or m is None:
            return
        rec.ready = False
        try:
            await m.ch.provision(self._identity(rec), secrets.token_bytes(32))
            await m.ch.wait_ready(READY_TIMEOUT)
        except (ConnectionError, TimeoutError, OSError) as exc:
            if m.alive():
                rec.message = f"guest agent did not answer: {exc!r}"
                self._notify(uid)

    def _on_ready(self, uid: str) -> None:
        rec, m = self._recs.get(uid), self._machines.get(uid)
        if rec is None or m is None:
            return
        rec.ready = True
        if rec.guest_ready_s is None:
            rec.guest_ready_s = time.monotonic() - m.t_spawn
        self._spawn_task(self._persist(rec))
        self._notify(uid)

    def _on_event(self, uid: str, event: str, data: dict[str, Any]) -> None:
        rec = self._recs.get(uid)
        if rec is None:
            return
        if event == "STOP" and rec.power_state == "running":
            rec.power_state = "paused"
        elif event == "RESUME" and rec.power_state == "paused":
            rec.power_state = "running"
        elif event == "RESET":
            rec.ready = False
        elif event == "SHUTDOWN" and data.get("guest"):
            rec.reason = "VmShutdown"
        self._notify(uid)

    async def _watch_exit(self, uid: str, m: Machine) -> None:
        assert m.exited is not None
        status = await asyncio.shield(m.exited)
        await m.detach()
        rec = self._recs.get(uid)
        if rec is None or self._machines.get(uid) is not m:
            return
        self._machines.pop(uid, None)
        rec.pid, rec.ready, rec.finished_at = None, False, time.time()
        code = linux.exit_code_from_status(status) if status is not None else None
        if m.expect_exit:
            pass  # the action that quit it set power_state
        elif rec.reason == "VmShutdown":  # the guest powered itself off
            rec.power_state, rec.exit_code = "shutdown", 0
        else:
            rec.power_state, rec.reason, rec.exit_code = "crashed", "Error", code if code is not None else 137
            rec.message = f"qemu exited unexpectedly: {await m.error_tail()}"
        await self._persist(rec)
        self._notify(uid)

    async def wait_ready(self, sandbox: Sandbox, timeout: float = READY_TIMEOUT) -> None:
        """Until the guest agent answered READY (VM-specific; the agent uses the listener)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._rec(sandbox).ready:
            m = self._machines.get(sandbox.uid)
            if m is None:
                raise RuntimeError_(
                    "VmNotRunning", f"VM {sandbox.uid} is {self._recs[sandbox.uid].power_state}"
                )
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise RuntimeError_("VmNotReady", f"guest not ready after {timeout} s")
            with contextlib.suppress(TimeoutError):
                await m.ch.wait_ready(min(left, 0.5))
        self._refresh_info(self._recs[sandbox.uid])

    # ---- queries -------------------------------------------------------------------------------
    async def status(self, sandbox: Sandbox) -> list[ContainerStatus]:
        rec = self._rec(sandbox)
        st = ContainerStatus(
            rec.name,
            "waiting",
            reason="ContainerCreating",
            message=rec.message,
            restart_count=rec.restart_count,
            image=rec.image_ref,
            image_id=rec.image_id,
            container_id=f"qemu://{rec.uid}",
            started_at=rec.started_at,
        )
        if rec.power_state in ("running", "paused"):
            st.state, st.pid = "running", rec.pid
            st.reason = "" if rec.power_state == "running" else "Paused"
            st.ready = rec.ready and rec.power_state == "running"
        elif rec.power_state != "nostate":
            st.state, st.finished_at = "terminated", rec.finished_at
            st.exit_code = rec.exit_code if rec.exit_code is not None else 0
            default = {"shutdown": "VmShutdown", "suspended": "Suspended"}.get(rec.power_state, "Error")
            st.reason = rec.reason or default
        return [st]

    async def stats(self, sandbox: Sandbox) -> dict[str, dict[str, float]]:
        rec = self._rec(sandbox)
        m = self._machines.get(rec.uid)
        if m is None:
            return {}
        pss = await asyncio.to_thread(m.pss_bytes)
        return {rec.name: {"memory_bytes": float(pss or 0), "cpu_seconds": float(m.cpu_seconds() or 0.0)}}

    async def sandboxes(self) -> list[Sandbox]:
        uids = await asyncio.to_thread(
            lambda: sorted(p.name for p in self.vms_dir.glob("*") if (p / "vm.json").is_file())
        )
        for uid in uids:
            if uid in self._recs:
                continue
            try:
                rec = VmRecord.load(await asyncio.to_thread((self.vms_dir / uid / "vm.json").read_text))
                spec = spec_from_json(rec.spec_json)
            except (OSError, ValueError, TypeError) as exc:
                log.warning("skipping unreadable VM state %s: %s", uid, exc)
                continue
            self._recs[uid], self._specs[uid] = rec, spec
            if rec.pid and linux.pid_alive(rec.pid) and linux.proc_start_time(rec.pid) == rec.pid_start:
                m = self._new_machine(rec, self._machine_config(rec, ram_file=None, incoming=False))
                try:
                    await m.adopt(rec.pid)
                    self._machines[uid] = m
                    self._spawn_task(self._watch_exit(uid, m))
                    continue
                except (OSError, QmpError, TimeoutError) as exc:
                    log.warning("cannot re-attach to qemu %s of %s: %s", rec.pid, uid, exc)
                    await m.detach()
            if rec.power_state in ("running", "paused"):
                rec.power_state, rec.reason, rec.pid, rec.ready = (
                    "crashed",
                    "ContainerStatusUnknown",
                    None,
                    False,
                )
                rec.message = "the VM exited while no agent was watching"
        return [Sandbox(uid=u, runtime_id=u, info=self._refresh_info(r)) for u, r in self._recs.items()]

    # ---- stop / restart / remove ---------------------------------------------------------------
    async def _power_off(self, rec: VmRecord, grace: float, state: str = "shutdown") -> None:
        m = self._machines.get(rec.uid)
        if m is not None and m.alive():
            m.expect_exit = True
            if grace > 0 and rec.power_state == "running":
                with contextlib.suppress(ConnectionError, OSError):
                    await m.ch.send(b"OFF\n")  # clean guest poweroff; qemu exits on ACPI shutdown
                with contextlib.suppress(TimeoutError):
                    assert m.exited is not None
                    await asyncio.wait_for(asyncio.shield(m.exited), grace)
            await m.quit(grace=2)
        self._machines.pop(rec.uid, None)
        rec.pid, rec.ready, rec.finished_at = None, False, time.time()
        rec.power_state, rec.exit_code = state, 0
        rec.reason = {"shutdown": "VmShutdown", "suspended": "Suspended"}.get(state, state)

    async def stop(self, sandbox: Sandbox, grace_seconds: float = 30.0) -> None:
        rec = self._rec(sandbox)
        async with self._lock(rec.uid):
            await self._power_off(rec, min(grace_seconds, 10.0))
            rec.power_spec = "Shutdown"
            await self._persist(rec)
        self._notify(rec.uid)

    async def restart_container(self, sandbox: Sandbox, container: str) -> None:
        rec = self._rec(sandbox)
        async with self._lock(rec.uid):
            if rec.uid in self._machines:
                raise RuntimeError_("ContainerRunning", f"VM {rec.name!r} is still running")
            rec.restart_count += 1
            rec.power_spec = "Running"
            await self._boot(rec)
            await self._persist(rec)
        self._notify(rec.uid)

    async def remove(self, sandbox: Sandbox) -> None:
        rec = self._recs.get(sandbox.uid)
        if rec is None:
            with contextlib.suppress(OSError, ValueError, TypeError):
                rec = VmRecord.load(
                    await asyncio.to_thread((self.vms_dir / sandbox.uid / "vm.json").read_text)
                )
                self._specs[sandbox.uid] = spec_from_json(rec.spec_json)
        if rec is not None:
            async with self._lock(rec.uid):
                m = self._machines.get(rec.uid)
                if m is not None:
                    await m.quit(grace=2)
                elif rec.pid and linux.pid_alive(rec.pid) and linux.proc_start_time(rec.pid) == rec.pid_start:
                    linux.kill_quietly(rec.pid, 9)
                self._machines.pop(rec.uid, None)
                spec = self._specs.get(rec.uid)
                if spec is not None and spec.netns_path and rec.net is not None:
                    await vmnet.teardown(spec.netns_path, vmnet.GuestNet(**rec.net))

                def wipe() -> None:
                    for sock in (rec.qmp_sock, rec.ctl_sock):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(sock)
                    shutil.rmtree(self.vms_dir / rec.uid, ignore_errors=True)

                await asyncio.to_thread(wipe)
        else:
            await asyncio.to_thread(shutil.rmtree, self.vms_dir / sandbox.uid, True)
        for d in (self._recs, self._specs, self._info, self._locks):
            d.pop(sandbox.uid, None)

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
        rec = self._rec(sandbox)
        n = rec.restart_count - (1 if previous else 0)
        if n < 0:
            raise RuntimeError_("NotFound", f"VM {container!r} has no previous instance")
        path = self._specs[rec.uid].log_dir / rec.name / f"{n}.log"
        return logs.read_log(
            path,
            follow=follow and not previous,
            tail_lines=tail_lines,
            done=lambda: rec.uid not in self._machines or rec.restart_count != n,
        )

    async def exec(
        self, sandbox: Sandbox, container: str, argv: list[str], *, tty: bool = False, stdin: bool = True
    ) -> ExecSession:
        rec = self._rec(sandbox)
        m = self._machines.get(rec.uid)
        if m is None or rec.power_state != "running":
            raise RuntimeError_("VmNotRunning", f"VM {rec.name!r} is {rec.power_state}")
        if tty:
            raise RuntimeError_("NotSupported", "VM exec runs through the guest agent: no tty")
        try:
            out, code = await m.ch.run(shlex.join(argv))
        except (ConnectionError, TimeoutError) as exc:
            raise RuntimeError_("ExecError", f"guest agent: {exc!r}") from exc
        return BufferedExec(out, code)

    async def port_forward(self, sandbox: Sandbox, port: int) -> Connection:
        rec = self._rec(sandbox)
        ip = (rec.net or {}).get("ip_cidr")
        spec = self._specs[rec.uid]
        if not ip or not spec.netns_path:
            raise RuntimeError_("PortForwardError", f"VM {rec.name!r} has no pod address")
        try:
            return await netns.open_connection(spec.netns_path, ip.split("/")[0], port)
        except OSError as exc:
            raise RuntimeError_("PortForwardError", f"VM {rec.name!r} port {port}: {exc}") from exc

    async def action(self, sandbox: Sandbox, action: str, params: dict[str, Any]) -> dict[str, Any]:
        from centaurus.runtimes.vm.actions import run_action

        rec = self._rec(sandbox)
        async with self._lock(rec.uid):
            result = await run_action(self, rec, action.strip().lower(), params)
            await self._persist(rec)
        self._notify(rec.uid)
        return {**result, "powerState": rec.power_state, "vmState": VM_STATE.get(rec.power_state, "")}
