"""Tenant isolation on every verb and both path forms; same names in two tenants; lists and
watches never cross tenants; tenants land in different data partitions; Tenant lifecycle."""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

import pytest

from centaurus.client.rest import ApiClient, ApiError
from tests.api.conftest import Server

pytestmark = pytest.mark.integration


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def code(fn: Any) -> int:
    try:
        fn()
    except ApiError as exc:
        return exc.code
    return 200


def test_cross_tenant_every_verb_both_paths(server: Server) -> None:
    ta, tb = server.tenant(), server.tenant()
    a, b = server.client(ta), server.client(tb)
    a.create("configmaps", cm("secret-a", v="a"), namespace="default")
    b.create("configmaps", cm("secret-a", v="b"), namespace="default")  # same name coexists
    assert a.get("configmaps", "secret-a", namespace="default")["data"] == {"v": "a"}
    assert b.get("configmaps", "secret-a", namespace="default")["data"] == {"v": "b"}
    # explicit other-tenant path: 403 on every verb
    attempts = {
        "get": lambda: a.get("configmaps", "secret-a", namespace="default", tenant=tb),
        "list": lambda: a.list("configmaps", namespace="default", tenant=tb),
        "watch": lambda: next(a.watch("configmaps", namespace="default", tenant=tb, timeout_seconds=1)),
        "create": lambda: a.create("configmaps", cm("x"), namespace="default", tenant=tb),
        "update": lambda: a.replace(
            "configmaps",
            {**cm("secret-a"), "metadata": {"name": "secret-a", "namespace": "default"}},
            tenant=tb,
        ),
        "patch": lambda: a.patch(
            "configmaps", "secret-a", {"data": {"v": "x"}}, namespace="default", tenant=tb
        ),
        "delete": lambda: a.delete("configmaps", "secret-a", namespace="default", tenant=tb),
        "deletecollection": lambda: a.request(
            "DELETE", f"/api/v1/tenants/{tb}/namespaces/default/configmaps"
        ),
        "tenant get": lambda: a.get("tenants", tb),
        "all tenants": lambda: a.get_json("/api/v1/tenants/all/configmaps"),
    }
    for verb, fn in attempts.items():
        assert code(fn) == 403, verb
    # short path of a's credential never reaches b: a's own object only
    a.delete("configmaps", "secret-a", namespace="default")
    assert code(lambda: a.get("configmaps", "secret-a", namespace="default")) == 404
    assert code(lambda: a.patch("configmaps", "secret-a", {"data": {}}, namespace="default")) == 404
    assert code(lambda: a.delete("configmaps", "secret-a", namespace="default")) == 404
    assert b.get("configmaps", "secret-a", namespace="default")["data"] == {"v": "b"}
    # a's own tenant path works like the short path
    a.create("configmaps", cm("own"), namespace="default", tenant=ta)
    assert a.get("configmaps", "own", namespace="default")["metadata"]["tenant"] == ta
    assert a.get("tenants", ta)["metadata"]["name"] == ta  # its own Tenant object is readable
    assert code(lambda: a.list("tenants")) == 403
    assert (
        code(lambda: a.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}}))
        == 403
    )


def test_lists_and_watches_stay_inside_the_tenant(server: Server) -> None:
    ta, tb = server.tenant(), server.tenant()
    a, b = server.client(ta), server.client(tb)
    seen: list[dict[str, Any]] = []
    lst = a.list("configmaps")  # all namespaces of ta
    t = threading.Thread(
        target=lambda: seen.extend(
            a.watch("configmaps", resource_version=lst["metadata"]["resourceVersion"], timeout_seconds=3)
        )
    )
    t.start()
    time.sleep(0.5)
    b.create("configmaps", cm("from-b"), namespace="default")
    a.create("configmaps", cm("from-a"), namespace="default")
    t.join()
    names = [e["object"]["metadata"]["name"] for e in seen if e["type"] != "BOOKMARK"]
    assert names == ["from-a"], names
    assert [c["metadata"]["name"] for c in a.list("configmaps")["items"]] == ["from-a"]
    assert {n["metadata"]["tenant"] for n in a.list("namespaces")["items"]} == {ta}
    # the system tenant sees both through tenants/all
    sys_all = server.client().get_json("/api/v1/tenants/all/configmaps")["items"]
    assert {ta, tb} <= {c["metadata"]["tenant"] for c in sys_all}


def test_tenants_land_in_different_partitions(server: Server) -> None:
    api = server.client()
    ta, tb = server.tenant(storage_cluster="0"), server.tenant(storage_cluster="1")
    assert api.get("tenants", ta)["spec"]["storageClusterId"] == "0"
    assert api.get("tenants", tb)["spec"]["storageClusterId"] == "1"
    ids = sorted(c["storageClusterId"] for c in api.list("storageclusters")["items"])
    assert ids == ["0", "1"]
    server.client(ta).create("configmaps", cm("marker-a"), namespace="default")
    server.client(tb).create("configmaps", cm("marker-b"), namespace="default")
    found: dict[str, set[str]] = {}
    for i in (0, 1):
        db = server.dir / "data" / f"partition-{i}.db"
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            keys = "\n".join(str(r) for r in conn.execute("SELECT * FROM sqlite_master").fetchall())
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            blob = ""
            for tab in tables:
                blob += "\n".join(str(r) for r in conn.execute(f"SELECT * FROM {tab}").fetchall())
        found[str(i)] = {m for m in ("marker-a", "marker-b") if m in blob}
        assert keys
    assert found == {"0": {"marker-a"}, "1": {"marker-b"}}, found
    with pytest.raises(ApiError) as err:
        api.create(
            "tenants",
            {
                "apiVersion": "v1",
                "kind": "Tenant",
                "metadata": {"name": "cl-bad-part"},
                "spec": {"storageClusterId": "9"},
            },
        )
    assert err.value.code == 422


def test_tenant_lifecycle_active_terminating_gone(server: Server) -> None:
    api = server.client()
    t = server.tenant()
    assert api.get("tenants", t)["status"]["phase"] == "Active"
    ta = server.client(t)
    ta.create("configmaps", cm("doomed"), namespace="default")
    ta.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "extra"}})
    api.delete("tenants", t)
    phases = set()
    deadline = time.monotonic() + 30
    while True:
        try:
            phases.add(api.get("tenants", t)["status"]["phase"])
        except ApiError as exc:
            assert exc.code == 404
            break
        assert time.monotonic() < deadline, "tenant not gone in 30 s"
        time.sleep(0.02)
    assert "Terminating" in phases or phases == set()
    assert server.client().get_json(f"/api/v1/tenants/{t}/namespaces/default/configmaps")["items"] == []
    assert api.list("namespaces", tenant=t)["items"] == []
    # the tenant's credentials no longer work
    assert code(lambda: ta.list("configmaps", namespace="default")) == 403


def test_only_system_manages_tenants(server: Server) -> None:
    t = server.tenant()
    a = server.client(t)
    body = {"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": "cl-evil"}}
    assert code(lambda: a.create("tenants", body)) == 403
    assert code(lambda: a.delete("tenants", t)) == 403
    assert code(lambda: a.patch("tenants", t, {"spec": {"storageClusterId": "0"}})) == 403


def test_cert_and_token_identities(server: Server) -> None:
    t = server.tenant()
    by_cert = ApiClient.from_kubeconfig(str(server.kubeconfig(t, "admin", auth="cert")))
    by_cert.create("configmaps", cm("via-cert"), namespace="default")
    assert server.client(t).get("configmaps", "via-cert", namespace="default")["metadata"]["tenant"] == t
    with pytest.raises(ApiError) as err:
        by_cert.list("configmaps", namespace="default", tenant="system")
    assert err.value.code == 403
    by_cert.close()


def test_cross_partition_watch_resumes_from_any_event(server: Server) -> None:
    api = server.client()
    ta, tb = server.tenant(storage_cluster="0"), server.tenant(storage_cluster="1")
    lst = api.get_json("/api/v1/tenants/all/configmaps")
    rv = lst["metadata"]["resourceVersion"]
    assert len(rv.split(".")) == 2, rv  # one revision per partition
    server.client(ta).create("configmaps", cm("xa"), namespace="default")
    server.client(tb).create("configmaps", cm("xb"), namespace="default")
    evs = list(api.watch("configmaps", tenant="all", resource_version=rv, timeout_seconds=1))
    got = [(e["object"]["metadata"]["tenant"], e["object"]["metadata"]["name"]) for e in evs]
    assert sorted(got, key=lambda x: x[1]) == [(ta, "xa"), (tb, "xb")], got
    first_rv = evs[0]["object"]["metadata"]["resourceVersion"]
    assert len(first_rv.split(".")) == 2
    again = list(api.watch("configmaps", tenant="all", resource_version=first_rv, timeout_seconds=1))
    assert [e["object"]["metadata"]["name"] for e in again] == [evs[1]["object"]["metadata"]["name"]]
    # an object seen with a composite version can be updated with it (its partition's part counts)
    obj = evs[1]["object"]
    obj["data"] = {"v": "2"}
    owner = obj["metadata"]["tenant"]
    api.replace("configmaps", obj, tenant=owner)
    assert api.get("configmaps", obj["metadata"]["name"], namespace="default", tenant=owner)["data"] == {
        "v": "2"
    }
    # a plain revision cannot be placed across partitions: 410, the client re-lists
    gone = list(api.watch("configmaps", tenant="all", resource_version="5", timeout_seconds=1))
    assert [e["type"] for e in gone] == ["ERROR"] and gone[0]["object"]["code"] == 410
