"""``none``: addresses without interfaces -- for hollow nodes (thousands per process), where a pod
needs a plausible, unique pod IP in its node's CIDR and nothing else. No namespace, no state on
disk (a restarted hollow node starts empty, as a recreated KWOK node does)."""

from __future__ import annotations

from typing import Any

from centaurus.netplug.base import NetworkError, NodeNet, PodNetRequest, PodNetResult
from centaurus.netplug.ipam import Pool


class NoNetworkHook:
    name = "none"
    __slots__ = ("pods", "pool")

    def __init__(self, options: dict[str, str] | None = None) -> None:
        self.pool: Pool | None = None
        self.pods: dict[str, str] = {}

    async def start(self, node: NodeNet) -> dict[str, Any]:
        if not node.pod_cidr:
            raise NetworkError("the 'none' network hook needs a pod CIDR", "InvalidPodCIDR")
        self.pool = Pool(node.pod_cidr)
        return {"podCIDR": node.pod_cidr}

    async def setup(self, pod: PodNetRequest) -> PodNetResult:
        assert self.pool is not None
        ip = self.pods.get(pod.uid) or self.pool.allocate()
        self.pods[pod.uid] = ip
        return PodNetResult(
            netns_path=None, ip=ip, prefix_len=self.pool.prefix_len, gateway=self.pool.gateway
        )

    async def teardown(self, uid: str) -> None:
        ip = self.pods.pop(uid, None)
        if ip and self.pool is not None:
            self.pool.release(ip)

    async def existing(self) -> dict[str, PodNetResult]:
        return {}

    async def close(self) -> None:
        return None
