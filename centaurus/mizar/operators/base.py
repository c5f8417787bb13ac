"""The operator base: the controller runtime's reconcile loop plus the Mizar pipeline.

* Ownership: every operator instance of the management plane is a member of ONE hash ring
  (controller type ``mizar``); an object is owned by the hash of its VPC (its own name for a
  Vpc, ``spec.vpc`` for the rest; Droplets by their own key), so a VPC, its subnets, bouncers,
  dividers and endpoints are always handled by the same instance (NET-7) and a subnet's address
  pool has exactly one writer.
* Pipeline: :meth:`reconcile` runs the step of the object's phase (``steps``) until it waits or
  fails, writing each advance on the object (:mod:`centaurus.mizar.pipeline`). A Provisioned
  object whose spec changed (``metadata.generation`` > ``status.observedGeneration``) goes back to
  ``respec_phase``; a Failed one back to Init. :meth:`maintain` runs periodic checks on
  Provisioned objects.
* Deletion: the first advance adds the finalizer ``mizar.com/operator``; an object being deleted
  runs :meth:`finalize` (undo what was programmed, delete children) until it returns None, then
  loses the finalizer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from centaurus.client.rest import ApiError
from centaurus.controllers.runtime.controller import Context, Controller
from centaurus.controllers.runtime.informer import FuncHandler, Informer, split_key
from centaurus.controllers.runtime.sharding import hash_of_text
from centaurus.mizar import model as M
from centaurus.mizar import pipeline as P
from centaurus.mizar.plane import Plane
from centaurus.transitd.rpc import TransitError

Obj = dict[str, Any]
Step = Callable[[Obj], Awaitable[P.Outcome]]
CTYPE = "mizar"


class MizarOperator(Controller):
    ctype = CTYPE
    workers = 8
    plural: ClassVar[str] = ""
    #: phase a Provisioned object goes back to when its spec changes ("" = never)
    respec_phase: ClassVar[str] = ""
    #: seconds between maintain() runs on a Provisioned object (None = never)
    maintain_every: ClassVar[float | None] = None

    def __init__(self, ctx: Context, plane: Plane) -> None:
        self.plane = plane
        self._memo_hash: dict[str, int] = {}
        super().__init__(ctx)
        self.steps: dict[str, Step] = self.pipeline()
        self.writes = 0

    # ---- to implement ----------------------------------------------------------------------------
    def pipeline(self) -> dict[str, Step]:
        raise NotImplementedError

    def vpc_name(self, obj: Obj) -> str:
        return str(M.spec(obj).get("vpc") or "")

    async def finalize(self, obj: Obj) -> float | None:
        """Undo what this object programmed; None when done, else seconds until a re-check."""
        return None

    async def maintain(self, obj: Obj) -> float | None:
        return self.maintain_every

    # ---- runtime hooks ---------------------------------------------------------------------------
    def setup(self) -> Informer:
        return self.plane.inf[self.plural]

    def hash_for(self, key: str) -> int:
        obj = self.primary.get(key)
        if obj is not None:
            vpc = self.vpc_name(obj)
            h = hash_of_text(M.mizar_key(vpc)) if vpc else hash_of_text(key)
            self._memo_hash[key] = h
            return h
        return self._memo_hash.get(key) or hash_of_text(key)

    def resync(self) -> None:
        self.plane.new_epoch()
        super().resync()

    async def run(self) -> None:
        """Reconcile only once EVERY cache of the plane is synced: a step that reads a half-filled
        cache would take a droplet for gone (and re-place its bouncers) or a subnet for empty."""
        await asyncio.gather(*(inf.wait_synced() for inf in self.plane.inf.values()))
        await super().run()

    async def _report_workload(self) -> None:
        """All operators share one controller type: one of them reports the instance's total."""
        m = self.ctx.membership
        if m is None or type(self).__name__ != "DropletOperator":
            return
        while True:
            total = sum(c.owned_count() for c in self.plane.operators)
            m.set_workload(self.ctype, total)
            await asyncio.sleep(2.0)

    def watch_related(
        self,
        plural: str,
        to_keys: Callable[[Obj], list[str]],
        when: Callable[[Obj | None, Obj | None], bool] | None = None,
    ) -> None:
        """Enqueue our objects ``to_keys(obj)`` when a ``plural`` object changes (``when``)."""
        inf = self.plane.inf[plural]

        def on(typ: str, old: Obj | None, new: Obj | None) -> None:
            if when is not None and not when(old, new):
                return
            for k in to_keys(new if new is not None else old or {}):
                self.enqueue(k)

        inf.add_handler(FuncHandler(on))

    @staticmethod
    def phase_changed(old: Obj | None, new: Obj | None) -> bool:
        return (
            old is None or new is None or M.phase(old) != M.phase(new) or M.deleting(new) != M.deleting(old)
        )

    # ---- writes ----------------------------------------------------------------------------------
    def _stale(self, obj: Obj) -> bool:
        uid = str(M.md(obj).get("uid") or "")
        return int(M.status(obj).get("seq") or 0) < self.plane.seq.get(uid, 0)

    def _where(self, obj: Obj) -> dict[str, Any]:
        return {"namespace": M.namespace_of(obj) or None, "tenant": M.tenant_of(obj), "group_version": M.GV}

    def _status_fields(self, obj: Obj, phase: str | None, fields: Obj) -> Obj:
        seq = max(int(M.status(obj).get("seq") or 0), self.plane.seq.get(str(M.md(obj).get("uid")), 0)) + 1
        st: Obj = {**fields, "seq": seq, "operator": self.plane.instance}
        if phase is not None:
            st["phase"] = phase
            st["reason"] = fields.get("reason", "")
            st["lastTransitionTime"] = M.now_ts()
        return st

    async def write(
        self,
        obj: Obj,
        *,
        phase: str | None = None,
        status: Obj | None = None,
        spec: Obj | None = None,
        labels: dict[str, str] | None = None,
        finalizer: bool = False,
    ) -> Obj:
        """Record a step: a merge patch of the status alone, or -- when spec fields, labels or the
        finalizer change too -- one JSON patch of exactly those fields (the finalizer list under a
        ``test`` of its cached value). No resourceVersion precondition: every field written is the
        operator's own, and objects seen through a cross-tenant watch carry a composite version
        that is not a usable precondition. Returns the new object."""
        st = self._status_fields(obj, phase, status or {})
        ann = (M.md(obj).get("annotations") or {}).get(M.A_OPERATOR)
        fins = list(M.md(obj).get("finalizers") or [])
        cur_labels = M.labels(obj)
        new_labels = {k: v for k, v in (labels or {}).items() if cur_labels.get(k) != v}
        add_fin = finalizer and M.FINALIZER not in fins
        if spec or new_labels or add_fin:
            ops: list[Obj] = []
            meta = obj.get("metadata") or {}
            if add_fin:
                if "finalizers" in meta:
                    ops.append({"op": "test", "path": "/metadata/finalizers", "value": fins})
                ops.append({"op": "add", "path": "/metadata/finalizers", "value": [*fins, M.FINALIZER]})
            if new_labels:
                ops.append({"op": "add", "path": "/metadata/labels", "value": {**cur_labels, **new_labels}})
            ops.append(
                {
                    "op": "add",
                    "path": "/metadata/annotations",
                    "value": {**(meta.get("annotations") or {}), M.A_OPERATOR: self.plane.instance},
                }
            )
            if spec:
                if not isinstance(obj.get("spec"), dict):
                    ops.append({"op": "add", "path": "/spec", "value": {}})
                ops += [{"op": "add", "path": f"/spec/{_ptr(k)}", "value": v} for k, v in spec.items()]
                st["observedGeneration"] = int(meta.get("generation") or 1) + 1
            ops.append({"op": "add", "path": "/status", "value": {**M.status(obj), **st}})
            out: Obj = await self.api.patch(self.plural, M.name(obj), ops, kind="json", **self._where(obj))
        else:
            patch: Obj = {"status": st}
            if ann != self.plane.instance:
                patch["metadata"] = {"annotations": {M.A_OPERATOR: self.plane.instance}}
            out = await self.api.patch(self.plural, M.name(obj), patch, **self._where(obj))
        self.writes += 1
        self.plane.seq[str(M.md(obj).get("uid"))] = int(st["seq"])
        return out

    async def remove_finalizer(self, obj: Obj) -> None:
        """Drop our finalizer (the last one: the object goes) under a ``test`` of the cached list."""
        fins = list(M.md(obj).get("finalizers") or [])
        ops = [
            {"op": "test", "path": "/metadata/finalizers", "value": fins},
            {"op": "replace", "path": "/metadata/finalizers", "value": [f for f in fins if f != M.FINALIZER]},
        ]
        try:
            await self.api.patch(self.plural, M.name(obj), ops, kind="json", **self._where(obj))
        except ApiError as exc:
            if exc.code != 404:
                raise

    # ---- the loop --------------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        obj = self.primary.get(key)
        if obj is None:
            self._memo_hash.pop(key, None)
            return None
        if self._stale(obj):
            return None  # our newer write is on its way through the watch
        if M.deleting(obj):
            if M.FINALIZER not in (M.md(obj).get("finalizers") or []):
                return None
            again = await self.finalize(obj)
            if again is not None:
                return again
            await self.remove_finalizer(obj)
            return None
        gen = int(M.md(obj).get("generation") or 1)
        observed = int(M.status(obj).get("observedGeneration") or 0)
        ph = M.phase(obj)
        if ph == M.PROVISIONED:
            if self.respec_phase and observed and gen > observed:
                obj = await self.write(obj, phase=self.respec_phase, status={"observedGeneration": gen})
            else:
                if M.status(obj).get("operator") != self.plane.instance:
                    # the hash ring moved this VPC here: say who owns it now (one write per object
                    # of the moved share -- what NET-7's moved fraction counts)
                    obj = await self.write(obj, status={})
                return await self.maintain(obj)
        elif ph == M.FAILED:
            if gen <= observed:
                return None
            obj = await self.write(obj, phase=M.INIT, status={"observedGeneration": gen})
        return await self.drive(obj)

    async def drive(self, obj: Obj) -> float | None:
        for _ in range(16):  # a pipeline is a handful of steps; the bound stops a cycling bug
            ph = M.phase(obj)
            step = self.steps.get(ph)
            if step is None:
                return None
            try:
                out = await step(obj)
            except TransitError as exc:
                out = P.wait(str(exc), 0.5)
            if out.kind == "advance":
                st = dict(out.status)
                st.setdefault("observedGeneration", int(M.md(obj).get("generation") or 1))
                obj = await self.write(
                    obj,
                    phase=out.phase,
                    status=st,
                    spec=out.spec or None,
                    labels=out.labels or None,
                    finalizer=True,
                )
                if out.phase == M.PROVISIONED:
                    await self.on_provisioned(obj)
                continue
            if out.kind == "fail":
                self.log.info("%s/%s failed: %s", self.plural, M.name(obj), out.reason)
                await self.write(
                    obj,
                    phase=M.FAILED,
                    status={
                        "reason": out.reason,
                        "observedGeneration": int(M.md(obj).get("generation") or 1),
                    },
                )
                return None
            if M.status(obj).get("reason") != out.reason:
                await self.write(obj, status={"reason": out.reason})
            return out.delay
        return 1.0

    async def on_provisioned(self, obj: Obj) -> None:
        """Hook after an object reached Provisioned (e.g. log a provisioning figure)."""

    # ---- helpers for subclasses -----------------------------------------------------------------
    async def create_child(self, plural: str, body: Obj) -> None:
        try:
            await self.api.create(plural, body, namespace=M.MIZAR_NS, tenant=M.SYSTEM, group_version=M.GV)
        except ApiError as exc:
            if exc.code != 409:
                raise

    async def delete_obj(self, plural: str, name: str) -> None:
        await self.api.delete(
            plural, name, namespace=M.MIZAR_NS, tenant=M.SYSTEM, group_version=M.GV, missing_ok=True
        )

    def keys_of(self, objs: list[Obj]) -> list[str]:
        return [M.key_of(o) for o in objs]

    @staticmethod
    def owner_ref(obj: Obj) -> Obj:
        return {
            "apiVersion": M.GV,
            "kind": obj.get("kind") or "",
            "name": M.name(obj),
            "uid": M.md(obj).get("uid"),
            "controller": True,
            "blockOwnerDeletion": True,
        }

    @staticmethod
    def split(key: str) -> tuple[str, str, str]:
        return split_key(key)

    @staticmethod
    def monotonic() -> float:
        return time.monotonic()


def _ptr(key: str) -> str:
    """A JSON pointer token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")
