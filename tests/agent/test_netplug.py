"""The flat pod network hook on the real kernel, without a control plane: a scratch "droplet"
namespace, pods' namespaces and veths made by netlink, traffic between them, teardown and the
offline purge after a crash leave nothing behind."""

from __future__ import annotations

import secrets
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from centaurus.netplug.base import NodeNet, PodNetRequest
from centaurus.netplug.flat import FlatHook

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def droplet() -> Iterator[str]:
    name = f"cl-npd{secrets.token_hex(2)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    yield name
    subprocess.run(["ip", "netns", "del", name], check=False)


def links(netns: str) -> str:
    return subprocess.run(["ip", "-n", netns, "-o", "link"], capture_output=True, text=True).stdout


def req(uid: str) -> PodNetRequest:
    return PodNetRequest(uid=uid, tenant="system", namespace="default", name=f"p-{uid[:4]}")


@pytest.mark.anyio
async def test_flat_pods_get_interfaces_talk_and_vanish(droplet: str, tmp_path: Path) -> None:
    hook = FlatHook()
    node = NodeNet("n1", "10.197.0.1", tmp_path, netns=droplet, pod_cidr="10.250.7.0/24")
    assert await hook.start(node) == {"podCIDR": "10.250.7.0/24"}
    uids = [str(uuid.uuid4()) for _ in range(3)]
    try:
        res = [await hook.setup(req(u)) for u in uids]
        assert [r.ip for r in res] == ["10.250.7.2", "10.250.7.3", "10.250.7.4"]
        assert all(r.gateway == "10.250.7.1" and r.prefix_len == 24 for r in res)
        assert await hook.setup(req(uids[0])) == res[0]  # idempotent
        ns0 = Path(str(res[0].netns_path)).name
        addr = subprocess.run(
            ["ip", "-n", ns0, "-o", "-4", "addr", "show", "eth0"], capture_output=True, text=True
        ).stdout
        assert "10.250.7.2/24" in addr
        route = subprocess.run(["ip", "-n", ns0, "route"], capture_output=True, text=True).stdout
        assert "default via 10.250.7.1" in route
        ping = subprocess.run(
            ["ip", "netns", "exec", ns0, "ping", "-c", "1", "-W", "2", res[2].ip],
            capture_output=True,
            text=True,
        )
        assert ping.returncode == 0, ping.stdout
        gw = subprocess.run(
            ["ip", "netns", "exec", ns0, "ping", "-c", "1", "-W", "2", "10.250.7.1"], capture_output=True
        )
        assert gw.returncode == 0
        assert links(droplet).count("clv") == 3
        for u in uids:
            await hook.teardown(u)
            await hook.teardown(u)  # idempotent
        assert links(droplet).count("clv") == 0
        assert not any(Path(f"/run/netns/cl-pod-{u}").exists() for u in uids)
        assert not list((tmp_path / "flat" / "pods").glob("*.json"))
        await hook.destroy()
        assert "cl-pbr" not in links(droplet)
    finally:
        await hook.close()


@pytest.mark.anyio
async def test_offline_purge_after_a_crash(droplet: str, tmp_path: Path) -> None:
    hook = FlatHook()
    node = NodeNet("n1", "10.197.0.1", tmp_path, netns=droplet, pod_cidr="10.250.8.0/24")
    await hook.start(node)
    uids = [str(uuid.uuid4()) for _ in range(2)]
    for u in uids:
        await hook.setup(req(u))
    await hook.close()  # the agent "crashes": nothing torn down
    assert all(Path(f"/run/netns/cl-pod-{u}").exists() for u in uids)
    await FlatHook.purge_offline(node)
    assert not any(Path(f"/run/netns/cl-pod-{u}").exists() for u in uids)
    assert "clv" not in links(droplet) and "cl-pbr" not in links(droplet)
    assert not (tmp_path / "flat").exists()


@pytest.mark.anyio
async def test_a_restarted_hook_finds_its_pods(droplet: str, tmp_path: Path) -> None:
    node = NodeNet("n1", "10.197.0.1", tmp_path, netns=droplet, pod_cidr="10.250.9.0/24")
    first = FlatHook()
    await first.start(node)
    a = await first.setup(req(str(uuid.uuid4())))
    await first.close()
    other = FlatHook()  # the node's state says another CIDR: refused, nothing touched
    with pytest.raises(Exception, match="pod CIDR"):
        await other.start(NodeNet("n1", "10.197.0.1", tmp_path, netns=droplet, pod_cidr="10.250.10.0/24"))
    await other.close()
    second = FlatHook()
    await second.start(node)
    try:
        found = await second.existing()
        assert [r.ip for r in found.values()] == [a.ip]
        b = await second.setup(req(str(uuid.uuid4())))
        assert b.ip != a.ip
        for uid in list(await second.existing()):
            await second.teardown(uid)
        await second.destroy()
    finally:
        await second.close()
    assert "clv" not in links(droplet)
