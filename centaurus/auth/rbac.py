"""RBAC inside a tenant (rbac.authorization.k8s.io/v1 semantics).

Every tenant has the bootstrap ClusterRoles ``cluster-admin``, ``admin``, ``edit`` and ``view``
and the binding of group ``system:masters`` to ``cluster-admin``; they are built in (not stored)
so that no tenant can lose them by deleting objects. Tenant *scope* (which tenant a request may
touch) is decided before RBAC, by :mod:`centaurus.api.scope`; RBAC only ever sees the bindings
of the tenant the request is in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from centaurus.auth.tokens import Identity

_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
_WORKLOADS = [
    "pods",
    "pods/log",
    "pods/status",
    "pods/exec",
    "pods/attach",
    "pods/portforward",
    "pods/action",
    "configmaps",
    "secrets",
    "services",
    "endpoints",
    "serviceaccounts",
    "events",
    "deployments",
    "deployments/scale",
    "replicasets",
    "replicasets/scale",
    "leases",
    "persistentvolumeclaims",
    "networks",
]

BOOTSTRAP_ROLES: dict[str, list[dict[str, Any]]] = {
    "cluster-admin": [
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
        {"nonResourceURLs": ["*"], "verbs": ["*"]},
    ],
    "admin": [
        {
            "apiGroups": ["*"],
            "resources": [*_WORKLOADS, "roles", "rolebindings", "resourcequotas"],
            "verbs": _READ + _WRITE,
        }
    ],
    "edit": [
        {"apiGroups": ["*"], "resources": _WORKLOADS, "verbs": _READ + _WRITE},
        {"apiGroups": [""], "resources": ["resourcequotas"], "verbs": _READ},
    ],
    "view": [{"apiGroups": ["*"], "resources": [*_WORKLOADS, "resourcequotas"], "verbs": _READ}],
}
MASTERS = "system:masters"


@dataclass(frozen=True)
class Request:
    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str | None
    name: str | None


def _subject_matches(subj: dict[str, Any], ident: Identity, binding_ns: str | None) -> bool:
    kind, name = subj.get("kind"), subj.get("name")
    if kind == "User":
        return bool(name == ident.user)
    if kind == "Group":
        return name in ident.groups or name == "system:authenticated"
    if kind == "ServiceAccount":
        ns = subj.get("namespace") or binding_ns
        return ident.user == f"system:serviceaccount:{ns}:{name}"
    return False


def _rule_allows(rule: dict[str, Any], req: Request) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and req.verb not in verbs:
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and req.group not in groups:
        return False
    res = rule.get("resources") or []
    full = f"{req.resource}/{req.subresource}" if req.subresource else req.resource
    if "*" not in res and full not in res and f"{req.resource}/*" not in res:
        return False
    names = rule.get("resourceNames") or []
    return not names or (req.name is not None and req.name in names)


def allowed(
    ident: Identity,
    req: Request,
    *,
    roles: Iterable[dict[str, Any]],
    cluster_roles: Iterable[dict[str, Any]],
    bindings: Iterable[dict[str, Any]],
    cluster_bindings: Iterable[dict[str, Any]],
) -> bool:
    """Whether some binding of this tenant grants ``req`` to ``ident``.

    ``roles``/``bindings`` are the Role/RoleBinding objects of the request's namespace;
    ``cluster_roles``/``cluster_bindings`` the tenant-level ones.
    """
    if MASTERS in ident.groups:
        return True
    croles = {(r.get("metadata") or {}).get("name"): r.get("rules") or [] for r in cluster_roles}
    for n, rules in BOOTSTRAP_ROLES.items():
        croles.setdefault(n, rules)
    nroles = {(r.get("metadata") or {}).get("name"): r.get("rules") or [] for r in roles}

    def grants(ref: dict[str, Any], ns_roles: dict[Any, list[dict[str, Any]]] | None) -> bool:
        if ref.get("kind") == "ClusterRole":
            rules = croles.get(ref.get("name"), [])
        elif ns_roles is not None:
            rules = ns_roles.get(ref.get("name"), [])
        else:
            return False
        return any(_rule_allows(r, req) for r in rules)

    for b in cluster_bindings:
        if any(_subject_matches(s, ident, None) for s in b.get("subjects") or []) and grants(
            b.get("roleRef") or {}, None
        ):
            return True
    if req.namespace is None:
        return False
    for b in bindings:
        ns = (b.get("metadata") or {}).get("namespace")
        if any(_subject_matches(s, ident, ns) for s in b.get("subjects") or []) and grants(
            b.get("roleRef") or {}, nroles
        ):
            return True
    return False
