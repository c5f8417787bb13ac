"""Object lifecycle details other components rely on: Arktos hashKey, delete propagation
finalizers, finalizer removal completing a delete, graceful pod deletion."""

from __future__ import annotations

from typing import Any

import pytest

from centaurus.client.rest import ApiError
from tests.api.conftest import Server

pytestmark = pytest.mark.integration


def cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}


def test_hash_key_is_stable(server: Server) -> None:
    api = server.client()
    obj = api.create("configmaps", cm("hk"), namespace="default")
    hk = obj["metadata"]["hashKey"]
    assert isinstance(hk, int) and 0 <= hk < 2**63
    obj["metadata"]["hashKey"] = 1
    assert api.replace("configmaps", obj)["metadata"]["hashKey"] == hk


def test_foreground_and_orphan_wait_for_the_collector(server: Server) -> None:
    api = server.client()
    for policy, fin in (("Foreground", "foregroundDeletion"), ("Orphan", "orphan")):
        name = f"prop-{fin.lower()}"
        api.create("configmaps", cm(name), namespace="default")
        api.delete("configmaps", name, namespace="default", propagation=policy)
        obj = api.get("configmaps", name, namespace="default")
        assert obj["metadata"]["deletionTimestamp"] and obj["metadata"]["finalizers"] == [fin]
        api.patch("configmaps", name, {"data": {"still": "updatable"}}, namespace="default")
        api.patch("configmaps", name, {"metadata": {"finalizers": None}}, namespace="default")
        with pytest.raises(ApiError) as err:
            api.get("configmaps", name, namespace="default")
        assert err.value.code == 404
    api.create("configmaps", cm("prop-bg"), namespace="default")
    api.delete("configmaps", "prop-bg", namespace="default", propagation="Background")
    with pytest.raises(ApiError):
        api.get("configmaps", "prop-bg", namespace="default")


def test_bound_pod_terminates_gracefully(server: Server) -> None:
    api = server.client()
    api.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "cl-n-grace"}})
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "graceful"},
        "spec": {"nodeName": "cl-n-grace", "containers": [{"name": "c", "image": "busybox"}]},
    }
    api.create("pods", pod, namespace="default")
    api.delete("pods", "graceful", namespace="default")
    got = api.get("pods", "graceful", namespace="default")
    assert got["metadata"]["deletionTimestamp"] and got["metadata"]["deletionGracePeriodSeconds"] == 30
    got["status"]["phase"] = "Running"
    api.replace("pods", got, subresource="status")  # the agent reports during the grace period
    assert api.get("pods", "graceful", namespace="default")["status"]["phase"] == "Running"
    api.request("DELETE", "/api/v1/namespaces/default/pods/graceful", body={"gracePeriodSeconds": 0})
    with pytest.raises(ApiError):
        api.get("pods", "graceful", namespace="default")
    api.delete("nodes", "cl-n-grace")


def test_delete_collection_by_label(server: Server) -> None:
    api = server.client(server.tenant())
    for i in range(6):
        obj = cm(f"dc{i}")
        obj["metadata"]["labels"] = {"batch": "a" if i < 4 else "b"}
        api.create("configmaps", obj, namespace="default")
    out = api.request(
        "DELETE", "/api/v1/namespaces/default/configmaps", params={"labelSelector": "batch=a"}
    ).json()
    assert sorted(i["metadata"]["name"] for i in out["items"]) == ["dc0", "dc1", "dc2", "dc3"]
    assert sorted(c["metadata"]["name"] for c in api.list("configmaps", namespace="default")["items"]) == [
        "dc4",
        "dc5",
    ]


def test_network_core_path_alias(server: Server) -> None:
    """Arktos names /api/v1/tenants/{t}/networks: it addresses the networks CRD of
    arktos.futurewei.com (installed by the network control plane) under both paths."""
    api = server.client()
    crd_name = "networks.arktos.futurewei.com"
    created = False
    try:
        api.get("customresourcedefinitions", crd_name)
    except ApiError:
        api.create(
            "customresourcedefinitions",
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": crd_name},
                "spec": {
                    "group": "arktos.futurewei.com",
                    "scope": "Cluster",
                    "names": {"plural": "networks", "singular": "network", "kind": "Network"},
                    "versions": [
                        {
                            "name": "v1",
                            "served": True,
                            "storage": True,
                            "schema": {"openAPIV3Schema": {"type": "object"}},
                        }
                    ],
                },
            },
        )
        created = True
    t = server.tenant()
    net = {
        "apiVersion": "arktos.futurewei.com/v1",
        "kind": "Network",
        "metadata": {"name": "cl-net-a"},
        "spec": {"type": "flat"},
    }
    api.request("POST", f"/api/v1/tenants/{t}/networks", body=net)
    via_group = api.get_json(f"/apis/arktos.futurewei.com/v1/tenants/{t}/networks/cl-net-a")
    assert via_group["spec"] == {"type": "flat"} and via_group["metadata"]["tenant"] == t
    # (the network controller also gives every tenant a "default" Network once the CRD exists)
    listed = api.get_json(f"/api/v1/tenants/{t}/networks")["items"]
    assert [n["metadata"]["name"] for n in listed if n["metadata"]["name"] != "default"] == ["cl-net-a"]
    api.request("DELETE", f"/api/v1/tenants/{t}/networks/cl-net-a")
    if created:
        api.delete("customresourcedefinitions", crd_name)
