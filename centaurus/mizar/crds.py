"""The CustomResourceDefinitions of the network control plane, registered in the system tenant
(visible to every tenant) when the control plane starts.

* ``mizar.com/v1``: Vpc, Subnet, Endpoint, Droplet, Bouncer, Divider -- namespaced, no status
  subresource (Mizar keeps the pipeline state on the object itself, so one write records a step:
  the provisioning path counts writes);
* ``arktos.futurewei.com/v1`` Network -- tenant-scoped (``scope: Cluster`` in a tenant), with the
  status subresource: users own the spec, the network controller the status.

:func:`ensure` (blocking, used by the control-plane component hook) and :func:`ensure_async`
(operators at start) create missing CRDs and bring changed ones up to date; both are idempotent.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from centaurus.client.rest import ApiClient, ApiError
from centaurus.mizar import model as M

CRD_GV = "apiextensions.k8s.io/v1"
Obj = dict[str, Any]

_OPEN = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _col(name: str, path: str, typ: str = "string") -> dict[str, str]:
    return {"name": name, "type": typ, "jsonPath": path}


PHASE_COLS = [_col("Status", ".status.phase"), _col("Operator", ".status.operator")]
MIZAR_COLUMNS: dict[str, list[dict[str, str]]] = {
    "vpcs": [
        _col("Ip", ".spec.ip"),
        _col("Prefix", ".spec.prefix"),
        _col("Vni", ".status.vni"),
        _col("Dividers", ".spec.dividers", "integer"),
    ],
    "subnets": [
        _col("Ip", ".spec.ip"),
        _col("Prefix", ".spec.prefix"),
        _col("Vpc", ".spec.vpc"),
        _col("Bouncers", ".spec.bouncers", "integer"),
    ],
    "endpoints": [
        _col("Type", ".spec.type"),
        _col("Ip", ".spec.ip"),
        _col("Vpc", ".spec.vpc"),
        _col("Net", ".spec.net"),
        _col("Droplet", ".spec.droplet"),
    ],
    "droplets": [_col("Ip", ".spec.ip"), _col("Mac", ".spec.mac"), _col("Zone", ".spec.zone")],
    "bouncers": [_col("Vpc", ".spec.vpc"), _col("Net", ".spec.net"), _col("Droplet", ".spec.droplet")],
    "dividers": [_col("Vpc", ".spec.vpc"), _col("Droplet", ".spec.droplet")],
}
SHORT_NAMES = {
    "vpcs": ["vpc"],
    "subnets": ["subnet"],
    "endpoints": ["ep", "eps"],
    "droplets": ["drp", "drps"],
    "bouncers": ["bnc"],
    "dividers": ["dvd"],
}


def _crd(
    group: str,
    plural: str,
    kind: str,
    scope: str,
    columns: list[dict[str, str]],
    short: list[str],
    status_subresource: bool,
) -> Obj:
    version: Obj = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {"spec": _OPEN, "status": _OPEN},
            }
        },
        "additionalPrinterColumns": [*columns, _col("Age", ".metadata.creationTimestamp", "date")],
    }
    if status_subresource:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": CRD_GV,
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{group}",
            "labels": {"app.kubernetes.io/part-of": "centaurus-network"},
        },
        "spec": {
            "group": group,
            "scope": scope,
            "names": {
                "plural": plural,
                "singular": kind.lower(),
                "kind": kind,
                "listKind": f"{kind}List",
                "shortNames": short,
                "categories": ["centaurus-network"],
            },
            "versions": [version],
        },
    }


def definitions() -> list[Obj]:
    out = [
        _crd(
            M.GROUP,
            plural,
            kind,
            "Namespaced",
            [*MIZAR_COLUMNS[plural], *PHASE_COLS],
            SHORT_NAMES[plural],
            False,
        )
        for plural, kind in M.KINDS.items()
    ]
    out.append(
        _crd(
            M.NETWORK_GROUP,
            "networks",
            "Network",
            "Cluster",
            [
                _col("Type", ".spec.type"),
                _col("VPC", ".status.vpc"),
                _col("CIDR", ".status.cidr"),
                _col("Phase", ".status.phase"),
            ],
            ["net"],
            True,
        )
    )
    return out


def _same(have: Obj, want: Obj) -> bool:
    return bool(
        have.get("spec", {}).get("versions") == want["spec"]["versions"]
        and have.get("spec", {}).get("names", {}).get("kind") == want["spec"]["names"]["kind"]
    )


def ensure(api: ApiClient, timeout: float = 30.0) -> list[str]:
    """Create or update every CRD (blocking); returns the names created or updated."""
    changed = []
    for want in definitions():
        name = want["metadata"]["name"]
        try:
            api.create("customresourcedefinitions", want)
            changed.append(name)
        except ApiError as exc:
            if exc.code != 409:
                raise
            have = api.get("customresourcedefinitions", name)
            if not _same(have, want):
                want = {
                    **want,
                    "metadata": {**want["metadata"], "resourceVersion": have["metadata"]["resourceVersion"]},
                }
                api.replace("customresourcedefinitions", want)
                changed.append(name)
    deadline = time.monotonic() + timeout
    for plural in M.KINDS:  # served once discovery lists them
        while True:
            try:
                api.list(plural, namespace=M.MIZAR_NS, group_version=M.GV, limit=1)
                break
            except ApiError as exc:
                if exc.code != 404 or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    return changed


async def ensure_async(api: Any, timeout: float = 30.0) -> None:
    """The same from an operator (``centaurus.client.aio.AsyncClient``)."""
    for want in definitions():
        name = want["metadata"]["name"]
        try:
            await api.create("customresourcedefinitions", want, tenant=M.SYSTEM)
        except ApiError as exc:
            if exc.code != 409:
                raise
            have = await api.get("customresourcedefinitions", name, tenant=M.SYSTEM)
            if not _same(have, want):
                want = {
                    **want,
                    "metadata": {**want["metadata"], "resourceVersion": have["metadata"]["resourceVersion"]},
                }
                await api.replace("customresourcedefinitions", want, tenant=M.SYSTEM)
    deadline = time.monotonic() + timeout
    while True:
        try:
            await api.list("endpoints", namespace=M.MIZAR_NS, tenant=M.SYSTEM, group_version=M.GV, limit=1)
            return
        except ApiError as exc:
            if exc.code != 404 or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
