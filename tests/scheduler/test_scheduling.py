"""The scheduler process against a real API server: binding, unschedulable reporting, retry on
cluster change, VM pod resources, taints and selectors, many pods at once."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from centaurus.client.rest import ApiClient

from .conftest import node_obj, pod_obj, uid, wait

pytestmark = pytest.mark.integration
NS = "default"


def scheduled(api: ApiClient, name: str) -> dict[str, Any] | None:
    p = api.get("pods", name, namespace=NS)
    return p if p["spec"].get("nodeName") else None


def pod_condition(api: ApiClient, name: str) -> dict[str, Any] | None:
    p = api.get("pods", name, namespace=NS)
    return next(
        (c for c in (p.get("status") or {}).get("conditions") or () if c["type"] == "PodScheduled"), None
    )


def test_pod_is_bound_with_podscheduled_true(cluster: ApiClient) -> None:
    for i in range(3):
        cluster.create("nodes", node_obj(f"n{i}", zone=f"az{i}"))
    cluster.create("pods", pod_obj("p"), namespace=NS)
    p = wait(lambda: scheduled(cluster, "p"), what="pod bound")
    assert p["spec"]["nodeName"] in {"n0", "n1", "n2"}
    cond = pod_condition(cluster, "p")
    assert cond and cond["status"] == "True"


def test_impossible_request_stays_pending_with_a_clear_event(cluster: ApiClient) -> None:
    for i in range(3):
        cluster.create("nodes", node_obj(f"n{i}", cpu="2"))
    cluster.create("pods", pod_obj("big", cpu="16"), namespace=NS)
    cond = wait(
        lambda: (c := pod_condition(cluster, "big")) and c["status"] == "False" and c, what="condition"
    )
    assert cond["reason"] == "Unschedulable"
    assert cond["message"] == "0/3 nodes are available: 3 Insufficient cpu."
    events = wait(
        lambda: [
            e
            for e in cluster.list("events", namespace=NS)["items"]
            if e["reason"] == "FailedScheduling" and e["involvedObject"]["name"] == "big"
        ],
        what="FailedScheduling event",
    )
    assert events[0]["type"] == "Warning" and events[0]["message"] == cond["message"]
    assert not cluster.get("pods", "big", namespace=NS)["spec"].get("nodeName")
    # a node that fits arrives: the pod is retried at once (no periodic flush needed)
    cluster.create("nodes", node_obj("huge", cpu="32"))
    assert wait(lambda: scheduled(cluster, "big"), what="bound to the new node")["spec"]["nodeName"] == "huge"


def test_vm_pods_count_their_resources(cluster: ApiClient) -> None:
    cluster.create("nodes", node_obj("n", cpu="2", mem="4Gi"))
    vm = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "vm1"},
        "spec": {
            "virtualMachine": {
                "name": "vm",
                "image": "cirros",
                "resources": {"requests": {"cpu": "2", "memory": "1Gi"}},
            }
        },
    }
    cluster.create("pods", vm, namespace=NS)
    wait(lambda: scheduled(cluster, "vm1"), what="VM pod bound")
    vm["metadata"]["name"] = "vm2"
    cluster.create("pods", vm, namespace=NS)
    cond = wait(
        lambda: (c := pod_condition(cluster, "vm2")) and c["status"] == "False" and c, what="unschedulable"
    )
    assert cond["message"] == "0/1 nodes are available: 1 Insufficient cpu."


def test_taints_readiness_and_selectors(cluster: ApiClient) -> None:
    taint = [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]
    cluster.create("nodes", node_obj("tainted", taints=taint))
    cluster.create("nodes", node_obj("down", ready=False))
    cluster.create(
        "nodes", node_obj("edge1", labels={"centaurus.io/site-type": "edge", "centaurus.io/site": "e1"})
    )
    cluster.create("nodes", node_obj("cloud1", labels={"centaurus.io/site-type": "cloud"}))
    cluster.create("pods", pod_obj("to-edge", nodeSelector={"centaurus.io/site": "e1"}), namespace=NS)
    cluster.create(
        "pods",
        pod_obj("db", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db"}]),
        namespace=NS,
    )
    aff = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "centaurus.io/site-type", "operator": "NotIn", "values": ["edge"]}
                        ]
                    }
                ]
            }
        }
    }
    names = [uid("a") for _ in range(6)]
    for n in names:
        cluster.create("pods", pod_obj(n, affinity=aff), namespace=NS)
    assert wait(lambda: scheduled(cluster, "to-edge"))["spec"]["nodeName"] == "edge1"
    assert wait(lambda: scheduled(cluster, "db"))["spec"]["nodeName"] in {"tainted", "edge1", "cloud1"}
    placed = {wait(lambda n=n: scheduled(cluster, n))["spec"]["nodeName"] for n in names}
    assert placed == {"cloud1"}  # not edge (affinity), not tainted, not the unready node
    cluster.create("pods", pod_obj("nowhere", nodeSelector={"centaurus.io/site": "mars"}), namespace=NS)
    cond = wait(lambda: (c := pod_condition(cluster, "nowhere")) and c["status"] == "False" and c)
    assert cond["message"] == (
        "0/4 nodes are available: 1 node(s) were not ready, "
        "3 node(s) didn't match Pod's node affinity/selector."
    )


def test_many_pods_spread_over_nodes_and_zones(cluster: ApiClient) -> None:
    for i in range(12):
        cluster.create("nodes", node_obj(f"n{i}", cpu="16", mem="64Gi", zone=f"az{i % 3}"))
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "rs-uid", "controller": True}
    for i in range(120):
        p = pod_obj(f"p{i}")
        p["metadata"]["ownerReferences"] = [rs]
        cluster.create("pods", p, namespace=NS)

    def all_bound() -> list[dict[str, Any]] | None:
        items = cluster.list("pods", namespace=NS)["items"]
        return items if len(items) == 120 and all(p["spec"].get("nodeName") for p in items) else None

    items = wait(all_bound, timeout=60, what="120 pods bound")
    per_node = Counter(p["spec"]["nodeName"] for p in items)
    assert len(per_node) == 12 and max(per_node.values()) - min(per_node.values()) <= 2, per_node
