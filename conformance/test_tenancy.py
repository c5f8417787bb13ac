"""Multi-tenancy (whitepaper §4.4.2, FAQ; CloudFabric Arktos v0.2): short path, strong isolation,
network isolation with overlapping addresses, autonomy, manageability, compatibility.

Tenant users are reached through the credentials the target mints (``target.kubeconfig(tenant,
user)``, used by the REST client, kubectl and the python client); the tenant of a request is
whatever its credentials say, never a path the user chose -- which is exactly what these tests
probe.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from support import labnet
from support.fixtures import own_client
from support.kubectl import VERSIONS
from support.names import unique
from support.pods import PodFactory, tcp_probe_pod, tcp_server_pod
from support.waiting import wait_for, wait_gone

from centaurus.client.rest import ApiClient, ApiError

pytestmark = pytest.mark.timeout(300)


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": dict(data)}


def denied(call: Any) -> ApiError:
    """Run ``call`` and return the ApiError it must raise (403 Forbidden or 404 NotFound)."""
    with pytest.raises(ApiError) as exc:
        call()
    assert exc.value.code in (403, 404), f"expected 403/404, got {exc.value}"
    assert exc.value.status.get("kind") == "Status"
    return exc.value


# ---- TEN-1: tenant from the credentials ----------------------------------------------------------
@pytest.mark.requirement("TEN-1")
def test_short_path_puts_objects_in_the_callers_tenant(api: ApiClient, make_tenant: Any,
                                                       tenant_client: Any) -> None:
    """A tenant user writes with plain Kubernetes paths (no tenant in the URL); the object lands
    in the tenant of the credentials (metadata.tenant), and the system admin finds it under
    /api/v1/tenants/{t}/... -- not in the system tenant."""
    t = make_tenant("sp")
    user = tenant_client(t)
    name = unique("cm")
    created = user.create("configmaps", cm(name, owner=t), namespace="default")
    assert created["metadata"].get("tenant") == t, created["metadata"]
    assert api.get("configmaps", name, namespace="default", tenant=t)["data"] == {"owner": t}
    with pytest.raises(ApiError) as exc:
        api.get("configmaps", name, namespace="default")
    assert exc.value.code == 404, "the object leaked into the system tenant's default namespace"


@pytest.mark.requirement("TEN-1")
@pytest.mark.parametrize("version", VERSIONS)
def test_tenant_user_sees_a_whole_cluster_of_its_own(make_tenant: Any, kubectl: Any, version: str) -> None:
    """With its own kubeconfig, a tenant user's kubectl sees its namespaces (default) as if it
    had the cluster alone: it creates a namespace and objects in it, lists them, and sees no
    namespace of any other tenant or of the system tenant."""
    t, other = make_tenant("own"), make_tenant("oth")
    mine = kubectl(version, tenant=t)
    theirs = kubectl("1.33", tenant=other)
    ns = unique("ns")
    theirs.run("create", "namespace", unique("hidden"))
    mine.run("create", "namespace", ns)
    mine.apply(cm("hello", a="b"), "-n", ns)
    listed = {n["metadata"]["name"] for n in mine.json("get", "namespaces")["items"]}
    assert {"default", ns} <= listed
    assert not any(n.startswith("cl-hidden-") for n in listed), \
        f"another tenant's namespace is visible: {listed}"
    assert listed <= {"default", "kube-system", "kube-public", "kube-node-lease", ns}, listed
    assert mine.json("get", "configmap", "hello", "-n", ns)["data"] == {"a": "b"}


# ---- TEN-2: strong isolation ---------------------------------------------------------------------
@pytest.mark.requirement("TEN-2")
def test_no_cross_tenant_read_list_write_or_watch(make_tenant: Any, tenant_client: Any) -> None:
    """Tenant A cannot get, list, watch, create, patch or delete tenant B's objects through B's
    tenant path; its own short-path reads never return B's objects even with the same name."""
    a, b = make_tenant("a"), make_tenant("b")
    ca, cb = tenant_client(a), tenant_client(b)
    secret = unique("cm")
    cb.create("configmaps", cm(secret, owner="b"), namespace="default")
    ca.create("configmaps", cm(secret, owner="a"), namespace="default")
    assert ca.get("configmaps", secret, namespace="default")["data"] == {"owner": "a"}
    denied(lambda: ca.get("configmaps", secret, namespace="default", tenant=b))
    denied(lambda: ca.list("configmaps", namespace="default", tenant=b))
    denied(lambda: next(iter(ca.watch("configmaps", namespace="default", tenant=b, timeout_seconds=2))))
    denied(lambda: ca.create("configmaps", cm(unique("x")), namespace="default", tenant=b))
    denied(lambda: ca.patch("configmaps", secret, {"data": {"owner": "a"}}, namespace="default", tenant=b))
    denied(lambda: ca.delete("configmaps", secret, namespace="default", tenant=b))
    assert cb.get("configmaps", secret, namespace="default")["data"] == {"owner": "b"}, "B's object changed"
    denied(lambda: ca.get("tenants", b))
    for item in ca.list("configmaps", namespace="default")["items"]:
        assert item["metadata"].get("tenant", a) == a and item["data"] != {"owner": "b"}


@pytest.mark.requirement("TEN-2")
def test_watch_and_cluster_wide_lists_stay_inside_the_tenant(make_tenant: Any, tenant_client: Any) -> None:
    """Cluster-wide reads of a tenant user (all-namespace list and watch of configmaps, namespace
    list) carry only its own tenant's objects while another tenant is busy writing."""
    a, b = make_tenant("wa"), make_tenant("wb")
    ca, cb = tenant_client(a), tenant_client(b)
    rv = ca.get_json("/api/v1/configmaps")["metadata"]["resourceVersion"]
    mine = unique("mine")
    for i in range(3):
        cb.create("configmaps", cm(unique(f"b{i}")), namespace="default")
    ca.create("configmaps", cm(mine), namespace="default")
    names = []
    for ev in ca.watch("configmaps", resource_version=rv, timeout_seconds=3):
        obj = ev["object"]
        owner = obj["metadata"].get("tenant", a)
        assert owner == a, f"watch delivered an object of tenant {owner}"
        names.append(obj["metadata"]["name"])
        if mine in names:
            break
    assert mine in names
    for ns in ca.list("namespaces")["items"]:
        assert ns["metadata"].get("tenant", a) == a


@pytest.mark.requirement("TEN-2")
def test_existence_cannot_be_inferred_across_tenants(make_tenant: Any, tenant_client: Any) -> None:
    """Asking for another tenant's object that exists and one that does not gives the same answer
    (code, reason, and a message that does not differ beyond the name): existence leaks nothing."""
    a, b = make_tenant("ia"), make_tenant("ib")
    ca, cb = tenant_client(a), tenant_client(b)
    real = unique("real")
    cb.create("configmaps", cm(real), namespace="default")
    missing = unique("real")
    e1 = denied(lambda: ca.get("configmaps", real, namespace="default", tenant=b))
    e2 = denied(lambda: ca.get("configmaps", missing, namespace="default", tenant=b))
    assert (e1.code, e1.reason) == (e2.code, e2.reason)
    m1, m2 = e1.status.get("message", ""), e2.status.get("message", "")
    assert m1.replace(real, "X") == m2.replace(missing, "X"), (m1, m2)


# ---- TEN-3: network isolation, overlapping addresses ---------------------------------------------
@pytest.mark.requirement("TEN-3")
def test_vpcs_isolate_tenants_with_overlapping_addresses(need_lab: Any) -> None:
    """Lab endpoints a1 (tenant-a, vpc-a) and b1 (tenant-b, vpc-b) share 10.10.1.10. A TCP client
    in a2 (vpc-a) reaching 10.10.1.10 gets a1's answer and never b1's; b1 cannot reach a2's address
    at all; UDP sent from b1 towards vpc-a addresses never arrives in vpc-a."""
    lab = need_lab
    a1, a2, b1 = lab.endpoint("a1"), lab.endpoint("a2"), lab.endpoint("b1")
    assert a1.ip == b1.ip and a1.vni != b1.vni, "default lab spec changed: a1 and b1 must overlap"
    port = 7301
    with labnet.Server(lab, "a1", port, token="a1"), labnet.Server(lab, "b1", port, token="b1"):
        answers = {labnet.tcp_request(lab, "a2", a1.ip, port) for _ in range(5)}
        assert answers == {f"a1 {a2.ip}"}, f"a2 -> {a1.ip} answered by {answers}"
        from_b = labnet.tcp_request(lab, "b1", a1.ip, port)
        assert from_b is None or from_b.startswith("b1 "), f"b1 reached vpc-a: {from_b}"
    assert labnet.tcp_request(lab, "b1", a2.ip, 22, timeout=2) is None
    with labnet.Server(lab, "a2", port + 1, proto="udp") as sink:
        labnet.udp_send(lab, "b1", a2.ip, port + 1, count=20)
        labnet.udp_send(lab, "a1", a2.ip, port + 1, count=20)  # positive control
        time.sleep(0.5)
        seen = sink.stop()
    assert seen.get(a1.ip, 0) > 0, f"positive control: a1 -> a2 UDP never arrived ({seen})"
    assert set(seen) == {a1.ip}, f"traffic from vpc-b arrived in vpc-a: {seen}"


@pytest.mark.requirement("TEN-3")
def test_pods_of_different_tenants_are_isolated(api: ApiClient, make_tenant: Any, requires: Any) -> None:
    """Pods: a TCP server pod in tenant B answers a probe pod of tenant B (positive control) but
    not a probe pod of tenant A aiming at the same IP and port."""
    requires("nodes", "networks")
    a, b = make_tenant("na"), make_tenant("nb")
    pa, pb = PodFactory(api, "default", tenant=a), PodFactory(api, "default", tenant=b)
    try:
        token = unique("tok").replace("-", "")
        server = pb.start(tcp_server_pod(unique("srv"), 8080, token), timeout=90)
        ip = server["status"]["podIP"]
        assert pb.run_to_completion(tcp_probe_pod(unique("ok"), ip, 8080, token)) == "Succeeded", \
            "positive control failed: same-tenant probe could not reach the server"
        assert pa.run_to_completion(tcp_probe_pod(unique("x"), ip, 8080, token, attempts=5)) == "Failed", \
            "a pod of another tenant reached the server"
    finally:
        pa.cleanup()
        pb.cleanup()


# ---- TEN-4: autonomy -----------------------------------------------------------------------------
@pytest.mark.requirement("TEN-4")
def test_tenant_admin_manages_quota_roles_and_service_accounts(make_tenant: Any, tenant_client: Any) -> None:
    """A tenant admin, without the cluster admin, creates a ResourceQuota that is enforced (the
    configmap over the count is refused with 403 'exceeded quota'), a Role, a RoleBinding and a
    ServiceAccount in its tenant."""
    t = make_tenant("au")
    admin = tenant_client(t)
    ns = unique("ns")
    admin.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    existing = len(admin.list("configmaps", namespace=ns)["items"])
    admin.create("resourcequotas", {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
                                    "spec": {"hard": {"count/configmaps": str(existing + 1)}}}, namespace=ns)
    wait_for(admin, "resourcequotas", "q", lambda q: bool((q.get("status") or {}).get("hard")), namespace=ns,
             timeout=30, what="to be observed by the quota controller")
    admin.create("configmaps", cm(unique("one")), namespace=ns)
    with pytest.raises(ApiError) as exc:
        admin.create("configmaps", cm(unique("two")), namespace=ns)
    assert exc.value.code == 403 and "exceeded quota" in exc.value.status.get("message", "")
    admin.create("serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                     "metadata": {"name": "bot"}}, namespace=ns)
    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}
    admin.create("roles", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                           "metadata": {"name": "reader"}, "rules": [rule]}, namespace=ns)
    admin.create("rolebindings", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                                  "metadata": {"name": "bot-reads"},
                                  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                              "name": "reader"},
                                  "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": ns}]},
                 namespace=ns)
    assert admin.get("rolebindings", "bot-reads", namespace=ns)["roleRef"]["name"] == "reader"


@pytest.mark.requirement("TEN-4")
def test_tenant_admin_installs_a_crd_visible_only_in_its_tenant(make_tenant: Any, tenant_client: Any) -> None:
    """A tenant admin installs a CustomResourceDefinition and uses it; another tenant does not
    see the CRD nor can it use the new kind."""
    t, other = make_tenant("crd"), make_tenant("ocr")
    admin, stranger = tenant_client(t), tenant_client(other)
    group = f"{unique('g').replace('-', '')}.example.com"
    admin.create("customresourcedefinitions", {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}})
    gv = f"{group}/v1"
    wait_for(admin, "customresourcedefinitions", f"widgets.{group}",
             lambda c: any(x.get("type") == "Established" and x.get("status") == "True"
                           for x in (c.get("status") or {}).get("conditions", [])), timeout=30)
    admin.create("widgets", {"apiVersion": gv, "kind": "Widget", "metadata": {"name": "w1"}, "size": 3},
                 namespace="default", group_version=gv)
    assert admin.get("widgets", "w1", namespace="default", group_version=gv)["size"] == 3
    groups = {g["name"] for g in stranger.get_json("/apis")["groups"]}
    assert group not in groups, "another tenant sees the CRD's group in discovery"
    with pytest.raises(ApiError) as exc:
        stranger.list("widgets", namespace="default", group_version=gv)
    assert exc.value.code in (403, 404)


# ---- TEN-5: manageability ------------------------------------------------------------------------
@pytest.mark.requirement("TEN-5")
def test_system_tenant_manages_every_tenant(api: ApiClient, make_tenant: Any, tenant_client: Any) -> None:
    """The system admin lists all tenants, reads and writes inside any tenant's space, and the
    tenant objects themselves are out of reach of tenant admins (a common policy they cannot
    change: a tenant admin cannot relabel or delete its own Tenant object)."""
    t1, t2 = make_tenant("m1"), make_tenant("m2")
    listed = {x["metadata"]["name"] for x in api.list("tenants")["items"]}
    assert {t1, t2, "system"} <= listed
    for t in (t1, t2):
        name = unique("pol")
        api.create("configmaps", cm(name, set_by="system"), namespace="default", tenant=t)
        assert tenant_client(t).get("configmaps", name, namespace="default")["data"] == {"set_by": "system"}
    admin1 = tenant_client(t1)
    denied(lambda: admin1.patch("tenants", t1, {"metadata": {"labels": {"tier": "gold"}}}))
    denied(lambda: admin1.delete("tenants", t1))
    denied(lambda: admin1.create("tenants", {"apiVersion": "v1", "kind": "Tenant",
                                             "metadata": {"name": unique("rogue")}, "spec": {}}))


@pytest.mark.requirement("TEN-5")
def test_deleting_a_tenant_removes_its_space(api: ApiClient, target: Any, requires: Any) -> None:
    """Deleting a Tenant (system admin) removes its namespaces and objects; its users lose
    access."""
    requires("tenants")
    t = unique("del")
    target.ensure_tenant(t)
    user = own_client(target, t)
    try:
        user.create("configmaps", cm("doomed"), namespace="default")
        api.delete("tenants", t)
        wait_gone(api, "tenants", t, timeout=90)
        with pytest.raises(ApiError) as exc:
            api.get("configmaps", "doomed", namespace="default", tenant=t)
        assert exc.value.code in (403, 404)
        with pytest.raises(ApiError) as exc:
            user.list("configmaps", namespace="default")
        assert exc.value.code in (401, 403, 404)
    finally:
        user.close()
        api.delete("tenants", t, check=False)


# ---- TEN-6: compatibility inside a tenant --------------------------------------------------------
@pytest.mark.requirement("TEN-6")
@pytest.mark.parametrize("version", VERSIONS)
def test_existing_manifests_and_kubectl_work_inside_a_tenant(make_tenant: Any, kubectl: Any,
                                                            version: str) -> None:
    """Standard manifests without any tenant field (ConfigMap, Deployment, Service) applied by an
    unmodified kubectl with a tenant kubeconfig are created, listed, applied again and deleted
    exactly as in a plain cluster."""
    t = make_tenant("cmp")
    k = kubectl(version, tenant=t)
    docs = [
        cm("settings", mode="a"),
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
         "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]}},
    ]
    k.apply(docs, "-n", "default")
    docs[0]["data"] = {"mode": "b"}
    k.apply(docs, "-n", "default")
    assert k.json("get", "configmap", "settings", "-n", "default")["data"] == {"mode": "b"}
    assert k.json("get", "deployment", "web", "-n", "default")["spec"]["replicas"] == 0
    svc = k.json("get", "service", "web", "-n", "default")
    assert svc["spec"]["ports"][0]["port"] == 80
    out = k.run("get", "deployments,services", "-n", "default").stdout
    assert "web" in out
    k.run("delete", "-n", "default", "configmap/settings", "deployment/web", "service/web", timeout=120)
    assert "settings" not in k.run("get", "configmaps", "-n", "default").stdout


@pytest.mark.requirement("TEN-6")
def test_python_client_works_inside_a_tenant(target: Any, make_tenant: Any) -> None:
    """The official python client with a tenant kubeconfig works unchanged (create, list, delete)."""
    from kubernetes import client, config

    t = make_tenant("py")
    api_client = config.new_client_from_config(config_file=str(target.kubeconfig(t, "admin")))
    try:
        core = client.CoreV1Api(api_client)
        name = unique("cm")
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"x": "1"})
        core.create_namespaced_config_map("default", body, _request_timeout=30)
        items = core.list_namespaced_config_map("default", _request_timeout=30).items
        assert name in [i.metadata.name for i in items]
        core.delete_namespaced_config_map(name, "default", _request_timeout=30)
    finally:
        api_client.close()
