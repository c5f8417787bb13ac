"""Objects on top of the data partitions: which partition a tenant lives in, which kinds a tenant
sees (built-ins plus its CRDs and the system tenant's), and the store calls with Kubernetes
error mapping.

Partition rule (Arktos data partitions, :class:`centaurus.store.partitions.Partitions`):
Tenant objects, Nodes and the system tenant live in partition 0; a tenant lives in the partition
named by ``spec.storageClusterId`` (a partition index). A new tenant without one is given the
least used partition at creation (``least-loaded`` placement, the system tenant counting in
partition 0), so tenants spread over partitions and the choice is visible on the object. The
Tenant objects in partition 0's watch cache are the truth; the Partitions' bindings follow them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from centaurus.api.metered import MeteredStore
from centaurus.api.watchcache import Entry, KindCache, PartitionCache
from centaurus.objects import kinds as K
from centaurus.objects.status import ApiStatusError, already_exists, conflict, not_found
from centaurus.store.base import KV, AlreadyExists, Conflict, NotFound, Store, StoreError, StoreUnavailable
from centaurus.store.partitions import Partitions

SYSTEM = "system"
TENANTS = K.must("", "v1", "tenants")
CRDS = K.must("apiextensions.k8s.io", "v1", "customresourcedefinitions")


def encode_for_store(obj: dict[str, Any]) -> bytes:
    """Objects are stored without resourceVersion: the store's revision is the truth."""
    md = obj.get("metadata") or {}
    rv = md.pop("resourceVersion", None)
    try:
        return orjson.dumps(obj)
    finally:
        if rv is not None:
            md["resourceVersion"] = rv


def with_rv(obj: dict[str, Any], rev: int) -> dict[str, Any]:
    obj.setdefault("metadata", {})["resourceVersion"] = str(rev)
    return obj


def _cluster_id(tenant: dict[str, Any]) -> str:
    return str((tenant.get("spec") or {}).get("storageClusterId") or "")


def store_error(exc: StoreError, kind: K.Kind, name: str) -> ApiStatusError:
    if isinstance(exc, NotFound):
        return not_found(kind.plural, name, kind.group)
    if isinstance(exc, AlreadyExists):
        return already_exists(kind.plural, name, kind.group)
    if isinstance(exc, Conflict):
        return conflict(kind.plural, name, kind.group)
    if isinstance(exc, StoreUnavailable):
        return ApiStatusError(503, f"storage is unavailable: {exc}", "ServiceUnavailable")
    return ApiStatusError(500, f"storage error: {exc}", "InternalError")


class Storage:
    def __init__(self, partitions: Partitions) -> None:
        """``partitions``: opened with ``placement="least-loaded", count_system=True`` for the
        API server's rule (any placement works; the caller closes them after :meth:`close`)."""
        self.partitions = partitions
        self.parts = [PartitionCache(i, MeteredStore(s, i)) for i, s in enumerate(partitions.all())]

    async def start(self) -> None:
        for p in self.parts:
            await p.start()

    async def close(self) -> None:
        for p in self.parts:
            await p.close()

    # ---- partitions ------------------------------------------------------------------------
    def tenant_object(self, tenant: str) -> dict[str, Any] | None:
        e = self.parts[0].kind(TENANTS.storage_prefix).get(TENANTS.key(SYSTEM, None, tenant))
        return e.obj if e else None

    def partition_index(self, tenant: str | None) -> int:
        if tenant is None or len(self.parts) == 1:
            return 0
        t = self.tenant_object(tenant)
        if t is None:
            self.partitions.unbind(tenant)
            return self.partitions.index_for(tenant)
        return self.partitions.follow(tenant, _cluster_id(t))

    def choose_partition(self, tenant: str) -> int:
        """Least used partition for the new ``tenant`` (system tenant counts in partition 0)."""
        entries = self.parts[0].kind(TENANTS.storage_prefix).entries(TENANTS.storage_prefix)
        self.partitions.follow_all({e.obj["metadata"].get("name", ""): _cluster_id(e.obj) for e in entries})
        return self.partitions.place(tenant)

    def part_for(self, kind: K.Kind, tenant: str) -> PartitionCache:
        if kind.scope == "Cluster":
            return self.parts[0]
        return self.parts[self.partition_index(tenant)]

    def store_for(self, kind: K.Kind, tenant: str) -> Store:
        return self.part_for(kind, tenant).store

    def cache_for(self, kind: K.Kind, tenant: str) -> KindCache:
        return self.part_for(kind, tenant).kind(kind.storage_prefix)

    # ---- kinds a tenant sees ---------------------------------------------------------------
    def crds(self, tenant: str) -> Iterator[dict[str, Any]]:
        """Established CRDs visible to ``tenant``: its own, then the system tenant's."""
        seen: set[str] = set()
        for t in dict.fromkeys([tenant, SYSTEM]):
            cache = self.cache_for(CRDS, t)
            for e in cache.entries(CRDS.scope_prefix(t, None)):
                name = e.obj["metadata"].get("name", "")
                if name not in seen and not e.obj["metadata"].get("deletionTimestamp"):
                    seen.add(name)
                    yield e.obj

    def resolve(self, tenant: str, group: str, version: str, plural: str) -> K.Kind | None:
        k = K.builtin(group, version, plural)
        if k is not None:
            return k
        alias = K.CORE_ALIASES.get((group, version, plural))
        if alias is not None:  # Arktos core paths of kinds served as CRDs (/api/v1/tenants/t/networks)
            group, version, plural = alias
        for crd in self.crds(tenant):
            spec = crd.get("spec") or {}
            if (
                spec.get("group") == group
                and (spec.get("names") or {}).get("plural") == plural
                and any(
                    v.get("name") == version and v.get("served", True) for v in spec.get("versions") or []
                )
            ):
                return K.kind_from_crd(crd, version)
        return None

    # ---- store calls -----------------------------------------------------------------------
    async def get_entry(self, kind: K.Kind, tenant: str, ns: str | None, name: str) -> Entry | None:
        """Consistent single-object read from the watch cache (after it caught up with the
        store's revision), or None when the cache lags (then read the store)."""
        part = self.part_for(kind, tenant)
        try:
            ok = await part.sync(1.0)
        except StoreError as exc:
            raise store_error(exc, kind, name) from None
        if not ok:
            return None
        e = part.kind(kind.storage_prefix).get(kind.key(tenant, ns, name))
        if e is None:
            raise not_found(kind.plural, name, kind.group)
        return e

    async def get(self, kind: K.Kind, tenant: str, ns: str | None, name: str) -> tuple[dict[str, Any], int]:
        obj, rev, _ = await self.get_raw(kind, tenant, ns, name)
        return obj, rev

    async def get_raw(
        self, kind: K.Kind, tenant: str, ns: str | None, name: str
    ) -> tuple[dict[str, Any], int, bytes | None]:
        """A private copy of the object, its revision, and the cached JSON it was parsed from
        (None when read from the store): decoding it again is the cheapest second copy."""
        e = await self.get_entry(kind, tenant, ns, name)
        if e is not None:
            return orjson.loads(e.raw), e.rev, e.raw
        store = self.store_for(kind, tenant)
        try:
            kv = await store.get(kind.key(tenant, ns, name))
        except StoreError as exc:
            raise store_error(exc, kind, name) from None
        if kv is None:
            raise not_found(kind.plural, name, kind.group)
        return with_rv(orjson.loads(kv.value), kv.mod_revision), kv.mod_revision, None

    async def create(
        self, kind: K.Kind, tenant: str, ns: str | None, name: str, obj: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            kv = await self.store_for(kind, tenant).create(kind.key(tenant, ns, name), encode_for_store(obj))
        except StoreError as exc:
            raise store_error(exc, kind, name) from None
        return with_rv(obj, kv.mod_revision)

    async def update(
        self, kind: K.Kind, tenant: str, ns: str | None, name: str, obj: dict[str, Any], expected: int
    ) -> dict[str, Any]:
        try:
            kv = await self.store_for(kind, tenant).update(
                kind.key(tenant, ns, name), encode_for_store(obj), expected
            )
        except StoreError as exc:
            raise store_error(exc, kind, name) from None
        return with_rv(obj, kv.mod_revision)

    async def delete(self, kind: K.Kind, tenant: str, ns: str | None, name: str, expected: int = 0) -> KV:
        try:
            return await self.store_for(kind, tenant).delete(kind.key(tenant, ns, name), expected)
        except StoreError as exc:
            raise store_error(exc, kind, name) from None

    async def purge(self, kind: K.Kind, tenant: str) -> int:
        """Delete every object of ``kind`` in ``tenant`` (CRD removal, tenant removal)."""
        part = self.part_for(kind, tenant)
        await part.sync()
        keys = [e.key for e in part.kind(kind.storage_prefix).entries(kind.scope_prefix(tenant, None))]
        for key in keys:
            try:
                await part.store.delete(key)
            except NotFound:
                pass
        return len(keys)

    def cached(self, kind: K.Kind, tenant: str, ns: str | None) -> Iterator[Entry]:
        return self.cache_for(kind, tenant).entries(kind.scope_prefix(tenant, ns))
