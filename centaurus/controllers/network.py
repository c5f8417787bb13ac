"""Network controller: Arktos ``Network`` objects (``arktos.futurewei.com/v1``, tenant-scoped,
``/api/v1/tenants/{t}/networks``), made Ready by the provider their ``spec.type`` names.

Providers are plug-ins (entry-point group ``centaurus.network_providers``): ``flat`` -- the
kernel baseline, nothing to provision, Ready at once with the cluster's pod CIDR; ``mizar`` --
the XDP overlay: the provider creates the network's Mizar VPC and subnet and the Network is
Ready when the subnet is Provisioned (:mod:`centaurus.mizar.network`). Status: ``phase``
Pending -> Ready (Failed with ``message``; Terminating while deleted), plus what pods need
(``cidr``, ``gateway``; ``vpc``/``subnet``/``vni`` for mizar).

Every tenant gets a ``default`` Network from the tenant controller (:func:`ensure_default_network`
is appended to its hooks): its spec comes from the default network template, the ConfigMap
``kube-system/default-network-template`` of the system tenant (key ``template.json``, Arktos'
``--default-network-template-path``), ``{"type": "flat"}`` when there is none. The node
components of a deployment write the template (a Mizar lab: ``{"type": "mizar"}``).
"""

from __future__ import annotations

import json
import logging
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from centaurus.client.aio import AsyncClient
from centaurus.client.rest import ApiError
from centaurus.controllers.gc import register_kind
from centaurus.controllers.runtime.controller import Controller
from centaurus.controllers.runtime.informer import FuncHandler, Informer
from centaurus.controllers.tenant import TENANT_HOOKS

log = logging.getLogger("centaurus.controllers.network")
Obj = dict[str, Any]
GV = "arktos.futurewei.com/v1"
FINALIZER = "arktos.futurewei.com/network"
DEFAULT_ANNOTATION = "arktos.futurewei.com/default-network"
TEMPLATE_NS = "kube-system"
TEMPLATE_NAME = "default-network-template"
PROVIDER_GROUP = "centaurus.network_providers"
FLAT_CIDR = "10.244.0.0/16"

PENDING, READY, FAILED, TERMINATING = "Pending", "Ready", "Failed", "Terminating"


@runtime_checkable
class NetworkProvider(Protocol):
    """Makes Networks of one ``spec.type`` real. ``reconcile`` returns the status to publish
    (``phase`` and fields) and optionally seconds until a re-check; ``finalize`` returns True
    when everything the network owned is gone."""

    type: str

    def setup(self, ctrl: NetworkController) -> None: ...

    async def reconcile(self, ctrl: NetworkController, net: Obj) -> tuple[Obj, float | None]: ...

    async def finalize(self, ctrl: NetworkController, net: Obj) -> bool: ...


class FlatProvider:
    """The kernel baseline: node bridges and routes between nodes (netplug ``flat``); the
    network is the cluster's pod CIDR, nothing to provision centrally."""

    type = "flat"

    def setup(self, ctrl: NetworkController) -> None:
        return None

    async def reconcile(self, ctrl: NetworkController, net: Obj) -> tuple[Obj, float | None]:
        cidr = (net.get("spec") or {}).get("cidr") or ctrl.ctx.options.get("cluster_cidr", FLAT_CIDR)
        return {"phase": READY, "cidr": cidr, "message": ""}, None

    async def finalize(self, ctrl: NetworkController, net: Obj) -> bool:
        return True


def load_providers() -> dict[str, NetworkProvider]:
    out: dict[str, NetworkProvider] = {"flat": FlatProvider()}
    for ep in entry_points(group=PROVIDER_GROUP):
        try:
            out[ep.name] = ep.load()()
        except Exception as exc:  # a broken plug-in must not take the other types down
            log.warning("network provider %s cannot be loaded: %s", ep.name, exc)
    return out


class NetworkController(Controller):
    ctype = "network"
    workers = 4

    def setup(self) -> Informer:
        self.providers = load_providers()
        inf = self.ctx.informers.get("networks", tenant="all", group_version=GV)
        self.inf = inf
        for p in self.providers.values():
            p.setup(self)
        # a tenant being deleted takes its networks with it (its VPCs leave the droplets)
        self.tenants = self.ctx.informers.get("tenants", tenant=None)
        self.tenants.add_handler(FuncHandler(self._on_tenant))
        return inf

    def _on_tenant(self, typ: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old or {}
        if typ == "DELETED" or (obj.get("metadata") or {}).get("deletionTimestamp"):
            name = (obj.get("metadata") or {}).get("name")
            for key in [k for k in self.inf.cache if k.split("/", 1)[0] == name]:
                self.enqueue(key)

    def _tenant_gone(self, tenant: str) -> bool:
        if not self.tenants.synced.is_set() or tenant == "system":
            return False
        t = self.tenants.get(f"//{tenant}")
        return t is None or bool((t.get("metadata") or {}).get("deletionTimestamp"))

    async def _write_status(self, net: Obj, status: Obj) -> None:
        """Merge-patch the status (no resourceVersion: Networks come from a cross-tenant watch,
        whose composite versions are no preconditions; the status is this controller's alone)."""
        cur = net.get("status") or {}
        want = {**cur, **status, "observedGeneration": net["metadata"].get("generation", 1)}
        if want == cur:
            return
        md = net["metadata"]
        await self.api.patch(
            "networks",
            md["name"],
            {"status": want},
            tenant=md.get("tenant"),
            group_version=GV,
            subresource="status",
        )

    async def _set_finalizers(self, net: Obj, fins: list[str]) -> None:
        md = net["metadata"]
        have = md.get("finalizers")
        ops: list[Obj] = (
            [{"op": "test", "path": "/metadata/finalizers", "value": have}] if have is not None else []
        )
        ops.append({"op": "add", "path": "/metadata/finalizers", "value": fins})
        try:
            await self.api.patch(
                "networks", md["name"], ops, kind="json", tenant=md.get("tenant"), group_version=GV
            )
        except ApiError as exc:
            if exc.code != 404:
                raise

    async def reconcile(self, key: str) -> float | None:
        net = self.primary.get(key)
        if net is None:
            return None
        md = net["metadata"]
        typ = str((net.get("spec") or {}).get("type") or "")
        fins = list(md.get("finalizers") or [])
        handled = str((net.get("status") or {}).get("type") or "")
        if not md.get("deletionTimestamp") and self._tenant_gone(str(md.get("tenant") or "")):
            await self.api.delete(
                "networks", md["name"], tenant=md.get("tenant"), group_version=GV, missing_ok=True
            )
            return None
        if md.get("deletionTimestamp"):
            if FINALIZER not in fins:
                return None
            if (net.get("status") or {}).get("phase") != TERMINATING:
                await self._write_status(net, {"phase": TERMINATING})
            for t in dict.fromkeys([handled, typ]):
                p = self.providers.get(t)
                if p is not None and not await p.finalize(self, net):
                    return 1.0
            await self._set_finalizers(net, [f for f in fins if f != FINALIZER])
            return None
        provider = self.providers.get(typ)
        if provider is None:
            await self._write_status(
                net,
                {
                    "phase": FAILED,
                    "message": f"unknown network type {typ!r} (known: {', '.join(sorted(self.providers))})",
                },
            )
            return None
        if FINALIZER not in fins:
            await self._set_finalizers(net, [*fins, FINALIZER])
            return None  # the update comes back through the watch
        if handled and handled != typ:  # the type changed: the old provider lets go first
            old = self.providers.get(handled)
            if old is not None and not await old.finalize(self, net):
                await self._write_status(net, {"phase": PENDING, "message": f"releasing {handled} resources"})
                return 1.0
        status, again = await provider.reconcile(self, net)
        await self._write_status(net, {**status, "type": typ})
        return again


# ---- the tenant's default network ------------------------------------------------------------------
async def default_template(api: AsyncClient) -> Obj:
    try:
        cm = await api.get("configmaps", TEMPLATE_NAME, namespace=TEMPLATE_NS, tenant="system")
    except ApiError as exc:
        if exc.code != 404:
            raise
        return {"type": "flat"}
    try:
        doc = json.loads((cm.get("data") or {}).get("template.json") or "{}")
    except ValueError:
        log.warning("default network template is not JSON; using flat")
        return {"type": "flat"}
    spec = doc.get("spec", doc) if isinstance(doc, dict) else {}
    return dict(spec) if isinstance(spec, dict) and spec.get("type") else {"type": "flat"}


async def ensure_default_network(api: AsyncClient, tenant: Obj) -> None:
    """Tenant hook: the tenant's ``default`` Network, from the template (idempotent)."""
    name = tenant["metadata"]["name"]
    try:
        await api.get("networks", "default", tenant=name, group_version=GV)
        return
    except ApiError as exc:
        if exc.code != 404:
            raise
        if not (exc.status.get("details") or {}).get("name"):
            return  # no Network kind served (network control not installed): nothing to default
    spec = await default_template(api)
    body = {
        "apiVersion": GV,
        "kind": "Network",
        "metadata": {"name": "default", "annotations": {DEFAULT_ANNOTATION: "true"}},
        "spec": spec,
    }
    try:
        await api.create("networks", body, tenant=name, group_version=GV)
    except ApiError as exc:
        if exc.code != 409:
            raise


if ensure_default_network not in TENANT_HOOKS:
    TENANT_HOOKS.append(ensure_default_network)
# a pod's Mizar Endpoint is owned by the pod: the collector deletes it (through the endpoint
# operator's finalizer) when the pod is gone and its node agent could not (crash, node lost)
register_kind("Endpoint", "endpoints", "mizar.com/v1")
