"""Garbage collector: ownerReferences and the three deletion propagation policies.

How a delete propagates is decided by the API server (as in Kubernetes): ``Background`` (the
default for workloads) removes the owner at once and leaves the dependents to this controller;
``Foreground`` keeps the owner, with ``deletionTimestamp`` and the ``foregroundDeletion``
finalizer, until this controller has deleted every dependent; ``Orphan`` keeps it with the
``orphan`` finalizer until this controller has removed the owner from every dependent's
ownerReferences. Here:

* a *dependent* whose owners are all gone (absent from the cache and confirmed by a GET, so a slow
  watch never deletes a fresh object) is deleted; one with some owners gone loses the dangling
  references;
* an *owner* being deleted with ``foregroundDeletion`` gets its dependents deleted (Foreground,
  recursively) and the finalizer removed once none is left; with ``orphan`` its dependents lose
  the reference, then the finalizer goes.

The kinds it knows are :data:`KINDS` (owners and dependents); work items are ``<plural>|<key>``.
"""

from __future__ import annotations

import functools
from typing import Any

from centaurus.client.rest import ApiError
from centaurus.controllers import podutil as pu
from centaurus.controllers.replicaset import pods_informer
from centaurus.controllers.runtime.controller import Controller
from centaurus.controllers.runtime.informer import FuncHandler, Informer, object_key, split_key
from centaurus.controllers.runtime.sharding import hash_key, hash_of_text

Obj = dict[str, Any]
#: kind -> (plural, group/version)
KINDS: dict[str, tuple[str, str]] = {
    "Deployment": ("deployments", "apps/v1"),
    "ReplicaSet": ("replicasets", "apps/v1"),
    "Pod": ("pods", "v1"),
}
KINDS_BY_PLURAL: dict[str, str] = {plural: gv for plural, gv in KINDS.values()}
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


def register_kind(kind: str, plural: str, group_version: str) -> None:
    """Let the collector watch another resource (as dependent and as owner); call at import time,
    before the controller process builds its collector."""
    KINDS[kind] = (plural, group_version)
    KINDS_BY_PLURAL[plural] = group_version


def all_owner_uids(obj: Obj) -> list[str]:
    return [str(r["uid"]) for r in pu.meta(obj).get("ownerReferences") or () if r.get("uid")]


def uid_of(obj: Obj) -> list[str]:
    uid = pu.meta(obj).get("uid")
    return [str(uid)] if uid else []


class GarbageCollector(Controller):
    ctype = "garbagecollector"
    workers = 4

    def setup(self) -> Informer:
        self.by_plural: dict[str, Informer] = {}
        for kind, (plural, gv) in KINDS.items():
            if kind == "Pod":
                inf = pods_informer(self.ctx)
            else:
                inf = self.ctx.informers.get(plural, tenant="all", group_version=gv)
            if not inf.has_index("owners"):
                inf.add_index("owners", all_owner_uids)
                inf.add_index("uid", uid_of)
            inf.add_handler(FuncHandler(functools.partial(self._on, plural)))
            self.by_plural[plural] = inf
        return self.by_plural["pods"]

    def wants(self, typ: str, old: Obj | None, new: Obj | None) -> bool:
        return False  # events are handled per kind by _on

    # ---- keys and ownership ---------------------------------------------------------------------
    def _item(self, plural: str, obj: Obj) -> str:
        key = f"{plural}|{object_key(obj)}"
        self._hashes[key] = hash_key(obj)
        return key

    def _lookup(self, item: str) -> tuple[str, str, Obj | None]:
        plural, key = item.split("|", 1)
        return plural, key, self.by_plural[plural].get(key)

    def hash_for(self, key: str) -> int:
        h = self._hashes.get(key)
        if h is None:
            _, _, obj = self._lookup(key)
            h = hash_key(obj) if obj is not None else hash_of_text(key)
        return h

    def resync(self) -> None:
        for plural, inf in self.by_plural.items():
            for obj in inf.objects():
                if pu.meta(obj).get("ownerReferences") or self._finalizing(obj):
                    self.enqueue(self._item(plural, obj))

    def owned_count(self) -> int:
        return sum(
            1
            for plural, inf in self.by_plural.items()
            for obj in inf.objects()
            if pu.meta(obj).get("ownerReferences") and self.owns(f"{plural}|{object_key(obj)}")
        )

    @staticmethod
    def _finalizing(obj: Obj) -> bool:
        md = pu.meta(obj)
        return bool(md.get("deletionTimestamp")) and bool(
            {FOREGROUND, ORPHAN} & set(md.get("finalizers") or ())
        )

    def _on(self, plural: str, typ: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        if typ == "DELETED":
            # its dependents may have become dangling
            for uid in uid_of(obj):
                for p, inf in self.by_plural.items():
                    for dep in inf.by_index("owners", uid):
                        self.enqueue(self._item(p, dep))
            return
        if self._finalizing(obj):
            self.enqueue(self._item(plural, obj))
        refs = pu.meta(obj).get("ownerReferences")
        if refs and (old is None or pu.meta(old).get("ownerReferences") != refs):
            self.enqueue(self._item(plural, obj))
        # a dependent changed while its owner waits in foreground deletion
        if new is not None and pu.is_terminating(new) and old is not None and not pu.is_terminating(old):
            for ref in refs or ():
                owner = self._owner_in_cache(str(ref.get("kind")), str(ref.get("uid")))
                if owner is not None and self._finalizing(owner):
                    self.enqueue(self._item(KINDS[ref["kind"]][0], owner))

    def _owner_in_cache(self, kind: str, uid: str) -> Obj | None:
        if kind not in KINDS:
            return None
        found = self.by_plural[KINDS[kind][0]].by_index("uid", uid)
        return found[0] if found else None

    # ---- reconcile ---------------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        plural, okey, obj = self._lookup(key)
        if obj is None:
            return None
        md = pu.meta(obj)
        if self._finalizing(obj):
            again = await self._finalize_owner(plural, obj)
            if again is not None:
                return again
        refs = md.get("ownerReferences") or []
        if not refs or (pu.is_terminating(obj) and not self._finalizing(obj)):
            return None
        gone: list[Obj] = []
        for ref in refs:
            kind = str(ref.get("kind"))
            if kind not in KINDS:
                continue  # an owner of a kind we do not know: leave it alone
            if self._owner_in_cache(kind, str(ref.get("uid"))) is not None:
                continue
            if await self._owner_absent(kind, ref, md):
                gone.append(ref)
        if not gone:
            return None
        tenant, ns, name = split_key(okey)
        gv = KINDS_BY_PLURAL[plural]
        if len(gone) == len(refs):
            self.log.info("deleting %s %s: owner(s) gone", plural, okey)
            await self.api.delete(
                plural,
                name,
                namespace=ns or None,
                tenant=tenant or None,
                group_version=gv,
                propagation="Background",
                missing_ok=True,
            )
        else:
            keep = [r for r in refs if r not in gone]
            await self._patch_refs(plural, okey, keep)
        return None

    async def _owner_absent(self, kind: str, ref: Obj, dep_md: Obj) -> bool:
        plural, gv = KINDS[kind]
        try:
            cur = await self.api.get(
                plural,
                str(ref.get("name")),
                namespace=dep_md.get("namespace"),
                tenant=dep_md.get("tenant"),
                group_version=gv,
            )
        except ApiError as exc:
            if exc.code == 404:
                return True
            raise
        return bool(pu.meta(cur).get("uid") != ref.get("uid"))

    async def _patch_refs(self, plural: str, okey: str, refs: list[Obj]) -> None:
        tenant, ns, name = split_key(okey)
        try:
            await self.api.patch(
                plural,
                name,
                {"metadata": {"ownerReferences": refs or None}},
                namespace=ns or None,
                tenant=tenant or None,
                group_version=KINDS_BY_PLURAL[plural],
            )
        except ApiError as exc:
            if exc.code != 404:
                raise

    async def _finalize_owner(self, plural: str, owner: Obj) -> float | None:
        md = pu.meta(owner)
        fins = list(md.get("finalizers") or ())
        uid = str(md.get("uid"))
        deps = [(p, d) for p, inf in self.by_plural.items() for d in inf.by_index("owners", uid)]
        if FOREGROUND in fins:
            if deps:
                for p, d in deps:
                    if pu.is_terminating(d):
                        continue
                    dmd = pu.meta(d)
                    await self.api.delete(
                        p,
                        dmd["name"],
                        namespace=dmd.get("namespace"),
                        tenant=dmd.get("tenant"),
                        group_version=KINDS_BY_PLURAL[p],
                        propagation="Foreground",
                        missing_ok=True,
                    )
                return 1.0  # re-check until the dependents are gone (their deletes also requeue us)
            fins.remove(FOREGROUND)
        elif ORPHAN in fins:
            for p, d in deps:
                keep = [r for r in pu.meta(d).get("ownerReferences") or () if str(r.get("uid")) != uid]
                await self._patch_refs(p, object_key(d), keep)
            fins.remove(ORPHAN)
        else:
            return None
        tenant, ns = md.get("tenant"), md.get("namespace")
        try:
            await self.api.patch(
                plural,
                md["name"],
                {"metadata": {"finalizers": fins or None, "resourceVersion": md.get("resourceVersion")}},
                namespace=ns,
                tenant=tenant,
                group_version=KINDS_BY_PLURAL[plural],
            )
        except ApiError as exc:
            if exc.code == 409:
                return 0.2
            if exc.code != 404:
                raise
        return None
