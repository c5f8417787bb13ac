"""The per-CPU decision caches (lib/fcache.h) never outlive a map change: every change made
through Overlay bumps the epoch, and the dataplane's own host-cache writes bump its epoch."""

from __future__ import annotations

from scapy.layers.inet import IP
from scapy.layers.l2 import Ether
from xdputil import D2, D3, D3_MAC, ME, NET_A1, VNI_A, VPC_CIDR, A, B, C, Droplet, geneve, inner

from centaurus.bpf import maps as M


def agent_dst(d1: Droplet, sport: int = 40000) -> str:
    return str(Ether(d1.agent(inner(A, C[1], sport=sport)).data_out)[IP].dst)


def test_agent_cache_fills_and_hits(d1: Droplet) -> None:
    assert agent_dst(d1) == D2
    slots = [s for cpu in d1.ov.maps["cl_fc_agent"].items() for s in cpu[1] if s.ifindex == d1.ifx["vea"]]
    want = M.COUNTER["via_bouncer"]
    assert any(M.ip4_str(s.daddr) == C[1] and M.ip4_str(s.dst_ip) == D2 and s.event == want
               for s in slots), "the decision is cached"
    for _ in range(5):
        assert agent_dst(d1) == D2
    assert d1.delta() == {"tx_encap": 6, "via_bouncer": 6}


def test_agent_sees_every_kind_of_map_change(d1: Droplet) -> None:
    assert agent_dst(d1) == D2
    d1.ov.put_network(VNI_A, NET_A1, bouncers=[D3], net_id=1)
    assert agent_dst(d1) == D3, "new bouncer list"
    d1.ov.learn(VNI_A, C[1], ME.replace(".11", ".14"), D3_MAC)
    assert agent_dst(d1) == "10.199.0.14", "userspace-learned direct path"
    d1.ov.delete_endpoint(VNI_A, C[1])
    assert agent_dst(d1) == D3, "direct path forgotten"
    d1.ov.put_endpoint(VNI_A, C[1], host_ip=ME, mac=C[2], vpc_cidr=VPC_CIDR, ifindex=d1.ifx["veb"])
    r = d1.agent(inner(A, C[1]))
    assert r.action == "XDP_REDIRECT" and Ether(r.data_out).dst == C[2], "moved here: local"
    assert d1.delta()["local"] == 1


def test_agent_sees_what_transit_learned(d1: Droplet) -> None:
    from xdputil import rts

    assert agent_dst(d1) == D2
    d1.transit(geneve(inner(C, A[1]), VNI_A, options=[rts(D3, D3_MAC, flags=M.RTS_F_BOUNCED)]))
    assert agent_dst(d1) == D3


def test_transit_cache_never_delivers_to_a_deleted_endpoint(d1: Droplet) -> None:
    frame = geneve(inner(C, A[1]), VNI_A)
    assert d1.transit(frame).action == "XDP_REDIRECT"
    assert d1.transit(frame).action == "XDP_REDIRECT"
    d1.ov.delete_endpoint(VNI_A, A[1])
    r = d1.transit(frame)
    assert r.action == "XDP_TX" and Ether(r.data_out)[IP].dst == D2, "re-routed to the bouncer"
    assert d1.delta() == {"rx_decap": 2, "rerouted": 1}


def test_transit_cache_follows_an_endpoint_move(d1: Droplet) -> None:
    d1.ov.put_network(VNI_A, NET_A1, bouncers=[ME], net_id=1, bouncer_here=True)
    d1.ov.put_endpoint(VNI_A, B[1], host_ip=D2, mac=B[2], vpc_cidr=VPC_CIDR)
    frame = geneve(inner(C, B[1]), VNI_A)
    assert Ether(d1.transit(frame).data_out)[IP].dst == D2
    d1.ov.put_endpoint(VNI_A, B[1], host_ip=D3, mac=B[2], vpc_cidr=VPC_CIDR)
    assert Ether(d1.transit(frame).data_out)[IP].dst == D3


def test_cached_decisions_still_check_spoofing_and_ttl(d1: Droplet) -> None:
    d1.ov.put_network(VNI_A, NET_A1, bouncers=[ME], net_id=1, bouncer_here=True)
    d1.ov.put_endpoint(VNI_A, B[1], host_ip=D2, mac=B[2], vpc_cidr=VPC_CIDR)
    d1.mark()
    assert d1.transit(geneve(inner(C, B[1]), VNI_A)).action == "XDP_TX"
    assert d1.transit(geneve(inner((VNI_A, "192.168.0.9", C[2]), B[1]), VNI_A)).action == "XDP_DROP"
    assert d1.transit(geneve(inner(C, B[1]), VNI_A, ttl=1)).action == "XDP_DROP"
    assert d1.delta() == {"bounced": 1, "drop_spoofed_src": 1, "drop_ttl": 1}
