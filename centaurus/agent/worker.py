"""One pod on one node: the loop that drives it from Pending to Running to its end.

Each pod gets a :class:`PodWorker` with its own task; every trigger (the pod object changed,
the runtime reported a container change, a back-off timer fired) sets an event and the task runs
:meth:`PodWorker.sync` once for all triggers that piled up -- so a burst of events costs one
pass. A pass: terminate if the pod is being deleted; else create the sandbox (network hook, then
runtime) if there is none; else apply restartPolicy to terminated containers (with kubelet's
back-off: immediately, then base, 2x base ... up to max) and the VM power spec; finally compute
the status and hand it to the coalescing writer if it changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Any

from centaurus.agent import podspec
from centaurus.agent.podstatus import Backoff, PodView, build_status
from centaurus.client.rest import ApiError
from centaurus.netplug.base import NetworkError, PodNetResult
from centaurus.runtimes.base import ContainerStatus, Runtime, RuntimeError_, Sandbox

if TYPE_CHECKING:
    from centaurus.agent.pods import PodManager

log = logging.getLogger("centaurus.agent.pod")
Obj = dict[str, Any]
#: start errors retrying cannot fix: the pod fails at once with the reason (the local image store
#: is the only source of images -- nothing is downloaded -- so an unknown image never appears)
PERMANENT = {
    "ErrImagePull",
    "InvalidImageName",
    "ErrImageNeverPull",
    "InvalidVmSpec",
    "CreateContainerConfigError",
    "NotSupported",
    "InvalidNetwork",
}
NETWORK_TIMEOUT = 60.0
RUNTIME_TIMEOUT = 180.0  # a cold VM boot on a loaded 2-core TCG host stays well below this
RESET_AFTER = 600.0  # a container that ran this long starts its back-off afresh


class PodWorker:
    def __init__(self, mgr: PodManager, pod: Obj, runtime: Runtime) -> None:
        self.mgr = mgr
        self.pod = pod
        self.uid = str(pod["metadata"]["uid"])
        self.key = podspec.key_of(pod)
        self.runtime = runtime
        self.sandbox: Sandbox | None = None
        self.net: PodNetResult | None = None
        self.start_time: float | None = None
        self.start_error: tuple[str, str] | None = None
        self.failed: tuple[str, str] | None = None
        self.backoff: dict[str, Backoff] = {}
        self.crashes: dict[str, int] = {}
        self.last_term: dict[str, ContainerStatus] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.deleted = False
        self.done = False
        self.last_status: Obj | None = None
        self.ready_at: float | None = None
        self.seen_mono = time.monotonic()
        self.phases: dict[str, float] = {}  # startup phases (s): network, runtime
        self.lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._wake.set()
        self._task: asyncio.Task[None] | None = None
        self._retry_at = 0.0
        self._start_failures = 0
        self._due: list[ContainerStatus] = []
        self.statuses: list[ContainerStatus] = []

    # ---- loop ----------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def kick(self) -> None:
        self._wake.set()

    def update(self, pod: Obj) -> None:
        """A newer version of the pod object (watch)."""
        old_md, md = self.pod["metadata"], pod["metadata"]
        changed = md.get("deletionTimestamp") != old_md.get("deletionTimestamp") or md.get(
            "generation"
        ) != old_md.get("generation")
        self.pod = pod
        if changed:
            self.kick()

    def gone(self) -> None:
        """The pod object was deleted from the API."""
        self.deleted = True
        self.kick()

    async def _run(self) -> None:
        while not self.done:
            await self._wake.wait()
            self._wake.clear()
            try:
                async with self.lock:
                    await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pod %s/%s/%s: sync failed", *self.key)
                await asyncio.sleep(1.0)
                self.kick()
        self.mgr.forget(self)

    async def cancel(self) -> None:
        for h in self.timers.values():
            h.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _later(self, name: str, delay: float) -> None:
        old = self.timers.pop(name, None)
        if old is not None:
            old.cancel()
        self.timers[name] = asyncio.get_running_loop().call_later(max(0.0, delay), self._fire, name)

    def _fire(self, name: str) -> None:
        self.timers.pop(name, None)
        self.kick()

    # ---- one pass ------------------------------------------------------------------------------
    async def sync(self) -> None:
        md = self.pod["metadata"]
        if self.deleted or md.get("deletionTimestamp"):
            await self.terminate()
            return
        if self.failed is not None:
            self.publish()
            return
        if self.sandbox is None:
            if time.monotonic() < self._retry_at:
                self._later("start", self._retry_at - time.monotonic())
                self.publish()
                return
            await self._create()
        if self.sandbox is not None:
            self.statuses = await self._statuses()
            acted = await self.run_due_restarts()
            acted = await self._restarts(self.statuses) or acted
            acted = await self._power() or acted
            if acted and self.sandbox is not None:
                self.statuses = await self._statuses()
        self.publish()

    async def _statuses(self) -> list[ContainerStatus]:
        assert self.sandbox is not None
        try:
            return await self.runtime.status(self.sandbox)
        except RuntimeError_ as exc:  # the sandbox vanished (removed behind our back)
            log.warning("pod %s/%s/%s: %s", *self.key, exc)
            self.sandbox = None
            self.kick()
            return []

    async def _create(self) -> None:
        mgr = self.mgr
        if self.start_time is None:
            self.start_time = time.time()
        pending_note = asyncio.get_running_loop().call_later(1.0, self.publish)
        try:
            if self.net is None:
                t0 = time.monotonic()
                self.net = await asyncio.wait_for(mgr.network_for(self), NETWORK_TIMEOUT)
                self.phases["network"] = time.monotonic() - t0
            spec = podspec.sandbox_spec(self.pod, mgr.cfg.node_name, self.net, mgr.cfg.host_ip, mgr.log_root)
            t0 = time.monotonic()
            self.sandbox = await asyncio.wait_for(self.runtime.start(spec), RUNTIME_TIMEOUT)
            self.phases["runtime"] = time.monotonic() - t0
            self.start_error = None
            self._start_failures = 0
            mgr.metrics.started(self)
        except RuntimeError_ as exc:
            self._start_failed(exc.reason, exc.message)
        except NetworkError as exc:
            self._start_failed(exc.reason, str(exc), network=True)
        except TimeoutError:
            what = "network setup" if self.net is None else "runtime start"
            self._start_failed("StartTimeout", f"{what} did not finish in time", network=self.net is None)
        finally:
            pending_note.cancel()

    def _start_failed(self, reason: str, message: str, network: bool = False) -> None:
        self.start_error = (reason, message)
        log.warning("pod %s/%s/%s did not start: %s: %s", *self.key, reason, message)
        self.mgr.events.pod_event(self.pod, "Warning", reason if reason in PERMANENT else "Failed", message)
        if reason in PERMANENT:
            self.failed = (reason, message)
            return
        self._start_failures += 1
        cfg = self.mgr.cfg
        # a network endpoint that is not provisioned yet is worth a quick retry; a failed
        # container start follows kubelet's back-off
        base = min(0.5, cfg.backoff_base_seconds) if network else cfg.backoff_base_seconds
        delay = min(cfg.backoff_max_seconds, base * 2 ** (self._start_failures - 1))
        self._retry_at = time.monotonic() + delay
        self._later("start", delay)

    # ---- restartPolicy -------------------------------------------------------------------------
    async def _restarts(self, statuses: list[ContainerStatus]) -> bool:
        assert self.sandbox is not None
        acted = False
        policy = podspec.restart_policy(self.pod)
        vm_stopped = (self.sandbox.info or {}).get("powerSpec") == "Shutdown"
        for cs in statuses:
            if cs.state != "terminated" or cs.name in self.timers:
                continue
            if vm_stopped:
                continue  # a VM powered off on request stays off
            failed = bool(cs.exit_code)
            if cs.init:
                if not failed or policy == "Never":
                    continue
            elif policy == "Never" or (policy == "OnFailure" and not failed):
                continue
            ran = (cs.finished_at or 0) - (cs.started_at or 0)
            if ran >= RESET_AFTER:
                self.crashes[cs.name] = 0
            n = self.crashes.get(cs.name, 0)
            cfg = self.mgr.cfg
            delay = 0.0 if n == 0 else min(cfg.backoff_max_seconds, cfg.backoff_base_seconds * 2 ** (n - 1))
            self.crashes[cs.name] = n + 1
            if n > 0:
                self.mgr.events.pod_event(
                    self.pod,
                    "Warning",
                    "BackOff",
                    f"Back-off restarting failed container {cs.name} in pod {self.key[2]}",
                )
            if delay > 0:
                self.backoff[cs.name] = Backoff(until=time.time() + delay, delay=delay)
                self.timers[cs.name] = asyncio.get_running_loop().call_later(delay, self._restart_due, cs)
            else:
                await self._restart(cs)
            acted = True
        return acted

    def _restart_due(self, cs: ContainerStatus) -> None:
        self.timers.pop(cs.name, None)
        self.backoff.pop(cs.name, None)
        self._due.append(cs)
        self.kick()

    async def _restart(self, cs: ContainerStatus) -> None:
        assert self.sandbox is not None
        self.last_term[cs.name] = dataclasses.replace(cs)
        self.backoff.pop(cs.name, None)
        try:
            await self.runtime.restart_container(self.sandbox, cs.name)
        except RuntimeError_ as exc:
            if exc.reason == "ContainerRunning":
                return
            self.mgr.events.pod_event(self.pod, "Warning", "Failed", exc.message)
            delay = self.mgr.cfg.backoff_base_seconds
            self.backoff[cs.name] = Backoff(until=time.time() + delay, delay=delay)
            self.timers[cs.name] = asyncio.get_running_loop().call_later(delay, self._restart_due, cs)

    async def run_due_restarts(self) -> bool:
        acted = bool(self._due)
        while self._due and self.sandbox is not None:
            await self._restart(self._due.pop(0))
        return acted

    # ---- VM power spec -------------------------------------------------------------------------
    async def _power(self) -> bool:
        vm = (self.pod.get("spec") or {}).get("virtualMachine")
        if not vm or self.sandbox is None:
            return False
        want = str(vm.get("powerSpec") or "Running")
        info = self.sandbox.info or {}
        have = str(info.get("powerState") or "")
        action = None
        if want == "Shutdown" and have in ("running", "paused"):
            action = "stop"
        elif want == "Running" and have in ("shutdown", "paused", "suspended"):
            action = "start"
        elif want == "Paused" and have == "running":
            action = "pause"
        if action is None:
            return False
        try:
            await self.runtime.action(self.sandbox, action, {"wait": False, "gracePeriodSeconds": 5})
        except RuntimeError_ as exc:
            self.mgr.events.pod_event(self.pod, "Warning", exc.reason, exc.message)
        self.mgr.events.pod_event(
            self.pod, "Normal", f"VM{action.capitalize()}", f"powerSpec {want}: {action} done"
        )
        return True

    # ---- status --------------------------------------------------------------------------------
    def view(self) -> PodView:
        pod = self.pod
        if self.last_status is not None:
            pod = {**pod, "status": self.last_status}
        statuses = self.statuses if self.sandbox is not None else []
        if statuses and all(c.ready for c in statuses if not c.init) and self.ready_at is None:
            self.ready_at = time.time()
        elif not statuses or not all(c.ready for c in statuses if not c.init):
            self.ready_at = None
        return PodView(
            pod=pod,
            host_ip=self.mgr.cfg.host_ip,
            start_time=self.start_time,
            net=self.net,
            statuses=statuses,
            start_error=self.start_error,
            failed=self.failed,
            backoff=dict(self.backoff),
            last_term=dict(self.last_term),
            vm_info=(self.sandbox.info if self.sandbox else None),
            ready_at=self.ready_at,
        )

    def publish(self) -> None:
        if self.deleted or self.done or self.pod["metadata"].get("deletionTimestamp"):
            return  # a terminating pod's status is not written (see the API's delete-on-update rule)
        status = build_status(self.view(), time.time())
        if self.last_status is not None and status == self.last_status:
            return
        previous = self.last_status or (self.pod.get("status") or {})
        self.last_status = status
        self.mgr.writer.submit(self.key, self.uid, status, previous, done=self.mgr.metrics.written_cb(self))

    # ---- termination ---------------------------------------------------------------------------
    async def terminate(self) -> None:
        for h in self.timers.values():
            h.cancel()
        self.timers.clear()
        mgr = self.mgr
        mgr.writer.forget(self.key)
        grace = podspec.grace_seconds(self.pod)
        if self.sandbox is not None:
            try:
                await self.runtime.stop(self.sandbox, grace)
            except RuntimeError_ as exc:
                log.info("pod %s/%s/%s stop: %s", *self.key, exc)
            await self.runtime.remove(self.sandbox)
            self.sandbox = None
        if self.net is not None or mgr.hook_has(self.uid):
            await mgr.release_network(self)
            self.net = None
        if not self.deleted:
            try:
                await mgr.client.request(
                    "DELETE",
                    f"/api/v1/tenants/{self.key[0]}/namespaces/{self.key[1]}/pods/{self.key[2]}",
                    body={
                        "kind": "DeleteOptions",
                        "apiVersion": "v1",
                        "gracePeriodSeconds": 0,
                        "preconditions": {"uid": self.uid},
                    },
                )
            except ApiError as exc:
                if exc.code not in (404, 409):
                    log.warning("final delete of %s/%s/%s: %s", *self.key, exc)
        mgr.metrics.deleted(self)
        self.done = True
