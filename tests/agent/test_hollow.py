"""Hollow nodes: one process holding many Nodes with Leases; pods scheduled to them become
Running with an IP from the node's CIDR and go away on delete; stopping the fleet removes its
nodes. (The 10,000-node figure is a benchmark: perf/ and the density campaign.)"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator

import pytest

from centaurus.agent.targethooks import HollowNodes

from .conftest import Cluster, gone, pod, running, wait_pod

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
COUNT = 200


@pytest.fixture(scope="module")
def hollow(cluster: Cluster) -> Iterator[tuple[HollowNodes, list[str]]]:
    h = HollowNodes(cluster.base / "hollow-test", cluster.kubeconfig)
    names = h.add_hollow_nodes(COUNT)
    try:
        yield h, names
    finally:
        h.stop()


def test_hollow_nodes_register_with_leases(cluster: Cluster, hollow: tuple[HollowNodes, list[str]]) -> None:
    h, names = hollow
    assert len(names) == COUNT == len(set(names))
    nodes = cluster.api.list("nodes", labelSelector="centaurus.io/hollow=true")["items"]
    mine = {n["metadata"]["name"]: n for n in nodes if n["metadata"]["name"] in names}
    assert len(mine) == COUNT
    n = mine[names[0]]
    assert {c["type"]: c["status"] for c in n["status"]["conditions"]}["Ready"] == "True"
    assert n["spec"]["podCIDR"] and n["status"]["allocatable"]["pods"] == "110"
    zones = {m["metadata"]["labels"]["topology.kubernetes.io/zone"] for m in mine.values()}
    assert zones == {"az1", "az2", "az3"}
    lease = cluster.api.get(
        "leases", names[-1], namespace="kube-node-lease", group_version="coordination.k8s.io/v1"
    )
    assert lease["spec"]["holderIdentity"] == names[-1] and lease["spec"]["leaseDurationSeconds"] == 240
    stats = h.stats()
    assert stats["nodes"] == COUNT and stats["leaseErrors"] == 0


def test_pods_on_hollow_nodes_run_and_go(
    cluster: Cluster, ns: str, hollow: tuple[HollowNodes, list[str]]
) -> None:
    _, names = hollow
    for i in range(20):
        cluster.api.create(
            "pods", pod(f"h{i}", node=None, nodeSelector={"centaurus.io/hollow": "true"}), namespace=ns
        )
    for i in range(20):
        p = wait_pod(cluster.api, ns, f"h{i}", running, timeout=60, what="Running on a hollow node")
        assert p["spec"]["nodeName"] in names
        node = cluster.api.get("nodes", p["spec"]["nodeName"])
        assert ipaddress.ip_address(p["status"]["podIP"]) in ipaddress.ip_network(node["spec"]["podCIDR"])
        assert p["status"]["containerStatuses"][0]["containerID"].startswith("hollow://")
    for i in range(20):
        cluster.api.delete("pods", f"h{i}", namespace=ns)
    for i in range(20):
        gone(cluster.api, ns, f"h{i}", timeout=30)


def test_removing_hollow_nodes_deletes_nodes_and_leases(
    cluster: Cluster, hollow: tuple[HollowNodes, list[str]]
) -> None:
    h, names = hollow
    victims = names[-5:]
    h.remove_hollow_nodes(victims)
    left = {n["metadata"]["name"] for n in cluster.api.list("nodes")["items"]}
    assert not set(victims) & left
    leases = {
        x["metadata"]["name"]
        for x in cluster.api.list(
            "leases", namespace="kube-node-lease", group_version="coordination.k8s.io/v1"
        )["items"]
    }
    assert not set(victims) & leases
    names[:] = names[:-5]
    deadline = time.monotonic() + 5
    while h.stats()["nodes"] != COUNT - 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert h.stats()["nodes"] == COUNT - 5
