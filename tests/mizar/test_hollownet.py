"""Mizar endpoints for hollow nodes' pods (scale runs): the fleet-side helper registers hollow
droplets on an embedded hollow transitd, gets every pod an Endpoint through the real management
plane (address from the subnet, the network's bouncers programmed) with one watch for all nodes,
and removes them again."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Any

import pytest

from centaurus.client.aio import AsyncClient
from centaurus.mizar import model as M
from centaurus.mizar.hollownet import HollowEndpoints
from centaurus.netplug.base import NetworkError, PodNetRequest

from .conftest import MZ, Hollow, Plane, delete_quietly, mz_list, provisioned, unique, wait

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_hollow_nodes_pods_get_endpoints_from_the_management_plane(
    plane: Plane, hollow: Hollow, tmp_path: Path
) -> None:
    api = plane.api
    tag = unique("hr")
    real = [f"{tag}-{i}" for i in range(2)]  # bouncer hosts for a real (unlabelled) VPC
    for i, name in enumerate(real):
        api.create(
            "droplets",
            {
                "apiVersion": M.GV,
                "kind": "Droplet",
                "metadata": {"name": name},
                "spec": {
                    "ip": f"10.133.0.{i + 1}",
                    "mac": "02:00:00:00:00:04",
                    "zone": f"az{i + 1}",
                    "transitd": f"hollow:{hollow.sock}#{name}",
                },
            },
            **MZ,
        )
    net = unique("hn")
    api.create(
        "networks",
        {
            "apiVersion": M.NETWORK_GV,
            "kind": "Network",
            "metadata": {"name": net},
            "spec": {"type": "mizar", "cidr": "10.70.0.0/16", "vpcCidr": "10.70.0.0/16"},
        },
        group_version=M.NETWORK_GV,
    )
    pods = []
    try:
        wait(
            lambda: (
                (api.get("networks", net, group_version=M.NETWORK_GV).get("status") or {}).get("phase")
                == "Ready"
            ),
            60,
            "network Ready",
        )
        nodes = [f"{tag}-h{i}" for i in range(8)]
        for i in range(20):
            p = api.create(
                "pods",
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": f"{tag}-p{i}"},
                    "spec": {
                        "nodeName": nodes[i % len(nodes)],
                        "containers": [{"name": "c", "image": "busybox"}],
                    },
                },
                namespace="default",
            )
            pods.append(p)

        async def run() -> list[Any]:
            aapi = AsyncClient.from_kubeconfig(str(plane.kubeconfig))
            he = HollowEndpoints(aapi, tmp_path, fleet=tag)
            await he.start()
            try:
                for i, n in enumerate(nodes):
                    await he.add_node(n, f"10.134.0.{i + 1}", zone="az1")
                reqs = [
                    PodNetRequest(
                        uid=p["metadata"]["uid"],
                        tenant="system",
                        namespace="default",
                        name=p["metadata"]["name"],
                        network=net,
                    )
                    for p in pods
                ]
                results = await asyncio.gather(
                    *(he.setup(r, pods[i]["spec"]["nodeName"]) for i, r in enumerate(reqs))
                )
                with pytest.raises(NetworkError) as exc:
                    await he.setup(
                        PodNetRequest(
                            uid="x", tenant="system", namespace="default", name="x", network="no-such-net"
                        ),
                        nodes[0],
                    )
                assert exc.value.reason == "InvalidNetwork"
                for p in pods:
                    await he.teardown("system", "default", p["metadata"]["name"])
                return results
            finally:
                await he.close(remove_nodes=True)
                await aapi.close()

        results = asyncio.run(run())
        ips = [r.ip for r in results]
        assert len(set(ips)) == len(ips) and all(
            ipaddress.IPv4Address(i) in ipaddress.IPv4Network("10.70.0.0/16") for i in ips
        )
        assert all(r.netns_path is None and r.gateway == "10.70.0.1" for r in results)
        wait(
            lambda: (
                not [
                    e
                    for e in mz_list(api, "endpoints", namespace="default")
                    if M.name(e).startswith(f"{tag}-p")
                ]
            ),
            60,
            "hollow pods' endpoints deleted",
        )
        wait(
            lambda: not [d for d in mz_list(api, "droplets") if M.name(d) in nodes],
            30,
            "hollow droplets removed",
        )
        assert all(provisioned(api, "droplets", d) for d in real)
    finally:
        for p in pods:
            delete_quietly(api, "pods", p["metadata"]["name"], namespace="default", group_version="v1")
        delete_quietly(api, "networks", net, namespace=None, group_version=M.NETWORK_GV)
        wait(
            lambda: (
                not [
                    v
                    for v in mz_list(api, "vpcs")
                    if M.labels(v).get(M.L_NETWORK) == net or M.name(v) == f"system.{net}"
                ]
            ),
            60,
            "network's VPC gone",
        )
        for name in real:
            delete_quietly(api, "droplets", name)
