"""OpenAPI: /openapi/v3 (index + per group-version documents with the kinds' schemas, CRDs'
included), /openapi/v2 as JSON and as gnostic protobuf; what kubectl does with them: explain,
client-side apply and diff (strategic merge from the v3 merge keys), kubectl 1.20 validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from centaurus.api import openapi_models
from centaurus.client.rest import ApiError
from tests.api.conftest import KUBECTL, Kubectl, Server

pytestmark = pytest.mark.integration

PB_ACCEPT = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.org}
spec:
  group: example.org
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: What the gadget should be.
            properties:
              size: {type: integer, description: How big the gadget is.}
              tags: {type: array, items: {type: string}}
"""
DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: c
        image: busybox:1.36
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
        resources: {limits: {cpu: 1, memory: 64Mi}}
      - name: d
        image: busybox:1.36
"""
SLIM = DEPLOY.replace(', {name: B, value: "2"}', "").split("      - name: d")[0]
VM_POD = """
apiVersion: v1
kind: Pod
metadata: {name: vm1}
spec:
  virtualMachine: {name: vm1, image: cirros, powerSpec: POWER, resources: {limits: {memory: 256Mi}}}
"""


def kubectl(server: Server, version: str, tenant: str, tmp: Path) -> Kubectl:
    if not KUBECTL[version].exists():
        pytest.fail(f"kubectl {version} missing at {KUBECTL[version]} (run ci/bootstrap)")
    return Kubectl(version, server.kubeconfig(tenant, "admin"), tmp / f"k{version}-{tenant}")


def v3(server: Server, tenant: str, path: str) -> dict[str, Any]:
    api = server.client(tenant)
    index = api.get_json("/openapi/v3")["paths"]
    url = index[path]["serverRelativeURL"]
    resp = api.request("GET", url)
    assert resp.headers["Etag"].strip('"') == url.split("hash=")[1]
    assert "immutable" in resp.headers["Cache-Control"]
    return dict(resp.json())


def test_v3_documents_describe_kinds_paths_and_patch_metadata(server: Server) -> None:
    t = server.tenant()
    doc = v3(server, t, "api/v1")
    schemas = doc["components"]["schemas"]
    pod = schemas["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
    spec = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]
    assert spec["containers"]["x-kubernetes-patch-merge-key"] == "name"
    assert spec["containers"]["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    assert "virtualMachine" in spec  # Arktos VM pods
    meta = schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]
    assert {"tenant", "hashKey", "labels"} <= set(meta)
    refs = json.dumps(doc).count('"$ref"')
    assert refs and all(r.split("/")[-1] in schemas for r in _refs(doc)), "dangling reference"
    item = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]
    assert item["patch"]["x-kubernetes-group-version-kind"]["kind"] == "Pod"
    assert "application/strategic-merge-patch+json" in item["patch"]["requestBody"]["content"]
    assert "fieldValidation" in {p["name"] for p in item["patch"]["parameters"]}
    apps = v3(server, t, "apis/apps/v1")
    assert "io.k8s.api.apps.v1.Deployment" in apps["components"]["schemas"]
    assert "io.k8s.api.core.v1.Pod" not in apps["components"]["schemas"]  # only what it refers to
    with pytest.raises(ApiError) as err:
        server.client(t).get_json("/openapi/v3/apis/nope.example/v1")
    assert err.value.code == 404


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_crd_schemas_are_per_tenant(server: Server, tmp_path: Path) -> None:
    ta, tb = server.tenant(), server.tenant()
    kubectl(server, "1.33", ta, tmp_path).run("apply", "-f", "-", input=CRD)
    doc = v3(server, ta, "apis/example.org/v1")
    gadget = doc["components"]["schemas"]["org.example.v1.Gadget"]
    assert gadget["properties"]["spec"]["properties"]["size"]["type"] == "integer"
    assert gadget["properties"]["metadata"] == {
        "$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    }
    patch = doc["paths"]["/apis/example.org/v1/namespaces/{namespace}/gadgets/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]  # merge patch
    assert "apis/example.org/v1" not in server.client(tb).get_json("/openapi/v3")["paths"]
    v2 = server.client(ta).get_json("/openapi/v2")
    assert v2["swagger"] == "2.0" and "org.example.v1.Gadget" in v2["definitions"]
    assert "org.example.v1.Gadget" not in server.client(tb).get_json("/openapi/v2")["definitions"]


def test_v2_protobuf_carries_the_definitions(server: Server) -> None:
    resp = server.client().request("GET", "/openapi/v2", headers={"Accept": PB_ACCEPT})
    doc = _fields(resp.content)
    assert doc[1] == [b"2.0"]
    defs = {}
    for named in _fields(doc[9][0])[1]:
        nf = _fields(named)
        defs[nf[1][0].decode()] = _fields(nf[2][0])
    pod = defs["io.k8s.api.core.v1.Pod"]
    exts = {(_fields(e)[1][0].decode()): _fields(_fields(e)[2][0])[2][0] for e in pod[31]}
    gvk = json.loads(exts["x-kubernetes-group-version-kind"])
    assert gvk == [{"group": "", "kind": "Pod", "version": "v1"}]
    assert _fields(pod[22][0])[1] == [b"object"]
    assert len(defs) == len(server.client().get_json("/openapi/v2")["definitions"])


def _fields(buf: bytes) -> dict[int, list[Any]]:
    """A protobuf message's fields (varints as int, length-delimited as bytes): enough to check
    the encoder without gnostic's generated code."""
    out: dict[int, list[Any]] = {}
    pos = 0

    def varint() -> int:
        nonlocal pos
        n = shift = 0
        while True:
            b = buf[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    while pos < len(buf):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            out.setdefault(field, []).append(varint())
        elif wire == 2:
            n = varint()
            out.setdefault(field, []).append(buf[pos : pos + n])
            pos += n
        elif wire == 1:
            out.setdefault(field, []).append(buf[pos : pos + 8])
            pos += 8
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return out


def test_kubectl_explain(server: Server, tmp_path: Path) -> None:
    t = server.tenant()
    k = kubectl(server, "1.33", t, tmp_path)
    out = k.run("explain", "pods.spec").stdout
    assert "FIELD: spec <PodSpec>" in out and "containers\t<[]Container>" in out, out
    assert "List of containers belonging to the pod" in out
    out = k.run("explain", "deployments.spec.template.spec.containers.env").stdout
    assert "KIND:       Deployment" in out and "valueFrom\t<EnvVarSource>" in out, out
    k.run("apply", "-f", "-", input=CRD)
    out = k.run("explain", "gadgets.spec").stdout
    assert "What the gadget should be." in out and "How big the gadget is." in out, out
    old = kubectl(server, "1.20", t, tmp_path).run("explain", "pods.spec.containers").stdout
    assert "RESOURCE: containers <[]Object>" in old, old


def test_client_side_apply_and_diff_use_the_merge_keys(server: Server, tmp_path: Path) -> None:
    """Second apply drops a container and an env var: only a strategic merge patch with the right
    merge keys (or the full replacement kubectl computes without them) removes them here."""
    t = server.tenant()
    k = kubectl(server, "1.33", t, tmp_path)
    k.run("apply", "--server-side=false", "-n", "default", "-f", "-", input=DEPLOY)
    diff = k.run("diff", "-n", "default", "-f", "-", input=SLIM, check=False)
    assert diff.returncode == 1 and '-        - name: B' in diff.stdout, diff
    res = k.run("apply", "--server-side=false", "-v=5", "-n", "default", "-f", "-", input=SLIM)
    assert "error calculating patch" not in res.stderr and "does not exist" not in res.stderr, res.stderr
    dep = k.json("get", "deployment", "web", "-n", "default")
    ctrs = dep["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c.get("env")) for c in ctrs] == [("c", [{"name": "A", "value": "1"}])]
    assert k.run("diff", "-n", "default", "-f", "-", input=SLIM, check=False).returncode == 0


def test_kubectl_120_validates_against_v2_and_applies(server: Server, tmp_path: Path) -> None:
    t = server.tenant()
    k = kubectl(server, "1.20", t, tmp_path)
    k.run("apply", "-n", "default", "-f", "-", input=DEPLOY)
    k.run("apply", "-n", "default", "-f", "-", input=SLIM)
    ctrs = k.json("get", "deployment", "web", "-n", "default")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in ctrs] == ["c"]
    typo = SLIM.replace("replicas:", "replicaz:")
    bad = k.run("apply", "-n", "default", "-f", "-", input=typo, check=False)
    assert bad.returncode != 0 and 'unknown field "replicaz"' in bad.stderr, bad.stderr
    for power in ("Running", "Shutdown"):  # a VM pod has no containers: still valid
        k.run("apply", "-n", "default", "-f", "-", input=VM_POD.replace("POWER", power))
    pod = k.json("get", "pod", "vm1", "-n", "default")
    assert pod["spec"]["virtualMachine"]["powerSpec"] == "Shutdown"


def test_schema_fallback_without_the_python_client() -> None:
    """The protobuf field tables stand in when the kubernetes client cannot be used."""
    doc = openapi_models.from_proto()
    pod = doc["definitions"][doc["kinds"]["/v1/Pod"]]
    assert pod["properties"]["spec"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}
    vol = doc["definitions"]["io.k8s.api.core.v1.Volume"]["properties"]
    assert "emptyDir" in vol and "volumeSource" not in vol  # inlined as in JSON
