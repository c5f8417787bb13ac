"""resourceVersion semantics of lists and watches (served from the watch cache), pagination and
selectors; the kubernetes python client end to end. Store-parametrized: sqlite and etcd."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from centaurus.client.rest import ApiClient, ApiError
from tests.api.conftest import Server

pytestmark = pytest.mark.integration


def cm(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}}


def collect(api: ApiClient, seconds: int, **kw: Any) -> list[dict[str, Any]]:
    return list(api.watch("configmaps", namespace="default", timeout_seconds=seconds, **kw))


def test_list_rv_watch_from_rv_and_410(any_server: Server) -> None:
    t = any_server.tenant()
    api = any_server.client(t)
    api.create("configmaps", cm("before"), namespace="default")
    lst = api.list("configmaps", namespace="default")
    rv = lst["metadata"]["resourceVersion"]
    assert [c["metadata"]["name"] for c in lst["items"]] == ["before"]
    api.create("configmaps", cm("after"), namespace="default")
    api.patch("configmaps", "after", {"data": {"x": "1"}}, namespace="default")
    api.delete("configmaps", "before", namespace="default")
    evs = collect(api, 1, resource_version=rv)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == [
        ("ADDED", "after"),
        ("MODIFIED", "after"),
        ("DELETED", "before"),
    ]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in evs]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    # no resourceVersion: the current state as ADDED events first
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in collect(api, 1)] == [("ADDED", "after")]
    # history is 200 events in this suite: push the old RV out of it -> 410 Expired
    for i in range(110):
        api.patch("configmaps", "after", {"data": {"i": str(i)}}, namespace="default")
        api.patch("configmaps", "after", {"data": {"j": str(i)}}, namespace="default")
    gone = collect(api, 1, resource_version=rv)  # upstream: 200 + one ERROR event with a 410 Status
    assert [e["type"] for e in gone] == ["ERROR"], gone
    assert gone[0]["object"]["code"] == 410 and gone[0]["object"]["reason"] == "Expired"


def test_bookmarks_selectors_and_pagination(any_server: Server) -> None:
    t = any_server.tenant()
    api = any_server.client(t)
    for i in range(7):
        api.create("configmaps", cm(f"c{i}", parity="even" if i % 2 == 0 else "odd"), namespace="default")
    even = api.list("configmaps", namespace="default", labelSelector="parity=even")["items"]
    assert [c["metadata"]["name"] for c in even] == ["c0", "c2", "c4", "c6"]
    assert (
        len(api.list("configmaps", namespace="default", labelSelector="parity in (odd),!nope")["items"]) == 3
    )
    assert [
        c["metadata"]["name"]
        for c in api.list("configmaps", namespace="default", fieldSelector="metadata.name=c3")["items"]
    ] == ["c3"]
    names, cont, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cont:
            params["continue"] = cont
        page = api.list("configmaps", namespace="default", **params)
        pages += 1
        names += [c["metadata"]["name"] for c in page["items"]]
        cont = page["metadata"].get("continue")
        if not cont:
            break
    assert names == [f"c{i}" for i in range(7)] and pages == 3
    # a limit the whole result fits in: one page without a continue token, the same as a plain list
    whole = api.list("configmaps", namespace="default", limit=7)
    assert "continue" not in whole["metadata"]
    plain = api.list("configmaps", namespace="default")
    assert whole["items"] == plain["items"] and [c["metadata"]["name"] for c in whole["items"]] == names
    assert int(whole["metadata"]["resourceVersion"]) >= int(plain["items"][-1]["metadata"]["resourceVersion"])
    odd = api.list(
        "configmaps", namespace="default", limit=10, labelSelector="parity=odd", resourceVersion="0"
    )
    assert [c["metadata"]["name"] for c in odd["items"]] == ["c1", "c3", "c5"]
    # a watch with a selector sees only matching objects; bookmarks carry the current RV
    rv = api.list("configmaps", namespace="default")["metadata"]["resourceVersion"]
    out: list[dict[str, Any]] = []
    th = threading.Thread(
        target=lambda: out.extend(
            collect(api, 7, resource_version=rv, labelSelector="parity=odd", allowWatchBookmarks="true")
        )
    )
    th.start()
    time.sleep(0.5)
    api.create("configmaps", cm("n-even", parity="even"), namespace="default")
    api.create("configmaps", cm("n-odd", parity="odd"), namespace="default")
    th.join()
    objs = [e for e in out if e["type"] != "BOOKMARK"]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in objs] == [("ADDED", "n-odd")]
    marks = [e for e in out if e["type"] == "BOOKMARK"]
    assert marks and int(marks[-1]["object"]["metadata"]["resourceVersion"]) >= int(
        objs[0]["object"]["metadata"]["resourceVersion"]
    )


def test_pods_by_node_field_selector(any_server: Server) -> None:
    api = any_server.client(any_server.tenant())
    for i, node in enumerate(["n1", "n2", ""]):
        spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
        if node:
            spec["nodeName"] = node
        api.create(
            "pods",
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}"}, "spec": spec},
            namespace="default",
        )
    got = api.list("pods", namespace="default", fieldSelector="spec.nodeName=n2")["items"]
    assert [p["metadata"]["name"] for p in got] == ["p1"]
    unbound = api.list("pods", namespace="default", fieldSelector="spec.nodeName=")["items"]
    assert [p["metadata"]["name"] for p in unbound] == ["p2"]
    # binding subresource (the scheduler's write) sets nodeName once
    api.request(
        "POST",
        "/api/v1/namespaces/default/pods/p2/binding",
        body={
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": "p2"},
            "target": {"kind": "Node", "name": "n3"},
        },
    )
    assert api.get("pods", "p2", namespace="default")["spec"]["nodeName"] == "n3"
    with pytest.raises(ApiError) as err:
        api.request(
            "POST",
            "/api/v1/namespaces/default/pods/p2/binding",
            body={"target": {"kind": "Node", "name": "n4"}},
        )
    assert err.value.code == 409


def test_kubernetes_python_client(any_server: Server) -> None:
    from kubernetes import client, config, watch

    t = any_server.tenant()
    api_client = config.new_client_from_config(config_file=str(any_server.kubeconfig(t)))
    v1, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    created = v1.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py"), data={"k": "v"})
    )
    created.data["k"] = "v2"
    v1.replace_namespaced_config_map("py", "default", created)
    with pytest.raises(client.ApiException) as err:
        v1.replace_namespaced_config_map("py", "default", created)  # stale resourceVersion
    assert err.value.status == 409
    v1.patch_namespaced_config_map("py", "default", {"data": {"z": "1"}})
    assert v1.read_namespaced_config_map("py", "default").data == {"k": "v2", "z": "1"}
    dep = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="d"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels={"app": "d"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "d"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx")]),
            ),
        ),
    )
    apps.create_namespaced_deployment("default", dep)
    apps.patch_namespaced_deployment_scale("d", "default", {"spec": {"replicas": 4}})
    assert apps.read_namespaced_deployment("d", "default").spec.replicas == 4
    pod = v1.create_namespaced_pod(
        "default",
        client.V1Pod(
            metadata=client.V1ObjectMeta(generate_name="gen-"),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
        ),
    )
    assert pod.metadata.name.startswith("gen-") and pod.status.phase == "Pending"
    events = []
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_config_map, "default", timeout_seconds=1):
        events.append((ev["type"], ev["object"].metadata.name))
    assert events == [("ADDED", "py")]
    v1.delete_namespaced_pod(pod.metadata.name, "default")
    apps.delete_namespaced_deployment("d", "default", propagation_policy="Background")
    with pytest.raises(client.ApiException) as err:
        v1.read_namespaced_pod(pod.metadata.name, "default")
    assert err.value.status == 404
    api_client.close()


def test_metrics_exposition(server: Server) -> None:
    api = server.client()
    api.create("configmaps", cm("metric-probe"), namespace="default")
    api.get("configmaps", "metric-probe", namespace="default")
    text = api.request("GET", "/metrics").text
    assert 'apiserver_request_duration_seconds_bucket{code="201",resource="configmaps",' in text
    assert 'verb="CREATE"' in text and 'verb="GET"' in text
    assert 'etcd_request_duration_seconds_count{operation="create",partition="0"}' in text
    assert "# TYPE apiserver_registered_watchers gauge" in text
    for line in text.splitlines():
        if line.startswith("apiserver_request_duration_seconds_count"):
            assert float(line.rsplit(" ", 1)[1]) >= 1
