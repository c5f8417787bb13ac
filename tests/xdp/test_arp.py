"""ARP responder on the endpoint veth: the endpoint's requests for its gateway and its peers
are answered with the virtual gateway MAC (XDP_TX back to the endpoint); nothing else."""

from __future__ import annotations

from scapy.layers.l2 import ARP, Ether
from xdputil import GW_MAC, A, C, Droplet, arp_request


def test_gateway_and_peers_resolve_to_the_virtual_mac(d1: Droplet) -> None:
    for target in ("10.10.1.1", C[1], "10.10.2.10", "10.10.1.100"):
        r = d1.agent(arp_request(A, target))
        assert r.action == "XDP_TX"
        o = Ether(r.data_out)
        assert (o.dst, o.src, o.type) == (A[2], GW_MAC, 0x0806)
        a = o[ARP]
        assert (a.op, a.hwsrc, a.psrc, a.hwdst, a.pdst) == (2, GW_MAC, target, A[2], A[1])
        assert (a.hwtype, a.ptype, a.hwlen, a.plen) == (1, 0x0800, 6, 4)
    assert d1.delta() == {"arp_reply": 4}


def test_requests_it_must_not_answer(d1: Droplet) -> None:
    bad = [
        arp_request(A, A[1]),                          # its own address (duplicate detection)
        arp_request(A, C[1], op=2),                    # a reply, not a request
        arp_request((A[0], "10.10.1.99", A[2]), C[1]),  # asking with a foreign address
        Ether(bytes(arp_request(A, C[1]))[:30]),        # truncated
    ]
    for f in bad:
        assert d1.agent(f).action == "XDP_DROP"
    assert d1.delta() == {"drop_arp": 4}
