"""VM mechanics behind :class:`centaurus.runtimes.vm.runtime.VmRuntime`: records, boot paths
(template restore -> cold fallback, snapshot restore), guest provisioning and readiness, exit
watching, power-off. Split out so the runtime module is the public API and stays readable."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from pathlib import Path
from typing import Any

from centaurus.images import ImageError, ImageStore
from centaurus.runtimes import linux
from centaurus.runtimes.base import Listeners, RuntimeError_, Sandbox, SandboxSpec
from centaurus.runtimes.podstate import write_atomic
from centaurus.runtimes.vm import net as vmnet
from centaurus.runtimes.vm.bootslots import BootSlot, BootSlots
from centaurus.runtimes.vm.guestctl import Identity
from centaurus.runtimes.vm.machine import BootError, Machine
from centaurus.runtimes.vm.qemu import MachineConfig, QmpError
from centaurus.runtimes.vm.spec import VM_STATE, VmRecord, parse
from centaurus.runtimes.vm.template import TemplateError, TemplateStore

log = logging.getLogger("centaurus.runtime.vm")
READY_TIMEOUT = 60.0


class VmLifecycle:
    name = "vm"
    state_dir: Path
    vms_dir: Path
    images: ImageStore
    templates: TemplateStore
    build_templates: bool
    boot_mode: str
    boot_slots: BootSlots
    accel: str
    _recs: dict[str, VmRecord]
    _specs: dict[str, SandboxSpec]
    _machines: dict[str, Machine]
    _info: dict[str, dict[str, Any]]
    _locks: dict[str, asyncio.Lock]
    _tasks: set[asyncio.Task[Any]]
    _listeners: Listeners

    def _notify(self, uid: str) -> None:
        rec = self._recs.get(uid)
        if rec is None:
            return
        self._refresh_info(rec)
        self._listeners(uid, rec.name)

    def _spawn_task(self, coro: Any) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

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
            bootWaitSeconds=rec.boot_wait_s,
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
        # A cold boot waits for a machine-wide boot slot (bootslots: bounded concurrent boots keep
        # the tail down when boots come in bursts); the wait counts in the start time.
        t_queue = time.monotonic()
        slot = await self.boot_slots.acquire()
        try:
            await self._launch(
                rec,
                self._machine_config(rec, ram_file=None, incoming=False),
                incoming=None,
                ignore_shared=False,
                mode="cold",
                slot=slot,
                t_queue=t_queue,
            )
        except BaseException:
            slot.release()
            raise

    async def _launch(
        self,
        rec: VmRecord,
        cfg: MachineConfig,
        *,
        incoming: Path | None,
        ignore_shared: bool,
        mode: str,
        slot: BootSlot | None = None,
        t_queue: float | None = None,
    ) -> None:
        m = self._new_machine(rec, cfg)
        m.boot_slot = slot
        if t_queue is not None:
            m.t_queue = t_queue
        rec.ready, rec.guest_ready_s, rec.start_mode = False, None, mode
        rec.boot_wait_s = slot.waited_s if slot is not None else None
        try:
            await m.spawn(incoming)
            if incoming is not None:
                await m.incoming(ignore_shared)
            else:
                await m.qmp.wait_status(lambda s: s == "running", 30)
        except BaseException:
            await m.quit(grace=1)
            raise
        rec.process_running_s = time.monotonic() - m.t_start
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
        m.release_boot_slot()
        if rec.guest_ready_s is None:
            rec.guest_ready_s = time.monotonic() - m.t_start
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
