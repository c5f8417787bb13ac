"""A pod's Mizar Endpoint as the node side writes it, and the pods waiting for theirs.

Two node sides create pod Endpoints: the node network hook (``centaurus/netplug/mizar.py``, real
pods) and the hollow fleet (``centaurus/mizar/hollownet.py``, hollow pods that still cost the
management plane its real work). Both must write the same object -- the endpoint operator cannot
tell them apart except by the veth -- and both wait the same way: one endpoint watch per node or
fleet feeds :meth:`ProvisionWaiters.note`, each pod's setup awaits its own future.
"""

from __future__ import annotations

import asyncio
from typing import Any

from centaurus.mizar import model as M
from centaurus.netplug.base import NetworkError, PodNetRequest

Obj = dict[str, Any]


def pod_endpoint(
    pod: PodNetRequest,
    *,
    droplet: str,
    node: str,
    vpc: str,
    subnet: str,
    veth: str,
    mac: str | None,
    labels: dict[str, str] | None = None,
    finalizers: list[str] | None = None,
    **spec: Any,
) -> Obj:
    """The Endpoint of ``pod`` (its tenant/namespace, named after it, owned by it) on
    ``droplet``; ``spec`` adds fields (``itf``, ``netns``, ``vm``)."""
    md: Obj = {
        "name": pod.name,
        "namespace": pod.namespace,
        "labels": {M.L_DROPLET: droplet, M.L_POD_UID: pod.uid, **(labels or {})},
    }
    if finalizers:
        md["finalizers"] = list(finalizers)
    md["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Pod", "name": pod.name, "uid": pod.uid, "blockOwnerDeletion": False}
    ]
    body_spec: Obj = {
        "type": "simple",
        "vpc": vpc,
        "net": subnet,
        "droplet": droplet,
        "node": node,
        "veth": veth,
        "mac": mac,
        "pod": pod.name,
        "podUid": pod.uid,
        **spec,
    }
    return {"apiVersion": M.GV, "kind": "Endpoint", "metadata": md, "spec": body_spec}


class ProvisionWaiters:
    """Pods waiting for their Endpoint (key ``tenant/namespace/name``) to be Provisioned or
    Failed. Register with :meth:`expect` BEFORE creating the object, so a fast answer through
    the watch is never missed."""

    def __init__(self) -> None:
        self._futs: dict[str, list[asyncio.Future[Obj]]] = {}

    def expect(self, key: str) -> asyncio.Future[Obj]:
        fut: asyncio.Future[Obj] = asyncio.get_running_loop().create_future()
        self._futs.setdefault(key, []).append(fut)
        return fut

    def note(self, key: str, obj: Obj) -> None:
        """An endpoint object seen (watch event, list, or a GET): wakes its waiters when done."""
        if M.phase(obj) in (M.PROVISIONED, M.FAILED):
            for fut in self._futs.pop(key, []):
                if not fut.done():
                    fut.set_result(obj)

    async def wait(self, key: str, fut: asyncio.Future[Obj], timeout: float) -> Obj:
        """The endpoint once done; NetworkError ``EndpointNotProvisioned`` after ``timeout``."""
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise NetworkError(
                f"endpoint {key} not provisioned within {timeout:g} s", "EndpointNotProvisioned"
            ) from None
        finally:
            self.forget(key, fut)

    def forget(self, key: str, fut: asyncio.Future[Obj]) -> None:
        """Stop waiting (the pod's setup failed before :meth:`wait`)."""
        futs = self._futs.get(key, [])
        if fut in futs:
            futs.remove(fut)

    def cancel_all(self) -> None:
        for futs in self._futs.values():
            for f in futs:
                if not f.done():
                    f.cancel()
