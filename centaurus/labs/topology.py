"""Names, addresses and ``ip`` batch lines of a netns lab (pure functions, no side effects).

Everything a lab creates is named ``cl-<labid>-<host>`` (netns) or lives inside such a
namespace (links), so two labs never collide and a crashed lab is found by its id. Links are
created directly inside their namespaces (``ip link add ... netns A type veth peer ... netns B``):
no lab link ever exists in the root namespace, so deleting the namespaces removes every link.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from centaurus import PREFIX
from centaurus.labs.spec import EndpointSpec, LabSpec

SWITCH = "sw"
SUBSTRATE_IF = "eth0"
ENDPOINT_IF = "eth0"
SWITCH_BRIDGE = "br0"
ENDPOINT_MTU = 1500


def netns_name(lab_id: str, host: str) -> str:
    return f"{PREFIX}{lab_id}-{host}"


def mac_for(lab_id: str, role: str, name: str) -> str:
    """A stable, locally administered unicast MAC per lab object (02:xx:...)."""
    h = hashlib.sha1(f"{lab_id}/{role}/{name}".encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in h[:5])


def veth_name(endpoint: str) -> str:
    """Host-side interface of an endpoint in its droplet (<= 15 chars, unique per droplet)."""
    name = f"ve-{endpoint}"
    if len(name) <= 15:
        return name
    return "ve-" + endpoint[:4] + hashlib.sha1(endpoint.encode()).hexdigest()[:8]


def switch_port(droplet: str) -> str:
    return f"p-{droplet}"


@dataclass(frozen=True)
class Plan:
    """What to create: netns names, a root batch (netns + links) and per-netns batches."""

    netns: dict[str, str]  # host name -> netns name
    root: list[str]
    per_netns: dict[str, list[str]]  # netns name -> ip batch lines run inside it
    gro: dict[str, list[str]]  # netns name -> devices that need NAPI (GRO on)


def droplet_sysctls(bridge_nf: int) -> dict[str, int]:
    return {
        "net.ipv4.ip_forward": 1,
        "net.ipv4.conf.all.rp_filter": 0,
        "net.ipv4.conf.default.rp_filter": 0,
        "net.ipv4.conf.all.send_redirects": 0,
        "net.ipv4.conf.default.send_redirects": 0,
        "net.bridge.bridge-nf-call-iptables": bridge_nf,
        "net.bridge.bridge-nf-call-ip6tables": bridge_nf,
        "net.bridge.bridge-nf-call-arptables": bridge_nf,
    }


def plan_lab(spec: LabSpec, lab_id: str) -> Plan:
    sub = spec.substrate
    ns = {d.name: netns_name(lab_id, d.name) for d in spec.droplets}
    root: list[str] = []
    per: dict[str, list[str]] = {}
    gro: dict[str, list[str]] = {}
    mtu = sub.mtu
    prefix = ipaddress.ip_network(sub.cidr).prefixlen
    if sub.mode == "switch":
        sw = netns_name(lab_id, SWITCH)
        ns[SWITCH] = sw
        root.append(f"netns add {sw}")
        per[sw] = ["link set lo up", f"link add {SWITCH_BRIDGE} mtu {mtu} type bridge stp_state 0 "
                   "forward_delay 0 mcast_snooping 0"]
        gro[sw] = []
    for d in spec.droplets:
        root.append(f"netns add {ns[d.name]}")
    if sub.mode == "switch":
        sw = ns[SWITCH]
        for d in spec.droplets:
            port = switch_port(d.name)
            root.append(f"link add name {SUBSTRATE_IF} netns {ns[d.name]} address "
                        f"{mac_for(lab_id, 'droplet', d.name)} mtu {mtu} type veth peer name {port} "
                        f"netns {sw} mtu {mtu}")
            per[sw] += [f"link set {port} master {SWITCH_BRIDGE} up"]
            gro[sw].append(port)
        per[sw].append(f"link set {SWITCH_BRIDGE} up")
    else:  # p2p: the two droplets' eth0 are the two ends of one veth pair
        a, b = spec.droplets
        root.append(f"link add name {SUBSTRATE_IF} netns {ns[a.name]} address "
                    f"{mac_for(lab_id, 'droplet', a.name)} mtu {mtu} type veth peer name {SUBSTRATE_IF} "
                    f"netns {ns[b.name]} address {mac_for(lab_id, 'droplet', b.name)} mtu {mtu}")
    for d in spec.droplets:
        per[ns[d.name]] = ["link set lo up", f"addr add {d.ip}/{prefix} dev {SUBSTRATE_IF}",
                           f"link set {SUBSTRATE_IF} up"]
        gro[ns[d.name]] = [SUBSTRATE_IF]
    for ep in spec.endpoints:
        if ep.kind != "simple":
            continue
        ep_plan = plan_endpoint(spec, lab_id, ep)
        ns[ep.name] = ep_plan.netns[ep.name]
        root += ep_plan.root
        for k, v in ep_plan.per_netns.items():
            per.setdefault(k, []).extend(v)
        for k, v in ep_plan.gro.items():
            gro.setdefault(k, []).extend(v)
    return Plan(netns=ns, root=root, per_netns=per, gro=gro)


def plan_endpoint(spec: LabSpec, lab_id: str, ep: EndpointSpec) -> Plan:
    """One endpoint: its netns, a veth into its droplet, address + default route via the gateway."""
    net = spec.network(ep.network)
    ens = netns_name(lab_id, ep.name)
    dns = netns_name(lab_id, ep.host)
    veth = veth_name(ep.name)
    root = [
        f"netns add {ens}",
        f"link add name {ENDPOINT_IF} netns {ens} address {mac_for(lab_id, 'endpoint', ep.name)} "
        f"mtu {ENDPOINT_MTU} type veth peer name {veth} netns {dns} address "
        f"{mac_for(lab_id, 'veth', ep.name)} mtu {ENDPOINT_MTU}",
    ]
    per = {
        ens: ["link set lo up", f"addr add {ep.ip}/{net.prefixlen} dev {ENDPOINT_IF}",
              f"link set {ENDPOINT_IF} up", f"route add default via {net.gateway} dev {ENDPOINT_IF}"],
        dns: [f"link set {veth} up"],
    }
    return Plan(netns={ep.name: ens}, root=root, per_netns=per, gro={ens: [ENDPOINT_IF], dns: [veth]})
