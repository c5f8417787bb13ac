"""ReplicaSet controller: keeps ``spec.replicas`` active pods from the template (containers or
VMs alike: a VM pod is a pod with ``spec.virtualMachine``), and reports replicas, ready and
available counts.

Expectations (client-go's ControllerExpectations): after creating or deleting pods, the
controller waits until its informer has seen those changes before counting again, so a slow
watch never makes it create or delete twice. Expectations expire after ``EXPECTATION_TTL`` in case
an event is lost for good.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from centaurus.client.rest import ApiError
from centaurus.controllers import podutil as pu
from centaurus.controllers.runtime.controller import Controller
from centaurus.controllers.runtime.informer import FuncHandler, Informer, object_key

Obj = dict[str, Any]
EXPECTATION_TTL = 30.0
BURST = 250  # pods created or deleted per reconcile at most


def owner_index(obj: Obj) -> list[str]:
    ref = pu.controller_ref(obj)
    return [str(ref["uid"])] if ref and ref.get("uid") else []


@dataclass
class Expectation:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    at: float = 0.0

    def satisfied(self) -> bool:
        return (self.adds <= 0 and not self.deletes) or time.monotonic() - self.at > EXPECTATION_TTL


def pods_informer(ctx: Any) -> Informer:
    inf: Informer = ctx.informers.get("pods", tenant="all", transform=pu.slim_pod)
    if not inf.has_index("owner"):
        inf.add_index("owner", owner_index)
        inf.add_index("node", lambda p: [n] if (n := (p.get("spec") or {}).get("nodeName")) else [])
    return inf


class ReplicaSetController(Controller):
    ctype = "replicaset"
    workers = 8

    def setup(self) -> Informer:
        self.pods = pods_informer(self.ctx)
        self.pods.add_handler(FuncHandler(self._on_pod))
        self.expect: dict[str, Expectation] = {}
        self._owner_keys: dict[str, str] = {}  # rs uid -> key
        rs = self.ctx.informers.get("replicasets", tenant="all", group_version="apps/v1")
        if not rs.has_index("owner"):
            rs.add_index("owner", owner_index)
        rs.add_handler(FuncHandler(self._track_uid))
        return rs

    def _track_uid(self, typ: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        assert obj is not None
        uid = pu.meta(obj).get("uid")
        if uid:
            if typ == "DELETED":
                self._owner_keys.pop(uid, None)
            else:
                self._owner_keys[uid] = object_key(obj)

    def _on_pod(self, typ: str, old: Obj | None, new: Obj | None) -> None:
        pod = new if new is not None else old
        assert pod is not None
        ref = pu.controller_ref(pod)
        if not ref or ref.get("kind") != "ReplicaSet":
            return
        md = pu.meta(pod)
        key = (
            self._owner_keys.get(str(ref.get("uid")))
            or f"{md.get('tenant') or ''}/{md.get('namespace')}/{ref['name']}"
        )
        exp = self.expect.get(key)
        if exp is not None:
            pkey = object_key(pod)
            if typ == "ADDED":
                exp.adds -= 1
            if typ == "DELETED" or (new is not None and pu.is_terminating(new)):
                exp.deletes.discard(pkey)
        if typ == "MODIFIED" and old is not None and new is not None and not self._pod_changed(old, new):
            return
        self.enqueue(key)

    @staticmethod
    def _pod_changed(old: Obj, new: Obj) -> bool:
        return (
            pu.is_ready(old) != pu.is_ready(new)
            or pu.phase(old) != pu.phase(new)
            or pu.is_terminating(old) != pu.is_terminating(new)
            or pu.meta(old).get("labels") != pu.meta(new).get("labels")
            or (pu.condition(new, "Ready") or {}).get("lastTransitionTime")
            != (pu.condition(old, "Ready") or {}).get("lastTransitionTime")
        )

    # ---- reconcile -----------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        rs = self.primary.get(key)
        if rs is None:
            self.expect.pop(key, None)
            return None
        md, spec = pu.meta(rs), rs.get("spec") or {}
        uid = str(md.get("uid"))
        pods = self.pods.by_index("owner", uid)
        active = [p for p in pods if pu.is_active(p)]
        want = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
        exp = self.expect.get(key)
        requeue: float | None = None
        if not pu.is_terminating(rs) and (exp is None or exp.satisfied()):
            self.expect.pop(key, None)
            diff = len(active) - want
            if diff < 0:
                await self._create(key, rs, min(-diff, BURST))
            elif diff > 0:
                await self._delete(key, rs, active, min(diff, BURST))
        elif exp is not None:
            requeue = EXPECTATION_TTL
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = time.time()
        tpl_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        status = {
            "replicas": len(active),
            "fullyLabeledReplicas": sum(
                1
                for p in active
                if all(pu.meta(p).get("labels", {}).get(k) == v for k, v in tpl_labels.items())
            ),
            "readyReplicas": sum(1 for p in active if pu.is_ready(p)),
            "availableReplicas": sum(1 for p in active if pu.is_available(p, min_ready, now)),
            "observedGeneration": int(md.get("generation") or 1),
        }
        if min_ready and status["readyReplicas"] > status["availableReplicas"]:
            requeue = min(requeue or min_ready, float(min_ready))
        await self._write_status(rs, status)
        return requeue

    async def _write_status(self, rs: Obj, status: Obj) -> None:
        cur = rs.get("status") or {}
        if all(cur.get(k, 0) == v for k, v in status.items()):
            return
        md = pu.meta(rs)
        try:
            await self.api.patch(
                "replicasets",
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

    async def _create(self, key: str, rs: Obj, n: int) -> None:
        md = pu.meta(rs)
        template = (rs.get("spec") or {}).get("template") or {}
        body = pu.pod_from_template(rs, template, "ReplicaSet", "apps/v1")
        exp = self.expect.setdefault(key, Expectation())
        exp.adds += n
        exp.at = time.monotonic()
        # slow start (client-go): 1, 2, 4, ... so a template the server rejects fails once, not n times
        batch, done = 1, 0
        while done < n:
            size = min(batch, n - done)
            res = await asyncio.gather(
                *(
                    self.api.create("pods", body, namespace=md.get("namespace"), tenant=md.get("tenant"))
                    for _ in range(size)
                ),
                return_exceptions=True,
            )
            errors = [r for r in res if isinstance(r, BaseException)]
            done += size
            if errors:
                exp.adds -= len(errors) + (n - done)  # these will never be observed
                await self._event(rs, "FailedCreate", f"Error creating: {errors[0]}", "Warning")
                raise errors[0]
            batch *= 2
        await self._event(rs, "SuccessfulCreate", f"Created {n} pod(s)", "Normal")

    @staticmethod
    def _rank(pod: Obj) -> tuple[int, int, int, float]:
        """Deletion order (k8s ActivePods ranking): unscheduled, pending, not ready, newest first."""
        ph = {"Pending": 0, "Unknown": 1, "Running": 2}.get(pu.phase(pod), 1)
        created = pu.parse_rfc3339(pu.meta(pod).get("creationTimestamp")) or 0.0
        return (
            1 if (pod.get("spec") or {}).get("nodeName") else 0,
            ph,
            1 if pu.is_ready(pod) else 0,
            -created,
        )

    async def _delete(self, key: str, rs: Obj, active: list[Obj], n: int) -> None:
        victims = sorted(active, key=self._rank)[:n]
        exp = self.expect.setdefault(key, Expectation())
        exp.deletes |= {object_key(p) for p in victims}
        exp.at = time.monotonic()

        async def one(p: Obj) -> None:
            pmd = pu.meta(p)
            try:
                await self.api.delete(
                    "pods", pmd["name"], namespace=pmd.get("namespace"), tenant=pmd.get("tenant")
                )
            except ApiError as exc:
                exp.deletes.discard(object_key(p))
                if exc.code != 404:
                    raise

        res = await asyncio.gather(*(one(p) for p in victims), return_exceptions=True)
        errors = [r for r in res if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        await self._event(rs, "SuccessfulDelete", f"Deleted {len(victims)} pod(s)", "Normal")

    async def _event(self, obj: Obj, reason: str, message: str, typ: str) -> None:
        await emit_event(
            self.api, obj, "ReplicaSet", "apps/v1", reason, message, typ, "replicaset-controller"
        )


async def emit_event(
    api: Any, obj: Obj, kind: str, api_version: str, reason: str, message: str, typ: str, component: str
) -> None:
    """A core/v1 Event about ``obj`` in its namespace; failures to record are not errors."""
    md = pu.meta(obj)
    ts = pu.now_rfc3339()
    ev = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{md['name']}."},
        "involvedObject": {
            "apiVersion": api_version,
            "kind": kind,
            "name": md["name"],
            "namespace": md.get("namespace"),
            "uid": md.get("uid"),
            "resourceVersion": md.get("resourceVersion"),
        },
        "reason": reason,
        "message": message[:1000],
        "type": typ,
        "source": {"component": component},
        "reportingComponent": component,
        "firstTimestamp": ts,
        "lastTimestamp": ts,
        "count": 1,
    }
    try:
        await api.create("events", ev, namespace=md.get("namespace") or "default", tenant=md.get("tenant"))
    except (TimeoutError, ApiError, OSError):
        pass
