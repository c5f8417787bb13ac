"""Node lifecycle (lease expiry -> Unknown + taints -> eviction -> recreated elsewhere, taints
removed when the agent is back) and tenant lifecycle (default namespace; deletion empties the
tenant, Terminating, then gone)."""

from __future__ import annotations

import pytest

from centaurus.client.rest import ApiError

from .conftest import Cluster, uid, wait
from .test_workloads import NS, deployment, live_pods, status_is

pytestmark = pytest.mark.integration


def ready_status(node: dict) -> str | None:
    return next(
        (c["status"] for c in node.get("status", {}).get("conditions", []) if c["type"] == "Ready"), None
    )


def test_dead_node_pods_are_evicted_and_recreated_elsewhere(cluster: Cluster) -> None:
    api = cluster.api
    agents = cluster.agents_for(["a1", "a2"], lease=2)
    cluster.start_controllers("c0", "--set", "pod_eviction_timeout=1")
    api.create("deployments", deployment("ha", 4), namespace=NS)
    wait(lambda: status_is(api, "ha", readyReplicas=4), what="4 ready")
    on_a1 = [p["metadata"]["name"] for p in live_pods(api, "ha") if p["spec"]["nodeName"] == "a1"]
    assert on_a1, "the scheduler put nothing on a1"
    agents.stop_node("a1")  # the agent dies: no more lease renewals
    wait(lambda: ready_status(api.get("nodes", "a1")) == "Unknown", what="Unknown")
    # as in Kubernetes, the condition (status) and the taints (spec) are two writes: wait for both
    unreachable = {
        ("node.kubernetes.io/unreachable", "NoSchedule"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
    }

    def tainted() -> bool:
        node = api.get("nodes", "a1")
        keys = {(t["key"], t["effect"]) for t in (node.get("spec") or {}).get("taints", [])}
        return ready_status(node) == "Unknown" and unreachable <= keys

    wait(tainted, what="unreachable taints")

    def moved() -> bool:
        pods = live_pods(api, "ha")
        return len(pods) == 4 and all(p["spec"].get("nodeName") == "a2" for p in pods)

    wait(moved, timeout=40, what="pods recreated on a2")
    wait(lambda: status_is(api, "ha", readyReplicas=4), what="4 ready again")
    # evicted pods of the dead node are gone for good (force-deleted after their grace period)
    wait(
        lambda: not [p for p in api.list("pods", namespace=NS)["items"] if p["spec"].get("nodeName") == "a1"],
        timeout=40,
        what="a1's pods removed",
    )
    # the agent comes back: it renews its lease and reports Ready again, the taints go
    agents.live.add("a1")
    wait(lambda: ready_status(api.get("nodes", "a1")) == "True", what="Ready again")
    wait(lambda: not api.get("nodes", "a1")["spec"].get("taints"), what="taints removed")


def test_tenant_lifecycle(cluster: Cluster) -> None:
    api = cluster.api
    cluster.start_controllers("c0")
    t = uid("ten")
    api.create("tenants", {"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": t}, "spec": {}})
    wait(lambda: api.get("namespaces", "default", tenant=t), what="default namespace")
    api.create(
        "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}, tenant=t
    )
    api.create(
        "configmaps",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
        namespace="apps",
        tenant=t,
    )
    api.create("deployments", deployment("d", 0), namespace="apps", tenant=t)
    api.delete("tenants", t)
    assert api.get("tenants", t)["status"]["phase"] == "Terminating"

    def gone() -> bool:
        try:
            api.get("tenants", t)
        except ApiError as exc:
            return exc.code == 404
        return False

    wait(gone, timeout=40, what="tenant gone")
    assert not [n for n in api.list("namespaces", tenant="all")["items"] if n["metadata"].get("tenant") == t]
