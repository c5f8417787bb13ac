"""Host-local address allocation within one node's pod CIDR.

Addresses are handed out round-robin from a cursor (like the CNI ``host-local`` plugin), so an
address freed by a deleted pod is not reused at once: peers that learned a path to it (Mizar's
direct path, ARP caches) have time to forget. The gateway is the CIDR's first host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from centaurus.netplug.base import NetworkError


class Pool:
    def __init__(self, cidr: str, used: Iterable[str] = (), cursor: int = 0) -> None:
        self.net = ipaddress.ip_network(cidr, strict=False)
        if self.net.version != 4 or self.net.prefixlen > 30:
            raise NetworkError(f"pod CIDR {cidr} is not an IPv4 network with room for pods", "InvalidPodCIDR")
        self.gateway = str(self.net.network_address + 1)
        self.first = int(self.net.network_address) + 2
        self.last = int(self.net.broadcast_address) - 1
        self.used = {int(ipaddress.ip_address(a)) for a in used}
        self.cursor = max(self.first - 1, min(cursor, self.last))

    @property
    def prefix_len(self) -> int:
        return self.net.prefixlen

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def allocate(self) -> str:
        if len(self.used) >= self.size:
            raise NetworkError(f"no free address left in pod CIDR {self.net}", "IPExhausted")
        cand = self.cursor
        for _ in range(self.size):
            cand = cand + 1 if cand < self.last else self.first
            if cand not in self.used:
                self.used.add(cand)
                self.cursor = cand
                return str(ipaddress.ip_address(cand))
        raise NetworkError(f"no free address left in pod CIDR {self.net}", "IPExhausted")

    def release(self, ip: str) -> None:
        self.used.discard(int(ipaddress.ip_address(ip)))

    def reserve(self, ip: str) -> None:
        self.used.add(int(ipaddress.ip_address(ip)))


def node_cidr(cluster_cidr: str, index: int, prefix_len: int = 24) -> str:
    """The ``index``-th subnet of ``cluster_cidr`` (index 0 is skipped: it holds the cluster's own
    network address and is easy to confuse with it). Arithmetic, not enumeration: hollow fleets ask
    for the 10,000th."""
    net = ipaddress.ip_network(cluster_cidr, strict=False)
    if prefix_len < net.prefixlen or index < 0:
        raise NetworkError(f"cannot carve /{prefix_len} subnets out of {cluster_cidr}", "InvalidPodCIDR")
    count = 1 << (prefix_len - net.prefixlen)
    if index + 1 >= count:
        raise NetworkError(f"cluster CIDR {cluster_cidr} has no subnet #{index + 1} of /{prefix_len}",
                           "InvalidPodCIDR")
    step = 1 << (net.max_prefixlen - prefix_len)
    first = int(net.network_address) + (index + 1) * step
    return f"{ipaddress.ip_address(first)}/{prefix_len}"
