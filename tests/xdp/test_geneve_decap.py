"""Transit delivers an overlay frame to a local endpoint: the output is exactly the inner
frame, with the endpoint's MAC as destination and the gateway MAC as source."""

from __future__ import annotations

from scapy.contrib.geneve import GeneveOptions
from scapy.layers.l2 import Ether
from xdputil import D2, GW_MAC, VNI_A, A, C, Droplet, geneve, inner, rts


def expected(frame: Ether, dst_mac: str) -> bytes:
    e = Ether(bytes(frame))
    e.dst, e.src = dst_mac, GW_MAC
    return bytes(e)


def test_decap_delivers_inner_frame_to_local_endpoint(d1: Droplet) -> None:
    frame = inner(C, A[1], dst_mac=GW_MAC)
    r = d1.transit(geneve(frame, VNI_A))
    assert r.action == "XDP_REDIRECT"
    assert r.data_out == expected(frame, A[2])
    assert d1.delta() == {"rx_decap": 1}


def test_decap_output_equals_inner_frame_byte_for_byte(d1: Droplet) -> None:
    frame = Ether(src=GW_MAC, dst=A[2]) / inner(C, A[1], proto="tcp").payload
    r = d1.transit(geneve(frame, VNI_A))
    assert r.action == "XDP_REDIRECT"
    assert r.data_out == bytes(frame)


def test_decap_accepts_udp_checksum_and_skips_unknown_noncritical_option(d1: Droplet) -> None:
    other = GeneveOptions(classid=0x0102, type=0x01, length=1, data=b"\1\2\3\4")
    frame = inner(C, A[1], proto="icmp")
    pkt = geneve(frame, VNI_A, options=[other, rts(D2)], udp_csum=True)
    r = d1.transit(pkt)
    assert r.action == "XDP_REDIRECT"
    assert r.data_out == expected(frame, A[2])


def test_decap_without_any_option(d1: Droplet) -> None:
    frame = inner(C, A[1])
    r = d1.transit(geneve(frame, VNI_A, options=[]))
    assert r.action == "XDP_REDIRECT"
    assert r.data_out == expected(frame, A[2])
    assert d1.delta() == {"rx_decap": 1}


def test_non_overlay_traffic_passes_to_the_droplet_stack(d1: Droplet) -> None:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import ARP

    for frame in (
        Ether() / ARP(pdst=D2),
        Ether() / IP(dst="10.199.0.11") / UDP(dport=53) / b"q",
        Ether() / IP(dst="10.199.0.11", proto=6) / b"tcp-ish",
    ):
        assert d1.transit(frame).action == "XDP_PASS"
    assert d1.delta() == {"pass": 3}
