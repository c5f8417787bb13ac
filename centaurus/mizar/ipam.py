"""Address allocation inside a subnet, and VNI candidates for new VPCs (pure logic).

Subnet pools are the node network hooks' pools (:class:`centaurus.netplug.ipam.Pool`: round-robin
from a cursor, as the CNI host-local plugin does -- an address freed by a deleted endpoint is not
handed out again until the cursor wraps, so hosts that learned a direct path to it have long
forgotten it; the first host address is the gateway, answered by the agent's ARP responder).

Who may allocate: the operator instance owning the subnet's VPC (the hash ring puts a VPC and
all its endpoints on one instance), from a pool rebuilt from a consistent list of the VPC's
endpoints whenever that instance gains the VPC -- so a hand-over never hands out an address
twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from centaurus.netplug.ipam import Pool as SubnetPool

__all__ = ["VNI_FIRST", "VNI_LAST", "SubnetPool", "net_id", "vni_candidates"]

#: VNIs the management plane allocates itself; lower ones are left to static lab specs and users
VNI_FIRST = 1 << 20
VNI_LAST = (1 << 24) - 1


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
