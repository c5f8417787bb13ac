"""A Pod object -> what a runtime starts (:class:`SandboxSpec`), and the few facts of a pod the
agent needs everywhere (key, kind of workload, grace period, restart policy)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from centaurus.netplug.base import PodNetRequest, PodNetResult
from centaurus.objects.quantity import QuantityError, parse_quantity
from centaurus.runtimes.base import ContainerSpec, PodNetwork, RuntimeError_, SandboxSpec

Obj = dict[str, Any]
NETWORK_LABEL = "arktos.futurewei.com/network"


def key_of(pod: Obj) -> tuple[str, str, str]:
    md = pod["metadata"]
    return (str(md.get("tenant") or "system"), str(md.get("namespace") or "default"), str(md["name"]))


def is_vm(pod: Obj) -> bool:
    return bool((pod.get("spec") or {}).get("virtualMachine"))


def restart_policy(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("restartPolicy") or "Always")


def grace_seconds(pod: Obj) -> float:
    md = pod.get("metadata") or {}
    g = md.get("deletionGracePeriodSeconds")
    if g is None:
        g = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
    try:
        return max(0.0, float(g))
    except (TypeError, ValueError):
        return 30.0


def net_request(pod: Obj) -> PodNetRequest:
    t, ns, name = key_of(pod)
    md = pod["metadata"]
    labels = dict(md.get("labels") or {})
    return PodNetRequest(
        uid=str(md["uid"]),
        tenant=t,
        namespace=ns,
        name=name,
        vm=is_vm(pod),
        network=labels.get(NETWORK_LABEL, ""),
        labels=labels,
        annotations=dict(md.get("annotations") or {}),
    )


def _bytes(q: Any, what: str) -> int:
    try:
        return int(parse_quantity(q))
    except QuantityError:
        raise RuntimeError_("CreateContainerConfigError", f"{what}: invalid quantity {q!r}") from None


def _millis(q: Any, what: str) -> int:
    try:
        return max(1, math.ceil(parse_quantity(q) * 1000))
    except QuantityError:
        raise RuntimeError_("CreateContainerConfigError", f"{what}: invalid quantity {q!r}") from None


def _env(c: Obj, pod: Obj, node: str, net: PodNetResult | None, host_ip: str) -> dict[str, str]:
    """Literal values and the downward-API field refs; refs to ConfigMaps/Secrets are not
    resolved here (a clear error rather than a silently empty variable)."""
    md = pod["metadata"]
    fields = {
        "metadata.name": md.get("name", ""),
        "metadata.namespace": md.get("namespace", ""),
        "metadata.uid": md.get("uid", ""),
        "metadata.tenant": md.get("tenant", "system"),
        "spec.nodeName": node,
        "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName", "default"),
        "status.podIP": net.ip if net else "",
        "status.hostIP": host_ip,
    }
    out: dict[str, str] = {}
    for e in c.get("env") or []:
        name = e.get("name")
        if not name:
            continue
        if "value" in e:
            out[name] = str(e.get("value") or "")
            continue
        ref = (e.get("valueFrom") or {}).get("fieldRef") or {}
        path = ref.get("fieldPath")
        if path in fields:
            out[name] = str(fields[path])
        elif path and path.startswith(("metadata.labels['", "metadata.annotations['")):
            which, _, rest = path.partition("['")
            d = md.get("labels" if "labels" in which else "annotations") or {}
            out[name] = str(d.get(rest.rstrip("']"), ""))
        else:
            src = next(iter(e.get("valueFrom") or {}), "?")
            raise RuntimeError_(
                "CreateContainerConfigError",
                f"container {c.get('name')!r}: env {name} from {src} is not supported",
            )
    return out


def container_spec(c: Obj, pod: Obj, node: str, net: PodNetResult | None, host_ip: str) -> ContainerSpec:
    res = c.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    sc = {**((pod.get("spec") or {}).get("securityContext") or {}), **(c.get("securityContext") or {})}
    name = str(c.get("name") or "")
    return ContainerSpec(
        name=name,
        image=str(c.get("image") or ""),
        command=[str(x) for x in c.get("command") or []],
        args=[str(x) for x in c.get("args") or []],
        env=_env(c, pod, node, net, host_ip),
        working_dir=c.get("workingDir") or None,
        memory_limit=_bytes(limits["memory"], f"{name} memory limit") if "memory" in limits else None,
        cpu_limit_millis=_millis(limits["cpu"], f"{name} cpu limit") if "cpu" in limits else None,
        cpu_request_millis=_millis(requests["cpu"], f"{name} cpu request") if "cpu" in requests else None,
        run_as_user=sc.get("runAsUser"),
        run_as_group=sc.get("runAsGroup"),
        tty=bool(c.get("tty")),
        stdin=bool(c.get("stdin")),
    )


def sandbox_spec(pod: Obj, node: str, net: PodNetResult | None, host_ip: str, log_root: Path) -> SandboxSpec:
    t, ns, name = key_of(pod)
    spec = pod.get("spec") or {}
    uid = str(pod["metadata"]["uid"])
    network = None
    if net is not None:
        network = PodNetwork(
            ip=net.ip, prefix_len=net.prefix_len, gateway=net.gateway, mac=net.mac, interface=net.interface
        )
    return SandboxSpec(
        uid=uid,
        tenant=t,
        namespace=ns,
        name=name,
        netns_path=net.netns_path if net else None,
        log_dir=log_root / f"{t}_{ns}_{name}_{uid}",
        containers=[container_spec(c, pod, node, net, host_ip) for c in spec.get("containers") or []],
        init_containers=[
            container_spec(c, pod, node, net, host_ip) for c in spec.get("initContainers") or []
        ],
        vm=spec.get("virtualMachine") or None,
        restart_policy=restart_policy(pod),
        hostname=spec.get("hostname") or name,
        network=network,
    )


def qos_class(pod: Obj) -> str:
    """Kubernetes QoS: Guaranteed (every container limits == requests for cpu and memory),
    BestEffort (no requests/limits at all), else Burstable."""
    spec = pod.get("spec") or {}
    ctrs = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
    vm = spec.get("virtualMachine")
    if vm:
        ctrs.append(vm)
    any_set, guaranteed = False, True
    for c in ctrs:
        res = c.get("resources") or {}
        lim, req = res.get("limits") or {}, res.get("requests") or {}
        if lim or req:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and str(req[r]) != str(lim[r])):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def container_names(pod: Obj) -> list[str]:
    spec = pod.get("spec") or {}
    if spec.get("virtualMachine"):
        return [str(spec["virtualMachine"].get("name") or "vm")]
    return [str(c.get("name")) for c in spec.get("containers") or []]
