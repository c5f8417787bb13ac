"""``SelfSubjectAccessReview`` (authorization.k8s.io/v1): "may I?" answered by the same tenant
scope and RBAC code that guards real requests -- what ``kubectl auth can-i`` asks. Nothing is
stored; every authenticated user may ask about itself."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from centaurus.api import encoding, security
from centaurus.api.storage import Storage
from centaurus.auth.tokens import Identity
from centaurus.objects import kinds as K
from centaurus.objects.status import ApiStatusError

KIND = K.Kind(
    "authorization.k8s.io",
    "v1",
    "SelfSubjectAccessReview",
    "selfsubjectaccessreviews",
    "selfsubjectaccessreview",
    "Tenant",
)


async def create(request: web.Request, ident: Identity, tenant: str, storage: Storage) -> web.Response:
    body = await encoding.read_object(request)
    if not isinstance(body, dict):
        raise ApiStatusError(400, "a SelfSubjectAccessReview object is required", "BadRequest")
    spec = body.get("spec") or {}
    ra: dict[str, Any] = spec.get("resourceAttributes") or {}
    allowed, reason = False, ""
    if ra:
        group, resource = str(ra.get("group") or ""), str(ra.get("resource") or "")
        version = str(ra.get("version") or "") or next(
            (k.version for k in K.BUILTIN if k.group == group and k.plural == resource), "v1"
        )
        kind = storage.resolve(tenant, group, version, resource)
        if kind is None:
            reason = f"unknown resource {resource!r} in group {group!r}"
        else:
            try:
                security.check_cluster_scope(ident, kind, str(ra.get("verb") or ""), ra.get("name"))
                security.authorize(
                    ident,
                    storage,
                    tenant,
                    kind,
                    str(ra.get("verb") or ""),
                    str(ra.get("subresource") or ""),
                    ra.get("namespace") or None,
                    ra.get("name") or None,
                )
                allowed, reason = True, "allowed by RBAC"
            except ApiStatusError as exc:
                reason = exc.message
    elif spec.get("nonResourceAttributes"):
        allowed, reason = True, "non-resource URLs are open to authenticated users"
    status: dict[str, Any] = {"allowed": allowed, "reason": reason}
    if not allowed:
        status["denied"] = False
    out = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "metadata": {},
        "spec": spec,
        "status": status,
    }
    return encoding.json_response(out, 201)
