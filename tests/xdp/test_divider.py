"""Divider role (VPC scope: network -> bouncer): a frame for an endpoint this droplet does not
know goes, by LPM on (vni, destination), to one of that network's bouncers chosen by the
sender's flow hash (the outer UDP source port)."""

from __future__ import annotations

from scapy.layers.inet import IP
from scapy.layers.l2 import Ether
from xdputil import D2, D3, D4, ME, NET_A2, VNI_A, VNI_B, VPC_CIDR, C, Droplet, E, geneve, inner

E2 = (VNI_A, "10.10.2.77", "0a:00:00:00:02:4d")


def divider(d1: Droplet, bouncers: list[str]) -> None:
    d1.ov.put_vpc(VNI_A, VPC_CIDR, dividers=[ME], divider_here=True)
    d1.ov.put_network(VNI_A, NET_A2, bouncers=bouncers, net_id=2)
    d1.mark()


def test_divider_forwards_to_the_destination_networks_bouncer(d1: Droplet) -> None:
    divider(d1, [D3])
    r = d1.transit(geneve(inner(C, E[1]), VNI_A))
    assert r.action == "XDP_TX"
    o = Ether(r.data_out)
    assert (o[IP].src, o[IP].dst, o[IP].ttl) == (ME, D3, 63)
    assert d1.delta() == {"divided": 1}


def test_divider_choice_follows_the_flow_hash(d1: Droplet) -> None:
    divider(d1, [D2, D3, D4])
    chosen: dict[str, int] = {}
    for sport in range(0xC000, 0xC000 + 60):
        pkt = geneve(inner(C, E2[1]), VNI_A, sport=sport)
        first = Ether(d1.transit(pkt).data_out)[IP].dst
        assert Ether(d1.transit(pkt).data_out)[IP].dst == first, "same flow, same bouncer"
        chosen[first] = chosen.get(first, 0) + 1
    assert set(chosen) == {D2, D3, D4} and min(chosen.values()) >= 8, chosen


def test_stale_direct_path_is_rerouted_to_a_bouncer(d1: Droplet) -> None:
    """Not a divider, endpoint not here (it moved): hand the frame to its network's bouncer."""
    d1.ov.put_network(VNI_A, NET_A2, bouncers=[D3], net_id=2)
    r = d1.transit(geneve(inner(C, E[1]), VNI_A))
    assert r.action == "XDP_TX"
    assert Ether(r.data_out)[IP].dst == D3
    assert d1.delta() == {"rerouted": 1}


def test_unknown_network_is_dropped(d1: Droplet) -> None:
    divider(d1, [D3])
    r = d1.transit(geneve(inner(C, "10.10.9.9"), VNI_A))
    assert r.action == "XDP_DROP"
    assert d1.delta() == {"drop_no_network": 1}


def test_networks_of_another_vpc_are_not_reachable(d1: Droplet) -> None:
    """VPC B has the same CIDR but none of VPC A's networks."""
    divider(d1, [D3])
    r = d1.transit(geneve(inner((VNI_B, "10.10.1.10", "0a:00:00:00:09:01"), E[1]), VNI_B))
    assert r.action == "XDP_DROP"
    assert d1.delta() == {"drop_no_network": 1}


def test_network_without_bouncers_is_dropped(d1: Droplet) -> None:
    divider(d1, [])
    assert d1.transit(geneve(inner(C, E[1]), VNI_A)).action == "XDP_DROP"
    assert d1.delta() == {"drop_no_bouncer": 1}
