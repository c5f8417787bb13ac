"""Objects read through a cross-partition list/watch (``tenants/all``, composite resourceVersions)
can be written back with their own resourceVersion as precondition -- as any object read from a
list or watch can in Kubernetes (read-modify-replace controllers otherwise loop on 409)."""

from __future__ import annotations

from typing import Any

import pytest

from centaurus.client.rest import ApiError
from tests.api.conftest import Server

pytestmark = pytest.mark.integration


def cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": "1"}}


def _seen(evs: list[dict[str, Any]], tenant: str, name: str) -> dict[str, Any]:
    for e in evs:
        md = e["object"]["metadata"]
        if e["type"] in ("ADDED", "MODIFIED") and md.get("tenant") == tenant and md.get("name") == name:
            return dict(e["object"])
    raise AssertionError(f"{tenant}/{name} not in the watch: {[e['type'] for e in evs]}")


def _two_tenants(server: Server) -> tuple[str, str]:
    """One tenant per partition, each with an object that is NOT its partition's latest write."""
    ta, tb = server.tenant(storage_cluster="0"), server.tenant(storage_cluster="1")
    for t in (ta, tb):
        api = server.client(t)
        api.create("configmaps", cm("old"), namespace="default")
        api.create("configmaps", cm("newer"), namespace="default")
    return ta, tb


@pytest.mark.parametrize("params", [{}, {"sendInitialEvents": "true", "allowWatchBookmarks": "true"}])
def test_initial_watch_objects_can_be_replaced(server: Server, params: dict[str, str]) -> None:
    """Initial ADDED events of a ``tenants/all`` watch (python client / informer start without a
    resourceVersion): replace() with the object as seen succeeds, first time."""
    ta, tb = _two_tenants(server)
    api = server.client()
    evs = list(api.watch("configmaps", tenant="all", timeout_seconds=1, **params))
    for t in (ta, tb):
        obj = _seen(evs, t, "old")
        assert len(obj["metadata"]["resourceVersion"].split(".")) == 2  # still a resumable position
        obj["data"] = {"v": "2"}
        out = api.replace("configmaps", obj, tenant=t)
        assert out["data"] == {"v": "2"}
        # the version read back is the object's own: a second write with the stale one conflicts
        with pytest.raises(ApiError) as err:
            api.replace("configmaps", obj, tenant=t)
        assert err.value.code == 409


def test_live_watch_objects_can_be_replaced_and_deleted(server: Server) -> None:
    """Events of a live ``tenants/all`` watch, interleaved across both partitions; replace and a
    DELETE with a resourceVersion precondition accept the object's own (composite) version."""
    ta, tb = server.tenant(storage_cluster="0"), server.tenant(storage_cluster="1")
    api = server.client()
    rv = api.get_json("/api/v1/tenants/all/configmaps")["metadata"]["resourceVersion"]
    for i in range(3):
        for t in (ta, tb):
            server.client(t).create("configmaps", cm(f"c{i}"), namespace="default")
    evs = list(api.watch("configmaps", tenant="all", resource_version=rv, timeout_seconds=1))
    for t in (ta, tb):
        obj = _seen(evs, t, "c0")
        obj["data"] = {"v": "2"}
        api.replace("configmaps", obj, tenant=t)
        gone = _seen(evs, t, "c1")
        pre = {"preconditions": {"resourceVersion": gone["metadata"]["resourceVersion"]}}
        path = f"/api/v1/tenants/{t}/namespaces/default/configmaps/c1"
        api.request("DELETE", path, body={"kind": "DeleteOptions", **pre})
        with pytest.raises(ApiError) as err:
            api.get("configmaps", "c1", namespace="default", tenant=t)
        assert err.value.code == 404


def test_stale_composite_precondition_conflicts(server: Server) -> None:
    _, tb = _two_tenants(server)
    api = server.client()
    evs = list(api.watch("configmaps", tenant="all", timeout_seconds=1))
    obj = _seen(evs, tb, "old")
    server.client(tb).patch("configmaps", "old", {"data": {"v": "x"}}, namespace="default")
    with pytest.raises(ApiError) as err:
        api.replace("configmaps", obj, tenant=tb)
    assert err.value.code == 409
