"""Fixtures of the network-control tests: a real control plane (API server, controllers, the two
network-operator processes its component hook starts), a hollow transit daemon with hollow
droplets, and helpers that wait on Mizar objects."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from centaurus.client.rest import ApiClient, ApiError
from centaurus.controlplane.supervisor import ControlPlane
from centaurus.mizar import model as M

GV = M.GV
MZ = {"namespace": M.MIZAR_NS, "group_version": GV}


def unique(prefix: str) -> str:
    return f"cl-{prefix}-{secrets.token_hex(3)}"


def wait(pred: Callable[[], Any], timeout: float = 30.0, what: str = "condition", every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = pred()
        except ApiError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")


def mz_get(api: ApiClient, plural: str, name: str) -> dict[str, Any] | None:
    try:
        return api.get(plural, name, **MZ)
    except ApiError as exc:
        if exc.code == 404:
            return None
        raise


def mz_list(api: ApiClient, plural: str, **kw: Any) -> list[dict[str, Any]]:
    return list(api.list(plural, **{**MZ, **kw})["items"])


def provisioned(api: ApiClient, plural: str, name: str) -> dict[str, Any] | None:
    o = mz_get(api, plural, name)
    return o if o is not None and M.phase(o) == M.PROVISIONED else None


class Plane:
    """The running control plane of this test package."""

    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp
        self.kubeconfig = cp.kubeconfig
        self.api = ApiClient.from_kubeconfig(str(cp.kubeconfig))

    def operators(self) -> list[str]:
        st = self.cp.load()
        assert st is not None
        return [c.name for c in st.components if c.kind == "network-operator"]

    def kill(self, name: str) -> None:
        self.cp.kill(name)

    def start(self, name: str) -> None:
        self.cp.start(name)


@pytest.fixture(scope="package")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    cp = ControlPlane(tmp_path_factory.mktemp("mizar-cp"))
    # the operators (also when a test restarts them) inherit these: droplet probes and
    # anti-entropy sweeps every second
    mp = pytest.MonkeyPatch()
    mp.setenv("CENTAURUS_MIZAR_PROBE_S", "1")
    mp.setenv("CENTAURUS_MIZAR_SWEEP_S", "1")
    mp.setenv("CENTAURUS_MIZAR_HOLLOW_FACTOR", "1")
    cp.up(store="sqlite", partitions=2, port=0)
    p = Plane(cp)
    try:
        wait(lambda: len(p.operators()) >= 2, 10, "network operators")
        yield p
    finally:
        p.api.close()
        cp.down()
        mp.undo()


class Hollow:
    """A hollow transit daemon (own process) and the hollow droplets registered on it."""

    def __init__(self, api: ApiClient, sock: Path) -> None:
        self.api, self.sock = api, sock
        self.droplets: list[str] = []

    def add(self, n: int, zones: int = 3) -> list[str]:
        tag = secrets.token_hex(2)
        names = [f"hd{tag}-{i}" for i in range(n)]
        for i, name in enumerate(names):
            self.api.create(
                "droplets",
                {
                    "apiVersion": GV,
                    "kind": "Droplet",
                    "metadata": {"name": name, "labels": {M.L_HOLLOW: "true"}},
                    "spec": {
                        "ip": f"10.131.{len(self.droplets) // 250}.{len(self.droplets) % 250 + 1}",
                        "mac": "02:00:00:00:00:01",
                        "zone": f"az{i % zones + 1}",
                        "transitd": f"hollow:{self.sock}#{name}",
                    },
                },
                **MZ,
            )
            self.droplets.append(name)
        wait(
            lambda: all(provisioned(self.api, "droplets", n) for n in names),
            60,
            "hollow droplets provisioned",
        )
        return names

    def report(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        import asyncio

        from centaurus.mizar import hollow

        return asyncio.run(hollow.report(self.sock, query or {}))

    def holders(self, keys: list[tuple[int, str]]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = self.report({"keys": [list(k) for k in keys]})["holders"]
        return out


@pytest.fixture(scope="package")
def hollow(plane: Plane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hollow]:
    sock = tmp_path_factory.mktemp("hollow") / "transitd.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "centaurus.mizar.hollow", "--socket", str(sock)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait(sock.exists, 20, "hollow transitd socket")
        h = Hollow(plane.api, sock)
        h.add(6)
        yield h
    finally:
        for d in h.droplets if "h" in locals() else []:
            with contextlib.suppress(ApiError):
                plane.api.delete("droplets", d, **MZ)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def make_vpc(
    api: ApiClient, name: str, cidr: str = "20.0.0.0/16", dividers: int = 1, hollow: bool = True, **spec: Any
) -> None:
    ip, prefix = cidr.split("/")
    labels = {M.L_HOLLOW: "true"} if hollow else {}
    api.create(
        "vpcs",
        {
            "apiVersion": GV,
            "kind": "Vpc",
            "metadata": {"name": name, "labels": labels},
            "spec": {"ip": ip, "prefix": prefix, "dividers": dividers, **spec},
        },
        **MZ,
    )


def make_subnet(api: ApiClient, name: str, vpc: str, cidr: str = "20.0.1.0/24", bouncers: int = 1) -> None:
    ip, prefix = cidr.split("/")
    api.create(
        "subnets",
        {
            "apiVersion": GV,
            "kind": "Subnet",
            "metadata": {"name": name},
            "spec": {"ip": ip, "prefix": prefix, "vpc": vpc, "bouncers": bouncers},
        },
        **MZ,
    )


def make_endpoint(
    api: ApiClient,
    name: str,
    vpc: str,
    net: str,
    droplet: str,
    namespace: str = "default",
    tenant: str | None = None,
    **spec: Any,
) -> None:
    api.create(
        "endpoints",
        {
            "apiVersion": GV,
            "kind": "Endpoint",
            "metadata": {"name": name},
            "spec": {
                "type": "simple",
                "vpc": vpc,
                "net": net,
                "droplet": droplet,
                "veth": "hollow",
                "mac": "02:00:00:00:00:02",
                **spec,
            },
        },
        namespace=namespace,
        tenant=tenant,
        group_version=GV,
    )


def delete_quietly(api: ApiClient, plural: str, name: str, **kw: Any) -> None:
    with contextlib.suppress(ApiError):
        api.delete(plural, name, **{**MZ, **kw})
