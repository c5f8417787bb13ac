"""The agent encapsulates an endpoint's frame: outer Ethernet/IPv4/UDP/Geneve with the RTS
option, checksums valid, the inner frame untouched, sent toward the right droplet."""

from __future__ import annotations

from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from xdputil import (
    D2,
    D2_MAC,
    D3,
    D3_MAC,
    ME,
    ME_MAC,
    NET_A1,
    NET_A2,
    VNI_A,
    VPC_CIDR,
    A,
    C,
    Droplet,
    E,
    inner,
    ip_csum_ok,
    parse_rts,
)

from centaurus.bpf import maps as M


def decode(out: bytes) -> Ether:
    return Ether(out)


def assert_encap(out: bytes, frame: Ether, *, dst: str, dst_mac: str, vni: int = VNI_A,
                 flags: int = 0) -> Ether:
    o = decode(out)
    assert len(out) == len(bytes(frame)) + M.ENCAP_LEN
    assert (o.src, o.dst, o.type) == (ME_MAC, dst_mac, 0x0800)
    ip = o[IP]
    assert (ip.version, ip.ihl, ip.proto, ip.ttl, ip.src, ip.dst) == (4, 5, 17, M.OUTER_TTL, ME, dst)
    assert ip.len == len(out) - 14 and ip.frag == 0 and ip.flags == 0
    assert ip_csum_ok(ip)
    udp = o[UDP]
    assert udp.dport == M.GENEVE_PORT and udp.len == ip.len - 20 and udp.chksum == 0
    assert M.SPORT_BASE <= udp.sport <= M.SPORT_BASE | M.SPORT_MASK
    g = o[GENEVE]
    assert (g.version, g.optionlen, g.oam, g.critical, g.proto, g.vni) == (0, 4, 0, 0, 0x6558, vni)
    assert len(g.options) == 1
    opt = g.options[0]
    assert (opt.classid, opt.type, opt.length) == (0x0111, 0x48, 3)
    assert parse_rts(g) == (flags, ME, ME_MAC)
    assert out[M.ENCAP_LEN:] == bytes(frame), "inner frame must be carried unchanged"
    return o


def test_same_network_goes_to_a_bouncer(d1: Droplet) -> None:
    frame = inner(A, C[1])
    r = d1.agent(frame)
    assert r.action == "XDP_REDIRECT"
    assert_encap(r.data_out, frame, dst=D2, dst_mac=D2_MAC, flags=M.RTS_F_VIA)
    assert d1.delta() == {"tx_encap": 1, "via_bouncer": 1}


def test_other_network_goes_to_a_divider(d1: Droplet) -> None:
    frame = inner(A, E[1], proto="tcp")
    r = d1.agent(frame)
    assert r.action == "XDP_REDIRECT"
    assert_encap(r.data_out, frame, dst=D3, dst_mac=D3_MAC, flags=M.RTS_F_VIA)
    assert d1.delta() == {"tx_encap": 1, "via_divider": 1}


def test_divider_here_picks_the_destination_networks_bouncer(d1: Droplet) -> None:
    d1.ov.put_vpc(VNI_A, VPC_CIDR, dividers=[ME], divider_here=True)
    d1.ov.put_network(VNI_A, NET_A2, bouncers=[D3], net_id=2)
    frame = inner(A, E[1])
    r = d1.agent(frame)
    assert_encap(r.data_out, frame, dst=D3, dst_mac=D3_MAC, flags=M.RTS_F_VIA)
    assert d1.delta() == {"tx_encap": 1, "via_bouncer": 1}


def test_endpoint_known_here_goes_straight_to_its_host(d1: Droplet) -> None:
    """A bouncer's own endpoints: it knows every endpoint of the network."""
    d1.ov.put_network(VNI_A, NET_A1, bouncers=[ME, D2], net_id=1, bouncer_here=True)
    d1.ov.put_endpoint(VNI_A, C[1], host_ip=D3, mac=C[2], vpc_cidr=VPC_CIDR, net_id=1)
    frame = inner(A, C[1], proto="icmp")
    r = d1.agent(frame)
    assert_encap(r.data_out, frame, dst=D3, dst_mac=D3_MAC)
    assert d1.delta() == {"tx_encap": 1, "direct": 1}


def test_bouncer_here_and_endpoint_unknown_is_dropped(d1: Droplet) -> None:
    d1.ov.put_network(VNI_A, NET_A1, bouncers=[ME], net_id=1, bouncer_here=True)
    r = d1.agent(inner(A, "10.10.1.99"))
    assert r.action == "XDP_DROP"
    assert d1.delta() == {"drop_no_endpoint": 1}


def test_flows_spread_over_the_networks_bouncers(d1: Droplet) -> None:
    d1.ov.put_network(VNI_A, NET_A1, bouncers=[D2, D3], net_id=1)
    seen: dict[str, set[int]] = {D2: set(), D3: set()}
    for sport in range(40000, 40040):
        o = Ether(d1.agent(inner(A, C[1], sport=sport)).data_out)
        seen[o[IP].dst].add(sport)
        again = Ether(d1.agent(inner(A, C[1], sport=sport)).data_out)
        assert again[IP].dst == o[IP].dst and again[UDP].sport == o[UDP].sport, "a flow keeps its path"
    assert len(seen[D2]) >= 8 and len(seen[D3]) >= 8, seen


def test_egress_port_from_neighbour_entry(d1: Droplet) -> None:
    """Point-to-point substrate: the neighbour says which port leads to it (devmap target)."""
    d1.ov.put_neigh(D2, D2_MAC, ifindex=d1.ifx["sub1"])
    r = d1.agent(inner(A, C[1]))
    assert r.action == "XDP_REDIRECT"
    d1.ov.delete_port(d1.ifx["sub1"])
    d1.mark()
    r = d1.agent(inner(A, C[1]))
    assert r.action == "XDP_DROP"
    assert d1.delta() == {"tx_encap": 1, "via_bouncer": 1, "drop_no_port": 1}


def test_unknown_neighbour_uses_nexthop_mac_or_drops(d1: Droplet) -> None:
    d1.ov.delete_neigh(D2)
    assert d1.agent(inner(A, C[1])).action == "XDP_DROP"
    assert d1.delta() == {"drop_no_neigh": 1}
    d1.ov.set_config(ME, ME_MAC, d1.ifx["sub0"], nexthop_mac="02:00:00:00:00:fe")
    r = d1.agent(inner(A, C[1]))
    assert Ether(r.data_out).dst == "02:00:00:00:00:fe"


def test_no_route_cases_are_counted(d1: Droplet) -> None:
    d1.ov.delete_network(VNI_A, NET_A1)
    assert d1.agent(inner(A, C[1])).action == "XDP_DROP"
    d1.ov.put_network(VNI_A, NET_A1, bouncers=[], net_id=1)
    assert d1.agent(inner(A, C[1])).action == "XDP_DROP"
    d1.ov.put_vpc(VNI_A, VPC_CIDR, dividers=[])
    assert d1.agent(inner(A, E[1])).action == "XDP_DROP"
    d1.ov.delete_vpc(VNI_A)
    assert d1.agent(inner(A, E[1])).action == "XDP_DROP"
    assert d1.delta() == {"drop_no_network": 1, "drop_no_bouncer": 1, "drop_no_divider": 1,
                          "drop_unknown_vni": 1}


def test_never_sends_to_itself(d1: Droplet) -> None:
    d1.ov.put_network(VNI_A, NET_A1, bouncers=[ME], net_id=1)  # misconfigured: no BOUNCER flag
    assert d1.agent(inner(A, C[1])).action == "XDP_DROP"
    assert d1.delta() == {"drop_loop": 1}
