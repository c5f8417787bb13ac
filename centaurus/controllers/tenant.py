"""Tenant and namespace lifecycle.

``TenantController``: a new Tenant gets its ``default`` namespace; a Tenant being deleted
(``Terminating``) loses every namespace and tenant-level object (cluster roles, bindings, CRDs),
then is finalized and disappears. ``NamespaceController``: a namespace being deleted loses every
object in it, then is finalized. Both act through the API with the system admin's credentials,
never on the store, so they run anywhere; both are split over the controller instances by hash
like every controller (:mod:`centaurus.controllers.runtime`). The Network-control issue adds the
tenant's default Network through :data:`TENANT_HOOKS`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from centaurus.client.aio import AsyncClient
from centaurus.client.rest import ApiError
from centaurus.controllers.podutil import parse_rfc3339
from centaurus.controllers.runtime.controller import Controller
from centaurus.controllers.runtime.informer import Informer

log = logging.getLogger("centaurus.controllers.tenant")

NAMESPACED_BUILTIN = [
    ("pods", "v1"),
    ("configmaps", "v1"),
    ("secrets", "v1"),
    ("serviceaccounts", "v1"),
    ("services", "v1"),
    ("endpoints", "v1"),
    ("events", "v1"),
    ("resourcequotas", "v1"),
    ("deployments", "apps/v1"),
    ("replicasets", "apps/v1"),
    ("leases", "coordination.k8s.io/v1"),
    ("roles", "rbac.authorization.k8s.io/v1"),
    ("rolebindings", "rbac.authorization.k8s.io/v1"),
]
TENANT_LEVEL = [
    ("clusterrolebindings", "rbac.authorization.k8s.io/v1"),
    ("clusterroles", "rbac.authorization.k8s.io/v1"),
    ("customresourcedefinitions", "apiextensions.k8s.io/v1"),
]


async def _custom_kinds(api: AsyncClient, tenant: str, scope: str) -> list[tuple[str, str]]:
    try:
        crds = await api.list("customresourcedefinitions", tenant=tenant)
    except ApiError:
        return []
    out = []
    for c in crds.get("items") or []:
        spec = c.get("spec") or {}
        if spec.get("scope", "Namespaced") != scope:
            continue
        for v in spec.get("versions") or []:
            if v.get("storage"):
                out.append((spec["names"]["plural"], f"{spec['group']}/{v['name']}"))
    return out


#: seconds a deleted object may keep its finalizers before namespace/tenant deletion strips them
FINALIZER_GRACE = 30.0


async def _delete_all(api: AsyncClient, kinds: list[tuple[str, str]], tenant: str, ns: str | None) -> int:
    """Delete every object of ``kinds`` (grace 0); returns how many were left to delete.

    Objects with finalizers are deleted and then waited for, as Kubernetes' namespace deleter
    does, so finalizer-based cleanups (Mizar endpoints deprovisioning their hosts, foreground
    deletion) run; only an object still there ``FINALIZER_GRACE`` seconds after its deletion
    started loses its finalizers, so a finalizer nobody serves cannot block a tenant forever."""
    left = 0
    now = time.time()
    for plural, gv in kinds:
        try:
            lst = await api.list(plural, namespace=ns, tenant=tenant, group_version=gv)
        except ApiError as exc:
            if exc.code == 404:
                continue
            raise
        for item in lst.get("items") or []:
            left += 1
            md = item["metadata"]
            since = parse_rfc3339(md.get("deletionTimestamp"))
            if since is None:
                with contextlib.suppress(ApiError):
                    await api.delete(
                        plural,
                        md["name"],
                        namespace=ns,
                        tenant=tenant,
                        group_version=gv,
                        grace_period=0,
                        propagation="Background",
                    )
            elif md.get("finalizers") and now - since > FINALIZER_GRACE:
                log.warning(
                    "%s %s/%s: finalizers %s not served in %.0f s: removed",
                    plural,
                    ns,
                    md["name"],
                    md["finalizers"],
                    now - since,
                )
                with contextlib.suppress(ApiError):
                    await api.patch(
                        plural,
                        md["name"],
                        {"metadata": {"finalizers": None}},
                        namespace=ns,
                        tenant=tenant,
                        group_version=gv,
                    )
    return left


async def _finalize(api: AsyncClient, path: str, obj: dict[str, Any]) -> None:
    body = {**obj, "spec": {**(obj.get("spec") or {}), "finalizers": []}}
    with contextlib.suppress(ApiError):
        await api.request("PUT", path, body=body)


#: Callables run for every live tenant after its default namespace exists:
#: ``await hook(api, tenant_obj)``. The Network-control issue adds the tenant's default Network
#: here; a hook must be idempotent (it runs on every resync).
TENANT_HOOKS: list[Callable[[AsyncClient, dict[str, Any]], Awaitable[None]]] = []


class TenantController(Controller):
    """A new Tenant gets its ``default`` namespace (and what :data:`TENANT_HOOKS` add); a Tenant
    being deleted loses its namespaces, then its tenant-level objects, then is finalized."""

    ctype = "tenant"
    workers = 4

    def setup(self) -> Informer:
        return self.ctx.informers.get("tenants", tenant=None)

    async def reconcile(self, key: str) -> float | None:
        obj = self.primary.get(key)
        if obj is None:
            return None
        name = obj["metadata"]["name"]
        if not obj["metadata"].get("deletionTimestamp"):
            try:
                await self.api.create(
                    "namespaces",
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}},
                    tenant=name,
                )
            except ApiError as exc:
                if exc.code != 409:
                    raise
            for hook in TENANT_HOOKS:
                await hook(self.api, obj)
            return None
        nss = await self.api.list("namespaces", tenant=name)
        for ns in nss.get("items") or []:
            if not ns["metadata"].get("deletionTimestamp"):
                await self.api.delete("namespaces", ns["metadata"]["name"], tenant=name, missing_ok=True)
        if nss.get("items"):
            return 0.5  # the namespace controller empties them; check again
        kinds = TENANT_LEVEL + await _custom_kinds(self.api, name, "Cluster")
        if await _delete_all(self.api, kinds, name, None):
            return 0.5
        await _finalize(self.api, f"/api/v1/tenants/{name}/finalize", obj)
        log.info("tenant %s finalized", name)
        return None


class NamespaceController(Controller):
    """A namespace being deleted loses every object in it, then is finalized."""

    ctype = "namespace"
    workers = 4

    def setup(self) -> Informer:
        return self.ctx.informers.get("namespaces", tenant="all")

    def wants(self, typ: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> bool:
        return new is not None and bool(new["metadata"].get("deletionTimestamp"))

    def resync(self) -> None:
        for key, obj in list(self.primary.cache.items()):
            if obj["metadata"].get("deletionTimestamp"):
                self.enqueue(key)

    async def reconcile(self, key: str) -> float | None:
        obj = self.primary.get(key)
        if obj is None or not obj["metadata"].get("deletionTimestamp"):
            return None
        md = obj["metadata"]
        tenant, name = md.get("tenant") or "system", md["name"]
        kinds = NAMESPACED_BUILTIN + await _custom_kinds(self.api, tenant, "Namespaced")
        if await _delete_all(self.api, kinds, tenant, name):
            return 0.5
        await _finalize(self.api, f"/api/v1/tenants/{tenant}/namespaces/{name}/finalize", obj)
        return None
