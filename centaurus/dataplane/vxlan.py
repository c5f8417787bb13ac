"""``bridge-vxlan``: the plain Linux kernel path, the baseline every dataplane figure is compared with.

Per droplet and per VPC: a bridge ``bv<vni>`` and a VXLAN device ``vx<vni>`` (VNI = VPC id, UDP
4789, head-end replication through all-zero FDB entries to every peer droplet's substrate IP,
MAC learning on: classic flood-and-learn, so programming an endpoint touches only its own host).
Endpoint veths are bridge ports; a VPC is one flat L2 domain across droplets.

Routing between the networks of one VPC happens on the endpoint's own droplet: the bridge holds
each network's gateway address (``noprefixroute``) and a per-VPC policy routing table, selected
by ``iif bv<vni>``, holds the networks' routes. That keeps overlapping CIDRs of two tenants apart
without VRF (not built into this kernel). ``neigh_suppress`` on the VXLAN port keeps ARP for the
gateway local. Each droplet's bridge has its own MAC; see docs/ARCHITECTURE.md for the one
quirk (an endpoint may learn a remote droplet's gateway MAC and route through it).

bridge netfilter: ``bridge-nf-call-iptables`` stays at the kernel default 1 (what Kubernetes nodes
run with, and what a new namespace gets) unless the option ``bridge_nf=0`` is given; the value
used is reported by :meth:`VxlanDataplane.describe` and next to every figure.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Callable, Sequence
from typing import Any

from centaurus.dataplane.base import (
    DataplaneError,
    DropletInfo,
    EndpointInfo,
    NetworkInfo,
    Unsupported,
    VpcInfo,
)
from centaurus.labs import nsutil
from centaurus.labs.topology import mac_for

VXLAN_PORT = 4789
VXLAN_OVERHEAD = 50
TABLE_BASE = 0x10000000  # policy routing table = TABLE_BASE + vni: clear of 253..255 and user tables

#: Runs ``argv`` on a droplet (inside its netns when it has one), ``input`` on stdin; returns
#: stdout, raises DataplaneError with the tool's first error line. Labs on remote hosts replace it.
Exec = Callable[[DropletInfo, Sequence[str], str | None], str]


def local_exec(droplet: DropletInfo, argv: Sequence[str], input: str | None = None) -> str:
    args = list(argv)
    if droplet.netns and args and args[0] in ("ip", "bridge"):
        args[1:1] = ["-n", droplet.netns]  # the tools join the netns themselves: no extra fork
    else:
        args = nsutil.nsenter_argv(droplet.netns, args)
    cp = subprocess.run(args, input=input, capture_output=True, text=True, timeout=30)
    if cp.returncode != 0:
        first = (cp.stderr.strip().splitlines() or ["failed"])[0]
        raise DataplaneError(f"bridge-vxlan: {argv[0]} on {droplet.name}: {first}")
    return cp.stdout


def _batch(lines: Sequence[str]) -> str:
    return "".join(ln + "\n" for ln in lines)


def bridge_name(vni: int) -> str:
    return f"bv{vni}"


def vxlan_name(vni: int) -> str:
    return f"vx{vni}"


class VxlanDataplane:
    """Linux bridge + VXLAN per VPC on each droplet."""

    name = "bridge-vxlan"

    def __init__(self, options: dict[str, str] | None = None) -> None:
        self.options = dict(options or {})
        bnf = self.options.get("bridge_nf", "1")
        if bnf not in ("0", "1"):
            raise DataplaneError(f"bridge-vxlan: option bridge_nf must be 0 or 1, got {bnf!r}")
        self.bridge_nf = int(bnf)
        self.exec: Exec = local_exec
        self._vpcs: dict[int, VpcInfo] = {}

    # ---- Dataplane protocol -------------------------------------------------------------
    def daemon_argv(self, droplet: DropletInfo) -> list[str] | None:
        return None  # the kernel is the daemon

    def close(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "bridge_nf_call_iptables": self.bridge_nf, "vxlan_port": VXLAN_PORT}

    def setup_host(self, droplet: DropletInfo) -> None:
        values: dict[str, str | int] = {f"net.bridge.bridge-nf-call-{t}": self.bridge_nf
                                        for t in ("iptables", "ip6tables", "arptables")}
        values.update({"net.ipv4.ip_forward": 1, "net.ipv4.conf.all.send_redirects": 0,
                       "net.ipv4.conf.default.send_redirects": 0})
        if droplet.netns and self.exec is local_exec:  # a thread in the netns writes them, no fork
            nsutil.in_netns(droplet.netns, lambda: nsutil.write_sysctls(values))
        else:
            self.exec(droplet, ["sysctl", "-q", "-w", *(f"{k}={v}" for k, v in values.items())], None)

    def adopt_vpcs(self, vpcs: list[VpcInfo]) -> None:
        """Know VPCs another process applied (a lab attached from its state file tears them down)."""
        for v in vpcs:
            self._vpcs[v.vni] = v

    def teardown_host(self, droplet: DropletInfo) -> None:
        if droplet.netns and not nsutil.netns_exists(droplet.netns):
            return
        lines: list[str] = []
        for vni in self._vpcs:
            lines += [f"rule del iif {bridge_name(vni)} lookup {TABLE_BASE + vni}",
                      f"link del {vxlan_name(vni)}", f"link del {bridge_name(vni)}",
                      f"route flush table {TABLE_BASE + vni}"]
        if lines:
            with contextlib.suppress(DataplaneError):
                self.exec(droplet, ["ip", "-force", "-b", "-"], _batch(lines))

    def apply_vpc(self, vpc: VpcInfo, hosts: list[DropletInfo]) -> None:
        self._vpcs[vpc.vni] = vpc
        for h in hosts:
            br, vx, table = bridge_name(vpc.vni), vxlan_name(vpc.vni), TABLE_BASE + vpc.vni
            mtu = 1500
            gw_mac = mac_for(self.options.get("lab_id", ""), f"gw-{h.name}", str(vpc.vni))
            self.exec(h, ["ip", "-b", "-"], _batch([
                f"link add {br} address {gw_mac} mtu {mtu} type bridge "
                "stp_state 0 forward_delay 0 mcast_snooping 0",
                f"link add {vx} mtu {mtu} type vxlan id {vpc.vni} local {h.ip} dev {h.ifname} "
                f"dstport {VXLAN_PORT} ageing 300",
                f"link set {vx} master {br} up",
                f"link set {br} up",
                f"rule add iif {br} lookup {table} pref 1000",
                f"route add unreachable default table {table}",
            ]))
            peers = [p for p in hosts if p.name != h.name]
            self.exec(h, ["bridge", "-b", "-"], _batch([f"link set dev {vx} neigh_suppress on"] + [
                f"fdb append 00:00:00:00:00:00 dev {vx} dst {p.ip} self permanent" for p in peers]))

    def apply_network(self, net: NetworkInfo, hosts: list[DropletInfo]) -> None:
        if not net.gateway:
            raise DataplaneError(f"bridge-vxlan: network {net.name} has no gateway address")
        prefix = net.cidr.split("/")[1]
        for h in hosts:
            self.exec(h, ["ip", "-b", "-"], _batch([
                f"addr add {net.gateway}/{prefix} dev {bridge_name(net.vni)} noprefixroute",
                f"route add {net.cidr} dev {bridge_name(net.vni)} table {TABLE_BASE + net.vni} proto static",
            ]))

    def apply_endpoint(self, ep: EndpointInfo, hosts: list[DropletInfo]) -> None:
        if ep.kind != "simple":
            raise Unsupported(f"bridge-vxlan has no {ep.kind} endpoints (endpoint {ep.ip} in VNI {ep.vni})")
        for h in hosts:
            if h.name == ep.host:  # flood-and-learn: peers need nothing
                self.exec(h, ["ip", "link", "set", ep.veth, "master", bridge_name(ep.vni), "up"], None)

    def remove_endpoint(self, ep: EndpointInfo, hosts: list[DropletInfo]) -> None:
        if ep.kind != "simple":
            return
        for h in hosts:
            if h.name == ep.host and (not h.netns or nsutil.netns_exists(h.netns)):
                with contextlib.suppress(DataplaneError):  # gone already: nothing to undo
                    self.exec(h, ["ip", "link", "set", ep.veth, "nomaster"], None)

    def stats(self, droplet: DropletInfo) -> dict[str, int]:
        """VXLAN device counters: encapsulated out (``tx_encap``), decapsulated in (``rx_decap``)."""
        out = {"tx_encap": 0, "rx_decap": 0, "drop_rx": 0, "drop_tx": 0}
        for link in json.loads(self.exec(droplet, ["ip", "-s", "-j", "link", "show"], None) or "[]"):
            if not str(link.get("ifname", "")).startswith("vx"):
                continue
            st = link.get("stats64", {})
            out["tx_encap"] += int(st.get("tx", {}).get("packets", 0))
            out["rx_decap"] += int(st.get("rx", {}).get("packets", 0))
            out["drop_rx"] += int(st.get("rx", {}).get("dropped", 0))
            out["drop_tx"] += int(st.get("tx", {}).get("dropped", 0))
        return out
