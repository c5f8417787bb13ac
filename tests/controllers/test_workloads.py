"""Deployment -> ReplicaSet -> Pods against a real API server with the scheduler and fake node
agents: scale up/down, rolling update within maxSurge/maxUnavailable, VM templates, and the
garbage collector's three propagation policies."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from centaurus.client.rest import ApiClient

from .conftest import Cluster, wait

pytestmark = pytest.mark.integration
NS = "default"
Obj = dict[str, Any]


def deployment(
    name: str,
    replicas: int,
    *,
    image: str = "busybox:1.36",
    vm: bool = False,
    surge: Any = 1,
    unavailable: Any = 0,
) -> Obj:
    if vm:
        spec: Obj = {
            "virtualMachine": {
                "name": "vm",
                "image": "cirros",
                "resources": {"requests": {"cpu": "1", "memory": "128Mi"}},
            }
        }
    else:
        spec = {
            "containers": [
                {"name": "main", "image": image, "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}}}
            ]
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
            },
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {**spec, "terminationGracePeriodSeconds": 2},
            },
        },
    }


def status_is(api: ApiClient, name: str, **want: int) -> Obj | None:
    d = api.get("deployments", name, namespace=NS)
    st = d.get("status") or {}
    ok = (
        all(st.get(k, 0) == v for k, v in want.items())
        and st.get("observedGeneration", 0) >= d["metadata"]["generation"]
    )
    return d if ok else None


def live_pods(api: ApiClient, app: str) -> list[Obj]:
    return [
        p
        for p in api.list("pods", namespace=NS, labelSelector=f"app={app}")["items"]
        if not p["metadata"].get("deletionTimestamp")
    ]


def rss_of(api: ApiClient, name: str) -> list[Obj]:
    return [
        rs
        for rs in api.list("replicasets", namespace=NS)["items"]
        if any(o["name"] == name for o in rs["metadata"].get("ownerReferences", []))
    ]


@pytest.fixture
def running(cluster: Cluster) -> Cluster:
    cluster.agents_for(["w1", "w2", "w3"], zones=["az1", "az2", "az3"])
    cluster.start_controllers("c0")
    return cluster


def test_deployment_scales_up_and_down(running: Cluster) -> None:
    api = running.api
    api.create("deployments", deployment("web", 3), namespace=NS)
    wait(
        lambda: status_is(api, "web", replicas=3, readyReplicas=3, availableReplicas=3, updatedReplicas=3),
        what="3 ready",
    )
    [rs] = rss_of(api, "web")
    h = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["metadata"]["ownerReferences"][0]["controller"] is True
    pods = live_pods(api, "web")
    assert len(pods) == 3 and all(p["metadata"]["labels"]["pod-template-hash"] == h for p in pods)
    assert all(p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"] for p in pods)
    assert len({p["spec"]["nodeName"] for p in pods}) == 3  # spread by the scheduler
    api.patch("deployments", "web", {"spec": {"replicas": 5}}, namespace=NS)
    wait(lambda: status_is(api, "web", replicas=5, readyReplicas=5), what="5 ready")
    api.patch("deployments", "web", {"spec": {"replicas": 1}}, namespace=NS)
    wait(
        lambda: status_is(api, "web", replicas=1, readyReplicas=1) and len(live_pods(api, "web")) == 1,
        what="scaled down to 1",
    )
    # a deleted pod is replaced
    victim = live_pods(api, "web")[0]["metadata"]["name"]
    api.delete("pods", victim, namespace=NS)
    wait(
        lambda: [
            p
            for p in live_pods(api, "web")
            if p["metadata"]["name"] != victim and (p.get("status") or {}).get("phase") == "Running"
        ],
        what="replacement",
    )


def test_rolling_update_respects_surge_and_unavailable(running: Cluster) -> None:
    api = running.api
    api.create("deployments", deployment("roll", 4, surge=1, unavailable=1), namespace=NS)
    wait(lambda: status_is(api, "roll", replicas=4, readyReplicas=4), what="4 ready")
    samples: list[tuple[int, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            pods = live_pods(api, "roll")
            ready = sum(
                1
                for p in pods
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in (p.get("status") or {}).get("conditions") or ()
                )
            )
            samples.append((len(pods), ready))
            time.sleep(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    api.patch(
        "deployments",
        "roll",
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "main",
                                "image": "busybox:1.37",
                                "resources": {"requests": {"cpu": "100m"}},
                            }
                        ]
                    }
                }
            }
        },
        namespace=NS,
    )
    try:
        d = wait(
            lambda: status_is(
                api, "roll", replicas=4, readyReplicas=4, updatedReplicas=4, availableReplicas=4
            ),
            timeout=60,
            what="rolled out",
        )
    finally:
        stop.set()
        t.join()
    assert d["status"]["observedGeneration"] == 2
    rss = rss_of(api, "roll")
    assert len(rss) == 2
    new = next(rs for rs in rss if rs["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.37")
    old = next(rs for rs in rss if rs is not new)
    assert new["spec"]["replicas"] == 4 and old["spec"]["replicas"] == 0
    assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert all(p["spec"]["containers"][0]["image"] == "busybox:1.37" for p in live_pods(api, "roll"))
    assert samples
    assert max(n for n, _ in samples) <= 4 + 1, f"maxSurge exceeded: {samples}"
    assert min(r for _, r in samples) >= 4 - 1, f"maxUnavailable exceeded: {samples}"


def test_vm_deployment(running: Cluster) -> None:
    api = running.api
    api.create("deployments", deployment("vms", 2, vm=True), namespace=NS)
    wait(lambda: status_is(api, "vms", replicas=2, readyReplicas=2), what="2 ready VM pods")
    pods = live_pods(api, "vms")
    assert all(p["spec"]["virtualMachine"]["image"] == "cirros" for p in pods)
    api.patch("deployments", "vms", {"spec": {"replicas": 0}}, namespace=NS)
    wait(lambda: status_is(api, "vms", replicas=0) and not live_pods(api, "vms"), what="scaled to 0")


@pytest.mark.parametrize("policy", ["Background", "Foreground", "Orphan"])
def test_garbage_collection(running: Cluster, policy: str) -> None:
    api = running.api
    name = f"gc-{policy.lower()}"
    api.create("deployments", deployment(name, 2), namespace=NS)
    wait(lambda: status_is(api, name, replicas=2, readyReplicas=2), what="2 ready")
    [rs] = rss_of(api, name)
    api.delete("deployments", name, namespace=NS, propagation=policy)
    rs_name = rs["metadata"]["name"]

    def rs_gone() -> bool:
        return not [
            r for r in api.list("replicasets", namespace=NS)["items"] if r["metadata"]["name"] == rs_name
        ]

    if policy == "Orphan":
        wait(
            lambda: (
                not [
                    d for d in api.list("deployments", namespace=NS)["items"] if d["metadata"]["name"] == name
                ]
            ),
            what="deployment gone",
        )
        orphan = api.get("replicasets", rs_name, namespace=NS)
        assert not orphan["metadata"].get("ownerReferences")
        time.sleep(1.0)
        assert len(live_pods(api, name)) == 2  # the orphaned set keeps its pods
        return
    if policy == "Foreground":
        d = api.get("deployments", name, namespace=NS)  # still there while its dependents go
        assert "foregroundDeletion" in d["metadata"].get("finalizers", [])
    wait(rs_gone, what="replica set collected")
    wait(
        lambda: not api.list("pods", namespace=NS, labelSelector=f"app={name}")["items"],
        what="pods collected",
    )
    wait(
        lambda: (
            not [d for d in api.list("deployments", namespace=NS)["items"] if d["metadata"]["name"] == name]
        ),
        what="deployment gone",
    )
