"""The kinds the API serves and how each is addressed.

Scope has three values, not Kubernetes' two, because Arktos adds a level: ``Namespaced`` objects
live in a namespace of a tenant; ``Tenant`` objects (namespaces, cluster roles, CRDs, ...) look
cluster-scoped to a client but each tenant has its own set; ``Cluster`` objects (nodes, tenants)
are truly global and live in the system tenant's data partition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Scope = Literal["Namespaced", "Tenant", "Cluster"]

VERBS_ALL = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    scope: Scope
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    #: full protobuf message name of the type (built-in kinds only)
    proto: str | None = None
    #: objects whose main resource ignores ``status`` on update (status subresource semantics)
    status_subresource: bool = False
    #: custom resources: the CRD's served-version schema and printer columns
    crd: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def namespaced(self) -> bool:
        return self.scope == "Namespaced"

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def storage_prefix(self) -> str:
        """Key prefix of every object of this kind, whatever tenant or namespace."""
        return f"/registry/{self.group or 'core'}/{self.plural}/"

    def key(self, tenant: str, namespace: str | None, name: str) -> str:
        if self.scope == "Cluster":
            return f"{self.storage_prefix}{name}"
        if self.scope == "Tenant":
            return f"{self.storage_prefix}{tenant}/{name}"
        return f"{self.storage_prefix}{tenant}/{namespace}/{name}"

    def scope_prefix(self, tenant: str | None, namespace: str | None) -> str:
        """Key prefix of a list: everything, one tenant, or one namespace of one tenant."""
        p = self.storage_prefix
        if self.scope == "Cluster" or tenant is None:
            return p
        if self.scope == "Tenant" or namespace is None:
            return f"{p}{tenant}/"
        return f"{p}{tenant}/{namespace}/"


def parse_key(kind: Kind, key: str) -> tuple[str, str | None, str]:
    """(tenant, namespace, name) of a storage key of ``kind``."""
    rest = key[len(kind.storage_prefix) :]
    if kind.scope == "Cluster":
        return "system", None, rest
    parts = rest.split("/")
    if kind.scope == "Tenant":
        return parts[0], None, parts[1]
    return parts[0], parts[1], parts[2]


_CORE = "k8s.io.api.core.v1."
_POD_SUBS = ("status", "binding", "log", "exec", "attach", "portforward", "action", "eviction")

BUILTIN: tuple[Kind, ...] = (
    Kind(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        "Tenant",
        ("ns",),
        ("status", "finalize"),
        proto=_CORE + "Namespace",
        status_subresource=True,
    ),
    Kind(
        "",
        "v1",
        "Pod",
        "pods",
        "pod",
        "Namespaced",
        ("po",),
        _POD_SUBS,
        ("all",),
        proto=_CORE + "Pod",
        status_subresource=True,
    ),
    Kind(
        "",
        "v1",
        "Node",
        "nodes",
        "node",
        "Cluster",
        ("no",),
        ("status",),
        proto=_CORE + "Node",
        status_subresource=True,
    ),
    Kind("", "v1", "Event", "events", "event", "Namespaced", ("ev",), proto=_CORE + "Event"),
    # Arktos: created by POST pods/{name}/action, executed and completed by the pod's node agent
    Kind("", "v1", "Action", "actions", "action", "Namespaced", (), ("status",), status_subresource=True),
    Kind("", "v1", "ConfigMap", "configmaps", "configmap", "Namespaced", ("cm",), proto=_CORE + "ConfigMap"),
    Kind("", "v1", "Secret", "secrets", "secret", "Namespaced", proto=_CORE + "Secret"),
    Kind(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        "Namespaced",
        ("sa",),
        proto=_CORE + "ServiceAccount",
    ),
    Kind(
        "",
        "v1",
        "Service",
        "services",
        "service",
        "Namespaced",
        ("svc",),
        ("status",),
        ("all",),
        proto=_CORE + "Service",
        status_subresource=True,
    ),
    Kind("", "v1", "Endpoints", "endpoints", "endpoints", "Namespaced", ("ep",), proto=_CORE + "Endpoints"),
    Kind(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        "resourcequota",
        "Namespaced",
        ("quota",),
        ("status",),
        proto=_CORE + "ResourceQuota",
        status_subresource=True,
    ),
    Kind(
        "",
        "v1",
        "Tenant",
        "tenants",
        "tenant",
        "Cluster",
        ("te",),
        ("status", "finalize"),
        status_subresource=True,
    ),
    # Arktos active-active controllers: one object per controller instance (no spec)
    Kind("", "v1", "ControllerInstance", "controllerinstances", "controllerinstance", "Cluster"),
    # Arktos data partitions: one StorageCluster per store partition (written by the API server)
    Kind("", "v1", "StorageCluster", "storageclusters", "storagecluster", "Cluster"),
    Kind(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        "deployment",
        "Namespaced",
        ("deploy",),
        ("status", "scale"),
        ("all",),
        proto="k8s.io.api.apps.v1.Deployment",
        status_subresource=True,
    ),
    Kind(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        "Namespaced",
        ("rs",),
        ("status", "scale"),
        ("all",),
        proto="k8s.io.api.apps.v1.ReplicaSet",
        status_subresource=True,
    ),
    Kind(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        "lease",
        "Namespaced",
        proto="k8s.io.api.coordination.v1.Lease",
    ),
    Kind(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        "role",
        "Namespaced",
        proto="k8s.io.api.rbac.v1.Role",
    ),
    Kind(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        "rolebinding",
        "Namespaced",
        proto="k8s.io.api.rbac.v1.RoleBinding",
    ),
    Kind(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        "clusterrole",
        "Tenant",
        proto="k8s.io.api.rbac.v1.ClusterRole",
    ),
    Kind(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        "clusterrolebinding",
        "Tenant",
        proto="k8s.io.api.rbac.v1.ClusterRoleBinding",
    ),
    Kind(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        "customresourcedefinition",
        "Tenant",
        ("crd", "crds"),
        ("status",),
        status_subresource=True,
    ),
)

#: verbs advertised per subresource in discovery
SUBRESOURCE_VERBS: dict[str, tuple[str, ...]] = {
    "status": ("get", "patch", "update"),
    "scale": ("get", "patch", "update"),
    "binding": ("create",),
    "eviction": ("create",),
    "action": ("create",),
    "finalize": ("update",),
    "log": ("get",),
    "exec": ("create", "get"),
    "attach": ("create", "get"),
    "portforward": ("create", "get"),
}

#: group -> preferred version, in discovery order
BUILTIN_GROUPS: tuple[tuple[str, str], ...] = (
    ("apps", "v1"),
    ("coordination.k8s.io", "v1"),
    ("rbac.authorization.k8s.io", "v1"),
    ("apiextensions.k8s.io", "v1"),
)

#: Arktos serves some CRD-defined kinds under the core path too: (group, version, plural) aliases
CORE_ALIASES: dict[tuple[str, str, str], tuple[str, str, str]] = {
    ("", "v1", "networks"): ("arktos.futurewei.com", "v1", "networks"),
}

_BY_GVR = {(k.group, k.version, k.plural): k for k in BUILTIN}


def builtin(group: str, version: str, plural: str) -> Kind | None:
    return _BY_GVR.get((group, version, plural))


def must(group: str, version: str, plural: str) -> Kind:
    """A built-in kind known to exist (module-level constants)."""
    k = _BY_GVR[(group, version, plural)]
    return k


def builtin_by_kind(api_version: str, kind: str) -> Kind | None:
    group, _, version = api_version.rpartition("/")
    for k in BUILTIN:
        if k.group == group and k.version == version and k.kind == kind:
            return k
    return None


def kinds_in(group: str, version: str) -> list[Kind]:
    return [k for k in BUILTIN if k.group == group and k.version == version]


def kind_from_crd(crd: dict[str, Any], version: str) -> Kind:
    """The Kind a CustomResourceDefinition serves at ``version``."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    ver: dict[str, Any] = next((v for v in spec.get("versions") or [] if v.get("name") == version), {})
    subs = tuple(sorted((ver.get("subresources") or {}).keys()))
    return Kind(
        group=spec.get("group", ""),
        version=version,
        kind=names.get("kind", ""),
        plural=names.get("plural", ""),
        singular=names.get("singular") or names.get("kind", "").lower(),
        scope="Namespaced" if spec.get("scope", "Namespaced") == "Namespaced" else "Tenant",
        short_names=tuple(names.get("shortNames") or ()),
        subresources=subs,
        categories=tuple(names.get("categories") or ()),
        status_subresource="status" in subs,
        crd=ver,
    )
