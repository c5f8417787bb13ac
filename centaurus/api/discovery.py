"""Discovery documents (/api, /apis, /api/v1, /apis/{g}/{v}), /version and OpenAPI.

Legacy (unaggregated) discovery only: kubectl >= 1.26 asks for the aggregated form first and
falls back when the answer is a plain APIGroupList. Custom resources appear per tenant: a
tenant sees the groups of its own CRDs and of the system tenant's.

OpenAPI documents: :mod:`centaurus.api.openapi`.
"""

from __future__ import annotations

from typing import Any

from centaurus.api.storage import Storage
from centaurus.objects import kinds as K
from centaurus.objects.kinds import SUBRESOURCE_VERBS, VERBS_ALL, Kind

VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-centaurus",
    "gitCommit": "centaurus",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "python3.11",
    "compiler": "cpython",
    "platform": "linux/amd64",
}


def _resource(k: Kind) -> list[dict[str, Any]]:
    out = [
        {
            "name": k.plural,
            "singularName": k.singular,
            "namespaced": k.namespaced,
            "kind": k.kind,
            "verbs": list(VERBS_ALL),
            **({"shortNames": list(k.short_names)} if k.short_names else {}),
            **({"categories": list(k.categories)} if k.categories else {}),
        }
    ]
    for sub in k.subresources:
        out.append(
            {
                "name": f"{k.plural}/{sub}",
                "singularName": "",
                "namespaced": k.namespaced,
                "kind": "Scale" if sub == "scale" else k.kind,
                **({"group": "autoscaling", "version": "v1"} if sub == "scale" else {}),
                "verbs": list(SUBRESOURCE_VERBS.get(sub, ("get",))),
            }
        )
    return out


def resource_list(storage: Storage, tenant: str, group: str, version: str) -> dict[str, Any] | None:
    if (group, version) == ("authorization.k8s.io", "v1"):
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": "authorization.k8s.io/v1",
            "resources": [
                {
                    "name": "selfsubjectaccessreviews",
                    "singularName": "",
                    "namespaced": False,
                    "kind": "SelfSubjectAccessReview",
                    "verbs": ["create"],
                }
            ],
        }
    kinds = K.kinds_in(group, version)
    if not kinds:
        kinds = [
            K.kind_from_crd(c, version)
            for c in storage.crds(tenant)
            if (c.get("spec") or {}).get("group") == group
            and any(
                v.get("name") == version and v.get("served", True) for v in c["spec"].get("versions") or []
            )
        ]
    if not kinds:
        return None
    gv = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": [r for k in kinds for r in _resource(k)],
    }


def core_versions() -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    vs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": vs, "preferredVersion": vs[0]}


def groups(storage: Storage, tenant: str) -> list[dict[str, Any]]:
    out = [_group(g, [v]) for g, v in K.BUILTIN_GROUPS] + [_group("authorization.k8s.io", ["v1"])]
    custom: dict[str, list[str]] = {}
    for crd in storage.crds(tenant):
        spec = crd.get("spec") or {}
        vs = [v.get("name") for v in spec.get("versions") or [] if v.get("served", True)]
        custom.setdefault(spec.get("group", ""), [])
        for v in vs:
            if v not in custom[spec["group"]]:
                custom[spec["group"]].append(v)
    out += [_group(g, vs) for g, vs in custom.items() if g and vs]
    return out


def group_list(storage: Storage, tenant: str) -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups(storage, tenant)}


def group(storage: Storage, tenant: str, name: str) -> dict[str, Any] | None:
    for g in groups(storage, tenant):
        if g["name"] == name:
            return {"kind": "APIGroup", "apiVersion": "v1", **g}
    return None

