"""Node lifecycle: lease expiry -> ``Ready=Unknown`` + taints -> pods evicted -> recreated elsewhere.

The node agent renews its Lease (``kube-node-lease/<node>``, system tenant). When a lease is older
than ``max(leaseDurationSeconds, node_grace)`` this controller (Kubernetes' node lifecycle
controller + taint manager, reduced):

1. sets the node's ``Ready`` condition (and the other agent-owned conditions) to ``Unknown``,
   reason ``NodeStatusUnknown``, and marks its pods ``Ready=False``;
2. taints it ``node.kubernetes.io/unreachable`` ``NoSchedule`` + ``NoExecute`` (a node that reports
   ``Ready=False`` itself gets ``node.kubernetes.io/not-ready`` the same way), so the scheduler
   avoids it;
3. evicts (deletes) its pods once the NoExecute taint is older than the pod's
   ``tolerationSeconds`` for it, or ``pod_eviction_timeout`` when the pod does not tolerate it
   (pods tolerating it forever stay); a deleted pod that nobody can stop (its agent is gone) is
   removed with grace 0 after its grace period. The ReplicaSets then create replacements, which
   the scheduler places on healthy nodes.

When the agent is back (``Ready=True`` from the agent) the taints are removed. Deadlines are
derived from the lease's ``renewTime`` and the taints' ``timeAdded``, so whichever instance owns a
node after a hand-over continues where the previous one stopped.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from centaurus.client.rest import ApiError
from centaurus.controllers import podutil as pu
from centaurus.controllers.replicaset import emit_event, pods_informer
from centaurus.controllers.runtime.controller import Controller
from centaurus.controllers.runtime.informer import Informer
from centaurus.controllers.runtime.sharding import parse_time

Obj = dict[str, Any]
LEASE_NS = "kube-node-lease"
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
OUR_TAINTS = (UNREACHABLE, NOT_READY)


def tolerates(pod: Obj, taint: Obj) -> tuple[bool, float | None]:
    """(tolerated, seconds) for a NoExecute taint; seconds None = forever."""
    for t in (pod.get("spec") or {}).get("tolerations") or ():
        eff = t.get("effect")
        if eff and eff != taint.get("effect"):
            continue
        op = t.get("operator") or "Equal"
        key = t.get("key")
        if key and key != taint.get("key"):
            continue
        if not key and op != "Exists":
            continue
        if op == "Equal" and key and t.get("value", "") != taint.get("value", ""):
            continue
        secs = t.get("tolerationSeconds")
        return True, None if secs is None else float(secs)
    return False, None


class NodeLifecycleController(Controller):
    ctype = "nodelifecycle"
    workers = 4

    def setup(self) -> Informer:
        self.grace = self.ctx.opt("node_grace", 0.0)
        self.default_grace = self.ctx.opt("node_default_grace", 40.0)
        self.eviction_timeout = self.ctx.opt("pod_eviction_timeout", 10.0)
        self.pods = pods_informer(self.ctx)
        self.leases = self.ctx.informers.get(
            "leases", tenant="system", namespace=LEASE_NS, transform=pu.slim_lease
        )
        return self.ctx.informers.get("nodes", tenant=None, transform=pu.slim_node)

    def wants(self, typ: str, old: Obj | None, new: Obj | None) -> bool:
        if typ != "MODIFIED" or old is None or new is None:
            return True
        return bool(
            (old.get("spec") or {}).get("taints") != (new.get("spec") or {}).get("taints")
            or pu.condition(old, "Ready") != pu.condition(new, "Ready")
        )

    # ---- reconcile -----------------------------------------------------------------------------
    def _deadline(self, node: Obj) -> float:
        """When the node counts as unreachable unless its lease is renewed first."""
        name = pu.meta(node)["name"]
        lease = self.leases.get(f"system/{LEASE_NS}/{name}")
        duration = self.default_grace
        renewed = None
        if lease is not None:
            spec = lease.get("spec") or {}
            renewed = parse_time(spec.get("renewTime"))
            duration = float(spec.get("leaseDurationSeconds") or duration)
        if renewed is None:
            renewed = pu.parse_rfc3339(pu.meta(node).get("creationTimestamp")) or time.time()
        return renewed + max(duration, self.grace)

    async def reconcile(self, key: str) -> float | None:
        node = self.primary.get(key)
        if node is None:
            return None
        now = time.time()
        deadline = self._deadline(node)
        ready = pu.condition(node, "Ready") or {}
        if now > deadline and ready.get("status") != "Unknown":
            await self._mark_unknown(node)
            return 0.5
        status = ready.get("status")
        want = UNREACHABLE if status == "Unknown" else NOT_READY if status == "False" else None
        changed = await self._set_taints(node, want)
        if changed:
            return 0.5
        if want is None:
            return max(0.5, deadline - now + 0.2)
        # tainted: evict what does not tolerate it
        taint = next(
            (
                t
                for t in (node.get("spec") or {}).get("taints") or ()
                if t.get("key") == want and t.get("effect") == "NoExecute"
            ),
            None,
        )
        since = pu.parse_rfc3339((taint or {}).get("timeAdded")) or now
        nxt = await self._evict(node, taint or {"key": want, "effect": "NoExecute"}, since, now)
        if status == "Unknown":
            return min(nxt, 2.0)  # watch for the lease coming back too
        return nxt

    async def _mark_unknown(self, node: Obj) -> None:
        md = pu.meta(node)
        now = pu.now_rfc3339()
        conds = []
        for c in (node.get("status") or {}).get("conditions") or ():
            c = dict(c)
            if c.get("status") != "Unknown":
                c.update(
                    status="Unknown",
                    reason="NodeStatusUnknown",
                    message="Kubelet stopped posting node status.",
                    lastTransitionTime=now,
                )
            conds.append(c)
        if not any(c.get("type") == "Ready" for c in conds):
            conds.append(
                {
                    "type": "Ready",
                    "status": "Unknown",
                    "reason": "NodeStatusNeverUpdated",
                    "message": "Kubelet never posted node status.",
                    "lastTransitionTime": now,
                }
            )
        self.log.info("node %s: lease expired -> Ready=Unknown", md["name"])
        await self.api.patch("nodes", md["name"], {"status": {"conditions": conds}}, subresource="status")
        await emit_event(
            self.api,
            {"metadata": {**md, "namespace": "default"}},
            "Node",
            "v1",
            "NodeNotReady",
            f"Node {md['name']} status is now: NodeNotReady",
            "Normal",
            "node-controller",
        )
        await self._pods_not_ready(md["name"])

    async def _pods_not_ready(self, node: str) -> None:
        sem = asyncio.Semaphore(16)

        async def one(p: Obj) -> None:
            pmd = pu.meta(p)
            conds = [
                {**c, "status": "False", "lastTransitionTime": pu.now_rfc3339()}
                if c.get("type") == "Ready"
                else c
                for c in (p.get("status") or {}).get("conditions") or ()
            ]
            async with sem:
                try:
                    await self.api.patch(
                        "pods",
                        pmd["name"],
                        {"status": {"conditions": conds}},
                        namespace=pmd.get("namespace"),
                        tenant=pmd.get("tenant"),
                        subresource="status",
                    )
                except ApiError as exc:
                    if exc.code != 404:
                        raise

        await asyncio.gather(*(one(p) for p in self.pods.by_index("node", node) if pu.is_ready(p)))

    async def _set_taints(self, node: Obj, want: str | None) -> bool:
        md = pu.meta(node)
        taints = list((node.get("spec") or {}).get("taints") or ())
        keep = [t for t in taints if t.get("key") not in OUR_TAINTS or t.get("key") == want]
        if want is not None:
            have = {t.get("effect") for t in keep if t.get("key") == want}
            now = pu.now_rfc3339()
            keep += [
                {"key": want, "effect": e, "timeAdded": now}
                for e in ("NoSchedule", "NoExecute")
                if e not in have
            ]
        if keep == taints:
            return False
        self.log.info("node %s: taints %s", md["name"], [f"{t.get('key')}:{t.get('effect')}" for t in keep])
        await self.api.patch("nodes", md["name"], {"spec": {"taints": keep or None}})
        return True

    async def _evict(self, node: Obj, taint: Obj, since: float, now: float) -> float:
        nxt = 30.0
        for pod in self.pods.by_index("node", pu.meta(node)["name"]):
            pmd = pu.meta(pod)
            if pu.phase(pod) in ("Succeeded", "Failed") and not pmd.get("deletionTimestamp"):
                continue
            if pmd.get("deletionTimestamp"):
                # nobody on the node will confirm the stop: remove it after its grace period
                grace = float(pmd.get("deletionGracePeriodSeconds") or 0)
                due = (pu.parse_rfc3339(pmd["deletionTimestamp"]) or now) + grace
                if now >= due:
                    await self._delete(pod, 0)
                else:
                    nxt = min(nxt, due - now + 0.1)
                continue
            ok, secs = tolerates(pod, taint)
            if ok and secs is None:
                continue
            due = since + (secs if ok and secs is not None else self.eviction_timeout)
            if now >= due:
                self.log.info(
                    "evicting pod %s/%s from node %s",
                    pmd.get("namespace"),
                    pmd["name"],
                    pu.meta(node)["name"],
                )
                await self._delete(pod, None)
                await emit_event(
                    self.api,
                    pod,
                    "Pod",
                    "v1",
                    "TaintManagerEviction",
                    f"Marking for deletion Pod {pmd['name']}",
                    "Normal",
                    "taint-controller",
                )
                nxt = min(nxt, 0.5)
            else:
                nxt = min(nxt, due - now + 0.1)
        return max(0.2, nxt)

    async def _delete(self, pod: Obj, grace: int | None) -> None:
        pmd = pu.meta(pod)
        await self.api.delete(
            "pods",
            pmd["name"],
            namespace=pmd.get("namespace"),
            tenant=pmd.get("tenant"),
            grace_period=grace,
            missing_ok=True,
        )
