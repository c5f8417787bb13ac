"""Small pure helpers over pods and owner references shared by the workload controllers."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

#: characters of Kubernetes' SafeEncodeString (no vowels: generated names never spell words)
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(s: str | None) -> float | None:
    if not s:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            return datetime.strptime(s, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return None


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def template_hash(template: Obj, collision_count: int = 0) -> str:
    """The ``pod-template-hash`` label value: a stable hash of the pod template (plus the
    deployment's collisionCount), encoded like Kubernetes' SafeEncodeString."""
    tpl = json.loads(json.dumps(template))
    labels = (tpl.get("metadata") or {}).get("labels") or {}
    labels.pop("pod-template-hash", None)
    raw = json.dumps(tpl, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        raw += str(collision_count).encode()
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in str(fnv32a(raw)))


def meta(obj: Obj) -> Obj:
    md: Obj = obj.get("metadata") or {}
    return md


def controller_ref(obj: Obj) -> Obj | None:
    for ref in meta(obj).get("ownerReferences") or ():
        if ref.get("controller"):
            return dict(ref)
    return None


def owner_ref(owner: Obj, kind: str, api_version: str) -> Obj:
    md = meta(owner)
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": md["name"],
        "uid": md["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_terminating(obj: Obj) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def is_active(pod: Obj) -> bool:
    """Counts toward a ReplicaSet's replicas: not finished, not being deleted."""
    return phase(pod) not in ("Succeeded", "Failed") and not is_terminating(pod)


def condition(obj: Obj, typ: str) -> Obj | None:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c.get("type") == typ:
            return dict(c)
    return None


def is_ready(pod: Obj) -> bool:
    c = condition(pod, "Ready")
    return c is not None and c.get("status") == "True"


def is_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = parse_rfc3339((condition(pod, "Ready") or {}).get("lastTransitionTime"))
    return since is not None and since + min_ready_seconds <= now


def slim_pod(pod: Obj) -> Obj:
    """What controllers read of a pod (the informer transform): identity, labels, owners,
    deletion, node, tolerations, phase and conditions. Containers, volumes and statuses of
    containers stay out of the cache (most of a pod's bytes)."""
    md = meta(pod)
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
            "deletionGracePeriodSeconds",
            "creationTimestamp",
            "resourceVersion",
            "hashKey",
            "finalizers",
        )
        if k in md
    }
    keep_spec = {
        k: spec[k] for k in ("nodeName", "tolerations", "terminationGracePeriodSeconds") if k in spec
    }
    if "virtualMachine" in spec:
        keep_spec["virtualMachine"] = {"name": (spec["virtualMachine"] or {}).get("name")}
    keep_status: Obj = {k: _i(status[k]) for k in ("phase", "reason") if k in status}
    conds = [
        {
            "type": _i(c.get("type")),
            "status": _i(c.get("status")),
            "lastTransitionTime": c.get("lastTransitionTime"),
        }
        for c in status.get("conditions") or ()
        if c.get("type") in ("Ready", "PodScheduled")
    ]
    if conds:
        keep_status["conditions"] = conds
    if "labels" in keep_md:
        keep_md["labels"] = {_i(k): _i(v) for k, v in keep_md["labels"].items()}
    if "ownerReferences" in keep_md:
        keep_md["ownerReferences"] = [
            {k: _i(r[k]) for k in _REF_KEYS if k in r} for r in keep_md["ownerReferences"]
        ]
    if "namespace" in keep_md:
        keep_md["namespace"] = _i(keep_md["namespace"])
    if "tenant" in keep_md:
        keep_md["tenant"] = _i(keep_md["tenant"])
    if "nodeName" in keep_spec:
        keep_spec["nodeName"] = _i(keep_spec["nodeName"])
    if keep_spec.get("tolerations"):
        keep_spec["tolerations"] = _shared(keep_spec["tolerations"])
    return {"metadata": keep_md, "spec": keep_spec, "status": keep_status}


_REF_KEYS = ("apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion")


_SHARED: dict[Any, Any] = {}


def _shared(v: Any) -> Any:
    """One copy of equal read-only structures (every pod of a template has the same tolerations)."""
    key = (type(v).__name__, repr(v))
    got = _SHARED.get(key)
    if got is None:
        if len(_SHARED) > 10_000:
            _SHARED.clear()
        got = _SHARED[key] = v
    return got


def _i(v: Any) -> Any:
    """Intern short repeated strings (label values, kinds, node names, "True"): JSON decoding
    gives every object its own copies, and at 100k cached pods those copies add up."""
    return sys.intern(v) if isinstance(v, str) and len(v) <= 64 else v


def pod_from_template(owner: Obj, template: Obj, owner_kind: str, api_version: str) -> Obj:
    md = meta(owner)
    tmd = template.get("metadata") or {}
    pod_md: Obj = {
        "generateName": f"{md['name']}-",
        "ownerReferences": [owner_ref(owner, owner_kind, api_version)],
    }
    if tmd.get("labels"):
        pod_md["labels"] = dict(tmd["labels"])
    if tmd.get("annotations"):
        pod_md["annotations"] = dict(tmd["annotations"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pod_md,
        "spec": json.loads(json.dumps(template.get("spec") or {})),
    }


def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    """``maxSurge``/``maxUnavailable``: an int, or "25%" of ``total`` rounded as Kubernetes does."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    s = str(value).strip()
    if s.endswith("%"):
        pct = int(s[:-1])
        q, r = divmod(pct * total, 100)
        return q + (1 if round_up and r else 0)
    return int(s)


def slim_node(node: Obj) -> Obj:
    """What the node lifecycle controller reads of a node: identity, taints, conditions. Images,
    addresses, node info and capacity stay out of the cache (most of a node's bytes)."""
    md = meta(node)
    keep_md = {
        k: md[k] for k in ("name", "uid", "creationTimestamp", "resourceVersion", "hashKey") if k in md
    }
    spec = node.get("spec") or {}
    keep_spec = {k: spec[k] for k in ("taints", "unschedulable") if k in spec}
    conds = [{k: _i(v) for k, v in c.items()} for c in (node.get("status") or {}).get("conditions") or ()]
    return {"metadata": keep_md, "spec": keep_spec, "status": {"conditions": conds}}


def slim_lease(lease: Obj) -> Obj:
    md = meta(lease)
    spec = lease.get("spec") or {}
    return {
        "metadata": {k: _i(md[k]) for k in ("name", "namespace", "tenant", "resourceVersion") if k in md},
        "spec": {k: spec[k] for k in ("holderIdentity", "leaseDurationSeconds", "renewTime") if k in spec},
    }
