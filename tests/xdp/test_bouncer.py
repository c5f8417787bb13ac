"""Bouncer role (network scope: endpoint -> host): transit rewrites the outer destination to
the endpoint's host and the source to itself, decrements TTL, fixes checksums, marks the RTS
option BOUNCED and sends the frame back out."""

from __future__ import annotations

from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from xdputil import (
    D2,
    D3,
    D3_MAC,
    D4,
    ME,
    ME_MAC,
    NET_A1,
    VNI_A,
    VPC_CIDR,
    C,
    Droplet,
    geneve,
    inner,
    ip_csum_ok,
    l4_csum_ok,
    parse_rts,
)

from centaurus.bpf import maps as M

F = (VNI_A, "10.10.1.30", "0a:00:00:00:01:1e")  # remote endpoint of net-a1, on D3


def bouncer(d1: Droplet) -> None:
    d1.ov.put_network(VNI_A, NET_A1, bouncers=[ME], net_id=1, bouncer_here=True)
    d1.ov.put_endpoint(VNI_A, F[1], host_ip=D3, mac=F[2], vpc_cidr=VPC_CIDR, net_id=1)
    d1.mark()


def check_bounced(out: bytes, sent: Ether, *, ttl: int) -> Ether:
    o = Ether(out)
    assert (o.src, o.dst) == (ME_MAC, D3_MAC)
    assert (o[IP].src, o[IP].dst, o[IP].ttl) == (ME, D3, ttl - 1)
    assert ip_csum_ok(o[IP])
    assert l4_csum_ok(o)
    assert o[UDP].sport == sent[UDP].sport, "the flow hash travels on"
    flags, host, _ = parse_rts(o[GENEVE])
    assert flags == M.RTS_F_BOUNCED and host == D2, "RTS keeps the original sender"
    assert out[M.ENCAP_LEN:] == bytes(sent)[M.ENCAP_LEN:], "inner frame untouched"
    return o


def test_bouncer_forwards_to_the_endpoints_host_by_xdp_tx(d1: Droplet) -> None:
    bouncer(d1)
    sent = geneve(inner(C, F[1]), VNI_A)
    r = d1.transit(sent)
    assert r.action == "XDP_TX"
    check_bounced(r.data_out, sent, ttl=64)
    assert d1.delta() == {"bounced": 1}


def test_bouncer_updates_a_nonzero_udp_checksum(d1: Droplet) -> None:
    bouncer(d1)
    sent = geneve(inner(C, F[1], proto="tcp"), VNI_A, udp_csum=True, ttl=9)
    assert sent[UDP].chksum != 0
    r = d1.transit(sent)
    assert r.action == "XDP_TX"
    check_bounced(r.data_out, sent, ttl=9)


def test_bouncer_redirects_when_the_host_is_behind_another_port(d1: Droplet) -> None:
    bouncer(d1)
    d1.ov.put_neigh(D3, D3_MAC, ifindex=d1.ifx["sub1"])
    r = d1.transit(geneve(inner(C, F[1]), VNI_A))
    assert r.action == "XDP_REDIRECT"
    assert Ether(r.data_out)[IP].dst == D3


def test_ttl_expiry_is_a_counted_drop(d1: Droplet) -> None:
    bouncer(d1)
    r = d1.transit(geneve(inner(C, F[1]), VNI_A, ttl=1))
    assert r.action == "XDP_DROP"
    assert d1.delta() == {"drop_ttl": 1}


def test_unknown_endpoint_at_its_bouncer_is_dropped(d1: Droplet) -> None:
    bouncer(d1)
    r = d1.transit(geneve(inner(C, "10.10.1.99"), VNI_A))
    assert r.action == "XDP_DROP"
    assert d1.delta() == {"drop_no_endpoint": 1}


def test_bouncer_never_sends_to_itself_or_to_an_unknown_neighbour(d1: Droplet) -> None:
    bouncer(d1)
    d1.ov.put_endpoint(VNI_A, F[1], host_ip=D4, mac=F[2], vpc_cidr=VPC_CIDR, net_id=1)
    d1.ov.delete_neigh(D4)
    assert d1.transit(geneve(inner(C, F[1]), VNI_A)).action == "XDP_DROP"
    d1.ov.put_endpoint(VNI_A, F[1], host_ip=ME, mac=F[2], vpc_cidr=VPC_CIDR, net_id=1)
    assert d1.transit(geneve(inner(C, F[1]), VNI_A)).action == "XDP_DROP"
    assert d1.delta() == {"drop_no_neigh": 1, "drop_loop": 1}
