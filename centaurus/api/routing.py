"""Request paths -> what is asked (Kubernetes RequestInfo, plus the Arktos tenant segment).

Both forms are parsed: ``/api/v1/namespaces/{ns}/pods`` (tenant from the credential) and
``/api/v1/tenants/{t}/namespaces/{ns}/pods``; ``/apis/{g}/{v}/...`` likewise. The Tenant kind
itself is ``/api/v1/tenants[/{name}[/status|finalize]]``; ``tenants/all/...`` lists every
tenant's objects (system tenant only).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from centaurus.objects.status import ApiStatusError

ALL_TENANTS = "all"
_TENANT_SUBS = {"status", "finalize"}
_NS_SUBS = {"status", "finalize"}


@dataclass
class RequestInfo:
    group: str
    version: str
    resource: str
    path_tenant: str | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str = ""
    verb: str = ""

    @property
    def is_collection(self) -> bool:
        return self.name is None


def parse_resource_path(path: str) -> RequestInfo | None:
    """None for non-resource paths (discovery, health, metrics, openapi)."""
    parts = [unquote(p) for p in path.strip("/").split("/")]
    if parts[0] == "api" and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if any(p in ("", ".", "..") for p in rest):
        raise ApiStatusError(404, f"the server could not find the requested resource ({path})", "NotFound")
    tenant: str | None = None
    if rest[0] == "tenants":
        if len(rest) == 1:
            return RequestInfo(group, version, "tenants")
        if len(rest) == 2:
            return (
                RequestInfo(group, version, "tenants", name=rest[1])
                if group == ""
                else RequestInfo(group, version, "", path_tenant=rest[1])
            )
        if len(rest) == 3 and rest[2] in _TENANT_SUBS and group == "":
            return RequestInfo(group, version, "tenants", name=rest[1], subresource=rest[2])
        tenant, rest = rest[1], rest[2:]
    ns: str | None = None
    if rest[0] == "namespaces":
        if len(rest) == 1:
            return RequestInfo(group, version, "namespaces", path_tenant=tenant)
        if len(rest) == 2:
            return RequestInfo(group, version, "namespaces", path_tenant=tenant, name=rest[1])
        if len(rest) == 3 and rest[2] in _NS_SUBS:
            return RequestInfo(
                group, version, "namespaces", path_tenant=tenant, name=rest[1], subresource=rest[2]
            )
        ns, rest = rest[1], rest[2:]
    if len(rest) > 3:
        raise ApiStatusError(404, f"the server could not find the requested resource ({path})", "NotFound")
    info = RequestInfo(group, version, rest[0], path_tenant=tenant, namespace=ns)
    if len(rest) >= 2:
        info.name = rest[1]
    if len(rest) == 3:
        info.subresource = rest[2]
    return info


def verb_of(method: str, info: RequestInfo, watch: bool) -> str:
    if method in ("GET", "HEAD"):
        if watch:
            return "watch"
        return "list" if info.is_collection else "get"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "deletecollection" if info.is_collection else "delete"
    raise ApiStatusError(405, f"method {method} is not allowed", "MethodNotAllowed")
