"""Tenant and namespace lifecycle.

``TenantController``: a new Tenant gets its ``default`` namespace; a Tenant being deleted
(``Terminating``) loses every namespace and tenant-level object (cluster roles, bindings, CRDs),
then is finalized and disappears. ``NamespaceController``: a namespace being deleted loses every
object in it, then is finalized. Both act through the API with the system admin's credentials,
never on the store, so they run anywhere (the Compute issue extends the tenant controller with
the default Network and per-tenant policies).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from centaurus.client.aio import AsyncClient
from centaurus.client.rest import ApiError

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


async def _delete_all(api: AsyncClient, kinds: list[tuple[str, str]], tenant: str, ns: str | None) -> int:
    """Delete every object of ``kinds`` (force, grace 0); returns how many were left to delete."""
    left = 0
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
            if md.get("finalizers"):
                with contextlib.suppress(ApiError):
                    await api.patch(
                        plural,
                        md["name"],
                        {"metadata": {"finalizers": None}},
                        namespace=ns,
                        tenant=tenant,
                        group_version=gv,
                    )
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
    return left


async def _finalize(api: AsyncClient, path: str, obj: dict[str, Any]) -> None:
    body = {**obj, "spec": {**(obj.get("spec") or {}), "finalizers": []}}
    with contextlib.suppress(ApiError):
        await api.request("PUT", path, body=body)


class _Loop:
    """Run ``handle`` for every object of a list_watch stream, retrying failures, one task per key."""

    resource = ""
    tenant: str | None = None

    def __init__(self, api: AsyncClient) -> None:
        self.api = api
        self._busy: set[str] = set()

    async def handle(self, obj: dict[str, Any]) -> None:
        raise NotImplementedError

    async def _guarded(self, key: str, obj: dict[str, Any]) -> None:
        try:
            for attempt in range(30):
                try:
                    await self.handle(obj)
                    return
                except (ApiError, OSError) as exc:
                    log.info("%s %s: retry %d after %s", self.resource, key, attempt, exc)
                    await asyncio.sleep(min(0.2 * 2**attempt, 5))
        finally:
            self._busy.discard(key)

    async def run(self) -> None:
        tasks: set[asyncio.Task[None]] = set()
        async for ev in self.api.list_watch(self.resource, tenant=self.tenant):
            objs = ev["items"] if ev["type"] == "SYNC" else [ev["object"]] if ev["type"] != "DELETED" else []
            for obj in objs:
                md = obj.get("metadata") or {}
                key = f"{md.get('tenant', '')}/{md.get('name')}"
                if key in self._busy:
                    continue
                self._busy.add(key)
                t = asyncio.create_task(self._guarded(key, obj))
                tasks.add(t)
                t.add_done_callback(tasks.discard)


class TenantController(_Loop):
    resource = "tenants"

    async def handle(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if not obj["metadata"].get("deletionTimestamp"):
            with contextlib.suppress(ApiError):
                await self.api.create(
                    "namespaces",
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}},
                    tenant=name,
                )
            return
        while True:
            nss = await self.api.list("namespaces", tenant=name)
            for ns in nss.get("items") or []:
                if not ns["metadata"].get("deletionTimestamp"):
                    with contextlib.suppress(ApiError):
                        await self.api.delete("namespaces", ns["metadata"]["name"], tenant=name)
            if not nss.get("items"):
                break
            await asyncio.sleep(0.2)
        await _delete_all(self.api, TENANT_LEVEL + await _custom_kinds(self.api, name, "Cluster"), name, None)
        await _finalize(self.api, f"/api/v1/tenants/{name}/finalize", obj)
        log.info("tenant %s finalized", name)


class NamespaceController(_Loop):
    resource = "namespaces"
    tenant = "all"

    async def handle(self, obj: dict[str, Any]) -> None:
        md = obj["metadata"]
        if not md.get("deletionTimestamp"):
            return
        tenant, name = md.get("tenant") or "system", md["name"]
        while True:
            kinds = NAMESPACED_BUILTIN + await _custom_kinds(self.api, tenant, "Namespaced")
            if not await _delete_all(self.api, kinds, tenant, name):
                break
            await asyncio.sleep(0.2)
        await _finalize(self.api, f"/api/v1/tenants/{tenant}/namespaces/{name}/finalize", obj)
