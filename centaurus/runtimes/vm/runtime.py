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
import hashlib
import logging
import os
import shlex
import shutil
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from centaurus.images import ImageError, ImageStore
from centaurus.runtimes import linux, logs, netns
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
from centaurus.runtimes.podstate import spec_from_json, spec_to_json
from centaurus.runtimes.vm import net as vmnet
from centaurus.runtimes.vm.accel import kvm_usable
from centaurus.runtimes.vm.bootslots import BootSlots
from centaurus.runtimes.vm.lifecycle import VmLifecycle
from centaurus.runtimes.vm.machine import BootError, Machine
from centaurus.runtimes.vm.qemu import QmpError
from centaurus.runtimes.vm.spec import DEFAULT_MEM_MB, VM_STATE, VmRecord, parse
from centaurus.runtimes.vm.template import TemplateError, TemplateStore

log = logging.getLogger("centaurus.runtime.vm")
SOCK_DIR = Path("/run/centaurus/vm")

__all__ = ["VmRuntime", "kvm_usable"]


class VmRuntime(VmLifecycle):
    name = "vm"

    def __init__(self, state_dir: Path, options: Mapping[str, Any] | None = None) -> None:
        opts = dict(options or {})
        self.state_dir = Path(state_dir).resolve()
        self.vms_dir = self.state_dir / "vms"
        self.images = ImageStore(opts.get("image_dir"))
        self.templates = TemplateStore(opts.get("template_dir"))
        self.build_templates = bool(opts.get("build_template", True))
        self.boot_mode = str(opts.get("boot", "auto"))  # auto | cold
        slots = opts.get("cold_boot_slots")  # machine-wide concurrent cold boots; 0 = unbounded
        self.boot_slots = BootSlots(None if slots is None else int(slots), opts.get("boot_slot_dir"))
        self.accel = str(opts.get("accel") or "")
        self.tag = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:8]
        self._recs: dict[str, VmRecord] = {}
        self._specs: dict[str, SandboxSpec] = {}
        self._machines: dict[str, Machine] = {}
        self._info: dict[str, dict[str, Any]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listeners = Listeners()

    # ---- runtime lifecycle ---------------------------------------------------------------------
    async def prepare(self) -> None:
        if not self.accel:
            kernel: Path | None = None
            with contextlib.suppress(ImageError):
                kernel = self.images.resolve("centaurus/guest", "vm").kernel
            self.accel = "kvm" if await kvm_usable(kernel) else "tcg"
            log.info("VM accelerator: %s", self.accel)
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
        self._listeners.add(fn)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for m in list(self._machines.values()):
            await m.detach()
            if m.exited is not None:
                m.exited.cancel()
        self._machines.clear()

    # ---- records -------------------------------------------------------------------------------
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
        log_dir = self._specs[rec.uid].log_dir / rec.name
        return logs.read_instance(
            lambda n: log_dir / f"{n}.log",
            rec.restart_count,
            previous=previous,
            follow=follow,
            tail_lines=tail_lines,
            writing=lambda n: rec.uid in self._machines and rec.restart_count == n,
            what=f"VM {container!r}",
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

    async def attach(self, sandbox: Sandbox, container: str) -> ExecSession:
        raise RuntimeError_("NotSupported", "VM pods have no attachable main process; use exec or logs")

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


if TYPE_CHECKING:  # mypy proves the class implements the protocol the agent codes against
    _conforms: Runtime = VmRuntime(Path("/"))
