"""The VM's link into the pod network namespace.

Inside the pod netns the runtime creates a tap (``cl-vmtap``, qemu's virtio-net backend) and a
bridge (``cl-vmbr``). Two cases:

* The agent's network hook already configured the pod interface (``eth0`` with the pod IP): the
  guest takes over that identity -- ``eth0`` joins the bridge, hands its IP to the guest and its MAC
  too (``eth0`` gets a fresh locally administered MAC, so the bridge forwards frames for the pod MAC
  to the tap instead of keeping them). To the outside the pod looks exactly as before; the VM *is*
  the endpoint. :func:`teardown` gives ``eth0`` its identity back.
* No such interface (a bare netns, e.g. in tests): the bridge carries the pod network's gateway
  address, so the netns routes to the guest directly.

Either way the bridge also holds a link-local address (:data:`NETNS_LINK_ADDR`) the guest has an
on-link route to: the netns can always reach the guest (ping, port-forward) without an address in
the pod subnet. All changes are one ``ip -b`` batch (one process, a few ms).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass

from centaurus.images.guest import NETNS_LINK_ADDR
from centaurus.runtimes.base import PodNetwork

TAP = "cl-vmtap"
BRIDGE = "cl-vmbr"


class NetError(RuntimeError):
    pass


@dataclass
class GuestNet:
    mac: str
    ip_cidr: str | None
    gateway: str | None
    uplink: str | None = None  # pod interface enslaved to the bridge
    uplink_mac: str | None = None  # its original MAC (= the guest's)
    uplink_cidr: str | None = None


def mac_for(uid: str) -> str:
    h = hashlib.sha256(uid.encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in h[:5])  # locally administered, unicast


async def _ip(netns: str, *args: str, input: str | None = None) -> str:
    """``ip -n NS ...`` (batch input on stdin). Input is passed as a file, not written to a pipe:
    ``ip`` exits at once when the netns is gone, and writing to its dead stdin raises (uvloop)."""
    with tempfile.TemporaryFile() as stdin:
        stdin.write((input or "").encode())
        stdin.seek(0)
        proc = await asyncio.create_subprocess_exec(
            "ip",
            "-n",
            netns,
            *args,
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
    if proc.returncode != 0:
        raise NetError(f"ip -n {netns} {' '.join(args)}: {err.decode().strip()}")
    return out.decode()


def netns_name(netns_path: str) -> str:
    return netns_path.rstrip("/").rsplit("/", 1)[-1]


async def setup(netns_path: str, uid: str, network: PodNetwork | None) -> GuestNet:
    ns = netns_name(netns_path)
    links = {ln["ifname"]: ln for ln in json.loads(await _ip(ns, "-j", "addr", "show") or "[]")}
    iface = network.interface if network else "eth0"
    up = links.get(iface)
    batch = []
    if TAP not in links:
        batch.append(f"tuntap add {TAP} mode tap")
    if BRIDGE not in links:
        batch.append(f"link add {BRIDGE} type bridge forward_delay 0")
    batch += [
        f"link set {TAP} master {BRIDGE}",
        f"link set {TAP} up",
        f"link set {BRIDGE} up",
        "link set lo up",
        f"addr replace {NETNS_LINK_ADDR}/32 dev {BRIDGE}",
    ]
    v4 = [a for a in (up or {}).get("addr_info", []) if a.get("family") == "inet"]
    if up is not None and (v4 or network is None):
        # Take over the pod interface configured by the network hook.
        gw = network.gateway if network else None
        if gw is None:
            routes = json.loads(await _ip(ns, "-j", "route", "show", "default") or "[]")
            gw = routes[0].get("gateway") if routes else None
        cidr = f"{v4[0]['local']}/{v4[0]['prefixlen']}" if v4 else None
        if network and not cidr:
            cidr = f"{network.ip}/{network.prefix_len}"
        guest_mac = network.mac if network and network.mac else up.get("address") or mac_for(uid)
        batch += [
            f"addr flush dev {iface}",
            f"link set {iface} address {mac_for(uid + '-uplink')}",
            f"link set {iface} master {BRIDGE}",
            f"link set {iface} up",
            f"route replace {cidr.split('/')[0]}/32 dev {BRIDGE}" if cidr else "",
        ]
        await _ip(ns, "-b", "-", input="\n".join(b for b in batch if b) + "\n")
        return GuestNet(
            mac=guest_mac,
            ip_cidr=cidr,
            gateway=gw,
            uplink=iface,
            uplink_mac=up.get("address"),
            uplink_cidr=cidr,
        )
    cidr = f"{network.ip}/{network.prefix_len}" if network else None
    if network and network.gateway:
        batch.append(f"addr replace {network.gateway}/{network.prefix_len} dev {BRIDGE}")
    elif network:
        batch.append(f"route replace {network.ip}/32 dev {BRIDGE}")
    await _ip(ns, "-b", "-", input="\n".join(batch) + "\n")
    return GuestNet(
        mac=network.mac if network and network.mac else mac_for(uid),
        ip_cidr=cidr,
        gateway=network.gateway if network else None,
    )


async def teardown(netns_path: str, net: GuestNet | None) -> None:
    """Remove tap and bridge; give the pod interface back its MAC and address. Idempotent; a
    vanished netns (the agent deleted it first) is not an error."""
    ns = netns_name(netns_path)
    if not os.path.exists(netns_path):
        return  # the namespace (and everything in it) is already gone
    batch = [f"link del {TAP}", f"link del {BRIDGE}"]
    if net is not None and net.uplink:
        batch = [f"link set {net.uplink} nomaster", f"link del {TAP}", f"link del {BRIDGE}"]
        if net.uplink_mac:
            batch.append(f"link set {net.uplink} address {net.uplink_mac}")
        if net.uplink_cidr:
            batch.append(f"addr replace {net.uplink_cidr} dev {net.uplink}")
            if net.gateway:
                batch.append(f"route replace default via {net.gateway} dev {net.uplink}")
    try:
        await _ip(ns, "-force", "-b", "-", input="\n".join(batch) + "\n")
    except NetError:
        pass
