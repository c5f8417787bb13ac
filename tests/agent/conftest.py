"""Fixtures for the node agent tests: a real control plane, a real netns lab of two droplets
(bridge-vxlan dataplane, the lighter one) and one real agent per droplet, started through the
builtin target exactly as the conformance run does -- shared by the whole session because bringing
it up costs seconds. Every test works in its own namespace; everything is torn down at the end
and the teardown itself is checked by ``test_lab_teardown_leaves_nothing``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from centaurus.client.rest import ApiClient, ApiError

SPEC = """name: agents
substrate: {cidr: 10.198.0.0/24, mtu: 1600}
dataplane: bridge-vxlan
droplets:
  - {name: d1, ip: 10.198.0.11, zone: az1}
  - {name: d2, ip: 10.198.0.12, zone: az2}
vpcs: []
networks: []
endpoints: []
control: {store: sqlite, partitions: 1}
"""
KUBECTL = {
    "1.33": Path("/usr/lib/google-cloud-sdk/bin/kubectl.1.33"),
    "1.20": Path(__file__).resolve().parents[2] / ".tools" / "kubectl-1.20" / "usr" / "bin" / "kubectl",
}
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return ("asyncio", {"use_uvloop": True})


@dataclass
class Cluster:
    target: Any
    lab: Any
    api: ApiClient
    base: Path

    @property
    def fleet(self) -> Any:
        return self.target._agent_fleet

    @property
    def kubeconfig(self) -> Path:
        return Path(self.target.kubeconfig())

    def droplet_netns(self, node: str) -> str:
        return str(next(h.netns for h in self.lab.hosts("droplet") if h.name == node))

    def kubectl(
        self, version: str, *args: str, input: str | None = None, timeout: float = 60.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        binary = KUBECTL[version]
        if not binary.exists():
            pytest.skip(f"not-verified: kubectl {version} is not installed here ({binary})")
        home = self.base / f"kubectl-{version}"
        home.mkdir(exist_ok=True)
        argv = [str(binary), f"--kubeconfig={self.kubeconfig}", f"--cache-dir={home / 'cache'}", *args]
        cp = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)},
        )
        if check and cp.returncode != 0:
            raise AssertionError(
                f"kubectl {version} {' '.join(args)} -> {cp.returncode}: {cp.stderr.strip()}"
            )
        return cp


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    from centaurus.labs.netns import NetnsLab
    from centaurus.labs.spec import load_spec
    from centaurus.targets.base import TargetContext
    from centaurus.targets.builtin import BuiltinTarget

    base = tmp_path_factory.mktemp("agents")
    spec_file = base / "spec.yaml"
    spec_file.write_text(SPEC)
    lab = NetnsLab(state_dir=base / "lab", options={})
    lab.up(load_spec(spec_file))
    target = BuiltinTarget(options={"backoff_base": "1"})
    try:
        target.up(TargetContext(state_dir=base / "target", lab=lab))
    except BaseException:
        with contextlib.suppress(Exception):
            target.down()
        lab.down()
        raise
    try:
        yield Cluster(target, lab, target.client(), base)
    finally:
        target.down()
        lab.down()


@pytest.fixture
def ns(cluster: Cluster) -> Iterator[str]:
    name = f"cl-ag-{secrets.token_hex(3)}"
    cluster.api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    with contextlib.suppress(ApiError):
        cluster.api.delete("namespaces", name, check=False)


def pod(
    name: str,
    command: list[str] | None = None,
    *,
    node: str | None = "d1",
    restart: str = "Always",
    image: str = "busybox:1.36",
    **spec: Any,
) -> dict[str, Any]:
    s: dict[str, Any] = {
        "containers": [{"name": "main", "image": image, "command": command or SLEEPER}],
        "restartPolicy": restart,
        "terminationGracePeriodSeconds": 2,
        **spec,
    }
    if node:
        s["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": s}


def wait_pod(
    api: ApiClient,
    ns: str,
    name: str,
    pred: Callable[[dict[str, Any]], Any],
    timeout: float = 30.0,
    what: str = "",
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(ApiError):
            last = api.get("pods", name, namespace=ns)
            if pred(last):
                return last
        time.sleep(0.1)
    raise AssertionError(f"pod {ns}/{name} {what}: not within {timeout:g} s; status {last.get('status')}")


def running(p: dict[str, Any]) -> bool:
    st = p.get("status") or {}
    return st.get("phase") == "Running" and bool(st.get("podIP"))


def phase(*phases: str) -> Callable[[dict[str, Any]], bool]:
    return lambda p: (p.get("status") or {}).get("phase") in phases


def gone(api: ApiClient, ns: str, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            api.get("pods", name, namespace=ns)
        except ApiError as exc:
            if exc.code == 404:
                return
        time.sleep(0.1)
    raise AssertionError(f"pod {ns}/{name} still exists after {timeout:g} s")
