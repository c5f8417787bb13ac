"""Fixtures for the runtime tests: real crun and qemu, a fresh pod netns per test.

Async tests run through anyio's pytest plugin on asyncio with uvloop, like the agent will.
Every fixture cleans up in its finalizer and the cleanup itself is asserted by the tests that
are about cleanup. Names carry the project prefix and a random suffix (parallel runs).
"""

from __future__ import annotations

import secrets
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from centaurus.runtimes.base import ContainerSpec, PodNetwork, SandboxSpec


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return ("asyncio", {"use_uvloop": True})


@pytest.fixture(scope="package", autouse=True)
def _restore_process_state() -> Iterator[None]:
    """The runtimes make this process a child subreaper (container inits become our children).
    Other packages' tests run in the same process and must not inherit that: their orphaned
    daemons would turn into zombies of pytest and look alive to `kill(pid, 0)`."""
    from centaurus.runtimes import linux

    was = linux.is_child_subreaper()
    yield
    linux.set_child_subreaper(was)


def make_netns(role: str = "rt") -> str:
    name = f"cl-{role}{secrets.token_hex(2)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    return name


def delete_netns(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


@pytest.fixture
def netns() -> Iterator[str]:
    """A pod network namespace; yields its path (/var/run/netns/NAME)."""
    name = make_netns()
    try:
        yield f"/var/run/netns/{name}"
    finally:
        delete_netns(name)


@pytest.fixture
def pod_spec(tmp_path: Path, netns: str) -> Callable[..., SandboxSpec]:
    """Factory: SandboxSpec(containers=[...]) with a unique uid in the test's netns."""

    def make(*containers: ContainerSpec, name: str | None = None, **kw: Any) -> SandboxSpec:
        uid = str(uuid.uuid4())
        kw.setdefault("netns_path", netns)
        return SandboxSpec(
            uid=uid,
            tenant="system",
            namespace="default",
            name=name or f"pod-{uid[:6]}",
            log_dir=tmp_path / "logs" / uid,
            containers=list(containers),
            **kw,
        )

    return make


@pytest.fixture
async def process_rt(tmp_path: Path) -> AsyncIterator[Any]:
    from centaurus.runtimes.process import ProcessRuntime

    rt = ProcessRuntime(tmp_path / "node")
    await rt.prepare()
    try:
        yield rt
    finally:
        for sb in await rt.sandboxes():
            await rt.remove(sb)
        await rt.close()


@pytest.fixture
async def vm_rt(tmp_path: Path) -> AsyncIterator[Any]:
    """VM runtime with the shared default template (built once per boot on /dev/shm)."""
    from centaurus.runtimes.vm import VmRuntime

    rt = VmRuntime(tmp_path / "node")
    await rt.prepare()
    try:
        yield rt
    finally:
        for sb in await rt.sandboxes():
            await rt.remove(sb)
        await rt.close()


def vm_pod(
    tmp_path: Path, netns_path: str | None, name: str = "vm1", ip: str | None = "10.77.0.2", **vm: Any
) -> SandboxSpec:
    uid = str(uuid.uuid4())
    network = PodNetwork(ip=ip, prefix_len=24, gateway="10.77.0.1") if ip else None
    return SandboxSpec(
        uid=uid,
        tenant="system",
        namespace="default",
        name=name,
        netns_path=netns_path,
        log_dir=tmp_path / "logs" / uid,
        vm={"name": name, "image": "cirros", **vm},
        network=network,
    )


async def collect(it: AsyncIterator[bytes]) -> bytes:
    out = b""
    async for chunk in it:
        out += chunk
    return out


async def wait_for(pred: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    import anyio

    with anyio.fail_after(timeout):
        while True:
            v = pred()
            if hasattr(v, "__await__"):
                v = await v
            if v:
                return v
            await anyio.sleep(interval)
