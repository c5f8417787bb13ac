"""Fixtures of the API integration suite: a real control plane (``centaurus up`` machinery:
API server + controllers processes, sqlite x2 partitions; etcd x2 for the store-parametrized
subset), tenants, kubeconfigs and kubectl runners with their own discovery cache."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from centaurus.client.rest import ApiClient, ApiError
from centaurus.controlplane.credentials import mint_kubeconfig
from centaurus.controlplane.supervisor import ControlPlane

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = {
    "1.33": Path("/usr/lib/google-cloud-sdk/bin/kubectl.1.33"),
    "1.20": ROOT / ".tools" / "kubectl-1.20" / "usr" / "bin" / "kubectl",
}


def uid(prefix: str) -> str:
    return f"cl-{prefix}-{secrets.token_hex(2)}"


class Server:
    """One running control plane plus helpers to mint credentials for it."""

    def __init__(self, cp: ControlPlane, store: str) -> None:
        self.cp = cp
        self.store = store
        st = cp.load()
        assert st is not None
        self.url = st.server
        self.dir = cp.dir
        self._clients: dict[tuple[str, str, str], ApiClient] = {}

    def kubeconfig(
        self,
        tenant: str = "system",
        user: str = "admin",
        auth: str = "token",
        groups: list[str] | None = None,
    ) -> Path:
        if tenant == "system" and user == "admin" and auth == "both":
            return self.cp.kubeconfig
        out = self.dir / "kc" / f"{tenant}-{user}-{auth}.yaml"
        if not out.exists():
            mint_kubeconfig(self.dir, self.url, tenant, user, out, method=auth, groups=groups)
        return out

    def client(self, tenant: str = "system", user: str = "admin", auth: str = "both") -> ApiClient:
        key = (tenant, user, auth)
        if key not in self._clients:
            self._clients[key] = ApiClient.from_kubeconfig(str(self.kubeconfig(tenant, user, auth)))
        return self._clients[key]

    def tenant(self, name: str | None = None, storage_cluster: str | None = None) -> str:
        name = name or uid("t")
        spec = {"storageClusterId": storage_cluster} if storage_cluster is not None else {}
        api = self.client()
        api.create(
            "tenants", {"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": name}, "spec": spec}
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(ApiError):
                api.get("namespaces", "default", tenant=name)
                return name
            time.sleep(0.05)
        raise AssertionError(f"tenant {name} got no default namespace")

    def close(self) -> None:
        for c in self._clients.values():
            c.close()


def _start(tmp: Path, store: str) -> Iterator[Server]:
    cp = ControlPlane(tmp)
    try:
        # small watch history: 410 Gone is reachable in tests
        cp.up(store=store, partitions=2, port=0, apiserver_env={"CENTAURUS_WATCH_HISTORY": "200"})
        srv = Server(cp, store)
        yield srv
        srv.close()
    finally:
        cp.down()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """sqlite x2 partitions, shared by the whole suite."""
    yield from _start(tmp_path_factory.mktemp("cp-sqlite"), "sqlite")


@pytest.fixture(scope="session", params=["sqlite", "etcd"])
def any_server(
    request: pytest.FixtureRequest, server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The store-parametrized subset: the shared sqlite server, and an etcd-backed one."""
    if request.param == "sqlite":
        yield server
        return
    if not shutil.which("etcd"):
        pytest.fail("etcd binary missing (ci/bootstrap installs etcd-server)")
    yield from _start(tmp_path_factory.mktemp("cp-etcd"), "etcd")


@pytest.fixture
def tenant(server: Server) -> str:
    return server.tenant()


class Kubectl:
    def __init__(self, version: str, kubeconfig: Path, workdir: Path) -> None:
        self.version, self.kubeconfig, self.workdir = version, kubeconfig, workdir
        self.binary = KUBECTL[version]
        workdir.mkdir(parents=True, exist_ok=True)

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        argv = [
            str(self.binary),
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.workdir / 'cache'}",
            *args,
        ]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.workdir)}
        res = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, env=env)
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {self.version} {' '.join(args)} -> {res.returncode}: {res.stderr}")
        return res

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        argv = [
            str(self.binary),
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.workdir / 'cache'}",
            *args,
        ]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.workdir)}
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.fixture(params=["1.33", "1.20"])
def kubectl_version(request: pytest.FixtureRequest) -> str:
    if not KUBECTL[request.param].exists():
        pytest.fail(f"kubectl {request.param} missing at {KUBECTL[request.param]} (run ci/bootstrap)")
    return str(request.param)


@pytest.fixture
def kubectl_for(server: Server, kubectl_version: str, tmp_path: Path) -> Any:
    """``kubectl_for(tenant, user="admin")`` -> a Kubectl of the parametrized version."""

    def make(tenant: str = "system", user: str = "admin") -> Kubectl:
        return Kubectl(kubectl_version, server.kubeconfig(tenant, user), tmp_path / f"{tenant}-{user}")

    return make
