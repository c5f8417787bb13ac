"""kubectl 1.33 and 1.20, unmodified, in two tenants: create/get/list/watch/patch/apply (twice:
the second is a strategic merge patch carrying the last-applied annotation)/delete of pods,
deployments, configmaps, a CRD and its custom resources."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from tests.api.conftest import Server

pytestmark = pytest.mark.integration

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: c
        image: nginx:1.25
        env: [{name: A, value: "VALUE"}]
"""
CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wdg]}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
    subresources: {status: {}}
    additionalPrinterColumns: [{name: Size, type: integer, jsonPath: .spec.size}]
"""
WIDGET = """
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1}
spec: {size: SIZE}
"""


def test_core_kinds_in_two_tenants(server: Server, kubectl_for: Any) -> None:
    ta, tb = server.tenant(), server.tenant()
    for t in (ta, tb):
        k = kubectl_for(t)
        k.run("create", "namespace", "apps")
        # typed creates: protobuf bodies from 1.33, JSON without Content-Type from 1.20
        k.run("create", "configmap", "same", "-n", "apps", f"--from-literal=tenant={t}")
        k.run("run", "p1", "--image=busybox", "--restart=Never", "-n", "apps")
        k.run("create", "deployment", "d1", "--image=nginx", "-n", "apps")
        k.run("apply", "-n", "apps", "-f", "-", input=DEPLOY.replace("REPLICAS", "2").replace("VALUE", "1"))
        k.run("apply", "-n", "apps", "-f", "-", input=DEPLOY.replace("REPLICAS", "3").replace("VALUE", "2"))
    for t in (ta, tb):
        k = kubectl_for(t)
        cm = k.json("get", "configmap", "same", "-n", "apps")
        assert cm["data"] == {"tenant": t} and cm["metadata"]["tenant"] == t
        dep = k.json("get", "deployment", "web", "-n", "apps")
        assert dep["spec"]["replicas"] == 3
        assert dep["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "2"}]
        assert "kubectl.kubernetes.io/last-applied-configuration" in dep["metadata"]["annotations"]
        assert dep["metadata"]["generation"] == 2
        # (deployment controllers, when running, add their own pods: look at ours only)
        pods = [p for p in k.json("get", "pods", "-n", "apps")["items"] if p["metadata"]["name"] == "p1"]
        assert len(pods) == 1 and pods[0]["spec"]["containers"][0]["image"] == "busybox"
        assert pods[0]["metadata"]["tenant"] == t
        table = k.run("get", "pods", "-n", "apps").stdout
        assert table.split()[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], table
        k.run("patch", "deployment", "web", "-n", "apps", "-p", '{"spec":{"replicas":5}}')
        k.run(
            "patch",
            "deployment",
            "web",
            "-n",
            "apps",
            "--type=json",
            "-p",
            '[{"op":"replace","path":"/spec/replicas","value":4}]',
        )
        k.run("patch", "configmap", "same", "-n", "apps", "--type=merge", "-p", '{"data":{"x":"y"}}')
        assert k.json("get", "deployment", "web", "-n", "apps")["spec"]["replicas"] == 4
        assert k.json("get", "cm", "same", "-n", "apps")["data"] == {"tenant": t, "x": "y"}
        k.run("delete", "pod", "p1", "-n", "apps")
        k.run("delete", "deployment", "web", "d1", "-n", "apps")
        assert k.json("get", "deployments", "-n", "apps")["items"] == []
        assert "p1" not in {p["metadata"]["name"] for p in k.json("get", "pods", "-n", "apps")["items"]}
    k = kubectl_for(ta)
    k.run("delete", "namespace", "apps", "--wait=true", timeout=60)
    assert "apps" not in k.run("get", "ns", "-o", "name").stdout
    # tenant b's namespace with the same name is untouched
    assert kubectl_for(tb).json("get", "cm", "same", "-n", "apps")["data"]["tenant"] == tb


def test_watch_sees_changes(server: Server, kubectl_for: Any) -> None:
    t = server.tenant()
    k = kubectl_for(t)
    w = k.popen("get", "configmaps", "-n", "default", "-w", "--output-watch-events", "-o", "json")
    try:
        time.sleep(1.5)
        k.run("create", "configmap", "w1", "-n", "default")
        k.run("delete", "configmap", "w1", "-n", "default")
        time.sleep(1.0)
    finally:
        w.terminate()
        out, err = w.communicate(timeout=10)
    assert '"ADDED"' in out and '"DELETED"' in out and '"w1"' in out, (out, err)


def test_crd_and_custom_resources(server: Server, kubectl_for: Any) -> None:
    ta, tb = server.tenant(), server.tenant()
    ka, kb = kubectl_for(ta), kubectl_for(tb)
    ka.run("apply", "-f", "-", input=CRD)
    # the CRD is ta's: tb does not serve widgets
    assert "widgets" in ka.run("api-resources", "--api-group=example.com").stdout
    res = kb.run("get", "widgets", "-n", "default", check=False)
    assert res.returncode != 0
    ka.run("apply", "-n", "default", "-f", "-", input=WIDGET.replace("SIZE", "3"))
    ka.run("apply", "-n", "default", "-f", "-", input=WIDGET.replace("SIZE", "4"))  # merge patch for CRs
    w = ka.json("get", "wdg", "w1", "-n", "default")
    assert w["spec"]["size"] == 4 and w["metadata"]["tenant"] == ta
    cols = ka.run("get", "widgets", "-n", "default").stdout.split()
    assert cols[:3] == ["NAME", "SIZE", "AGE"] and "4" in cols, cols
    ka.run("patch", "widget", "w1", "-n", "default", "--type=merge", "-p", '{"spec":{"size":7}}')
    assert ka.json("get", "widget", "w1", "-n", "default")["spec"]["size"] == 7
    ka.run("delete", "widget", "w1", "-n", "default")
    ka.run("delete", "crd", "widgets.example.com")
    deadline = time.monotonic() + 10
    while "widgets" in ka.run("api-resources", "--api-group=example.com", check=False).stdout:
        assert time.monotonic() < deadline, "CRD still served after delete"
        time.sleep(0.2)


def test_yaml_manifest_list_apply(server: Server, kubectl_for: Any) -> None:
    """A multi-document manifest applies and re-applies unchanged (no-op second apply)."""
    t = server.tenant()
    k = kubectl_for(t)
    docs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"m{i}"}, "data": {"i": str(i)}}
        for i in range(3)
    ]
    text = yaml.safe_dump_all(docs)
    k.run("apply", "-n", "default", "-f", "-", input=text)
    out = k.run("apply", "-n", "default", "-f", "-", input=text).stdout
    assert out.count("unchanged") == 3, out
    assert len(k.json("get", "cm", "-n", "default")["items"]) == 3


def test_auth_can_i_follows_rbac(server: Server, kubectl_for: Any) -> None:
    """``kubectl auth can-i`` (SelfSubjectAccessReview, protobuf from 1.20) answers with the
    same tenant scope and RBAC decisions as real requests."""
    t = server.tenant()
    admin, dev = kubectl_for(t), kubectl_for(t, "dev")
    assert admin.run("auth", "can-i", "create", "pods", "-n", "default").stdout.strip() == "yes"
    res = dev.run("auth", "can-i", "create", "pods", "-n", "default", check=False)
    assert res.stdout.strip().startswith("no") and res.returncode == 1
    admin.run("create", "rolebinding", "dev-edit", "--clusterrole=edit", "--user=dev", "-n", "default")
    assert dev.run("auth", "can-i", "create", "pods", "-n", "default").stdout.strip() == "yes"
    assert (
        dev.run("auth", "can-i", "create", "roles", "-n", "default", check=False)
        .stdout.strip()
        .startswith("no")
    )
