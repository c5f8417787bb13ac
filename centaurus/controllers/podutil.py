"""Small pure helpers over pods and owner references shared by the workload controllers."""

from __future__ import annotations

import json
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
    keep_status = {k: status[k] for k in ("phase", "conditions", "reason") if k in status}
    return {"metadata": keep_md, "spec": keep_spec, "status": keep_status}


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
