"""Active-active controllers: work split by hash ranges over the live instances, no leader.

Shapes follow Arktos. Every object carries ``metadata.hashKey`` (0 .. 2^63-1, set by the API
server at creation). Every controller process (an *instance*) registers, per controller type, one
``ControllerInstance`` object (``/api/v1/controllerinstances``, name ``<type>-<instance>``) with
``controllerKey``: the instances' keys cut the hash ring into arcs and an instance owns the arc
that ends at its key, ``(predecessor's key, own key]`` (wrapping at 2^63). ``workloadNum`` is the
number of objects it owns right now; ``isLocked`` is true while it joins.

Liveness: one ``Lease`` per instance (system tenant, namespace ``kube-system``, name = instance),
renewed every ``renew_every`` seconds. An instance whose lease is older than its
``leaseDurationSeconds`` is dead: any survivor deletes its ControllerInstance objects and lease,
and the arc merges into the next instance's (consistent hashing: nothing else moves).

Hand-over protocol (why no object is reconciled by two instances at once):

1. *Join.* A new instance picks the midpoint of the largest arc as its key (so it takes the lower
   half of the busiest range; Arktos does the same) and registers **locked**. Locked instances
   own nothing.
2. Every running instance that sees the new member recomputes its arc at once (dropping the
   carved-out half), **drains** -- waits until no reconcile of a key outside its new arc is in
   flight -- and then acknowledges by publishing the member list it applies in the annotation
   ``centaurus.io/ring`` of its own ControllerInstance (``name@key,...``).
3. The new instance unlocks when every other live member's annotation lists it (or that member
   is dead). Only then does it start reconciling its arc (and resyncs it).
4. *Death.* An instance fences itself: when its own lease has not been renewed successfully for
   ``lease_duration - fence_margin`` seconds it owns nothing until a renewal succeeds. Survivors
   declare it dead only after the full ``lease_duration`` since its last renewal, so by then it
   has stopped; they take over without waiting for any acknowledgement.
5. *Leave.* On SIGTERM an instance stops reconciling, then deletes its objects: its arc moves at
   once.

Two instances that picked the same key (simultaneous joins) are told apart by name: the greater
name re-picks while still locked. Clocks: lease times are wall-clock UTC from one machine (or
NTP-synchronised ones), as for Kubernetes leader election.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from centaurus.client.aio import AsyncClient
from centaurus.client.rest import ApiError
from centaurus.controllers.runtime.informer import Informer

log = logging.getLogger("centaurus.controllers.sharding")

RING = 2**63
MAX_KEY = RING - 1
LEASE_NAMESPACE = "kube-system"
INSTANCE_LABEL = "centaurus.io/controller-instance"
RING_ANNOTATION = "centaurus.io/ring"
Obj = dict[str, Any]


def hash_of_text(text: str) -> int:
    """The hash the API server uses for ``metadata.hashKey`` (of the uid); here a fallback for
    objects that have none (keys of tenants/namespaces/nodes are hashed by name)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") >> 1


def hash_key(obj: Obj) -> int:
    md = obj.get("metadata") or {}
    hk = md.get("hashKey")
    if isinstance(hk, int) and not isinstance(hk, bool) and 0 <= hk < RING:
        return hk
    return hash_of_text(str(md.get("uid") or f"{md.get('tenant')}/{md.get('namespace')}/{md.get('name')}"))


@dataclass(frozen=True, order=True)
class Member:
    key: int
    name: str
    locked: bool = False

    @property
    def tag(self) -> str:
        return f"{self.name}@{self.key}"


class Ring:
    """Members sorted by key; ``owner(h)`` = the first member whose key >= h, wrapping."""

    def __init__(self, members: list[Member]) -> None:
        self.members = sorted(members)
        self._keys = [m.key for m in self.members]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ring) and self.members == other.members

    def __hash__(self) -> int:
        return hash(tuple(self.members))

    def __len__(self) -> int:
        return len(self.members)

    def owner(self, h: int) -> Member | None:
        if not self.members:
            return None
        i = bisect.bisect_left(self._keys, h)
        return self.members[i % len(self.members)]

    def arc(self, name: str) -> tuple[int, int] | None:
        """(exclusive lower bound, inclusive upper bound) of ``name``'s arc; lower > upper wraps."""
        for i, m in enumerate(self.members):
            if m.name == name:
                pred = self.members[i - 1].key if len(self.members) > 1 else m.key
                return pred, m.key
        return None

    def pick_key(self) -> int:
        """Midpoint of the largest arc (ties: the lowest key): the joiner takes its lower half."""
        if not self.members:
            return MAX_KEY
        best, best_len = self.members[0], -1
        for i, m in enumerate(self.members):
            pred = self.members[i - 1].key
            length = (m.key - pred) % RING or RING
            if length > best_len:
                best, best_len = m, length
        return (best.key - best_len + best_len // 2) % RING

    def tags(self) -> str:
        return ",".join(m.tag for m in self.members)


def parse_time(s: str | None) -> float | None:
    if not s:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        with contextlib.suppress(ValueError):
            return datetime.strptime(s, fmt).replace(tzinfo=UTC).timestamp()
    return None


def micro_time(t: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if t is None else t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


DrainedFn = Callable[[], bool]
ResyncFn = Callable[[], None]


class Membership:
    """This instance's registration, the live rings per controller type, and ownership answers."""

    def __init__(
        self,
        api: AsyncClient,
        instance: str,
        types: list[str],
        *,
        lease_duration: float = 5.0,
        renew_every: float = 1.0,
        fence_margin: float = 1.0,
    ) -> None:
        self.api = api
        self.instance = instance
        self.types = list(types)
        self.lease_duration = lease_duration
        self.renew_every = renew_every
        self.fence_margin = fence_margin
        self.instances = Informer(api, "controllerinstances", tenant=None)
        self.leases = Informer(
            api, "leases", tenant="system", namespace=LEASE_NAMESPACE, label_selector=INSTANCE_LABEL
        )
        #: applied rings: what ownership answers are based on
        self.rings: dict[str, Ring] = {t: Ring([]) for t in types}
        self.workload: dict[str, int] = {t: 0 for t in types}
        self._published_workload: dict[str, int] = {}
        self._last_renew_ok = 0.0
        self._drained: dict[str, list[DrainedFn]] = {t: [] for t in types}
        self._resyncs: dict[str, list[ResyncFn]] = {t: [] for t in types}
        self._kick = asyncio.Event()
        self._stopping = False
        #: the API server serves no ControllerInstance kind: this instance owns everything (only
        #: correct with one instance; logged loudly)
        self.solo = False
        self.ready = asyncio.Event()

    # ---- ownership ---------------------------------------------------------------------------
    @property
    def fenced(self) -> bool:
        return time.time() - self._last_renew_ok > self.lease_duration - self.fence_margin

    def owns(self, ctype: str, h: int) -> bool:
        if self._stopping:
            return False
        if self.solo:
            return True
        if self.fenced:
            return False
        m = self.rings[ctype].owner(h)
        return m is not None and m.name == self.instance and not m.locked

    def on_change(self, ctype: str, drained: DrainedFn, resync: ResyncFn) -> None:
        """``drained()``: no reconcile of a key this instance no longer owns is in flight;
        ``resync()``: queue every cached key (called when the owned arc grew)."""
        self._drained[ctype].append(drained)
        self._resyncs[ctype].append(resync)

    def set_workload(self, ctype: str, n: int) -> None:
        self.workload[ctype] = n

    def ci_name(self, ctype: str) -> str:
        return f"{ctype}-{self.instance}"

    # ---- lease ---------------------------------------------------------------------------------
    async def _renew(self) -> None:
        started = time.time()
        body: Obj = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.instance,
                "namespace": LEASE_NAMESPACE,
                "labels": {INSTANCE_LABEL: "true"},
            },
            "spec": {
                "holderIdentity": self.instance,
                "leaseDurationSeconds": max(1, round(self.lease_duration)),
                "renewTime": micro_time(started),
            },
        }
        try:
            await self.api.patch(
                "leases", self.instance, {"spec": body["spec"]}, namespace=LEASE_NAMESPACE, tenant="system"
            )
        except ApiError as exc:
            if exc.code != 404:
                raise
            await self._ensure_namespace()
            body["spec"]["acquireTime"] = body["spec"]["renewTime"]
            await self.api.create("leases", body, namespace=LEASE_NAMESPACE, tenant="system")
        self._last_renew_ok = started

    async def _ensure_namespace(self) -> None:
        with contextlib.suppress(ApiError):
            await self.api.create(
                "namespaces",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NAMESPACE}},
                tenant="system",
            )

    def _lease_expiry(self, instance: str) -> float | None:
        lease = self.leases.get(f"system/{LEASE_NAMESPACE}/{instance}")
        if lease is None:
            return None
        spec = lease.get("spec") or {}
        t = parse_time(spec.get("renewTime"))
        if t is None:
            return None
        return t + float(spec.get("leaseDurationSeconds") or self.lease_duration)

    # ---- the ring --------------------------------------------------------------------------------
    def _live(self, ctype: str, now: float) -> tuple[list[Obj], list[Obj]]:
        """(live, dead) ControllerInstance objects of one type."""
        live: list[Obj] = []
        dead: list[Obj] = []
        for ci in self.instances.objects():
            if ci.get("controllerType") != ctype:
                continue
            inst = ((ci["metadata"].get("labels") or {}).get(INSTANCE_LABEL)) or ""
            if inst == self.instance:
                live.append(ci)
                continue
            expiry = self._lease_expiry(inst)
            if expiry is None:
                born = parse_time(ci["metadata"].get("creationTimestamp")) or now
                expiry = born + self.lease_duration + 2.0  # its lease may not be visible yet
            (live if now <= expiry else dead).append(ci)
        return live, dead

    @staticmethod
    def _member(ci: Obj) -> Member:
        inst = (ci["metadata"].get("labels") or {}).get(INSTANCE_LABEL) or ci["metadata"]["name"]
        return Member(int(ci.get("controllerKey") or 0), inst, bool(ci.get("isLocked")))

    async def _register(self, ctype: str, live: list[Obj]) -> Obj:
        others = Ring([self._member(ci) for ci in live])
        key = others.pick_key()
        body: Obj = {
            "apiVersion": "v1",
            "kind": "ControllerInstance",
            "metadata": {
                "name": self.ci_name(ctype),
                "labels": {INSTANCE_LABEL: self.instance},
                "annotations": {RING_ANNOTATION: ""},
            },
            "controllerType": ctype,
            "controllerKey": key,
            "workloadNum": 0,
            "isLocked": True,
        }
        log.info("%s: joining the %s ring at key %d (locked)", self.instance, ctype, key)
        try:
            out: Obj = await self.api.create("controllerinstances", body)
        except ApiError as exc:
            if exc.code != 409:
                raise
            out = await self.api.get("controllerinstances", self.ci_name(ctype))
        self.instances.apply({"type": "MODIFIED", "object": out})
        return out

    async def _update_own(self, ctype: str, patch: Obj) -> None:
        out = await self.api.patch("controllerinstances", self.ci_name(ctype), patch)
        self.instances.apply({"type": "MODIFIED", "object": out})

    async def _step(self, ctype: str) -> None:
        now = time.time()
        live, dead = self._live(ctype, now)
        for ci in dead:
            inst = (ci["metadata"].get("labels") or {}).get(INSTANCE_LABEL) or ""
            log.info(
                "%s: instance %s is dead (lease expired): taking over its %s range",
                self.instance,
                inst,
                ctype,
            )
            await self.api.delete("controllerinstances", ci["metadata"]["name"], missing_ok=True)
            self.instances.apply({"type": "DELETED", "object": ci})
            remaining = {
                (c["metadata"].get("labels") or {}).get(INSTANCE_LABEL) for c in self.instances.objects()
            }
            if inst and inst not in remaining:
                await self.api.delete(
                    "leases", inst, namespace=LEASE_NAMESPACE, tenant="system", missing_ok=True
                )
        own = next((ci for ci in live if ci["metadata"]["name"] == self.ci_name(ctype)), None)
        if own is None:
            own = await self._register(ctype, live)
            live.append(own)
        me = self._member(own)
        clash = [m for m in (self._member(ci) for ci in live) if m.key == me.key and m.name < me.name]
        if clash:
            others = Ring([self._member(ci) for ci in live if ci is not own])
            key = others.pick_key()
            log.info(
                "%s: key %d of %s taken by %s; re-picking %d",
                self.instance,
                me.key,
                ctype,
                clash[0].name,
                key,
            )
            await self._update_own(ctype, {"controllerKey": key, "isLocked": True})
            return
        ring = Ring([self._member(ci) for ci in live])
        if ring != self.rings[ctype]:
            grew = self._owned_grew(self.rings[ctype], ring)
            self.rings[ctype] = ring  # stop taking keys outside the new arc at once
            if grew:
                for resync in self._resyncs[ctype]:
                    resync()
        ann = (own["metadata"].get("annotations") or {}).get(RING_ANNOTATION)
        patch: Obj = {}
        # acknowledge the ring only once the reconciles of keys we gave up have finished
        if ann != ring.tags() and all(d() for d in self._drained[ctype]):
            patch["metadata"] = {"annotations": {RING_ANNOTATION: ring.tags()}}
        if me.locked and self._acknowledged(me, live):
            log.info("%s: every live %s instance acknowledged key %d: unlocked", self.instance, ctype, me.key)
            patch["isLocked"] = False
        wl = self.workload[ctype]
        if own.get("workloadNum") != wl:
            patch["workloadNum"] = wl
        if patch:
            await self._update_own(ctype, patch)
            if patch.get("isLocked") is False:
                self._kick.set()

    def _owned_grew(self, old: Ring, new: Ring) -> bool:
        def arc(r: Ring) -> tuple[int, int] | None:
            m = next((m for m in r.members if m.name == self.instance), None)
            return r.arc(self.instance) if m is not None and not m.locked else None

        return arc(old) != arc(new) and arc(new) is not None

    def _acknowledged(self, me: Member, live: list[Obj]) -> bool:
        for ci in live:
            m = self._member(ci)
            if m.name == self.instance:
                continue
            seen = ((ci["metadata"].get("annotations") or {}).get(RING_ANNOTATION) or "").split(",")
            if me.tag not in seen:
                return False
        return True

    # ---- run ------------------------------------------------------------------------------------
    def _on_event(self, *_: Any) -> None:
        self._kick.set()

    async def run(self) -> None:
        from centaurus.controllers.runtime.informer import FuncHandler

        while True:
            try:
                await self.api.list("controllerinstances", limit=1)
                break
            except ApiError as exc:
                if exc.code != 404:
                    raise
                if not self.solo:
                    log.warning("%s: no controllerinstances API: owning everything", self.instance)
                    self.solo = True
                    for resyncs in self._resyncs.values():
                        for resync in resyncs:
                            resync()
                    self.ready.set()
                await asyncio.sleep(10.0)
            except (OSError, TimeoutError) as exc:
                log.warning("%s: %s", self.instance, exc)
                await asyncio.sleep(1.0)
        self.solo = False
        self.instances.add_handler(FuncHandler(self._on_event))
        tasks = [asyncio.create_task(self.instances.run()), asyncio.create_task(self.leases.run())]
        try:
            await self.instances.wait_synced()
            await self.leases.wait_synced()
            last_renew = 0.0
            while True:
                now = time.time()
                if now - last_renew >= self.renew_every:
                    try:
                        await self._renew()
                        last_renew = now
                    except (TimeoutError, ApiError, OSError) as exc:
                        log.warning("%s: lease renewal failed: %s", self.instance, exc)
                try:
                    for ctype in self.types:
                        await self._step(ctype)
                    self.ready.set()
                except (TimeoutError, ApiError, OSError) as exc:
                    log.warning("%s: membership step failed: %s", self.instance, exc)
                self._kick.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._kick.wait(), max(0.05, self.renew_every / 2))
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def leave(self) -> None:
        """Graceful exit: stop owning, then delete our objects so the arcs move at once."""
        self._stopping = True
        for ctype in self.types:
            with contextlib.suppress(ApiError, OSError, asyncio.TimeoutError):
                await self.api.delete("controllerinstances", self.ci_name(ctype), missing_ok=True)
        with contextlib.suppress(ApiError, OSError, asyncio.TimeoutError):
            await self.api.delete(
                "leases", self.instance, namespace=LEASE_NAMESPACE, tenant="system", missing_ok=True
            )
