"""What the server does to an object's metadata on create and update (pure functions).

Create: name from ``generateName``, uid, creationTimestamp, generation, the tenant, defaults.
Update: fields clients may not change are carried over from the stored object, ``status`` is
kept on the main resource of kinds with a status subresource (and only ``status`` changes
through ``/status``), and ``generation`` counts spec changes.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import uuid
from datetime import UTC, datetime
from typing import Any

from centaurus.objects.defaults import apply_defaults
from centaurus.objects.kinds import Kind
from centaurus.objects.status import ApiStatusError

_ALNUM = "bcdfghjklmnpqrstvwxz2456789"
IMMUTABLE_META = (
    "uid",
    "hashKey",
    "creationTimestamp",
    "tenant",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "namespace",
    "name",
)


def now_rfc3339(micro: bool = False) -> str:
    """RFC 3339 UTC; ``micro`` keeps microseconds (MicroTime-like precision for timings)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def hash_key(uid: str) -> int:
    """Arktos ``metadata.hashKey``: a stable 63-bit hash of the uid; active-active controllers
    split work by ranges of it."""
    return int.from_bytes(hashlib.blake2b(uid.encode(), digest_size=8).digest(), "big") >> 1


def generated_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(5))


def prepare_create(kind: Kind, obj: dict[str, Any], tenant: str, namespace: str | None) -> dict[str, Any]:
    md = obj["metadata"]
    if md.get("resourceVersion"):
        raise ApiStatusError(400, "resourceVersion should not be set on objects to be created", "BadRequest")
    if not md.get("name") and md.get("generateName"):
        gen = str(md["generateName"])
        if not all(c in string.ascii_lowercase + string.digits + "-." for c in gen):
            raise ApiStatusError(422, f"metadata.generateName: invalid value {gen!r}", "Invalid")
        md["name"] = generated_name(gen)
    if kind.namespaced:
        body_ns = md.get("namespace")
        if body_ns and namespace and body_ns != namespace:
            raise ApiStatusError(
                400,
                "the namespace of the provided object does not match the namespace sent on the request",
                "BadRequest",
            )
        md["namespace"] = namespace or body_ns
    else:
        md.pop("namespace", None)
    if kind.scope != "Cluster":
        body_tenant = md.get("tenant")
        if body_tenant and body_tenant != tenant:
            raise ApiStatusError(
                400,
                "the tenant of the provided object does not match the tenant of the request",
                "BadRequest",
            )
        md["tenant"] = tenant
    md["uid"] = str(uuid.uuid4())
    md["hashKey"] = hash_key(md["uid"])
    md["creationTimestamp"] = now_rfc3339()
    md["generation"] = 1
    for k in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
        md.pop(k, None)
    if not md.get("labels"):
        md.pop("labels", None)
    if not md.get("annotations"):
        md.pop("annotations", None)
    apply_defaults(kind.kind, obj)
    if kind.crd is None and kind.kind == "CustomResourceDefinition":
        _crd_status(obj)
    return obj


def _crd_status(obj: dict[str, Any]) -> None:
    names = dict((obj.get("spec") or {}).get("names") or {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    t = now_rfc3339()
    obj["status"] = {
        "acceptedNames": names,
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": t,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": t,
            },
        ],
        "storedVersions": [
            v.get("name")
            for v in (obj.get("spec") or {}).get("versions") or []
            if isinstance(v, dict) and v.get("storage")
        ],
    }


def _spec_of(obj: dict[str, Any]) -> Any:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def prepare_update(
    kind: Kind, new: dict[str, Any], current: dict[str, Any], subresource: str
) -> dict[str, Any]:
    """Merge an update of ``current`` with the rules above; returns the object to store."""
    cur_md = current.get("metadata") or {}
    if subresource == "status":
        out = {**current, "status": new.get("status", current.get("status"))}
        out["metadata"] = dict(cur_md)
        return out
    md = new["metadata"]
    for f in IMMUTABLE_META:
        if f in cur_md:
            md[f] = cur_md[f]
        else:
            md.pop(f, None)
    if kind.status_subresource and subresource == "" and kind.kind not in ("Namespace", "Tenant"):
        if "status" in current:
            new["status"] = current["status"]
        else:
            new.pop("status", None)
    if kind.kind in ("Namespace", "Tenant"):
        new["status"] = current.get("status", {})
    if _spec_of(new) != _spec_of(current):
        md["generation"] = int(cur_md.get("generation") or 1) + 1
    apply_defaults_on_update(kind, new)
    return new


def apply_defaults_on_update(kind: Kind, obj: dict[str, Any]) -> None:
    status = obj.get("status")
    apply_defaults(kind.kind, obj)
    if kind.kind in ("Namespace", "Tenant", "ResourceQuota") and status is not None:
        obj["status"] = status
