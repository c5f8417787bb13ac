"""Shared world for the XDP program tests: one droplet under test (real programs, real maps in
a throwaway pin dir), a throwaway netns whose veths give the ifindexes, and scapy builders.

Addresses follow labs/default.yaml: droplets d1..d3 on 10.199.0.0/24, VPC A (vni 1001) and
VPC B (vni 1002) both 10.10.0.0/16. The droplet under test is ME = d1.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
from dataclasses import dataclass, field

from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet, Raw
from scapy.utils import checksum

from centaurus.bpf import maps as M
from centaurus.bpf.netns import in_netns
from centaurus.bpf.overlay import Overlay, pin_dir_for
from centaurus.bpf.testrun import TestRunResult, prog_test_run

ME, ME_MAC = "10.199.0.11", "02:00:0a:c7:00:0b"
D2, D2_MAC = "10.199.0.12", "02:00:0a:c7:00:0c"
D3, D3_MAC = "10.199.0.13", "02:00:0a:c7:00:0d"
D4, D4_MAC = "10.199.0.14", "02:00:0a:c7:00:0e"
VNI_A, VNI_B = 1001, 1002
VPC_CIDR = "10.10.0.0/16"
NET_A1, NET_A2 = "10.10.1.0/24", "10.10.2.0/24"
GW_MAC = M.GW_MAC

#: endpoints: name -> (vni, ip, mac)
A = (VNI_A, "10.10.1.10", "0a:00:00:00:01:0a")  # local on veth "vea"
B = (VNI_A, "10.10.1.11", "0a:00:00:00:01:0b")  # local on veth "veb"
C = (VNI_A, "10.10.1.20", "0a:00:00:00:01:14")  # remote, on D2
E = (VNI_A, "10.10.2.10", "0a:00:00:00:02:0a")  # net-a2, on D3

VETHS = ("sub0", "sub1", "vea", "veb")


class Netns:
    """A throwaway netns with one veth pair per name (peer: <name>p)."""

    def __init__(self) -> None:
        self.name = f"cl-xt{secrets.token_hex(2)}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        try:
            cmds = [f"link add {v} type veth peer name {v}p" for v in VETHS]
            subprocess.run(["ip", "-n", self.name, "-b", "-"], input="\n".join(cmds) + "\n",
                           text=True, check=True)
            self.ifindex = in_netns(self.name, lambda: {v: socket.if_nametoindex(v) for v in VETHS})
        except BaseException:
            self.delete()
            raise

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False)


@dataclass
class Droplet:
    """The droplet under test: its Overlay (maps) and the ifindexes of its veths."""

    ns: Netns
    ov: Overlay
    base: dict[str, int] = field(default_factory=dict)

    @property
    def ifx(self) -> dict[str, int]:
        return self.ns.ifindex

    def run(self, prog: str, frame: bytes | Packet, ingress: str) -> TestRunResult:
        data = bytes(frame)
        fd = self.ov.prog_fds[prog]
        ifi = self.ifx[ingress]
        return in_netns(self.ns.name, lambda: prog_test_run(fd, data, ingress_ifindex=ifi))

    def transit(self, frame: bytes | Packet, ingress: str = "sub0") -> TestRunResult:
        return self.run("cl_transit", frame, ingress)

    def agent(self, frame: bytes | Packet, ingress: str = "vea") -> TestRunResult:
        return self.run("cl_agent", frame, ingress)

    def mark(self) -> None:
        """Remember the counters now; :meth:`delta` reports what changed since."""
        self.base = self.ov.stats()

    def delta(self) -> dict[str, int]:
        now = self.ov.stats()
        return {k: v - self.base.get(k, 0) for k, v in now.items() if v != self.base.get(k, 0)}


def new_droplet(ns: Netns) -> Droplet:
    ov = Overlay.load(pin_dir_for(ns.name, "d1"), netns=ns.name)
    d = Droplet(ns, ov)
    ov.set_config(ME, ME_MAC, d.ifx["sub0"])
    for ip, mac in ((D2, D2_MAC), (D3, D3_MAC), (D4, D4_MAC)):
        ov.put_neigh(ip, mac)
    ov.put_vpc(VNI_A, VPC_CIDR, dividers=[D3])
    ov.put_vpc(VNI_B, VPC_CIDR, dividers=[D3])
    ov.put_network(VNI_A, NET_A1, bouncers=[D2], net_id=1)
    for ep, veth in ((A, "vea"), (B, "veb")):
        vni, ip, mac = ep
        ov.put_endpoint(vni, ip, host_ip=ME, mac=mac, vpc_cidr=VPC_CIDR, ifindex=d.ifx[veth], net_id=1)
        ov.put_iface(d.ifx[veth], vni=vni, ip=ip, mac=mac, net_cidr=NET_A1, net_id=1)
    d.mark()
    return d


# ---- frames -----------------------------------------------------------------------------------
def inner(src: tuple[int, str, str], dst_ip: str, proto: str = "udp", sport: int = 40000,
          dport: int = 80, payload: bytes = b"x" * 18, dst_mac: str = GW_MAC) -> Packet:
    """A frame as endpoint ``src`` sends it (to the gateway MAC its ARP returned)."""
    l4: Packet
    if proto == "udp":
        l4 = UDP(sport=sport, dport=dport)
    elif proto == "tcp":
        l4 = TCP(sport=sport, dport=dport, flags="S", seq=1000)
    else:
        l4 = ICMP(type=8, id=sport, seq=1)
    return Ether(src=src[2], dst=dst_mac) / IP(src=src[1], dst=dst_ip, ttl=64) / l4 / Raw(payload)


def rts(host: str, host_mac: str = "02:00:00:00:00:00", flags: int = 0) -> GeneveOptions:
    data = bytes([flags]) + bytes(int(x) for x in host.split(".")) + M.mac_bytes(host_mac) + b"\0"
    return GeneveOptions(classid=M.OPT_CLASS, type=M.OPT_TYPE_RTS, length=3, data=data)


def geneve(inner_frame: Packet | bytes, vni: int, *, src: str = D2, dst: str = ME,
           src_mac: str = D2_MAC, dst_mac: str = ME_MAC, options: list[GeneveOptions] | None = None,
           sport: int = 0xC123, ttl: int = 64, udp_csum: bool = False) -> Packet:
    """An overlay frame as another droplet sends it (default: from D2 with an RTS of D2)."""
    opts = [rts(src, src_mac)] if options is None else options
    udp = UDP(sport=sport, dport=M.GENEVE_PORT)
    if not udp_csum:
        udp.chksum = 0
    pkt = (Ether(src=src_mac, dst=dst_mac) / IP(src=src, dst=dst, ttl=ttl, id=0) / udp
           / GENEVE(proto=0x6558, vni=vni, options=opts) / Raw(bytes(inner_frame)))
    return Ether(bytes(pkt))


def arp_request(src: tuple[int, str, str], target: str, op: int = 1) -> Packet:
    return Ether(src=src[2], dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=op, hwsrc=src[2], psrc=src[1], hwdst="00:00:00:00:00:00", pdst=target)


def ip_csum_ok(ip: IP) -> bool:
    """The header checksum of ``ip`` as received is valid (sums to zero)."""
    return int(checksum(bytes(ip)[: ip.ihl * 4])) == 0


def l4_csum_ok(pkt: Packet) -> bool:
    """Re-compute the L4 checksum of ``pkt``'s first IP layer with scapy and compare."""
    ip = pkt[IP]
    layer = ip.payload
    if isinstance(layer, UDP) and layer.chksum == 0:
        return True
    fresh = IP(bytes(ip))
    got = fresh.payload.chksum
    del fresh.payload.chksum
    return bool(IP(bytes(fresh))[type(layer)].chksum == got)


def parse_rts(g: GENEVE) -> tuple[int, str, str]:
    (o,) = [o for o in g.options if o.classid == M.OPT_CLASS and o.type == M.OPT_TYPE_RTS]
    d = bytes(o.data)
    return d[0], ".".join(str(b) for b in d[1:5]), M.mac_str(d[5:11])
