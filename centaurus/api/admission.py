"""Admission on create: the namespace must exist and not be terminating, and the namespace's
ResourceQuotas must leave room for the new object.

Quota usage is computed from the watch cache at admission time, under a per-namespace lock, so
two concurrent creates cannot both take the last slot (the cache is first synced to the store's
revision, so objects created a moment ago count).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from fractions import Fraction
from typing import Any

from centaurus.api.storage import Storage
from centaurus.objects import kinds as K
from centaurus.objects.quantity import QuantityError, format_quantity, parse_quantity
from centaurus.objects.status import ApiStatusError

NAMESPACES = K.must("", "v1", "namespaces")
QUOTAS = K.must("", "v1", "resourcequotas")

#: object-count quota names of the core kinds (plus the generic ``count/<resource>.<group>``)
_COUNT_NAMES = {
    "pods": "pods",
    "services": "services",
    "configmaps": "configmaps",
    "secrets": "secrets",
    "resourcequotas": "resourcequotas",
    "serviceaccounts": "serviceaccounts",
}


def _pod_usage(pod: dict[str, Any]) -> dict[str, Fraction]:
    use: dict[str, Fraction] = defaultdict(Fraction)
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        for kind in ("requests", "limits"):
            for r, q in (res.get(kind) or {}).items():
                try:
                    v = parse_quantity(q)
                except QuantityError:
                    continue
                use[f"{kind}.{r}"] += v
                if kind == "requests":
                    use[r] += v
    return use


def _counts_name(kind: K.Kind) -> list[str]:
    names = [f"count/{kind.plural}" + (f".{kind.group}" if kind.group else "")]
    if kind.group == "" and kind.plural in _COUNT_NAMES:
        names.append(_COUNT_NAMES[kind.plural])
    return names


class Admission:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._locks: dict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)

    def lock(self, tenant: str, namespace: str) -> asyncio.Lock:
        return self._locks[(tenant, namespace)]

    def check_namespace(self, tenant: str, namespace: str) -> None:
        e = self.storage.cache_for(NAMESPACES, tenant).get(NAMESPACES.key(tenant, None, namespace))
        if e is None:
            raise ApiStatusError(
                404,
                f'namespaces "{namespace}" not found',
                "NotFound",
                {"name": namespace, "kind": "namespaces"},
            )
        if (
            e.obj["metadata"].get("deletionTimestamp")
            or (e.obj.get("status") or {}).get("phase") == "Terminating"
        ):
            raise ApiStatusError(
                403,
                f"unable to create new content in namespace {namespace} because it is being terminated",
                "Forbidden",
            )

    def check_tenant_active(self, tenant: str) -> None:
        if tenant == "system":
            return
        t = self.storage.tenant_object(tenant)
        if t is None:
            raise ApiStatusError(
                404, f'tenants "{tenant}" not found', "NotFound", {"name": tenant, "kind": "tenants"}
            )
        if t["metadata"].get("deletionTimestamp"):
            raise ApiStatusError(
                403,
                f"unable to create new content in tenant {tenant} because it is being terminated",
                "Forbidden",
            )

    def has_quota(self, tenant: str, namespace: str) -> bool:
        return next(iter(self.storage.cached(QUOTAS, tenant, namespace)), None) is not None

    def check_quota(self, kind: K.Kind, tenant: str, namespace: str, obj: dict[str, Any]) -> None:
        quotas = [e.obj for e in self.storage.cached(QUOTAS, tenant, namespace)]
        if not quotas:
            return
        counts = _counts_name(kind)
        incoming: dict[str, Fraction] = {n: Fraction(1) for n in counts}
        if kind.kind == "Pod":
            incoming.update(_pod_usage(obj))
        for q in quotas:
            hard = (q.get("spec") or {}).get("hard") or {}
            relevant = [r for r in hard if r in incoming]
            if not relevant:
                continue
            used = self._usage(kind, tenant, namespace, relevant)
            over = []
            for r in relevant:
                limit = parse_quantity(hard[r])
                if used.get(r, Fraction(0)) + incoming[r] > limit:
                    over.append(r)
            if over:
                name = q["metadata"]["name"]
                req = ",".join(f"{r}={format_quantity(incoming[r])}" for r in over)
                use = ",".join(f"{r}={format_quantity(used.get(r, Fraction(0)))}" for r in over)
                lim = ",".join(f"{r}={hard[r]}" for r in over)
                raise ApiStatusError(
                    403,
                    f'{kind.plural} "{obj["metadata"].get("name")}" is forbidden: exceeded '
                    f"quota: {name}, requested: {req}, used: {use}, limited: {lim}",
                    "Forbidden",
                    {"name": obj["metadata"].get("name"), "kind": kind.plural},
                )

    def _usage(self, kind: K.Kind, tenant: str, namespace: str, resources: list[str]) -> dict[str, Fraction]:
        used: dict[str, Fraction] = defaultdict(Fraction)
        entries = list(self.storage.cached(kind, tenant, namespace))
        for n in _counts_name(kind):
            used[n] = Fraction(len(entries))
        if kind.kind == "Pod" and any(not r.startswith("count/") and r != "pods" for r in resources):
            for e in entries:
                if (e.obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    continue
                for r, v in _pod_usage(e.obj).items():
                    used[r] += v
        return used
