"""Scheduler units: requests, static filters, failure messages, the node table's fit/score vectors
and full decisions (informer events fed by hand, no server)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from centaurus.client.aio import AsyncClient
from centaurus.client.kubeconfig import Credentials
from centaurus.scheduler import filters
from centaurus.scheduler.nodetable import NodeTable
from centaurus.scheduler.podinfo import pod_requests, signature, slim_for_scheduler
from centaurus.scheduler.queue import SchedulingQueue
from centaurus.scheduler.scheduler import Scheduler

Obj = dict[str, Any]
GI = 1024.0**3


def node(
    name: str,
    cpu: str = "4",
    mem: str = "8Gi",
    *,
    zone: str = "az1",
    ready: bool = True,
    labels: dict[str, str] | None = None,
    taints: list[Obj] | None = None,
    unschedulable: bool = False,
    pods: str = "110",
) -> Obj:
    return {
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone, **(labels or {})}},
        "spec": {"taints": taints or [], **({"unschedulable": True} if unschedulable else {})},
        "status": {
            "allocatable": {"cpu": cpu, "memory": mem, "pods": pods},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pod(
    name: str,
    cpu: str | None = "100m",
    mem: str | None = "64Mi",
    *,
    owner: str | None = None,
    ns: str = "default",
    **spec: Any,
) -> Obj:
    req = {k: v for k, v in (("cpu", cpu), ("memory", mem)) if v is not None}
    md: Obj = {
        "name": name,
        "namespace": ns,
        "tenant": "system",
        "uid": f"uid-{name}",
        "resourceVersion": "1",
    }
    if owner:
        md["ownerReferences"] = [{"kind": "ReplicaSet", "name": owner, "uid": owner, "controller": True}]
    return {
        "metadata": md,
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": req}}], **spec},
        "status": {"phase": "Pending"},
    }


# ---- requests ------------------------------------------------------------------------------------
def test_requests_sum_containers_max_init_and_overhead() -> None:
    spec = {
        "containers": [
            {"resources": {"requests": {"cpu": "250m", "memory": "1Gi"}}},
            {"resources": {"requests": {"cpu": "1", "memory": "512Mi"}}},
        ],
        "initContainers": [{"resources": {"requests": {"cpu": "2", "memory": "100Mi"}}}],
        "overhead": {"cpu": "50m"},
    }
    r = pod_requests(spec)
    assert r.cpu == pytest.approx(2050.0)  # init container dominates CPU, plus overhead
    assert r.mem == pytest.approx(1.5 * GI)


def test_vm_pod_counts_its_virtual_machine_resources() -> None:
    spec = {
        "virtualMachine": {
            "name": "vm",
            "image": "cirros",
            "resources": {"limits": {"cpu": "2", "memory": "2Gi"}},
        }
    }
    r = pod_requests(spec)
    assert (r.cpu, r.mem) == (2000.0, 2 * GI)  # limits stand in for absent requests


def test_best_effort_pod_scores_with_non_zero_defaults() -> None:
    r = pod_requests({"containers": [{"name": "c"}]})
    assert (r.cpu, r.mem) == (0.0, 0.0)
    assert r.nz_cpu == 100.0 and r.nz_mem == 200 * 1024 * 1024


# ---- static filters --------------------------------------------------------------------------------
def test_static_filters_and_their_reasons() -> None:
    p: Obj = {"containers": []}
    assert filters.static_reason(p, node("n")) is None
    assert filters.static_reason(p, node("n", ready=False)) == filters.NOT_READY
    assert filters.static_reason(p, node("n", unschedulable=True)) == filters.UNSCHEDULABLE
    tolerant = {
        "tolerations": [
            {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}
        ]
    }
    assert filters.static_reason(tolerant, node("n", unschedulable=True)) is None
    assert filters.static_reason({"nodeSelector": {"disk": "ssd"}}, node("n")) == filters.AFFINITY
    assert filters.static_reason({"nodeSelector": {"disk": "ssd"}}, node("n", labels={"disk": "ssd"})) is None


@pytest.mark.parametrize(
    ("op", "values", "labels", "ok"),
    [
        ("In", ["az1", "az2"], {"topology.kubernetes.io/zone": "az2"}, True),
        ("In", ["az1"], {"topology.kubernetes.io/zone": "az3"}, False),
        ("NotIn", ["az1"], {"topology.kubernetes.io/zone": "az3"}, True),
        ("NotIn", ["az3"], {"topology.kubernetes.io/zone": "az3"}, False),
        ("Exists", [], {"gpu": "yes"}, True),
        ("DoesNotExist", [], {"gpu": "yes"}, False),
    ],
)
def test_required_node_affinity(op: str, values: list[str], labels: dict[str, str], ok: bool) -> None:
    key = "gpu" if op in ("Exists", "DoesNotExist") else "topology.kubernetes.io/zone"
    expr = {"key": key, "operator": op, **({"values": values} if values else {})}
    spec = {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [expr]}]
                }
            }
        }
    }
    n = node("n")
    n["metadata"]["labels"] = labels
    assert (filters.static_reason(spec, n) is None) is ok


def test_affinity_terms_are_ored() -> None:
    spec = {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "centaurus.io/site-type", "operator": "In", "values": ["edge"]}
                            ]
                        },
                        {
                            "matchExpressions": [
                                {"key": "centaurus.io/site", "operator": "In", "values": ["dc1"]}
                            ]
                        },
                    ]
                }
            }
        }
    }
    assert filters.static_reason(spec, node("n", labels={"centaurus.io/site": "dc1"})) is None
    assert filters.static_reason(spec, node("n", labels={"centaurus.io/site": "dc2"})) == filters.AFFINITY


def test_taints_and_tolerations() -> None:
    taint = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
    n = node("n", taints=[taint])
    assert filters.static_reason({}, n) == "node(s) had untolerated taint {dedicated: db}"
    assert filters.static_reason({"tolerations": [{"key": "dedicated", "value": "db"}]}, n) is None
    assert filters.static_reason({"tolerations": [{"key": "dedicated", "value": "web"}]}, n) is not None
    assert filters.static_reason({"tolerations": [{"operator": "Exists"}]}, n) is None
    no_exec = node("n", taints=[{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}])
    assert filters.static_reason({}, no_exec) is not None
    soft = node("n", taints=[{"key": "x", "effect": "PreferNoSchedule"}])
    assert filters.static_reason({}, soft) is None


def test_failure_message_is_kube_schedulers() -> None:
    assert (
        filters.failure_message(3, {"Insufficient cpu": 3}) == "0/3 nodes are available: 3 Insufficient cpu."
    )
    msg = filters.failure_message(3, {"Insufficient memory": 1, "Insufficient cpu": 2})
    assert msg == "0/3 nodes are available: 1 Insufficient memory, 2 Insufficient cpu."


# ---- the table -------------------------------------------------------------------------------------
def test_table_fits_and_least_allocated() -> None:
    t = NodeTable(capacity=2)
    a, b, c = t.upsert(node("a", "2")), t.upsert(node("b", "4")), t.upsert(node("c", "4", ready=False))
    assert t.size == 3  # grew past its initial capacity
    spec: Obj = {"containers": []}
    static = t.static_mask(signature(spec), spec)
    req = (1500.0, 0.0, 1500.0, 0.0)
    assert list(t.fits(static, req)) == [True, True, False]
    t.add(a, (1000.0, 0.0, 1000.0, 0.0))
    assert list(t.fits(static, req)) == [False, True, False]
    score = t.least_allocated(req)
    assert score[b] > score[a]
    # a node turning ready updates the cached mask in place
    t.upsert(node("c", "4"))
    assert bool(t.static_mask(signature(spec), spec)[c])
    t.remove("b")
    assert not t.static_mask(signature(spec), spec)[b]
    assert t.upsert(node("d")) == b  # slot reused


def test_reasons_histogram() -> None:
    t = NodeTable()
    t.upsert(node("a", "1"))
    t.upsert(node("b", "1", mem="100Mi"))
    t.upsert(node("c", "8", ready=False))
    total, reasons = t.reasons({}, (2000.0, 1 * GI, 0.0, 0.0))
    assert total == 3
    assert reasons == {"Insufficient cpu": 2, "Insufficient memory": 1, filters.NOT_READY: 1}


# ---- decisions through a scheduler fed by hand ------------------------------------------------------
def make_scheduler() -> Scheduler:
    api = AsyncClient(Credentials(server="https://127.0.0.1:9", insecure=True))
    return Scheduler(api)


def feed_node(s: Scheduler, n: Obj) -> None:
    s.nodes.apply({"type": "ADDED", "object": n})


def feed_pod(s: Scheduler, p: Obj, typ: str = "ADDED") -> None:
    s.pods.apply({"type": typ, "object": p})


def test_decisions_spread_an_owners_pods_over_zones_and_fill_least_allocated() -> None:
    async def go() -> None:
        s = make_scheduler()
        for i in range(6):
            feed_node(s, node(f"n{i}", "8", "32Gi", zone=f"az{i % 3}"))
        zones = []
        for i in range(6):
            p = slim_for_scheduler(pod(f"p{i}", "1", "1Gi", owner="rs1"))
            feed_pod(s, p)
            slot = s.decide(s.pods.get(f"system/default/p{i}") or {})
            assert slot is not None
            name = s.table.names[slot]
            s._account(f"system/default/p{i}", str(name), tuple(p["_req"]), "rs1")
            zones.append(int(s.table.zone[slot]))
        assert sorted(zones) == [0, 0, 1, 1, 2, 2], zones  # two per zone
        assert len({s.bound[f"system/default/p{i}"][0] for i in range(6)}) == 6  # one per node
        await s.api.close()

    asyncio.run(go())


def test_unfit_pod_gets_no_node_and_bound_pods_count() -> None:
    async def go() -> None:
        s = make_scheduler()
        feed_node(s, node("a", "2"))
        bound = pod("x", "1500m")
        bound["spec"]["nodeName"] = "a"
        feed_pod(s, slim_for_scheduler(bound))
        assert s.table.req_cpu[0] == 1500.0
        p = slim_for_scheduler(pod("y", "1"))
        assert s.decide(p) is None
        feed_pod(s, slim_for_scheduler(bound), "DELETED")
        assert s.decide(p) == 0
        huge = slim_for_scheduler(pod("z", "3"))
        assert s.decide(huge) is None
        total, reasons = s.table.reasons(huge["spec"], tuple(huge["_req"]))
        assert filters.failure_message(total, reasons) == "0/1 nodes are available: 1 Insufficient cpu."
        await s.api.close()

    asyncio.run(go())


def test_hard_topology_spread_filters_by_skew() -> None:
    async def go() -> None:
        s = make_scheduler()
        for i, z in enumerate(("az1", "az2")):
            feed_node(s, node(f"n{i}", "8", "32Gi", zone=z))
        constraint = [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "w"}},
            }
        ]
        placed = []
        for i in range(4):
            p = pod(f"w{i}", topologySpreadConstraints=constraint)
            p["metadata"]["labels"] = {"app": "w"}
            sp = slim_for_scheduler(p)
            feed_pod(s, sp)
            slot = s.decide(sp)
            assert slot is not None
            s._account(f"system/default/w{i}", str(s.table.names[slot]), tuple(sp["_req"]), None)
            placed.append(s.table.names[slot])
        assert placed.count("n0") == 2 and placed.count("n1") == 2
        await s.api.close()

    asyncio.run(go())


def test_queue_backoff_and_unschedulable_moves() -> None:
    async def go() -> None:
        q = SchedulingQueue(max_backoff=0.05)
        q.add("a")
        q.add("a")
        assert await q.pop_batch(10) == ["a"]
        q.mark_unschedulable("a")
        q.backoff("b")
        assert await q.pop_batch(10) == ["b"]  # after its back-off
        assert q.move_unschedulable() == 1
        assert await q.pop_batch(10) == ["a"]
        q.add("c")
        q.remove("c")
        q.add("d")
        assert await q.pop_batch(10) == ["d"]

    asyncio.run(go())


def test_random_tie_break_is_not_constant() -> None:
    async def go() -> None:
        s = make_scheduler()
        for i in range(8):
            feed_node(s, node(f"n{i}"))
        p = slim_for_scheduler(pod("t"))
        picks = {s.decide(p) for _ in range(40)}
        assert len(picks) > 1
        assert np.all(np.isfinite(s.table.least_allocated(tuple(p["_req"]))))
        await s.api.close()

    asyncio.run(go())
