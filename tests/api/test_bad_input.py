"""Bad input gets a 4xx Status, nothing is stored, and the server keeps serving; no credential
is 401."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from centaurus.client.rest import ApiClient
from tests.api.conftest import Server

pytestmark = pytest.mark.integration

CM_PATH = "/api/v1/namespaces/default/configmaps"


def raw(api: ApiClient, method: str, path: str, content: bytes, ctype: str | None) -> httpx.Response:
    headers = {"Content-Type": ctype} if ctype else {}
    return api.request(method, path, content=content, headers=headers, check=False)


def assert_status(resp: httpx.Response, code: int, reason: str | None = None) -> dict[str, Any]:
    assert resp.status_code == code, (resp.status_code, resp.text[:300])
    doc: dict[str, Any] = resp.json()
    assert doc["kind"] == "Status" and doc["apiVersion"] == "v1" and doc["code"] == code, doc
    if reason:
        assert doc["reason"] == reason, doc
    return doc


@pytest.mark.parametrize(
    ("body", "ctype", "code", "reason"),
    [
        (
            b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad1"',
            "application/json",
            400,
            "BadRequest",
        ),
        (
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [unclosed\n",
            "application/yaml",
            400,
            "BadRequest",
        ),
        (
            b'{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bad2"}}',
            "application/json",
            400,
            "BadRequest",
        ),
        (
            b'{"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "bad3"}}',
            "application/json",
            400,
            None,
        ),
        (
            b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name!"}}',
            "application/json",
            422,
            "Invalid",
        ),
        (
            b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok"}, "data": {"k": 1}}',
            "application/json",
            422,
            "Invalid",
        ),
        (
            b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad5"}}',
            "text/html",
            415,
            "UnsupportedMediaType",
        ),
        (b"k8s\x00\x0a\x02garbage", "application/vnd.kubernetes.protobuf", 400, "BadRequest"),
        (b"[1, 2, 3]", "application/json", 400, "BadRequest"),
        (b"", "application/json", 400, "BadRequest"),
    ],
)
def test_bad_bodies_are_rejected_and_not_stored(
    server: Server, body: bytes, ctype: str, code: int, reason: str | None
) -> None:
    api = server.client()
    before = api.list("configmaps", namespace="default")["items"]
    assert_status(raw(api, "POST", CM_PATH, body, ctype), code, reason)
    assert api.list("configmaps", namespace="default")["items"] == before
    assert api.get_json("/healthz") if False else api.request("GET", "/version").status_code == 200


def test_oversized_body_is_413(server: Server) -> None:
    api = server.client()
    big = json.dumps(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "huge"},
            "data": {"k": "x" * (3 * 1024 * 1024 + 10)},
        }
    ).encode()
    assert_status(raw(api, "POST", CM_PATH, big, "application/json"), 413, "RequestEntityTooLarge")
    assert api.request("GET", f"{CM_PATH}/huge", check=False).status_code == 404
    assert api.request("GET", "/version").status_code == 200


def test_wrong_patch_and_unknown_paths(server: Server) -> None:
    api = server.client()
    api.create(
        "configmaps",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "pt"}},
        namespace="default",
    )
    assert_status(raw(api, "PATCH", f"{CM_PATH}/pt", b'{"data": {}}', "application/json"), 415)
    assert_status(
        raw(
            api,
            "PATCH",
            f"{CM_PATH}/pt",
            b'[{"op": "frobnicate", "path": "/x"}]',
            "application/json-patch+json",
        ),
        400,
    )
    assert_status(
        raw(
            api,
            "PATCH",
            f"{CM_PATH}/pt",
            b'[{"op": "remove", "path": "/nope"}]',
            "application/json-patch+json",
        ),
        422,
    )
    assert_status(
        raw(api, "PATCH", f"{CM_PATH}/pt", b'{"metadata": {"name": "Bad!"}}', "application/merge-patch+json"),
        400,
    )
    assert_status(
        raw(
            api,
            "PATCH",
            f"{CM_PATH}/pt",
            b'{"metadata": {"labels": {"a": "b c"}}}',
            "application/merge-patch+json",
        ),
        422,
    )
    assert api.get("configmaps", "pt", namespace="default")["metadata"]["name"] == "pt"
    assert_status(api.request("GET", "/api/v1/nosuchthings", check=False), 404, "NotFound")
    assert_status(api.request("GET", "/apis/nope.io/v1/things", check=False), 404, "NotFound")
    assert_status(api.request("GET", "/api/v1/namespaces/default/pods/x/nosub", check=False), 404)
    assert_status(
        api.request(
            "PUT",
            f"{CM_PATH}/pt",
            body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}},
            check=False,
        ),
        400,
    )
    stale = api.get("configmaps", "pt", namespace="default")
    api.patch("configmaps", "pt", {"data": {"a": "1"}}, namespace="default")
    assert_status(api.request("PUT", f"{CM_PATH}/pt", body=stale, check=False), 409, "Conflict")
    assert_status(
        api.request(
            "POST",
            CM_PATH,
            body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "pt"}},
            check=False,
        ),
        409,
        "AlreadyExists",
    )
    assert_status(
        api.request(
            "POST",
            "/api/v1/namespaces/nope/configmaps",
            body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
            check=False,
        ),
        404,
    )


def test_no_or_bad_credential_is_401(server: Server) -> None:
    st = server.cp.load()
    assert st is not None
    ca = str(server.dir / "pki" / "ca.crt")
    import ssl

    ctx = ssl.create_default_context(cafile=ca)
    with httpx.Client(base_url=st.server, verify=ctx) as c:
        for path in (CM_PATH, "/api", "/apis", "/api/v1/tenants", "/metrics"):
            r = c.get(path)
            assert r.status_code == 401 and r.json()["reason"] == "Unauthorized", path
        r = c.get(CM_PATH, headers={"Authorization": "Bearer not-a-token"})
        assert r.status_code == 401
        assert c.get("/healthz").status_code == 200  # health stays open for probes


def test_strict_field_validation(server: Server) -> None:
    api = server.client()
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "strict", "bogusMeta": 1},
        "bogus": 1,
    }
    doc = assert_status(api.request("POST", CM_PATH + "?fieldValidation=Strict", body=body, check=False), 400)
    assert 'unknown field "bogus"' in doc["message"] and "metadata.bogusMeta" in doc["message"]
    assert api.request("GET", f"{CM_PATH}/strict", check=False).status_code == 404
    # without the parameter (Ignore) the body is accepted
    assert api.request("POST", CM_PATH, body=body, check=False).status_code == 201
