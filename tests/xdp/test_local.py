"""Same-droplet traffic: the agent redirects to the destination's veth without encapsulation,
rewriting the MACs the way a delivery from the overlay would."""

from __future__ import annotations

from scapy.layers.l2 import Ether
from xdputil import GW_MAC, A, B, Droplet, inner


def test_local_destination_is_redirected_without_encap(d1: Droplet) -> None:
    frame = inner(A, B[1], proto="tcp")
    r = d1.agent(frame)
    assert r.action == "XDP_REDIRECT"
    want = Ether(bytes(frame))
    want.dst, want.src = B[2], GW_MAC
    assert r.data_out == bytes(want)
    assert d1.delta() == {"local": 1}


def test_reverse_direction_from_the_other_veth(d1: Droplet) -> None:
    r = d1.agent(inner(B, A[1]), ingress="veb")
    assert r.action == "XDP_REDIRECT"
    assert Ether(r.data_out).dst == A[2]
