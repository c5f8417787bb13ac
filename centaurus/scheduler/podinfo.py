"""What the scheduler needs to know about a pod, computed once when the pod enters the cache.

Requests follow Kubernetes: the sum over containers, at least the largest init container, plus
``overhead``; a VM pod (Arktos ``spec.virtualMachine``) counts its VM's requests (its limits when it
gives no requests). For scoring, a container without requests counts as 100m CPU / 200 MiB (the
scheduler's non-zero defaults), so empty pods still spread.
"""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import dataclass
from typing import Any

from centaurus.objects.quantity import QuantityError, parse_quantity

Obj = dict[str, Any]
DEFAULT_CPU_MILLI = 100.0
DEFAULT_MEM = 200.0 * 1024 * 1024


@functools.lru_cache(maxsize=4096)
def _parse(v: str) -> float:
    try:
        return float(parse_quantity(v))
    except QuantityError:
        return 0.0


def _q(v: Any, milli: bool = False) -> float:
    """A quantity as a float (millicores with ``milli``); parsed strings are memoized: a cluster
    uses a handful of distinct request values and Fraction arithmetic is slow."""
    f = _parse(v) if isinstance(v, str) else float(v) if isinstance(v, int | float) else 0.0
    return f * 1000 if milli else f


def _container_req(c: Obj) -> tuple[float, float, bool, bool]:
    res = c.get("resources") or {}
    req = res.get("requests") or {}
    lim = res.get("limits") or {}
    cpu_v = req.get("cpu", lim.get("cpu"))
    mem_v = req.get("memory", lim.get("memory"))
    return (
        _q(cpu_v, milli=True) if cpu_v is not None else 0.0,
        _q(mem_v) if mem_v is not None else 0.0,
        cpu_v is not None,
        mem_v is not None,
    )


@dataclass(frozen=True)
class Requests:
    cpu: float  # millicores
    mem: float  # bytes
    nz_cpu: float  # for scoring: with the non-zero defaults
    nz_mem: float


def pod_requests(spec: Obj) -> Requests:
    cpu = mem = nz_cpu = nz_mem = 0.0
    workloads = list(spec.get("containers") or ())
    vm = spec.get("virtualMachine")
    if vm:
        workloads.append(vm)
    for c in workloads:
        ccpu, cmem, has_cpu, has_mem = _container_req(c)
        cpu += ccpu
        mem += cmem
        nz_cpu += ccpu if has_cpu else DEFAULT_CPU_MILLI
        nz_mem += cmem if has_mem else DEFAULT_MEM
    for c in spec.get("initContainers") or ():
        icpu, imem, _, _ = _container_req(c)
        cpu, mem = max(cpu, icpu), max(mem, imem)
        nz_cpu, nz_mem = max(nz_cpu, icpu), max(nz_mem, imem)
    over = spec.get("overhead") or {}
    if over:
        ocpu, omem = _q(over.get("cpu", 0), milli=True), _q(over.get("memory", 0))
        cpu, mem, nz_cpu, nz_mem = cpu + ocpu, mem + omem, nz_cpu + ocpu, nz_mem + omem
    return Requests(cpu, mem, nz_cpu, nz_mem)


def owner_uid(md: Obj) -> str | None:
    for ref in md.get("ownerReferences") or ():
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def signature(spec: Obj) -> str:
    """Pods with equal signatures pass the same static filters (labels, affinity, taints):
    their node masks are computed once per node-set version."""
    aff = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    return json.dumps(
        [spec.get("nodeSelector") or {}, aff or {}, spec.get("tolerations") or []],
        sort_keys=True,
        separators=(",", ":"),
    )


def slim_for_scheduler(pod: Obj, prev: Obj | None = None) -> Obj:
    """The scheduler's informer transform: identity, labels, owners, placement constraints, the
    computed requests (``_req``), phase and the PodScheduled condition. Idempotent.

    ``prev``: the cached slim form of the same pod (the informer's update transform). A pod's
    requests cannot change and its constraints rarely do, so an update (the bind, every status
    write) reuses them -- equal values compared, not re-hashed -- instead of recomputing."""
    if "_req" in pod:
        return pod
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    keep_md = {
        k: md[k]
        for k in (
            "name",
            "namespace",
            "tenant",
            "uid",
            "labels",
            "ownerReferences",
            "deletionTimestamp",
            "resourceVersion",
            "creationTimestamp",
        )
        if k in md
    }
    keep_spec = {
        k: spec[k]
        for k in (
            "nodeName",
            "schedulerName",
            "nodeSelector",
            "affinity",
            "tolerations",
            "topologySpreadConstraints",
            "priority",
        )
        if k in spec
    }
    keep_status: Obj = {"phase": _i(status.get("phase") or "Pending")}
    conds = [c for c in status.get("conditions") or () if c.get("type") == "PodScheduled"]
    if conds:
        keep_status["conditions"] = conds
    # one copy of what thousands of pods share (JSON decoding gives each its own)
    for k in ("namespace", "tenant"):
        if k in keep_md:
            keep_md[k] = _i(keep_md[k])
    same = prev is not None and (prev.get("metadata") or {}).get("uid") == md.get("uid")
    if "labels" in keep_md:
        was = prev["metadata"].get("labels") if same and prev is not None else None
        if was is not None and was == keep_md["labels"]:
            keep_md["labels"] = was
        else:
            keep_md["labels"] = {_i(k): _i(v) for k, v in keep_md["labels"].items()}
    if "ownerReferences" in keep_md:
        keep_md["ownerReferences"] = [{k: _i(v) for k, v in r.items()} for r in keep_md["ownerReferences"]]
    for k in ("nodeName", "schedulerName"):
        if k in keep_spec:
            keep_spec[k] = _i(keep_spec[k])
    pspec = (prev.get("spec") or {}) if same and prev is not None else {}
    for k in ("nodeSelector", "affinity", "tolerations", "topologySpreadConstraints"):
        if k in keep_spec:
            was = pspec.get(k)
            keep_spec[k] = was if was is not None and was == keep_spec[k] else _shared(keep_spec[k])
    out: Obj = {"metadata": keep_md, "spec": keep_spec, "status": keep_status}
    if same and prev is not None and "_req" in prev:
        out["_req"] = prev["_req"]
    else:
        r = pod_requests(spec)
        out["_req"] = _shared((r.cpu, r.mem, r.nz_cpu, r.nz_mem))
    out["_sig"] = "" if spec.get("nodeName") else _signature_of_shared(keep_spec)
    return out


_SHARED: dict[Any, Any] = {}
_SIGS: dict[tuple[int, ...], tuple[tuple[Any, ...], str]] = {}


def _shared(v: Any) -> Any:
    """One copy of equal read-only structures (pods of one template share their constraints).
    Keyed by ``repr`` (tuples by themselves): JSON with sorted keys cost 20 us per call here."""
    key = v if isinstance(v, tuple) else (type(v).__name__, repr(v))
    got = _SHARED.get(key)
    if got is None:
        if len(_SHARED) > 10_000:
            _SHARED.clear()
        got = _SHARED[key] = v
    return got


def _i(v: Any) -> Any:
    return sys.intern(v) if isinstance(v, str) and len(v) <= 64 else v


def _signature_of_shared(spec: Obj) -> str:
    """:func:`signature` memoized on the identities of the shared constraint objects (checked
    with ``is``, so a recycled id after the share cache was cleared never matches)."""
    parts = (spec.get("nodeSelector"), spec.get("affinity"), spec.get("tolerations"))
    key = tuple(id(x) for x in parts)
    hit = _SIGS.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], parts, strict=True)):
        return hit[1]
    sig = sys.intern(signature(spec))
    if len(_SIGS) > 10_000:
        _SIGS.clear()
    _SIGS[key] = (parts, sig)
    return sig


def slim_node(node: Obj) -> Obj:
    """The scheduler's node transform: name, labels, taints, unschedulable, allocatable/capacity
    and the Ready condition -- what the filters, scores and the table read."""
    md = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    out_md: Obj = {k: md[k] for k in ("name", "resourceVersion") if k in md}
    if md.get("labels"):
        out_md["labels"] = {_i(k): _i(v) for k, v in md["labels"].items()}
    out_spec = {k: spec[k] for k in ("taints", "unschedulable") if k in spec}
    out_status: Obj = {k: _shared(status[k]) for k in ("allocatable", "capacity") if k in status}
    ready = [
        {"type": "Ready", "status": _i(c.get("status"))}
        for c in status.get("conditions") or ()
        if c.get("type") == "Ready"
    ]
    if ready:
        out_status["conditions"] = ready
    return {"metadata": out_md, "spec": out_spec, "status": out_status}
