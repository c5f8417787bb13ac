"""Active-active controllers (CMP-4): instances split the work by hash ranges with no leader;
killing one (SIGKILL) moves its range to the others within seconds; a new instance joins."""

from __future__ import annotations

import time
from typing import Any

import pytest

from centaurus.client.rest import ApiClient
from centaurus.controllers.runtime.sharding import RING, Member, Ring

from .conftest import Cluster, wait
from .test_workloads import NS, deployment

Obj = dict[str, Any]


# ---- the ring (pure) ---------------------------------------------------------------------------
def test_ring_owner_arcs_and_join_points() -> None:
    r = Ring([])
    assert r.owner(5) is None and r.pick_key() == RING - 1
    r = Ring([Member(RING - 1, "a")])
    assert r.owner(0).name == "a" and r.owner(RING - 1).name == "a"
    k = r.pick_key()
    assert k == (RING - 1) // 2  # the second instance takes the lower half
    r = Ring([Member(RING - 1, "a"), Member(k, "b")])
    assert r.owner(0).name == "b" and r.owner(k).name == "b" and r.owner(k + 1).name == "a"
    assert r.arc("a") == (k, RING - 1) and r.arc("b") == (RING - 1, k)  # b's arc wraps
    k3 = r.pick_key()
    assert k3 != k and r.owner(k3) is not None
    # consistent hashing: removing a member moves only its arc, to its successor
    r3 = Ring([Member(RING - 1, "a"), Member(k, "b"), Member(k3, "c")])
    r2 = Ring([m for m in r3.members if m.name != "c"])
    for h in range(0, RING, RING // 997):
        before, after = r3.owner(h), r2.owner(h)
        assert before is not None and after is not None
        if before.name != "c":
            assert before.name == after.name


# ---- instances -----------------------------------------------------------------------------------
def instances(api: ApiClient, ctype: str = "deployment") -> list[Obj]:
    return [c for c in api.get_json("/api/v1/controllerinstances")["items"] if c["controllerType"] == ctype]


def settled(api: ApiClient, n: int) -> list[Obj] | None:
    cis = instances(api)
    if len(cis) != n or any(c.get("isLocked") for c in cis):
        return None
    tags = {c["metadata"]["annotations"].get("centaurus.io/ring") for c in cis}
    return cis if len(tags) == 1 else None  # everybody acknowledged the same ring


def expected_counts(cis: list[Obj], keys: list[int]) -> dict[str, int]:
    ring = Ring([Member(int(c["controllerKey"]), c["metadata"]["name"]) for c in cis])
    out = {c["metadata"]["name"]: 0 for c in cis}
    for h in keys:
        m = ring.owner(h)
        assert m is not None
        out[m.name] += 1
    return out


def observed_all(api: ApiClient, names: list[str]) -> list[Obj] | None:
    ds = {d["metadata"]["name"]: d for d in api.list("deployments", namespace=NS)["items"]}
    ok = all((ds.get(n, {}).get("status") or {}).get("observedGeneration", 0) >= 1 for n in names)
    return list(ds.values()) if ok else None


@pytest.mark.integration
def test_instances_split_the_work_and_take_over_a_killed_ones_range(cluster: Cluster) -> None:
    api = cluster.api
    for i in range(3):
        cluster.start_controllers(f"c{i}", lease=2.0)
    cis = wait(lambda: settled(api, 3), what="3 settled deployment instances")
    assert len({c["controllerKey"] for c in cis}) == 3
    names = [f"d{i:02d}" for i in range(30)]
    for n in names:
        api.create("deployments", deployment(n, 0), namespace=NS)
    ds = wait(lambda: observed_all(api, names), what="all observed")
    keys = [int(d["metadata"]["hashKey"]) for d in ds]
    want = expected_counts(cis, keys)
    # each instance reports exactly the deployments of its own range
    wait(
        lambda: {c["metadata"]["name"]: c["workloadNum"] for c in instances(api)} == want,
        what=f"workloadNum per instance = {want}",
    )
    assert sum(1 for v in want.values() if v > 0) >= 2

    victim = max(want, key=lambda k: want[k]).removeprefix("deployment-")
    t0 = time.monotonic()
    cluster.kill(victim)
    survivors = wait(lambda: settled(api, 2), timeout=20, what="the dead instance's range taken over")
    took = time.monotonic() - t0
    assert took < 10, f"take-over took {took:.1f} s"
    assert victim not in {c["metadata"]["labels"]["centaurus.io/controller-instance"] for c in survivors}
    late = [f"late{i}" for i in range(8)]
    for n in late:
        api.create("deployments", deployment(n, 0), namespace=NS)
    ds = wait(lambda: observed_all(api, late), timeout=20, what="new deployments reconciled by the survivors")
    want = expected_counts(survivors, [int(d["metadata"]["hashKey"]) for d in ds])
    wait(
        lambda: {c["metadata"]["name"]: c["workloadNum"] for c in instances(api)} == want,
        what=f"survivors' workloadNum = {want}",
    )
    assert sum(want.values()) == 38

    # a new instance joins: locked first, then it gets half of the largest range
    cluster.start_controllers("c9", lease=2.0)
    cis = wait(lambda: settled(api, 3), timeout=20, what="the joiner unlocked")
    joiner = next(c for c in cis if c["metadata"]["name"] == "deployment-c9")
    more = [f"more{i}" for i in range(8)]
    for n in more:
        api.create("deployments", deployment(n, 0), namespace=NS)
    ds = wait(lambda: observed_all(api, more), timeout=20, what="reconciled after the join")
    want = expected_counts(cis, [int(d["metadata"]["hashKey"]) for d in ds])
    wait(
        lambda: {c["metadata"]["name"]: c["workloadNum"] for c in instances(api)} == want,
        what=f"workloadNum after the join = {want}",
    )
    assert want[joiner["metadata"]["name"]] > 0
    assert "every live deployment instance acknowledged" in cluster.log("c9")
