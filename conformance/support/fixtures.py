"""Fixtures shared by the conformance modules, built only on the harness fixtures (``target``,
``api``, ``lab``, ``requires``, ``profile``) and public clients. Everything a fixture creates is
named ``cl-...`` and deleted in its finalizer, best effort (a broken target must not hide the
test's own failure behind a teardown error)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from centaurus.client.rest import ApiClient, ApiError
from support.kubectl import Kubectl
from support.names import unique
from support.pods import PodFactory, ready_nodes


@pytest.fixture
def names() -> Callable[[str], str]:
    """``names("web")`` -> ``cl-web-1a2b3c``."""
    return unique


@pytest.fixture
def namespace(api: ApiClient) -> Iterator[str]:
    """A fresh namespace of the system tenant, deleted afterwards."""
    name = unique("ns")
    api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    with contextlib.suppress(Exception):
        api.delete("namespaces", name, check=False)


@pytest.fixture
def pods(api: ApiClient, namespace: str) -> Iterator[PodFactory]:
    factory = PodFactory(api, namespace)
    yield factory
    factory.cleanup()


@pytest.fixture
def make_tenant(target: Any, api: ApiClient, requires: Callable[..., None]) -> Iterator[Callable[[str], str]]:
    """``make_tenant("a")`` creates tenant ``cl-a-xxxxxx`` (waits until Active) and deletes it at
    the end. Needs the ``tenants`` capability (not-applicable otherwise)."""
    requires("tenants")
    made: list[str] = []

    def make(role: str = "t") -> str:
        name = unique(role)
        made.append(name)
        target.ensure_tenant(name)
        return name

    yield make
    for name in made:
        with contextlib.suppress(Exception):
            api.delete("tenants", name, check=False)


def own_client(target: Any, tenant: str = "system", user: str = "admin") -> ApiClient:
    """A client the test owns (and closes), built from the target's kubeconfig for that user.
    ``target.client()`` hands out the target's own cached clients, which a test must never close."""
    return ApiClient.from_kubeconfig(str(target.kubeconfig(tenant, user)))


@pytest.fixture
def tenant_client(target: Any) -> Iterator[Callable[..., ApiClient]]:
    """``tenant_client(tenant, user="admin")`` -> ApiClient authenticated as that tenant user."""
    clients: list[ApiClient] = []

    def make(tenant: str, user: str = "admin") -> ApiClient:
        c = own_client(target, tenant, user)
        clients.append(c)
        return c

    yield make
    for c in clients:
        with contextlib.suppress(Exception):
            c.close()


@pytest.fixture
def kubectl(target: Any, tmp_path: Path) -> Callable[..., Kubectl]:
    """``kubectl(version="1.33", tenant="system", user="admin")`` -> a runner with its own cache."""

    def make(version: str = "1.33", tenant: str = "system", user: str = "admin") -> Kubectl:
        kc = target.kubeconfig(tenant, user)
        return Kubectl(version, kc, tmp_path / f"kubectl-{version}-{tenant}-{user}")

    return make


@pytest.fixture
def nodes(api: ApiClient, requires: Callable[..., None]) -> list[dict[str, Any]]:
    """Ready, schedulable nodes; fails (not skips) when a target that claims nodes has none."""
    requires("nodes")
    found = ready_nodes(api)
    assert found, "the target declares node agents but no node is Ready"
    return found


@pytest.fixture
def need_lab(lab: Any) -> Any:
    """The lab handle; with ``--lab none`` tests that need lab hosts are not applicable."""
    if lab is None:
        pytest.skip("not-applicable: run without a lab (--lab none); this test needs lab hosts")
    return lab


def ignore_missing(fn: Callable[[], Any]) -> None:
    """Run a cleanup call, ignoring 404s and a target that is already gone."""
    with contextlib.suppress(ApiError, OSError):
        fn()
