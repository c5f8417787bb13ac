"""Deployment controller: one ReplicaSet per pod template (named ``<deployment>-<pod-template-
hash>``), rolled with the RollingUpdate (maxSurge/maxUnavailable) or Recreate strategy, old
ReplicaSets pruned to ``revisionHistoryLimit``, status aggregated from the ReplicaSets.

The algorithm is Kubernetes' (pkg/controller/deployment/rolling.go), reduced to what users see:
scale the new ReplicaSet up while the total stays within ``replicas + maxSurge``; scale old ones
down (unhealthy replicas first, then oldest ReplicaSets first) while at least ``replicas -
maxUnavailable`` pods stay available.
"""

from __future__ import annotations

import copy
from typing import Any

from centaurus.client.rest import ApiError
from centaurus.controllers import podutil as pu
from centaurus.controllers.replicaset import emit_event, owner_index
from centaurus.controllers.runtime.controller import Controller
from centaurus.controllers.runtime.informer import FuncHandler, Informer

Obj = dict[str, Any]
REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH = "pod-template-hash"


def _replicas(obj: Obj, default: int = 1) -> int:
    v = (obj.get("spec") or {}).get("replicas")
    return default if v is None else int(v)


def _status(obj: Obj, field: str) -> int:
    return int((obj.get("status") or {}).get(field) or 0)


def _revision(rs: Obj) -> int:
    try:
        return int((pu.meta(rs).get("annotations") or {}).get(REVISION) or 0)
    except ValueError:
        return 0


def surge_and_unavailable(d: Obj) -> tuple[int, int]:
    desired = _replicas(d)
    ru = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    surge = pu.int_or_percent(ru.get("maxSurge", "25%"), desired, True)
    unavail = pu.int_or_percent(ru.get("maxUnavailable", "25%"), desired, False)
    if surge == 0 and unavail == 0:
        unavail = 1  # Kubernetes: both zero would block the rollout
    return surge, unavail


class DeploymentController(Controller):
    ctype = "deployment"
    workers = 4

    def setup(self) -> Informer:
        self.rss = self.ctx.informers.get("replicasets", tenant="all", group_version="apps/v1")
        if not self.rss.has_index("owner"):
            self.rss.add_index("owner", owner_index)
        self.rss.add_handler(FuncHandler(self._on_rs))
        self._uid_keys: dict[str, str] = {}
        inf = self.ctx.informers.get("deployments", tenant="all", group_version="apps/v1")
        inf.add_handler(FuncHandler(self._track_uid))
        return inf

    def _track_uid(self, typ: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        uid = pu.meta(obj).get("uid")
        if uid:
            if typ == "DELETED":
                self._uid_keys.pop(uid, None)
            else:
                md = pu.meta(obj)
                self._uid_keys[uid] = f"{md.get('tenant') or ''}/{md.get('namespace') or ''}/{md['name']}"

    def _on_rs(self, typ: str, old: Obj | None, new: Obj | None) -> None:
        rs = new if new is not None else old
        assert rs is not None
        ref = pu.controller_ref(rs)
        if ref and ref.get("kind") == "Deployment":
            key = self._uid_keys.get(str(ref.get("uid")))
            if key:
                self.enqueue(key)

    # ---- reconcile -----------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        d = self.primary.get(key)
        if d is None or pu.is_terminating(d):
            return None
        md, spec = pu.meta(d), d.get("spec") or {}
        rss = [rs for rs in self.rss.by_index("owner", str(md.get("uid"))) if not pu.is_terminating(rs)]
        collisions = int((d.get("status") or {}).get("collisionCount") or 0)
        tpl = spec.get("template") or {}
        h = pu.template_hash(tpl, collisions)
        new = next((rs for rs in rss if (pu.meta(rs).get("labels") or {}).get(HASH) == h), None)
        olds = [rs for rs in rss if rs is not new]
        desired = _replicas(d)
        if spec.get("paused"):
            await self._sync_status(d, new, rss)
            return None
        if new is None:
            new = await self._create_rs(d, h, olds, collisions)
            if new is None:
                return 0.5  # collision: collisionCount bumped, try again with a new hash
            rss.append(new)
        strategy = (spec.get("strategy") or {}).get("type") or "RollingUpdate"
        if strategy == "Recreate":
            await self._recreate(d, new, olds, desired)
        else:
            await self._rolling(d, new, olds, desired)
        await self._cleanup(d, olds)
        await self._sync_status(d, new, rss)
        return None

    async def _create_rs(self, d: Obj, h: str, olds: list[Obj], collisions: int) -> Obj | None:
        md, spec = pu.meta(d), d.get("spec") or {}
        tpl = copy.deepcopy(spec.get("template") or {})
        tpl.setdefault("metadata", {}).setdefault("labels", {})[HASH] = h
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH] = h
        revision = max([_revision(rs) for rs in olds] or [0]) + 1
        surge, _ = surge_and_unavailable(d)
        desired = _replicas(d)
        # Recreate starts the new set only when the old pods are gone; rolling starts at 0 too and
        # is scaled by the rolling step right after (one code path for both)
        body: Obj = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{md['name']}-{h}",
                "labels": dict(tpl["metadata"]["labels"]),
                "annotations": {
                    REVISION: str(revision),
                    DESIRED: str(desired),
                    MAX_REPLICAS: str(desired + surge),
                },
                "ownerReferences": [pu.owner_ref(d, "Deployment", "apps/v1")],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                "selector": selector,
                "template": tpl,
            },
        }
        try:
            out: Obj = await self.api.create(
                "replicasets",
                body,
                namespace=md.get("namespace"),
                tenant=md.get("tenant"),
                group_version="apps/v1",
            )
        except ApiError as exc:
            if exc.code != 409:
                raise
            cur = await self.api.get(
                "replicasets",
                body["metadata"]["name"],
                namespace=md.get("namespace"),
                tenant=md.get("tenant"),
                group_version="apps/v1",
            )
            ref = pu.controller_ref(cur)
            if ref and ref.get("uid") == md.get("uid") and (pu.meta(cur).get("labels") or {}).get(HASH) == h:
                return cur  # ours, the informer had not seen it yet
            await self.api.patch(
                "deployments",
                md["name"],
                {"status": {"collisionCount": collisions + 1}},
                namespace=md.get("namespace"),
                tenant=md.get("tenant"),
                group_version="apps/v1",
                subresource="status",
            )
            return None
        await emit_event(
            self.api,
            d,
            "Deployment",
            "apps/v1",
            "ScalingReplicaSet",
            f"Created new replica set {out['metadata']['name']}",
            "Normal",
            "deployment-controller",
        )
        return out

    async def _scale(self, d: Obj, rs: Obj, n: int) -> None:
        if _replicas(rs, 0) == n:
            return
        md = pu.meta(rs)
        surge, _ = surge_and_unavailable(d)
        desired = _replicas(d)
        await self.api.patch(
            "replicasets",
            md["name"],
            {
                "metadata": {"annotations": {DESIRED: str(desired), MAX_REPLICAS: str(desired + surge)}},
                "spec": {"replicas": n},
            },
            namespace=md.get("namespace"),
            tenant=md.get("tenant"),
            group_version="apps/v1",
        )
        rs.setdefault("spec", {})["replicas"] = n  # our local view until the watch catches up
        verb = "up" if n > _status(rs, "replicas") else "down"
        await emit_event(
            self.api,
            d,
            "Deployment",
            "apps/v1",
            "ScalingReplicaSet",
            f"Scaled {verb} replica set {md['name']} to {n}",
            "Normal",
            "deployment-controller",
        )

    async def _recreate(self, d: Obj, new: Obj, olds: list[Obj], desired: int) -> None:
        for rs in olds:
            await self._scale(d, rs, 0)
        if any(_status(rs, "replicas") > 0 for rs in olds):
            return  # wait for the old pods to go (their RS status events requeue us)
        await self._scale(d, new, desired)

    async def _rolling(self, d: Obj, new: Obj, olds: list[Obj], desired: int) -> None:
        surge, unavail = surge_and_unavailable(d)
        all_rs = [new, *olds]
        # 1. the new ReplicaSet
        cur_new = _replicas(new, 0)
        if cur_new > desired:
            await self._scale(d, new, desired)
        elif cur_new < desired:
            total = sum(_replicas(rs, 0) for rs in all_rs)
            up = min(desired + surge - total, desired - cur_new)
            if up > 0:
                await self._scale(d, new, cur_new + up)
        # 2. the old ones
        old_total = sum(_replicas(rs, 0) for rs in olds)
        if old_total == 0:
            return
        all_pods = sum(_replicas(rs, 0) for rs in all_rs)
        min_available = desired - unavail
        new_unavailable = _replicas(new, 0) - _status(new, "availableReplicas")
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return
        olds_by_age = sorted(
            olds, key=lambda rs: pu.parse_rfc3339(pu.meta(rs).get("creationTimestamp")) or 0.0
        )
        # unhealthy replicas of old sets go first: they cost no availability
        for rs in olds_by_age:
            if max_scaled_down <= 0:
                return
            unhealthy = _replicas(rs, 0) - _status(rs, "availableReplicas")
            if unhealthy <= 0:
                continue
            cut = min(unhealthy, max_scaled_down)
            await self._scale(d, rs, _replicas(rs, 0) - cut)
            max_scaled_down -= cut
        available = sum(_status(rs, "availableReplicas") for rs in all_rs)
        budget = min(available - min_available, max_scaled_down)
        for rs in olds_by_age:
            if budget <= 0:
                return
            cut = min(_replicas(rs, 0), budget)
            if cut > 0:
                await self._scale(d, rs, _replicas(rs, 0) - cut)
                budget -= cut

    async def _cleanup(self, d: Obj, olds: list[Obj]) -> None:
        limit = (d.get("spec") or {}).get("revisionHistoryLimit")
        limit = 10 if limit is None else int(limit)
        idle = [rs for rs in olds if _replicas(rs, 0) == 0 and _status(rs, "replicas") == 0]
        idle.sort(key=_revision)
        for rs in idle[: max(0, len(idle) - limit)]:
            md = pu.meta(rs)
            await self.api.delete(
                "replicasets",
                md["name"],
                namespace=md.get("namespace"),
                tenant=md.get("tenant"),
                group_version="apps/v1",
                missing_ok=True,
            )

    async def _sync_status(self, d: Obj, new: Obj | None, rss: list[Obj]) -> None:
        md = pu.meta(d)
        desired = _replicas(d)
        _, unavail = surge_and_unavailable(d)
        available = sum(_status(rs, "availableReplicas") for rs in rss)
        updated = _status(new, "replicas") if new is not None else 0
        status: Obj = {
            "observedGeneration": int(md.get("generation") or 1),
            "replicas": sum(_status(rs, "replicas") for rs in rss),
            "updatedReplicas": updated,
            "readyReplicas": sum(_status(rs, "readyReplicas") for rs in rss),
            "availableReplicas": available,
            "unavailableReplicas": max(0, desired - available),
        }
        complete = updated == desired and status["replicas"] == desired and available >= desired
        cur = d.get("status") or {}
        conds = {c.get("type"): c for c in cur.get("conditions") or ()}
        now = pu.now_rfc3339()

        def cond(typ: str, ok: bool, reason: str, msg: str) -> Obj:
            prev = conds.get(typ) or {}
            st = "True" if ok else "False"
            same = prev.get("status") == st
            return {
                "type": typ,
                "status": st,
                "reason": reason,
                "message": msg,
                "lastUpdateTime": prev.get("lastUpdateTime", now)
                if same and prev.get("reason") == reason
                else now,
                "lastTransitionTime": prev.get("lastTransitionTime", now) if same else now,
            }

        rs_name = pu.meta(new).get("name") if new is not None else ""
        status["conditions"] = [
            cond(
                "Available",
                available >= desired - unavail,
                "MinimumReplicasAvailable"
                if available >= desired - unavail
                else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if available >= desired - unavail
                else "Deployment does not have minimum availability.",
            ),
            cond(
                "Progressing",
                True,
                "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                f'ReplicaSet "{rs_name}" has successfully progressed.'
                if complete
                else f'ReplicaSet "{rs_name}" is progressing.',
            ),
        ]
        if cur.get("collisionCount"):
            status["collisionCount"] = cur["collisionCount"]
        keys = (
            "observedGeneration",
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
        )
        if all(cur.get(k, 0) == status[k] for k in keys) and [
            (c.get("type"), c.get("status"), c.get("reason")) for c in cur.get("conditions") or ()
        ] == [(c["type"], c["status"], c["reason"]) for c in status["conditions"]]:
            return
        try:
            await self.api.patch(
                "deployments",
                md["name"],
                {"status": status},
                namespace=md.get("namespace"),
                tenant=md.get("tenant"),
                group_version="apps/v1",
                subresource="status",
            )
        except ApiError as exc:
            if exc.code != 404:
                raise
