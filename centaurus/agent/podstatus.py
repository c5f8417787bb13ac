"""Pod status as kubelet computes it: phase, conditions, container statuses -- from what the
runtime reports plus the agent's own memory (last termination, back-off, start errors).

Pure functions over plain data (no I/O), so the rules are unit-tested directly. Timestamps carry
microseconds (RFC 3339 allows fractions; every client parses them), because the pod-startup
measurement reads the transition times from the object.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from centaurus.agent.podspec import container_names, is_vm, qos_class, restart_policy
from centaurus.netplug.base import PodNetResult
from centaurus.runtimes.base import ContainerStatus

Obj = dict[str, Any]
POWER_STATES = {
    "running": "Running",
    "paused": "Paused",
    "shutdown": "Shutdown",
    "crashed": "Crashed",
    "suspended": "Suspended",
    "nostate": "NoState",
}
VM_STATES = {
    "running": "Active",
    "paused": "Paused",
    "shutdown": "Stopped",
    "crashed": "Error",
    "suspended": "Suspended",
    "nostate": "",
}


def ts(t: float | None) -> str | None:
    if t is None:
        return None
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(s: str | None) -> float | None:
    if not s:
        return None
    try:
        return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass
class Backoff:
    until: float  # wall time of the next restart
    delay: float


@dataclass
class PodView:
    """Everything the status depends on."""

    pod: Obj
    host_ip: str
    start_time: float | None = None
    net: PodNetResult | None = None
    statuses: list[ContainerStatus] = field(default_factory=list)
    start_error: tuple[str, str] | None = None  # sandbox could not be created (reason, message)
    failed: tuple[str, str] | None = None  # terminal pod-level failure
    backoff: dict[str, Backoff] = field(default_factory=dict)
    last_term: dict[str, ContainerStatus] = field(default_factory=dict)
    vm_info: dict[str, Any] | None = None
    ready_at: float | None = None  # when all containers first became ready (this incarnation)


def _terminated(cs: ContainerStatus) -> Obj:
    t: Obj = {
        "exitCode": cs.exit_code if cs.exit_code is not None else 0,
        "reason": cs.reason or ("Completed" if not cs.exit_code else "Error"),
        "startedAt": ts(cs.started_at),
        "finishedAt": ts(cs.finished_at),
    }
    if cs.message:
        t["message"] = cs.message
    if cs.signal:
        t["signal"] = cs.signal
    if cs.container_id:
        t["containerID"] = cs.container_id
    return {"terminated": t}


def _container_status(
    name: str, image: str, cs: ContainerStatus | None, view: PodView, uid: str, pod_name: str, ns: str
) -> Obj:
    out: Obj = {
        "name": name,
        "image": image,
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "started": False,
        "state": {},
        "lastState": {},
    }
    last = view.last_term.get(name)
    if last is not None:
        out["lastState"] = _terminated(last)
    if cs is None:
        reason, msg = view.start_error or ("ContainerCreating", "")
        out["state"] = {"waiting": {"reason": reason, **({"message": msg} if msg else {})}}
        return out
    out.update(image=cs.image or image, imageID=cs.image_id, restartCount=cs.restart_count)
    if cs.container_id:
        out["containerID"] = cs.container_id
    bo = view.backoff.get(name)
    if cs.state == "running":
        out["state"] = {"running": {"startedAt": ts(cs.started_at)}}
        out["ready"] = bool(cs.ready)
        out["started"] = True
    elif cs.state == "terminated" and bo is not None:
        msg = f"back-off {bo.delay:g}s restarting failed container={name} pod={pod_name}_{ns}({uid})"
        out["state"] = {"waiting": {"reason": "CrashLoopBackOff", "message": msg}}
        out["lastState"] = _terminated(cs)
    elif cs.state == "terminated":
        out["state"] = _terminated(cs)
    else:
        out["state"] = {
            "waiting": {
                "reason": cs.reason or "ContainerCreating",
                **({"message": cs.message} if cs.message else {}),
            }
        }
    return out


def _phase(view: PodView, ctrs: list[Obj], inits: list[Obj]) -> str:
    if view.failed:
        return "Failed"
    policy = restart_policy(view.pod)
    for c in inits:
        term = c["state"].get("terminated")
        if term and term.get("exitCode") == 0:
            continue
        failed = (term and term.get("exitCode") != 0) or c["lastState"].get("terminated")
        if failed and policy == "Never":
            return "Failed"
        return "Pending"
    if is_vm(view.pod) and (view.vm_info or {}).get("powerSpec") == "Shutdown":
        return "Running"  # a VM powered off on request is a stopped VM, not a finished pod
    running = waiting = stopped = succeeded = 0
    for c in ctrs:
        st = c["state"]
        if "running" in st:
            running += 1
        elif "terminated" in st:
            stopped += 1
            succeeded += st["terminated"].get("exitCode") == 0
        elif c["lastState"].get("terminated"):
            stopped += 1
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if not stopped:
        return "Pending"
    if policy == "Always":
        return "Running"
    if stopped == succeeded:
        return "Succeeded"
    return "Failed" if policy == "Never" else "Running"


def _condition(
    kind: str, ok: bool, prev: dict[str, Obj], now: float, reason: str = "", at: float | None = None
) -> Obj:
    status = "True" if ok else "False"
    old = prev.get(kind)
    if old is not None and old.get("status") == status and old.get("lastTransitionTime"):
        when = old["lastTransitionTime"]
    else:
        when = ts(at if at is not None else now)
    c: Obj = {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": when}
    if reason and not ok:
        c["reason"] = reason
    return c


def build_status(view: PodView, now: float) -> Obj:
    pod = view.pod
    md, spec = pod["metadata"], pod.get("spec") or {}
    uid, name, ns = str(md.get("uid")), str(md.get("name")), str(md.get("namespace") or "default")
    old = pod.get("status") or {}
    prev = {c.get("type"): c for c in old.get("conditions") or []}
    by_name = {cs.name: cs for cs in view.statuses}
    if is_vm(pod):
        vm = spec["virtualMachine"]
        images = [(container_names(pod)[0], str(vm.get("image") or ""))]
        init_images: list[tuple[str, str]] = []
    else:
        images = [(str(c.get("name")), str(c.get("image") or "")) for c in spec.get("containers") or []]
        init_images = [
            (str(c.get("name")), str(c.get("image") or "")) for c in spec.get("initContainers") or []
        ]
    ctrs = [_container_status(n, i, by_name.get(n), view, uid, name, ns) for n, i in images]
    inits = [_container_status(n, i, by_name.get(n), view, uid, name, ns) for n, i in init_images]
    for c in inits:
        c.pop("started", None)
    phase = _phase(view, ctrs, inits)
    terminal = phase in ("Succeeded", "Failed")
    inits_done = all((c["state"].get("terminated") or {}).get("exitCode") == 0 for c in inits)
    all_ready = bool(ctrs) and all(c["ready"] for c in ctrs) and not terminal
    sandbox_up = bool(view.statuses) or (view.net is not None and view.start_error is None)
    conds = [
        _condition("PodReadyToStartContainers", sandbox_up and not terminal, prev, now),
        _condition("Initialized", inits_done, prev, now, "ContainersNotInitialized"),
        _condition(
            "ContainersReady",
            all_ready,
            prev,
            now,
            "PodCompleted" if terminal else "ContainersNotReady",
            view.ready_at,
        ),
        _condition(
            "Ready", all_ready, prev, now, "PodCompleted" if terminal else "ContainersNotReady", view.ready_at
        ),
        prev.get("PodScheduled")
        or {
            "type": "PodScheduled",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": ts(view.start_time or now),
        },
    ]
    status: Obj = {
        "phase": phase,
        "conditions": conds,
        "hostIP": view.host_ip,
        "hostIPs": [{"ip": view.host_ip}],
        "startTime": old.get("startTime") or ts(view.start_time or now),
        "containerStatuses": ctrs,
        "qosClass": qos_class(pod),
    }
    if inits:
        status["initContainerStatuses"] = inits
    if view.net is not None:
        status["podIP"] = view.net.ip
        status["podIPs"] = [{"ip": view.net.ip}]
    if view.failed:
        status["reason"], status["message"] = view.failed
    elif view.start_error and phase == "Pending":
        status["message"] = view.start_error[1]
    if is_vm(pod):
        status["virtualMachineStatus"] = _vm_status(view, ctrs[0] if ctrs else None)
    return status


def _vm_status(view: PodView, c: Obj | None) -> Obj:
    info = view.vm_info or {}
    vm = (view.pod.get("spec") or {}).get("virtualMachine") or {}
    power = str(info.get("powerState") or "nostate")
    out: Obj = {
        "name": str(vm.get("name") or "vm"),
        "virtualMachineId": (c or {}).get("containerID", ""),
        "image": str(vm.get("image") or ""),
        "imageId": (c or {}).get("imageID", ""),
        "state": VM_STATES.get(power, ""),
        "powerState": POWER_STATES.get(power, "NoState") if c and c.get("containerID") else "NoState",
        "ready": bool((c or {}).get("ready")),
        "restartCount": int((c or {}).get("restartCount", 0)),
    }
    if c and c.get("lastState"):
        out["lastTerminationState"] = c["lastState"]
    for k in ("startMode", "processRunningSeconds", "guestReadySeconds"):
        if info.get(k) is not None:
            out[k] = info[k]
    return out


def same_status(a: Obj, b: Obj) -> bool:
    """Equal as far as a write is concerned (probe times are always null here)."""
    return a == b
