"""High availability (whitepaper §3.3 Availability, §3.4 Reference Deployment).

HA-1 and HA-2 take whole AZs away from a control plane deployed for the test
(``target.deploy_control_plane(zones=..., store="etcd")``, capability ``ha``), so the target the
other tests use is never disturbed. A writer keeps writing while the AZ is gone; a write counts as
acknowledged only when the API answered 201, and every acknowledged write must be readable at the
end. HA-3 fails the node agents of one AZ of the target itself (capability ``fault-injection``)
and watches a cross-AZ deployment come back in the other AZs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support import faults
from support.names import unique
from support.waiting import eventually, wait_for

from centaurus.client.rest import ApiClient, ApiError

pytestmark = pytest.mark.timeout(600)
ZONE = "topology.kubernetes.io/zone"


class Writer:
    """Writes numbered configmaps as fast as the API acknowledges them; remembers what was acked
    and the longest time without a successful write."""

    def __init__(self, client: ApiClient, namespace: str) -> None:
        self.client, self.namespace = client, namespace
        self.acked: list[str] = []
        self.failures = 0
        self.longest_gap = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last_ok = time.monotonic()
        i = 0
        while not self._stop.is_set():
            name = f"w-{i:06d}"
            try:
                self.client.create("configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                                  "metadata": {"name": name}, "data": {"i": str(i)}},
                                   namespace=self.namespace)
                now = time.monotonic()
                self.longest_gap = max(self.longest_gap, now - last_ok)
                last_ok = now
                self.acked.append(name)
                i += 1
            except ApiError as exc:
                if exc.code == 409:  # applied although the answer was lost earlier: it is stored
                    self.acked.append(name)
                    i += 1
                else:
                    self.failures += 1
                    time.sleep(0.05)
            except Exception:
                self.failures += 1
                time.sleep(0.05)
        self.longest_gap = max(self.longest_gap, time.monotonic() - last_ok)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def acked_since(self, n: int) -> int:
        return len(self.acked) - n

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def lost_writes(client: ApiClient, namespace: str, acked: list[str]) -> list[str]:
    stored = {i["metadata"]["name"] for i in client.list("configmaps", namespace=namespace)["items"]}
    return [n for n in acked if n not in stored]


@pytest.fixture
def deploy(target: Any, requires: Any) -> Iterator[Any]:
    """``deploy({"az1": 1, "az2": 1, "az3": 1})`` -> a separate control plane with that many
    control-plane members (store + API server + controllers) per AZ; torn down afterwards."""
    requires("ha")
    made: list[Any] = []

    def make(zones: dict[str, int]) -> Any:
        cp = target.deploy_control_plane(zones=zones, store="etcd")
        made.append(cp)
        return cp

    yield make
    for cp in made:
        cp.down()


def _namespace(client: ApiClient) -> str:
    ns = unique("ha")
    client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    return ns


@pytest.mark.requirement("HA-1")
def test_three_az_control_plane_survives_any_one_az(deploy: Any, profile: Any,
                                                    record_measurement: Any) -> None:
    """3 AZs, one quorum member each: with any one AZ down (smoke: the AZ holding the first store
    member; full: each AZ in turn) writes keep being acknowledged, and after the AZ returns every
    acknowledged write is there. The longest write gap is reported."""
    cp = deploy({"az1": 1, "az2": 1, "az3": 1})
    client = cp.client()
    ns = _namespace(client)
    zones = faults.zones(cp, kind="store")
    assert len(zones) == 3, f"store members span {zones}"
    victims = profile.pick(zones[:1], zones)
    gaps = []
    with Writer(client, ns) as w:
        for z in victims:
            time.sleep(1.0)
            with faults.stopped(cp, faults.zone_members(cp, z)):
                before = len(w.acked)
                time.sleep(profile.pick(5.0, 15.0))
                assert w.acked_since(before) > 0, f"no write acknowledged while {z} was down"
            gaps.append(w.longest_gap)
            time.sleep(2.0)
    lost = lost_writes(client, ns, w.acked)
    record_measurement("HA-1", max(gaps), "s",
                       {"zones_failed": ",".join(victims), "writes": str(len(w.acked))})
    assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {lost[:5]}"


@pytest.mark.requirement("HA-2")
def test_two_az_control_plane_major_and_minor(deploy: Any, profile: Any) -> None:
    """2 AZs, the major one with two members, the minor with one: losing the minor AZ keeps the
    control plane writing; losing the major AZ stops writes (no quorum) -- and once it returns,
    every write acknowledged before, during and after is there."""
    cp = deploy({"az1": 2, "az2": 1})
    client = cp.client()
    ns = _namespace(client)
    with Writer(client, ns) as w:
        time.sleep(1.0)
        with faults.stopped(cp, faults.zone_members(cp, "az2")):
            before = len(w.acked)
            time.sleep(profile.pick(4.0, 10.0))
            assert w.acked_since(before) > 0, "losing the minor AZ stopped the control plane"
        time.sleep(2.0)
        with faults.stopped(cp, faults.zone_members(cp, "az1")):
            time.sleep(10.0)  # let in-flight writes settle (etcd gives up after ~7 s)
            before = len(w.acked)
            time.sleep(profile.pick(4.0, 10.0))
            assert w.acked_since(before) == 0, "writes were acknowledged without the major AZ (no quorum)"
        eventually(lambda: len(w.acked) > before, timeout=60, what="writes again after the major AZ returned")
    lost = lost_writes(client, ns, w.acked)
    assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {lost[:5]}"


@pytest.mark.requirement("HA-3")
def test_workloads_of_a_failed_az_restart_in_another(api: ApiClient, target: Any, namespace: str,
                                                     nodes: list[dict[str, Any]], requires: Any) -> None:
    """A deployment spread across AZs (topology spread on the zone label) runs in at least two
    AZs; when every node agent of one AZ stops, its pods are replaced by pods in the other AZs and
    the deployment is fully ready again."""
    requires("fault-injection")
    zones = sorted({n["metadata"].get("labels", {}).get(ZONE) for n in nodes} - {None})
    assert len(zones) >= 2, f"nodes span zones {zones}"
    name = unique("spread")
    replicas = len(zones)
    api.create("deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {
                     "terminationGracePeriodSeconds": 2,
                     "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": ZONE,
                                                    "whenUnsatisfiable": "ScheduleAnyway",
                                                    "labelSelector": {"matchLabels": {"app": name}}}],
                     "containers": [{"name": "main", "image": "busybox:1.36",
                                     "command": ["sleep", "3600"]}]}}}},
        namespace=namespace)
    wait_for(api, "deployments", name, lambda d: (d.get("status") or {}).get("readyReplicas") == replicas,
             namespace=namespace, timeout=120)
    node_zone = {n["metadata"]["name"]: n["metadata"].get("labels", {}).get(ZONE) for n in nodes}

    def pod_zones() -> dict[str, str]:
        items = api.list("pods", namespace=namespace, labelSelector=f"app={name}")["items"]
        return {p["metadata"]["name"]: node_zone.get(p["spec"].get("nodeName", ""), "?") for p in items
                if (p.get("status") or {}).get("phase") == "Running"
                and not p["metadata"].get("deletionTimestamp")}

    assert len(set(pod_zones().values())) >= 2, f"not spread: {pod_zones()}"
    failed = zones[0]
    agents = [c["name"] for c in faults.components(target, kind="agent", zone=failed)]
    assert agents, f"target lists no node agent in {failed}"
    with faults.stopped(target, agents):
        def recovered() -> bool:
            now = pod_zones()
            return len(now) >= replicas and failed not in now.values()

        eventually(recovered, timeout=300, interval=2.0, what=f"pods of {failed} restarted in other AZs")
