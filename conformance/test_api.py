"""API and compatibility (whitepaper §3.3, §4.3): REST, inherited Kubernetes APIs, unmodified
clients, and the Arktos additions (tenants, tenant paths, VM pods and actions, networks,
partitions), CSI storage and the portal.

Every test talks to the target through what a user has: the REST API, kubectl 1.33 and 1.20, the
official kubernetes python client. Arktos-only features are guarded by ``requires(...)`` so that a
plain Kubernetes cluster reports them not-applicable.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import httpx
import pytest
from support.kubectl import VERSIONS, KubectlError
from support.names import unique
from support.pods import VM_IMAGE, PodFactory, container_pod, vm_pod
from support.waiting import wait_for, wait_gone

from centaurus.client.rest import ApiClient, ApiError

pytestmark = pytest.mark.timeout(300)


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": dict(data)}


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "main", "image": "busybox:1.36",
                                                           "command": ["sleep", "3600"]}]}}}}


# ---- API-1: RESTful, inherited Kubernetes APIs, unmodified tools ---------------------------------
@pytest.mark.requirement("API-1")
def test_discovery_lists_the_inherited_kubernetes_apis(api: ApiClient) -> None:
    """Discovery is what every Kubernetes client reads first: /version, /api, /api/v1, /apis and
    /apis/apps/v1 must list the core resources (pods, nodes, namespaces, configmaps, services,
    secrets, serviceaccounts, events) and apps deployments/replicasets with their verbs."""
    version = api.get_json("/version")
    assert version.get("gitVersion") and version.get("major"), version
    assert "v1" in api.get_json("/api").get("versions", [])
    core = {r["name"]: r for r in api.get_json("/api/v1")["resources"]}
    for res in ("pods", "nodes", "namespaces", "configmaps", "services", "secrets", "serviceaccounts",
                "events", "pods/status", "pods/log"):
        assert res in core, f"/api/v1 lacks {res}"
    assert {"create", "get", "list", "watch", "update", "patch", "delete"} <= set(core["pods"]["verbs"])
    assert core["pods"]["namespaced"] is True and core["nodes"]["namespaced"] is False
    groups = {g["name"]: g for g in api.get_json("/apis")["groups"]}
    for g in ("apps", "rbac.authorization.k8s.io", "apiextensions.k8s.io", "coordination.k8s.io"):
        assert g in groups, f"/apis lacks group {g}"
    apps = {r["name"]: r for r in api.get_json("/apis/apps/v1")["resources"]}
    assert {"deployments", "replicasets", "deployments/scale"} <= apps.keys()
    assert apps["deployments"]["kind"] == "Deployment"


@pytest.mark.requirement("API-1")
def test_rest_semantics_crud_conflict_and_watch(api: ApiClient, namespace: str) -> None:
    """REST with Kubernetes semantics: create answers 201, read/list/patch/replace/delete work, a
    stale resourceVersion on update is a 409 Conflict Status, a missing object a 404 NotFound
    Status, and a watch from a list's resourceVersion delivers ADDED, MODIFIED, DELETED in order."""
    name = unique("cm")
    listing = api.list("configmaps", namespace=namespace)
    rv0 = listing["metadata"]["resourceVersion"]
    resp = api.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", body=configmap(name, a="1"))
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    assert created["metadata"]["namespace"] == namespace and created["data"] == {"a": "1"}
    assert name in [i["metadata"]["name"] for i in api.list("configmaps", namespace=namespace)["items"]]
    patched = api.patch("configmaps", name, {"data": {"b": "2"}}, namespace=namespace)
    assert patched["data"] == {"a": "1", "b": "2"}
    stale = {**created, "data": {"c": "3"}}
    with pytest.raises(ApiError) as exc:
        api.replace("configmaps", stale)
    assert exc.value.code == 409 and exc.value.status.get("reason") == "Conflict"
    assert exc.value.status.get("kind") == "Status"
    fresh = api.get("configmaps", name, namespace=namespace)
    fresh["data"] = {"c": "3"}
    assert api.replace("configmaps", fresh)["data"] == {"c": "3"}
    api.delete("configmaps", name, namespace=namespace)
    with pytest.raises(ApiError) as exc:
        api.get("configmaps", name, namespace=namespace)
    assert exc.value.code == 404 and exc.value.status.get("reason") == "NotFound"
    events = []
    for ev in api.watch("configmaps", namespace=namespace, resource_version=rv0, timeout_seconds=5):
        if ev["object"]["metadata"].get("name") == name:
            events.append(ev["type"])
        if len(events) >= 4:
            break
    assert events == ["ADDED", "MODIFIED", "MODIFIED", "DELETED"], events


@pytest.mark.requirement("API-1")
@pytest.mark.parametrize("version", VERSIONS)
def test_kubectl_works_unchanged(kubectl: Any, namespace: str, version: str) -> None:
    """kubectl, unmodified, in both generations: apply a standard manifest (twice: the second
    apply is a strategic-merge patch with the last-applied annotation), get it as JSON and as a
    table, create a deployment, then delete and see NotFound."""
    k = kubectl(version)
    name = unique("cm")
    k.apply(configmap(name, colour="blue"), "-n", namespace)
    obj = k.json("get", "configmap", name, "-n", namespace)
    assert obj["data"] == {"colour": "blue"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in obj["metadata"].get("annotations", {})
    k.apply(configmap(name, colour="green"), "-n", namespace)
    assert k.json("get", "configmap", name, "-n", namespace)["data"] == {"colour": "green"}
    table = k.run("get", "configmaps", "-n", namespace).stdout
    header = table.splitlines()[0].split()
    assert header[:2] == ["NAME", "DATA"], f"server-side table columns missing: {table[:200]}"
    assert name in table
    dep = unique("dep")
    k.create(deployment(dep, replicas=0), "-n", namespace)
    deps = k.run("get", "deployments", "-n", namespace).stdout
    assert deps.split()[:2] == ["NAME", "READY"] and dep in deps
    k.run("delete", "configmap", name, "-n", namespace, timeout=90)
    with pytest.raises(KubectlError, match=r"NotFound|not found"):
        k.run("get", "configmap", name, "-n", namespace)


@pytest.mark.requirement("API-1")
def test_official_python_client_works_unchanged(target: Any, namespace: str) -> None:
    """The official kubernetes python client, configured from the target's kubeconfig, creates,
    reads, lists, patches and deletes configmaps, creates a deployment and watches events."""
    from kubernetes import client, config, watch

    api_client = config.new_client_from_config(config_file=str(target.kubeconfig()))
    try:
        core = client.CoreV1Api(api_client)
        apps = client.AppsV1Api(api_client)
        name = unique("cm")
        start_rv = core.list_namespaced_config_map(namespace, _request_timeout=30).metadata.resource_version
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name), data={"k": "v"}), _request_timeout=30)
        assert core.read_namespaced_config_map(name, namespace, _request_timeout=30).data == {"k": "v"}
        core.patch_namespaced_config_map(name, namespace, {"data": {"k": "w"}}, _request_timeout=30)
        listed = core.list_namespaced_config_map(namespace, _request_timeout=30).items
        names = [c.metadata.name for c in listed]
        assert name in names
        dep = unique("dep")
        apps.create_namespaced_deployment(namespace, deployment(dep, replicas=0), _request_timeout=30)
        assert apps.read_namespaced_deployment(dep, namespace, _request_timeout=30).spec.replicas == 0
        core.delete_namespaced_config_map(name, namespace, _request_timeout=30)
        seen = []
        w = watch.Watch()
        for ev in w.stream(core.list_namespaced_config_map, namespace, resource_version=start_rv,
                           timeout_seconds=5, _request_timeout=15):
            if ev["object"].metadata.name == name:
                seen.append(ev["type"])
            if len(seen) == 3:
                w.stop()
        assert seen == ["ADDED", "MODIFIED", "DELETED"], seen
    finally:
        api_client.close()


# ---- API-2: tenants ------------------------------------------------------------------------------
@pytest.mark.requirement("API-2")
def test_tenants_api_lifecycle(api: ApiClient, requires: Any, kubectl: Any) -> None:
    """/api/v1/tenants: the system tenant is listed; POST creates a Tenant that becomes Active
    with its own default namespace; kubectl lists it; DELETE removes it and its space."""
    requires("tenants")
    names = [t["metadata"]["name"] for t in api.list("tenants")["items"]]
    assert "system" in names
    name = unique("tn")
    resp = api.request("POST", "/api/v1/tenants", body={"apiVersion": "v1", "kind": "Tenant",
                                                        "metadata": {"name": name}, "spec": {}})
    assert resp.status_code == 201, resp.text
    try:
        tenant = wait_for(api, "tenants", name, lambda t: (t.get("status") or {}).get("phase") == "Active",
                          timeout=30, what="to be Active")
        assert tenant["kind"] == "Tenant" and tenant["apiVersion"] == "v1"
        wait_for(api, "namespaces", "default", lambda ns: True, tenant=name, timeout=30,
                 what=f"(default namespace of tenant {name})")
        assert name in kubectl("1.33").run("get", "tenants").stdout
    finally:
        api.delete("tenants", name, check=False)
    wait_gone(api, "tenants", name, timeout=60)
    with pytest.raises(ApiError) as exc:
        api.get("namespaces", "default", tenant=name)
    assert exc.value.code in (403, 404)


# ---- API-3: tenant-scoped paths ------------------------------------------------------------------
@pytest.mark.requirement("API-3")
def test_tenant_scoped_pod_paths(api: ApiClient, make_tenant: Any, requires: Any) -> None:
    """/api/v1/tenants/{t}/namespaces/{ns}/pods serves pods of tenant t: the created pod carries
    metadata.tenant, is listed under the tenant path (per namespace and across the tenant's
    namespaces), and the same pod name in another tenant is a different object."""
    requires("tenant-paths")
    t1, t2 = make_tenant("p"), make_tenant("q")
    name = unique("pod")
    base1 = f"/api/v1/tenants/{t1}/namespaces/default/pods"
    resp = api.request("POST", base1, body=container_pod(name))
    assert resp.status_code == 201, resp.text
    p1 = api.get_json(f"{base1}/{name}")
    assert p1["metadata"]["tenant"] == t1 and p1["metadata"]["namespace"] == "default"
    assert name in [p["metadata"]["name"] for p in api.get_json(base1)["items"]]
    across = api.get_json(f"/api/v1/tenants/{t1}/pods")["items"]
    assert any(p["metadata"]["name"] == name for p in across)
    p2 = api.create("pods", container_pod(name), namespace="default", tenant=t2)
    assert p2["metadata"]["tenant"] == t2 and p2["metadata"]["uid"] != p1["metadata"]["uid"]
    api.delete("pods", name, namespace="default", tenant=t1)
    wait_gone(api, "pods", name, namespace="default", tenant=t1, timeout=60)
    assert api.get("pods", name, namespace="default", tenant=t2)["metadata"]["uid"] == p2["metadata"]["uid"]


# ---- API-4: VM pods and actions ------------------------------------------------------------------
def _vm_power(pod: dict[str, Any]) -> str | None:
    vm = (pod.get("status") or {}).get("virtualMachineStatus") or {}
    return vm.get("powerState")


def _action(api: ApiClient, tenant: str, ns: str, pod: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST pods/{pod}/action (CustomAction) and wait for the resulting Action to complete."""
    resp = api.request("POST", f"/api/v1/tenants/{tenant}/namespaces/{ns}/pods/{pod}/action", body=body)
    assert resp.status_code in (200, 201, 202), resp.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        actions = api.get_json(f"/api/v1/tenants/{tenant}/namespaces/{ns}/actions")["items"]
        mine = [a for a in actions if ((a.get("spec") or {}).get("podAction") or {}).get("podName") == pod
                and _action_kind(a) == body["actionName"]]
        done = [a for a in mine if (a.get("status") or {}).get("complete")]
        if done:
            return done[-1]
        time.sleep(0.5)
    raise AssertionError(f"action {body['actionName']} on {pod} did not complete within 120 s")


def _action_kind(action: dict[str, Any]) -> str:
    pa = (action.get("spec") or {}).get("podAction") or {}
    kinds = (("rebootAction", "Reboot"), ("snapshotAction", "Snapshot"), ("restoreAction", "Restore"))
    for key, kind in kinds:
        if pa.get(key) is not None:
            return kind
    return "?"


@pytest.mark.requirement("API-4")
def test_vm_pod_runs_and_reports_power_state(api: ApiClient, make_tenant: Any, requires: Any) -> None:
    """The whitepaper's VM pod (spec.virtualMachine, Figure 4.2) created through the tenant path
    reaches Running with an IP and a virtualMachineStatus; setting spec.virtualMachine.powerSpec
    to Shutdown powers it off (powerState Shutdown), back to Running powers it on."""
    requires("vm-pods", "nodes")
    t = make_tenant("vm")
    pods = PodFactory(api, "default", tenant=t)
    try:
        name = unique("vm")
        pod = pods.start(vm_pod(name), timeout=120)
        assert pod["spec"]["virtualMachine"]["image"] == VM_IMAGE
        assert _vm_power(pod) == "Running", pod.get("status")
        api.patch("pods", name, {"spec": {"virtualMachine": {"powerSpec": "Shutdown"}}}, namespace="default",
                  tenant=t)
        wait_for(api, "pods", name, lambda p: _vm_power(p) == "Shutdown", namespace="default", tenant=t,
                 timeout=90, what="to power off")
        api.patch("pods", name, {"spec": {"virtualMachine": {"powerSpec": "Running"}}}, namespace="default",
                  tenant=t)
        wait_for(api, "pods", name, lambda p: _vm_power(p) == "Running" and p["status"].get("podIP"),
                 namespace="default", tenant=t, timeout=120, what="to power on again")
    finally:
        pods.cleanup()


@pytest.mark.requirement("API-4")
def test_vm_actions_reboot_snapshot_restore(api: ApiClient, make_tenant: Any, requires: Any) -> None:
    """Actions for VMs through the pods/action subresource (Arktos Action API): Reboot completes
    with rebootSuccessful and the VM runs again; Snapshot completes and names a snapshot; Restore
    of that snapshot completes and the VM runs. Each request creates an Action object listed under
    /api/v1/tenants/{t}/namespaces/{ns}/actions."""
    requires("vm-pods", "nodes")
    t = make_tenant("act")
    pods = PodFactory(api, "default", tenant=t)
    try:
        name = unique("vm")
        pods.start(vm_pod(name), timeout=120)
        reboot = _action(api, t, "default", name, {"apiVersion": "v1", "kind": "CustomAction",
                                                   "actionName": "Reboot",
                                                   "rebootParams": {"delayInSeconds": 0}})
        status = (reboot["status"].get("podActionStatus") or {}).get("rebootStatus") or {}
        assert status.get("rebootSuccessful") is True, reboot["status"]
        pods.wait_running(name, timeout=120)
        snap = _action(api, t, "default", name, {"apiVersion": "v1", "kind": "CustomAction",
                                                 "actionName": "Snapshot",
                                                 "snapshotParams": {"snapshotLocation": "/var/tmp/"}})
        snap_status = (snap["status"].get("podActionStatus") or {}).get("snapshotStatus") or {}
        snapshot_id = snap_status.get("snapshotID") or snap["metadata"]["name"]
        assert snap_status, f"snapshot action completed without a snapshotStatus: {snap['status']}"
        restore = _action(api, t, "default", name, {"apiVersion": "v1", "kind": "CustomAction",
                                                    "actionName": "Restore",
                                                    "restoreParams": {"snapshotID": snapshot_id}})
        restored = (restore["status"].get("podActionStatus") or {}).get("restoreStatus")
        assert restored is not None, restore["status"]
        pods.wait_running(name, timeout=120)
    finally:
        pods.cleanup()


# ---- API-5: networks -----------------------------------------------------------------------------
def _network_ready(n: dict[str, Any]) -> bool:
    return (n.get("status") or {}).get("phase") == "Ready"


@pytest.mark.requirement("API-5")
def test_network_objects_and_pluggable_controller(api: ApiClient, make_tenant: Any, requires: Any) -> None:
    """Network objects (arktos.futurewei.com/v1) under /apis/.../tenants/{t}/networks: a new
    tenant gets a default Network that the configured network controller makes Ready; a second
    Network of the same type is also made Ready (the controller, whichever provider it is, reacts
    to the object), and deleting it removes it."""
    requires("networks")
    t = make_tenant("net")
    default = wait_for(api, "networks", "default", _network_ready, tenant=t, timeout=60,
                       what="(default network of a new tenant) to be Ready")
    kind = (default.get("spec") or {}).get("type")
    assert kind, f"default network has no spec.type: {default.get('spec')}"
    name = unique("net")
    api.create("networks", {"apiVersion": "arktos.futurewei.com/v1", "kind": "Network",
                            "metadata": {"name": name}, "spec": {"type": kind}}, tenant=t)
    net = wait_for(api, "networks", name, _network_ready, tenant=t, timeout=60, what="to be Ready")
    assert net["metadata"].get("tenant", t) == t
    listed = [n["metadata"]["name"] for n in api.list("networks", tenant=t)["items"]]
    assert {"default", name} <= set(listed)
    api.delete("networks", name, tenant=t)
    wait_gone(api, "networks", name, tenant=t, timeout=60)


@pytest.mark.requirement("API-5")
def test_pod_attaches_to_the_network_it_names(api: ApiClient, make_tenant: Any, requires: Any) -> None:
    """A pod labelled arktos.futurewei.com/network=<name> gets its address from that Network
    (status.podIP inside the network's CIDR as reported in its status/spec)."""
    requires("networks", "nodes")
    t = make_tenant("pn")
    wait_for(api, "networks", "default", _network_ready, tenant=t, timeout=60)
    pods = PodFactory(api, "default", tenant=t)
    try:
        pod = pods.start(container_pod(unique("p"), labels={"arktos.futurewei.com/network": "default"}),
                         timeout=90)
        net = api.get("networks", "default", tenant=t)
        cidr = (net.get("status") or {}).get("cidr") or (net.get("spec") or {}).get("cidr")
        assert cidr, f"network default exposes no CIDR: {net.get('status')}"
        import ipaddress

        assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(cidr, strict=False)
    finally:
        pods.cleanup()


# ---- API-6: cluster and data partitions ----------------------------------------------------------
@pytest.mark.requirement("API-6")
def test_data_partition_api(api: ApiClient, requires: Any) -> None:
    """Data partitions (Arktos StorageCluster, /api/v1/storageclusters): at least one storage
    cluster with an id and a service address; a tenant created with spec.storageClusterId keeps
    it, and every tenant is assigned one."""
    requires("tenants", "data-partitions")
    clusters = api.get_json("/api/v1/storageclusters")["items"]
    assert clusters, "no StorageCluster objects"
    ids = [c.get("storageClusterId") for c in clusters]
    assert all(ids) and all(c.get("serviceAddress") for c in clusters), clusters
    name = unique("dp")
    api.create("tenants", {"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": name},
                           "spec": {"storageClusterId": ids[-1]}})
    try:
        got = wait_for(api, "tenants", name, lambda t: (t.get("status") or {}).get("phase") == "Active",
                       timeout=30)
        assert got["spec"]["storageClusterId"] == ids[-1]
        for t in api.list("tenants")["items"]:
            assert (t.get("spec") or {}).get("storageClusterId") in ids, t["metadata"]["name"]
    finally:
        api.delete("tenants", name, check=False)


@pytest.mark.requirement("API-6")
def test_api_server_partition_api(api: ApiClient, requires: Any) -> None:
    """Cluster (API server) partitions (Arktos DataPartitionConfig, /api/v1/datapartitionconfigs):
    each config names a service group and a tenant-name range; ranges do not overlap, and every
    service group appears in the subsets of the default/kubernetes Endpoints."""
    requires("api-partitions")
    configs = api.get_json("/api/v1/datapartitionconfigs")["items"]
    assert configs, "no DataPartitionConfig objects"
    ranges = []
    for c in configs:
        assert c.get("serviceGroupId"), c
        start = c.get("rangeStart", "") if c.get("isRangeStartValid") else ""
        end = c.get("rangeEnd", "") if c.get("isRangeEndValid") else "\U0010ffff"
        ranges.append((start, end, c["serviceGroupId"]))
    ranges.sort()
    for (_, e1, g1), (s2, _, g2) in itertools.pairwise(ranges):
        assert e1 <= s2, f"partition ranges of groups {g1} and {g2} overlap"
    eps = api.get("endpoints", "kubernetes", namespace="default")
    groups = {s.get("serviceGroupId") for s in eps.get("subsets", [])}
    assert {g for _, _, g in ranges} <= groups, f"service groups {groups} vs partitions {ranges}"


# ---- API-7: CSI ----------------------------------------------------------------------------------
@pytest.mark.requirement("API-7")
def test_csi_driver_serves_persistent_volumes(api: ApiClient, pods: PodFactory, namespace: str,
                                              requires: Any) -> None:
    """A CSI driver is registered (storage.k8s.io CSIDriver) with a StorageClass; a claim against
    it is bound, a pod writes a file into the volume, and after that pod is gone a second pod
    reads the same content: the volume outlives the pod."""
    requires("csi", "nodes")
    drivers = api.get_json("/apis/storage.k8s.io/v1/csidrivers")["items"]
    assert drivers, "no CSIDriver registered"
    driver_names = {d["metadata"]["name"] for d in drivers}
    classes = [c for c in api.get_json("/apis/storage.k8s.io/v1/storageclasses")["items"]
               if c.get("provisioner") in driver_names]
    assert classes, f"no StorageClass for CSI drivers {driver_names}"
    claim = unique("pvc")
    api.create("persistentvolumeclaims", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": classes[0]["metadata"]["name"],
                 "resources": {"requests": {"storage": "16Mi"}}}}, namespace=namespace)
    token = unique("data")

    def with_volume(name: str, script: str) -> dict[str, Any]:
        pod = container_pod(name, ["sh", "-c", script], restart="Never")
        pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "v", "mountPath": "/data"}]
        pod["spec"]["volumes"] = [{"name": "v", "persistentVolumeClaim": {"claimName": claim}}]
        return pod

    writer = with_volume(unique("w"), f"echo {token} > /data/f")
    assert pods.run_to_completion(writer, timeout=120) == "Succeeded"
    reader = with_volume(unique("r"), f"grep -q {token} /data/f")
    assert pods.run_to_completion(reader, timeout=120) == "Succeeded"
    pvc = api.get("persistentvolumeclaims", claim, namespace=namespace)
    assert (pvc.get("status") or {}).get("phase") == "Bound"


# ---- API-8: portal -------------------------------------------------------------------------------
@pytest.mark.requirement("API-8")
def test_portal_shows_and_manages_resources(target: Any, api: ApiClient, namespace: str,
                                            requires: Any) -> None:
    """The portal (URL in target.describe()["portal"]) serves an HTML page; its cluster list
    (GET {portal}/api/clusters) names at least one cluster; through it a pod created via the API
    is shown ({portal}/clusters/{c}/api/v1/namespaces/{ns}/pods/{name}) and can be deleted, i.e.
    the portal manages compute resources and the network objects are listed as well."""
    requires("portal")
    url = str(target.describe().get("portal") or "")
    assert url.startswith("http"), f"target declares a portal but describe() gives no URL: {url!r}"
    name = unique("pp")
    api.create("pods", container_pod(name), namespace=namespace)
    with httpx.Client(base_url=url, verify=False, timeout=30) as web:
        home = web.get("/")
        assert home.status_code == 200 and "text/html" in home.headers.get("content-type", "")
        clusters = web.get("/api/clusters").json()
        assert clusters, "portal lists no cluster"
        c = clusters[0]["name"]
        shown = web.get(f"/clusters/{c}/api/v1/namespaces/{namespace}/pods/{name}")
        assert shown.status_code == 200 and shown.json()["metadata"]["name"] == name
        nets = web.get(f"/clusters/{c}/apis/arktos.futurewei.com/v1/networks")
        assert nets.status_code == 200, nets.text[:200]
        gone = web.delete(f"/clusters/{c}/api/v1/namespaces/{namespace}/pods/{name}")
        assert gone.status_code in (200, 202), gone.text[:200]
    wait_gone(api, "pods", name, namespace=namespace, timeout=60)
