"""Shared informers: a local cache of one resource kept current by list + watch.

One :class:`Informer` per resource per process, shared by every controller that reads it (the
client-go pattern): a single watch stream however many controllers consume it. The stream comes
from :meth:`centaurus.client.aio.AsyncClient.list_watch`, which resumes after dropped streams and
re-lists on ``410 Gone``; a re-list arrives as one ``SYNC`` event that the informer diffs against
its cache, so handlers see exactly the adds, updates and deletes they missed.

``transform`` slims objects before they are cached (client-go ``SetTransform``): at 100k pods
the cache is the biggest memory cost of a controller process, and most fields are never read.
Indexes (``add_index``) answer "pods of this owner", "pods on this node" without scans.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from centaurus.client.aio import AsyncClient

log = logging.getLogger("centaurus.controllers.informer")

Obj = dict[str, Any]
IndexFn = Callable[[Obj], Iterable[str]]


class Handler(Protocol):
    def on_add(self, obj: Obj) -> None: ...

    def on_update(self, old: Obj, new: Obj) -> None: ...

    def on_delete(self, obj: Obj) -> None: ...


class FuncHandler:
    """A handler from one callable ``fn(event_type, old, new)`` (old/new None where absent)."""

    def __init__(self, fn: Callable[[str, Obj | None, Obj | None], None]) -> None:
        self.fn = fn

    def on_add(self, obj: Obj) -> None:
        self.fn("ADDED", None, obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self.fn("MODIFIED", old, new)

    def on_delete(self, obj: Obj) -> None:
        self.fn("DELETED", obj, None)


def object_key(obj: Obj) -> str:
    """``tenant/namespace/name`` (namespace empty for tenant-scoped, tenant empty for cluster
    objects): unique across tenants, which a Kubernetes ``namespace/name`` key is not in Arktos."""
    md = obj.get("metadata") or {}
    return f"{md.get('tenant') or ''}/{md.get('namespace') or ''}/{md.get('name') or ''}"


def split_key(key: str) -> tuple[str, str, str]:
    tenant, ns, name = key.split("/", 2)
    return tenant, ns, name


class Informer:
    def __init__(
        self,
        api: AsyncClient,
        resource: str,
        *,
        tenant: str | None = "all",
        namespace: str | None = None,
        group_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        transform: Callable[[Obj], Obj] | None = None,
        update_transform: Callable[[Obj, Obj], Obj] | None = None,
    ) -> None:
        self.api = api
        self.resource = resource
        self.tenant = tenant
        self.namespace = namespace
        self.group_version = group_version
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.transform = transform
        #: ``update_transform(raw, cached)`` replaces ``transform`` for an object already cached:
        #: what cannot change (a pod's requests, its shared constraints) is taken from the cache
        self.update_transform = update_transform
        self.cache: dict[str, Obj] = {}
        self.handlers: list[Handler] = []
        self.synced = asyncio.Event()
        self._indexers: dict[str, IndexFn] = {}
        self._indexes: dict[str, dict[str, set[str]]] = {}
        self._keys_of: dict[str, dict[str, tuple[str, ...]]] = {}
        #: resourceVersion of the last list or event: lets tests and campaigns wait for catch-up
        self.resource_version = ""
        self.events = 0

    # ---- reading -----------------------------------------------------------------------------
    def get(self, key: str) -> Obj | None:
        return self.cache.get(key)

    def objects(self) -> list[Obj]:
        return list(self.cache.values())

    def add_index(self, name: str, fn: IndexFn) -> None:
        if self.cache:
            raise RuntimeError("add indexes before the informer starts")
        self._indexers[name] = fn
        self._indexes[name] = {}
        self._keys_of[name] = {}

    def has_index(self, name: str) -> bool:
        return name in self._indexers

    def by_index(self, name: str, value: str) -> list[Obj]:
        keys = self._indexes[name].get(value) or ()
        return [self.cache[k] for k in keys if k in self.cache]

    def index_keys(self, name: str, value: str) -> set[str]:
        return set(self._indexes[name].get(value) or ())

    def add_handler(self, handler: Handler) -> None:
        self.handlers.append(handler)
        for obj in self.cache.values():  # late subscribers see the current state as adds
            handler.on_add(obj)

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self.synced.wait(), timeout)

    # ---- maintenance -------------------------------------------------------------------------
    def _index(self, key: str, obj: Obj | None) -> None:
        for name, fn in self._indexers.items():
            idx, keys_of = self._indexes[name], self._keys_of[name]
            for v in keys_of.pop(key, ()):
                s = idx.get(v)
                if s is not None:
                    s.discard(key)
                    if not s:
                        del idx[v]
            if obj is not None:
                vals = tuple(fn(obj))
                if vals:
                    keys_of[key] = vals
                    for v in vals:
                        idx.setdefault(v, set()).add(key)

    def _put(self, obj: Obj) -> tuple[Obj | None, Obj]:
        key = object_key(obj)  # transforms keep the identity
        old = self.cache.get(key)
        if old is not None and self.update_transform is not None:
            obj = self.update_transform(obj, old)
        elif self.transform is not None:
            obj = self.transform(obj)
        self.cache[key] = obj
        self._index(key, obj)
        return old, obj

    def _drop(self, obj: Obj) -> Obj | None:
        key = object_key(obj)
        old = self.cache.pop(key, None)
        self._index(key, None)
        return old

    def _dispatch(self, kind: str, old: Obj | None, new: Obj | None) -> None:
        for h in self.handlers:
            try:
                if kind == "ADDED" and new is not None:
                    h.on_add(new)
                elif kind == "MODIFIED" and old is not None and new is not None:
                    h.on_update(old, new)
                elif kind == "DELETED" and old is not None:
                    h.on_delete(old)
            except Exception:  # a broken handler must not stop the stream for the others
                log.exception("%s handler failed on %s", self.resource, kind)

    def apply(self, ev: Obj) -> None:
        """Fold one ``list_watch`` event into the cache and tell the handlers."""
        self.events += 1
        typ = ev["type"]
        if typ == "SYNC":
            self.resource_version = str(ev.get("resourceVersion") or "")
            fresh: dict[str, Obj] = {}
            for raw in ev["items"]:
                item = self.transform(raw) if self.transform is not None else raw
                fresh[object_key(item)] = item
            for key in [k for k in self.cache if k not in fresh]:
                old = self.cache.pop(key)
                self._index(key, None)
                self._dispatch("DELETED", old, None)
            for key, item in fresh.items():
                prev = self.cache.get(key)
                self.cache[key] = item
                self._index(key, item)
                if prev is None:
                    self._dispatch("ADDED", None, item)
                elif _rv(prev) != _rv(item):
                    self._dispatch("MODIFIED", prev, item)
            self.synced.set()
            return
        obj = ev.get("object") or {}
        self.resource_version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if typ == "DELETED":
            gone = self._drop(obj)
            if gone is not None:
                self._dispatch("DELETED", gone, None)
            return
        if typ in ("ADDED", "MODIFIED"):
            prev, new = self._put(obj)
            self._dispatch("ADDED" if prev is None else "MODIFIED", prev, new)

    async def run(self) -> None:
        """Forever: list, watch, resume. Transient errors back off and retry; cancellation stops it."""
        backoff = 0.2
        while True:
            try:
                async for ev in self.api.list_watch(
                    self.resource,
                    namespace=self.namespace,
                    tenant=self.tenant,
                    group_version=self.group_version,
                    label_selector=self.label_selector,
                    field_selector=self.field_selector,
                ):
                    self.apply(ev)
                    backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s informer: %s; retrying in %.1f s", self.resource, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)


def _rv(obj: Obj) -> Any:
    return (obj.get("metadata") or {}).get("resourceVersion")


class InformerSet:
    """The shared informers of one process, created on first use, run as tasks."""

    def __init__(self, api: AsyncClient) -> None:
        self.api = api
        self._informers: dict[tuple[str, str | None, str | None], Informer] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def get(self, resource: str, **kw: Any) -> Informer:
        key = (resource, kw.get("tenant", "all"), kw.get("namespace"))
        inf = self._informers.get(key)
        if inf is None:
            inf = Informer(self.api, resource, **kw)
            self._informers[key] = inf
        return inf

    def start(self) -> None:
        for inf in self._informers.values():
            if not any(t.get_name() == f"informer-{id(inf)}" for t in self._tasks):
                self._tasks.append(asyncio.create_task(inf.run(), name=f"informer-{id(inf)}"))

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.gather(*(i.wait_synced(timeout) for i in self._informers.values()))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
