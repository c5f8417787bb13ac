"""Address allocation inside a subnet, and VNI candidates for new VPCs (pure logic).

Subnet pools hand addresses out round-robin from a cursor (as the CNI host-local plugin does):
an address freed by a deleted endpoint is not handed out again until the cursor wraps, so the
hosts that learned a direct path to it (Mizar's host cache) have long forgotten it. The first
host address is the gateway (answered by the agent's ARP responder, never an endpoint).

Who may allocate: the operator instance owning the subnet's VPC (the hash ring puts a VPC and
all its endpoints on one instance), from a pool rebuilt from a consistent list of the VPC's
endpoints whenever that instance gains the VPC -- so a hand-over never hands out an address
twice.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Iterator

#: VNIs the management plane allocates itself; lower ones are left to static lab specs and users
VNI_FIRST = 1 << 20
VNI_LAST = (1 << 24) - 1


class IpamError(ValueError):
    """No address can be given (pool exhausted, address outside the subnet or taken)."""


class SubnetPool:
    def __init__(self, cidr: str | ipaddress.IPv4Network, used: Iterable[str] = ()) -> None:
        self.net = ipaddress.IPv4Network(cidr, strict=True) if isinstance(cidr, str) else cidr
        if self.net.prefixlen > 30:
            raise IpamError(f"subnet {self.net} has no room for endpoints")
        self.gateway = str(self.net.network_address + 1)
        self.first = int(self.net.network_address) + 2
        self.last = int(self.net.broadcast_address) - 1
        self.used: set[int] = set()
        self.cursor = self.first - 1
        for ip in used:
            self.reserve(ip)

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def __len__(self) -> int:
        return len(self.used)

    def _check(self, ip: str) -> int:
        try:
            n = int(ipaddress.IPv4Address(ip))
        except ValueError:
            raise IpamError(f"{ip!r} is not an IPv4 address") from None
        if not self.first <= n <= self.last:
            raise IpamError(
                f"{ip} is not an endpoint address of subnet {self.net} "
                f"(gateway {self.gateway}, network and broadcast excluded)"
            )
        return n

    def reserve(self, ip: str) -> bool:
        """Mark ``ip`` used; False when it already was."""
        n = self._check(ip)
        if n in self.used:
            return False
        self.used.add(n)
        return True

    def allocate(self) -> str:
        if len(self.used) >= self.size:
            raise IpamError(f"subnet {self.net} is full ({self.size} addresses in use)")
        cand = self.cursor
        for _ in range(self.size):
            cand = cand + 1 if cand < self.last else self.first
            if cand not in self.used:
                self.used.add(cand)
                self.cursor = cand
                return str(ipaddress.IPv4Address(cand))
        raise IpamError(f"subnet {self.net} is full")  # pragma: no cover -- guarded above

    def release(self, ip: str) -> None:
        try:
            self.used.discard(int(ipaddress.IPv4Address(ip)))
        except ValueError:
            pass


def vni_candidates(seed: str) -> Iterator[int]:
    """Deterministic VNI candidates for a VPC (from its uid): the first is almost always free;
    a taken one (another VPC's claim) moves to the next."""
    span = VNI_LAST - VNI_FIRST + 1
    for attempt in range(64):
        h = hashlib.blake2b(f"{seed}/{attempt}".encode(), digest_size=8).digest()
        yield VNI_FIRST + int.from_bytes(h, "big") % span


def net_id(vni: int, cidr: str) -> int:
    """A stable 31-bit id of a network (transitd's ``net_id``: stats and debugging)."""
    h = hashlib.blake2b(f"{vni}/{cidr}".encode(), digest_size=4).digest()
    return (int.from_bytes(h, "big") & 0x7FFFFFFF) or 1
