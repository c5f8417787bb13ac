"""Compute, Arktos (whitepaper §4.2-§4.4): unified node agent, data partitions, partitioned API
servers, active-active controllers, tenant partitions and resource managers, global scheduler,
cloud/edge gateways."""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import urlsplit

import pytest
from support import faults
from support.names import unique
from support.pods import PodFactory, container_pod, vm_pod
from support.waiting import eventually, wait_for

from centaurus.client.kubeconfig import Credentials
from centaurus.client.rest import ApiClient, ApiError

pytestmark = pytest.mark.timeout(420)

SITE_TYPE = "centaurus.io/site-type"  # node label: cloud | edge
SITE = "centaurus.io/site"  # node label: the data center or edge site name
ZONE = "topology.kubernetes.io/zone"


def cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}


def deployment(name: str, replicas: int, *, vm: bool = False) -> dict[str, Any]:
    template = vm_pod("x") if vm else container_pod("x")
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": template["spec"]}}}


def ready_replicas(n: int) -> Any:
    return lambda d: (d.get("status") or {}).get("readyReplicas", 0) == n and \
        (d.get("status") or {}).get("observedGeneration", 0) >= d["metadata"].get("generation", 1)


# ---- CMP-1: unified node agent -------------------------------------------------------------------
@pytest.mark.requirement("CMP-1", "NET-9")
def test_one_node_agent_runs_container_and_vm_pods(pods: PodFactory, nodes: list[dict[str, Any]],
                                                    requires: Any) -> None:
    """On one node (nodeName pinned), a container pod and a VM pod both reach Running, report the
    same hostIP and get pod IPs from the same pod network: one agent, one pool, one dataplane."""
    requires("vm-pods")
    node = nodes[0]["metadata"]["name"]
    c = pods.start(container_pod(unique("c"), node=node), timeout=90)
    v = pods.start(vm_pod(unique("v"), node=node), timeout=120)
    assert c["spec"]["nodeName"] == v["spec"]["nodeName"] == node
    assert c["status"]["hostIP"] == v["status"]["hostIP"]
    assert c["status"]["podIP"] and v["status"]["podIP"] and c["status"]["podIP"] != v["status"]["podIP"]


@pytest.mark.requirement("CMP-1")
def test_deployments_and_replicasets_for_containers_and_vms(api: ApiClient, namespace: str,
                                                            nodes: list[dict[str, Any]],
                                                            requires: Any) -> None:
    """A container Deployment and a VM Deployment (template with spec.virtualMachine) each create
    a ReplicaSet and become ready; scaling up adds ready replicas; a deleted pod is replaced."""
    requires("vm-pods")
    c, v = unique("cdep"), unique("vdep")
    api.create("deployments", deployment(c, 2), namespace=namespace)
    api.create("deployments", deployment(v, 1, vm=True), namespace=namespace)
    wait_for(api, "deployments", c, ready_replicas(2), namespace=namespace, timeout=120, what="2 ready")
    wait_for(api, "deployments", v, ready_replicas(1), namespace=namespace, timeout=180, what="1 ready VM")
    rss = api.list("replicasets", namespace=namespace)["items"]
    owners = {(o["kind"], o["name"]) for rs in rss for o in rs["metadata"].get("ownerReferences", [])}
    assert {("Deployment", c), ("Deployment", v)} <= owners
    api.patch("deployments", c, {"spec": {"replicas": 3}}, namespace=namespace)
    wait_for(api, "deployments", c, ready_replicas(3), namespace=namespace, timeout=120, what="3 ready")
    vm_pods = api.list("pods", namespace=namespace, labelSelector=f"app={v}")["items"]
    assert vm_pods and all(p["spec"].get("virtualMachine") for p in vm_pods)
    victim = vm_pods[0]["metadata"]["name"]
    api.delete("pods", victim, namespace=namespace)

    def replaced() -> bool:
        now = api.list("pods", namespace=namespace, labelSelector=f"app={v}")["items"]
        return any(p["metadata"]["name"] != victim and (p.get("status") or {}).get("phase") == "Running"
                   for p in now)

    eventually(replaced, timeout=180, what="the deleted VM pod replaced by a running one")


# ---- CMP-2: data store sharded by tenant ---------------------------------------------------------
@pytest.mark.requirement("CMP-2")
def test_tenants_are_spread_over_data_partitions(api: ApiClient, make_tenant: Any, requires: Any,
                                                 profile: Any) -> None:
    """With two or more data partitions, new tenants are placed on different ones (Tenant
    spec.storageClusterId), and each tenant's objects are served normally wherever it lives."""
    requires("data-partitions")
    clusters = {c["storageClusterId"] for c in api.get_json("/api/v1/storageclusters")["items"]}
    assert len(clusters) >= 2, f"only {len(clusters)} data partition(s): nothing is sharded"
    used = set()
    for _ in range(profile.pick(8, 24)):
        t = make_tenant("sh")
        sc = api.get("tenants", t)["spec"].get("storageClusterId")
        assert sc in clusters
        used.add(sc)
        api.create("configmaps", cm("probe"), namespace="default", tenant=t)
    assert len(used) >= 2, f"all tenants landed on partition(s) {used}"


@pytest.mark.requirement("CMP-2", "CMP-5")
def test_a_data_partition_failure_only_affects_its_tenants(api: ApiClient, target: Any, make_tenant: Any,
                                                           requires: Any) -> None:
    """Stopping the store of one data partition makes its tenants' writes fail while tenants on
    another partition keep reading and writing; after restart nothing written before is lost."""
    requires("data-partitions", "fault-injection")
    by_sc: dict[str, str] = {}
    for _ in range(12):
        t = make_tenant("fd")
        by_sc.setdefault(api.get("tenants", t)["spec"]["storageClusterId"], t)
        if len(by_sc) >= 2:
            break
    assert len(by_sc) >= 2, "could not place tenants on two partitions"
    (sc_down, t_down), (_, t_up) = list(by_sc.items())[:2]
    for t in (t_down, t_up):
        api.create("configmaps", cm("before"), namespace="default", tenant=t)
    stores = [c["name"] for c in faults.components(target, kind="store", partition=sc_down)]
    assert stores, f"target lists no store component of partition {sc_down}"
    with faults.stopped(target, stores):
        api.create("configmaps", cm("during"), namespace="default", tenant=t_up)
        assert api.get("configmaps", "before", namespace="default", tenant=t_up)
        with pytest.raises(ApiError) as exc:
            api.create("configmaps", cm("during"), namespace="default", tenant=t_down)
        assert exc.value.code in (500, 503, 504), exc.value
    eventually(lambda: api.get("configmaps", "before", namespace="default", tenant=t_down), timeout=60,
               what="the stopped partition serving again")
    assert api.get("configmaps", "during", namespace="default", tenant=t_up)


# ---- CMP-3: partitioned API servers --------------------------------------------------------------
def _group_servers(api: ApiClient) -> dict[str, str]:
    eps = api.get("endpoints", "kubernetes", namespace="default")
    out = {}
    for s in eps.get("subsets", []):
        port = next((p["port"] for p in s.get("ports", []) if p.get("name") in ("https", None)), None)
        for a in s.get("addresses", []):
            if s.get("serviceGroupId") and port:
                out.setdefault(str(s["serviceGroupId"]), f"https://{a['ip']}:{port}")
    return out


def _name_in(start: str, end: str) -> str:
    for c in "abcdefghijklmnopqrstuvwxyz":
        name = unique(c + "p")
        name = c + name[2:]  # starts with the probe letter, still a valid DNS label
        if (not start or name >= start) and (not end or name < end):
            return name
    raise AssertionError(f"no tenant name fits range [{start!r}, {end!r})")


@pytest.mark.requirement("CMP-3")
def test_each_api_server_partition_serves_only_its_tenant_range(api: ApiClient, target: Any,
                                                                requires: Any) -> None:
    """Each API server service group (DataPartitionConfig + its address in default/kubernetes
    Endpoints) caches and watches only the tenants of its range: a cluster-wide configmap watch on
    group A's own server sees writes of a tenant in A's range and none of a tenant in B's range,
    while the cluster's front door serves both."""
    requires("api-partitions", "tenants")
    configs = api.get_json("/api/v1/datapartitionconfigs")["items"]
    servers = _group_servers(api)
    assert len(configs) >= 2 and len(servers) >= 2, f"partitions {len(configs)}, server groups {servers}"
    ranges = {c["serviceGroupId"]: (c.get("rangeStart", "") if c.get("isRangeStartValid") else "",
                                    c.get("rangeEnd", "") if c.get("isRangeEndValid") else "")
              for c in configs}
    ga, gb = sorted(ranges)[:2]
    ta, tb = _name_in(*ranges[ga]), _name_in(*ranges[gb])
    for t in (ta, tb):
        target.ensure_tenant(t)
    try:
        creds = api.creds
        direct = ApiClient(Credentials(server=servers[ga], ca_file=creds.ca_file, insecure=creds.insecure,
                                       token=creds.token, cert_file=creds.cert_file, key_file=creds.key_file))
        try:
            rv = direct.get_json("/api/v1/configmaps")["metadata"]["resourceVersion"]
            api.create("configmaps", cm(unique("b")), namespace="default", tenant=tb)
            marker = unique("a")
            api.create("configmaps", cm(marker), namespace="default", tenant=ta)
            seen_tenants = set()
            for ev in direct.watch("configmaps", resource_version=rv, timeout_seconds=5):
                meta = ev["object"]["metadata"]
                seen_tenants.add(meta.get("tenant"))
                if meta["name"] == marker:
                    break
            assert ta in seen_tenants and tb not in seen_tenants, seen_tenants
        finally:
            direct.close()
        assert api.list("configmaps", namespace="default", tenant=tb)["items"]
    finally:
        for t in (ta, tb):
            api.delete("tenants", t, check=False)


# ---- CMP-4: active-active controllers ------------------------------------------------------------
def _instances(api: ApiClient, kind: str) -> list[dict[str, Any]]:
    items = api.get_json("/api/v1/controllerinstances")["items"]
    return [c for c in items if c.get("controllerType") == kind]


def observed(d: dict[str, Any]) -> bool:
    return int((d.get("status") or {}).get("observedGeneration", 0)) >= 1


@pytest.mark.requirement("CMP-4")
def test_controller_instances_share_the_work_by_hash(api: ApiClient, target: Any, namespace: str,
                                                     requires: Any, profile: Any) -> None:
    """Arktos ControllerInstance objects (/api/v1/controllerinstances): two or more instances of
    the deployment controller own disjoint hash-key ranges (controllerKey = upper bound) and BOTH
    do work (workloadNum > 0 after many deployments, whose metadata.hashKey spread over the
    ring); when one instance stops, the others take over its range and new deployments are still
    reconciled -- no single leader."""
    requires("active-active", "fault-injection")
    insts = _instances(api, "deployment")
    assert len(insts) >= 2, f"{len(insts)} deployment controller instance(s)"
    assert len({i["controllerKey"] for i in insts}) == len(insts), "instances share a range bound"
    names = [unique("ha") for _ in range(profile.pick(12, 40))]
    for n in names:
        api.create("deployments", deployment(n, 0), namespace=namespace)
    for n in names:
        d = wait_for(api, "deployments", n, observed, namespace=namespace, timeout=60,
                     what="observed by a controller")
        assert isinstance(d["metadata"].get("hashKey"), int)

    def two_busy() -> list[dict[str, Any]] | None:
        busy = [i for i in _instances(api, "deployment") if i.get("workloadNum", 0) > 0]
        return busy if len(busy) >= 2 else None

    eventually(two_busy, timeout=60, what="two instances reporting work")
    victim = next(c["name"] for c in faults.components(target, kind="controller"))
    with faults.stopped(target, [victim]):
        eventually(lambda: len(_instances(api, "deployment")) == len(insts) - 1, timeout=90,
                   what="the stopped instance's range taken over")
        late = [unique("late") for _ in range(6)]
        for n in late:
            api.create("deployments", deployment(n, 0), namespace=namespace)
        for n in late:
            wait_for(api, "deployments", n, observed, namespace=namespace, timeout=60,
                     what="reconciled by a surviving instance")


# ---- CMP-5: tenant partitions and resource managers ----------------------------------------------
@pytest.mark.requirement("CMP-5")
def test_tenant_partitions_schedule_across_every_zone(api: ApiClient, target: Any, make_tenant: Any,
                                                      nodes: list[dict[str, Any]], requires: Any) -> None:
    """The regional control plane runs two or more tenant partitions and one resource manager per
    AZ (target.describe()); pods of tenants in different tenant partitions are scheduled onto
    nodes of every zone: scheduling spans all hosts."""
    requires("tenant-partitions")
    desc = target.describe()
    zones = sorted({n["metadata"].get("labels", {}).get(ZONE) for n in nodes} - {None})
    assert len(desc.get("tenant_partitions", [])) >= 2, desc.get("tenant_partitions")
    rm_zones = {rm.get("zone") for rm in desc.get("resource_managers", [])}
    assert set(zones) <= rm_zones, f"zones {zones} vs resource managers {rm_zones}"
    tenants = [make_tenant(f"tp{i}") for i in range(4)]

    def partition_of(t: str) -> str | None:
        obj = api.get("tenants", t)
        return (obj["spec"].get("tenantPartition")
                or (obj["metadata"].get("annotations") or {}).get("centaurus.io/tenant-partition"))

    parts = {t: partition_of(t) for t in tenants}
    assert len(set(parts.values()) - {None}) >= 2, f"tenants not spread over tenant partitions: {parts}"
    for t in tenants:
        pods = PodFactory(api, "default", tenant=t)
        try:
            for z in zones:
                pod = pods.start(container_pod(unique("z"), node_selector={ZONE: z}), timeout=90)
                node = api.get("nodes", pod["spec"]["nodeName"])
                assert node["metadata"]["labels"].get(ZONE) == z
        finally:
            pods.cleanup()


# ---- CMP-6: global scheduler ---------------------------------------------------------------------
@pytest.mark.requirement("CMP-6")
def test_global_scheduler_places_on_cloud_and_edge(pods: PodFactory, api: ApiClient,
                                                   nodes: list[dict[str, Any]], requires: Any) -> None:
    """Nodes carry centaurus.io/site-type cloud|edge and centaurus.io/site; one scheduler places a
    pod on an edge site when asked for that site, on the cloud when asked for the cloud, and pods
    without constraints are placed on both kinds over time."""
    requires("edge")
    kinds: dict[str, list[str]] = {}
    for n in nodes:
        labels = n["metadata"].get("labels", {})
        kinds.setdefault(labels.get(SITE_TYPE, "?"), []).append(labels.get(SITE, "?"))
    assert kinds.get("cloud") and kinds.get("edge"), f"need cloud and edge nodes, have {kinds}"
    edge_site = kinds["edge"][0]
    p = pods.start(container_pod(unique("e"), node_selector={SITE: edge_site}), timeout=90)
    assert api.get("nodes", p["spec"]["nodeName"])["metadata"]["labels"][SITE] == edge_site
    p = pods.start(container_pod(unique("c"), node_selector={SITE_TYPE: "cloud"}), timeout=90)
    assert api.get("nodes", p["spec"]["nodeName"])["metadata"]["labels"][SITE_TYPE] == "cloud"
    placed = set()
    for _ in range(8):
        p = pods.start(container_pod(unique("f")), timeout=90)
        placed.add(api.get("nodes", p["spec"]["nodeName"])["metadata"]["labels"].get(SITE_TYPE))
    assert placed == {"cloud", "edge"}, f"unconstrained pods only went to {placed}"


# ---- CMP-7: cloud and edge gateways --------------------------------------------------------------
_HTTPS_PROBE = r"""
import socket, ssl, sys
host, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
try:
    with socket.create_connection((host, port), timeout=3) as raw, ctx.wrap_socket(raw) as s:
        s.sendall(f"GET /version HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        print(s.recv(200).decode(errors="replace").splitlines()[0])
except OSError as exc:
    print(f"unreachable: {exc}"); sys.exit(1)
"""


@pytest.mark.requirement("CMP-7")
def test_edge_reaches_cloud_only_through_the_gateway(api: ApiClient, target: Any, need_lab: Any,
                                                     requires: Any) -> None:
    """From an edge host (lab role "edge"), the control plane's real address is unreachable, the
    restricted virtual presence of the API offered by the edge gateway answers HTTPS, and any
    other port on that virtual address is closed: only the necessary service is exposed."""
    requires("edge")
    edge_hosts = need_lab.hosts("edge")
    assert edge_hosts, "the lab has no edge host"
    gw = (target.describe().get("edge") or {}).get("virtual_api")
    assert gw, "target.describe()['edge']['virtual_api'] (host:port of the API's virtual presence) missing"
    vhost, vport = gw.rsplit(":", 1)
    real = urlsplit(api.creds.server)
    host = edge_hosts[0].name
    run = need_lab.run
    via_gw = run(host, [sys.executable, "-c", _HTTPS_PROBE, vhost, vport], timeout=20, check=False)
    assert via_gw.returncode == 0 and via_gw.stdout.startswith("HTTP/"), \
        f"the API's virtual presence {gw} does not answer: {via_gw.stdout}"
    direct = run(host, [sys.executable, "-c", _HTTPS_PROBE, str(real.hostname), str(real.port or 443)],
                 timeout=20, check=False)
    assert direct.returncode != 0, f"edge host reached the API server directly: {direct.stdout}"
    other = run(host, [sys.executable, "-c", _HTTPS_PROBE, vhost, "22"], timeout=20, check=False)
    assert other.returncode != 0, "the gateway exposes more than the API"
