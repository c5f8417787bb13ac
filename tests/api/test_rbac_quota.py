"""RBAC inside a tenant and ResourceQuota on create."""

from __future__ import annotations

from typing import Any

import pytest

from centaurus.client.rest import ApiError
from tests.api.conftest import Server

pytestmark = pytest.mark.integration


def code(fn: Any) -> int:
    try:
        fn()
    except ApiError as exc:
        return exc.code
    return 200


def cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}


def test_tenant_admin_grants_an_unprivileged_user(server: Server) -> None:
    t = server.tenant()
    admin, dev = server.client(t), server.client(t, "dev")
    assert code(lambda: dev.list("configmaps", namespace="default")) == 403
    assert code(lambda: dev.create("configmaps", cm("x"), namespace="default")) == 403
    rbac = "rbac.authorization.k8s.io/v1"
    admin.create(
        "roles",
        {
            "apiVersion": rbac,
            "kind": "Role",
            "metadata": {"name": "cm-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        },
        namespace="default",
    )
    admin.create(
        "rolebindings",
        {
            "apiVersion": rbac,
            "kind": "RoleBinding",
            "metadata": {"name": "dev-reads"},
            "subjects": [{"kind": "User", "name": "dev", "apiGroup": "rbac.authorization.k8s.io"}],
            "roleRef": {"kind": "Role", "name": "cm-reader", "apiGroup": "rbac.authorization.k8s.io"},
        },
        namespace="default",
    )
    admin.create("configmaps", cm("visible"), namespace="default")
    assert [c["metadata"]["name"] for c in dev.list("configmaps", namespace="default")["items"]] == [
        "visible"
    ]
    assert code(lambda: dev.create("configmaps", cm("x"), namespace="default")) == 403
    assert code(lambda: dev.delete("configmaps", "visible", namespace="default")) == 403
    assert code(lambda: dev.list("secrets", namespace="default")) == 403
    admin.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    assert code(lambda: dev.list("configmaps", namespace="other")) == 403  # a Role is per namespace
    # a ClusterRoleBinding to the built-in "edit" role lets dev write everywhere in the tenant
    admin.create(
        "clusterrolebindings",
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "dev-edit"},
            "subjects": [{"kind": "User", "name": "dev"}],
            "roleRef": {"kind": "ClusterRole", "name": "edit", "apiGroup": "rbac.authorization.k8s.io"},
        },
    )
    dev.create("configmaps", cm("by-dev"), namespace="other")
    assert (
        code(
            lambda: dev.create(
                "roles",
                {"apiVersion": rbac, "kind": "Role", "metadata": {"name": "r"}, "rules": []},
                namespace="other",
            )
        )
        == 403
    )
    # the same user name in another tenant has none of this
    t2 = server.tenant()
    assert code(lambda: server.client(t2, "dev").list("configmaps", namespace="default")) == 403


def test_tenant_admin_manages_quota_sa_roles_and_crds(server: Server) -> None:
    t = server.tenant()
    admin = server.client(t)
    admin.create(
        "serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "bot"}},
        namespace="default",
    )
    admin.create(
        "resourcequotas",
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "q"},
            "spec": {"hard": {"configmaps": "2", "pods": "1", "requests.cpu": "1"}},
        },
        namespace="default",
    )
    admin.create("configmaps", cm("c1"), namespace="default")
    admin.create("configmaps", cm("c2"), namespace="default")
    with pytest.raises(ApiError) as err:
        admin.create("configmaps", cm("c3"), namespace="default")
    assert err.value.code == 403 and "exceeded quota" in err.value.status["message"]
    assert code(lambda: admin.get("configmaps", "c3", namespace="default")) == 404  # nothing stored
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "big"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "2"}}}]},
    }
    with pytest.raises(ApiError) as err:
        admin.create("pods", pod, namespace="default")
    assert err.value.code == 403 and "requests.cpu" in err.value.status["message"]
    pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "500m"
    admin.create("pods", pod, namespace="default")
    pod["metadata"]["name"] = "second"
    assert code(lambda: admin.create("pods", pod, namespace="default")) == 403  # pods: 1
    admin.delete("configmaps", "c1", namespace="default")
    admin.create("configmaps", cm("c3"), namespace="default")  # room again
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.acme.io"},
        "spec": {
            "group": "acme.io",
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
            ],
        },
    }
    admin.create("customresourcedefinitions", crd)
    admin.create(
        "gadgets",
        {"apiVersion": "acme.io/v1", "kind": "Gadget", "metadata": {"name": "g"}},
        namespace="default",
        group_version="acme.io/v1",
    )
    other = server.client(server.tenant())
    assert code(lambda: other.list("gadgets", namespace="default", group_version="acme.io/v1")) == 404
    assert "acme.io" not in {g["name"] for g in other.get_json("/apis")["groups"]}


def test_concurrent_creates_respect_quota(server: Server) -> None:
    import concurrent.futures

    t = server.tenant()
    admin = server.client(t)
    admin.create(
        "resourcequotas",
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "q"},
            "spec": {"hard": {"count/configmaps": "5"}},
        },
        namespace="default",
    )
    from centaurus.client.rest import ApiClient

    def one(i: int) -> int:
        with ApiClient.from_kubeconfig(str(server.kubeconfig(t))) as c:
            return code(lambda: c.create("configmaps", cm(f"c{i}"), namespace="default"))

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(one, range(12)))
    assert codes.count(201) + codes.count(200) == 5 and codes.count(403) == 7, codes
    assert len(admin.list("configmaps", namespace="default")["items"]) == 5
