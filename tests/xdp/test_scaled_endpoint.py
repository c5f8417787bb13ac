"""Scaled endpoint (NET-8): a virtual IP spread by flow hash over backends, DNAT on the
client's droplet with valid checksums, and the reply translated back to the virtual IP."""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from xdputil import D2, VNI_A, VPC_CIDR, A, B, C, Droplet, geneve, inner, ip_csum_ok, l4_csum_ok

from centaurus.bpf import maps as M

VIP = "10.10.1.100"


def scaled(d1: Droplet, backends: list[str]) -> None:
    d1.ov.put_scaled(VNI_A, VIP, backends, vpc_cidr=VPC_CIDR)
    d1.mark()


def sent_to(d1: Droplet, r_out: bytes) -> tuple[str, Ether]:
    """(backend, inner frame) of an agent output: encapsulated or redirected locally."""
    o = Ether(r_out)
    if o.haslayer(UDP) and o[UDP].dport == M.GENEVE_PORT:
        o = Ether(r_out[M.ENCAP_LEN:])
    return o[IP].dst, o


def test_flows_spread_over_backends_and_keep_their_backend(d1: Droplet) -> None:
    scaled(d1, [B[1], C[1]])  # one local, one remote (via bouncer D2)
    count = {B[1]: 0, C[1]: 0}
    for sport in range(41000, 41040):
        r = d1.agent(inner(A, VIP, proto="tcp", sport=sport, dport=8080))
        assert r.action == "XDP_REDIRECT"
        be, f = sent_to(d1, r.data_out)
        count[be] += 1
        assert ip_csum_ok(f[IP]) and l4_csum_ok(f), "DNAT keeps checksums valid"
        assert f[TCP].dport == 8080 and f[IP].src == A[1], "only the address is translated"
        again, _ = sent_to(d1, d1.agent(inner(A, VIP, proto="tcp", sport=sport, dport=8080)).data_out)
        assert again == be
    assert min(count.values()) >= 8, count
    st = d1.delta()
    assert st["lb_dnat"] == 80 and st["local"] + st["via_bouncer"] == 80


def test_remote_backend_reply_is_translated_back_by_transit(d1: Droplet) -> None:
    scaled(d1, [C[1]])
    for proto in ("udp", "tcp", "icmp"):
        req = d1.agent(inner(A, VIP, proto=proto, sport=42000, dport=53))
        be, _f = sent_to(d1, req.data_out)
        assert be == C[1]
        reply = inner(C, A[1], proto=proto, sport=53 if proto != "icmp" else 42000, dport=42000)
        if proto == "icmp":
            reply[ICMP].type = 0
        r = d1.transit(geneve(reply, VNI_A, src=D2))
        assert r.action == "XDP_REDIRECT"
        o = Ether(r.data_out)
        assert o[IP].src == VIP and o[IP].dst == A[1]
        assert ip_csum_ok(o[IP]) and l4_csum_ok(o)
    assert d1.delta()["lb_rnat"] == 3


def test_local_backend_reply_is_translated_back_by_the_agent(d1: Droplet) -> None:
    scaled(d1, [B[1]])
    be, _ = sent_to(d1, d1.agent(inner(A, VIP, proto="udp", sport=43000, dport=7)).data_out)
    assert be == B[1]
    r = d1.agent(inner(B, A[1], proto="udp", sport=7, dport=43000), ingress="veb")
    o = Ether(r.data_out)
    assert r.action == "XDP_REDIRECT" and o[IP].src == VIP and l4_csum_ok(o)


def test_unrelated_traffic_from_a_backend_is_untouched(d1: Droplet) -> None:
    scaled(d1, [B[1]])
    r = d1.agent(inner(B, A[1], proto="udp", sport=9, dport=9), ingress="veb")
    assert Ether(r.data_out)[IP].src == B[1]


def test_vip_without_backends_or_translation_is_dropped(d1: Droplet) -> None:
    scaled(d1, [])
    assert d1.agent(inner(A, VIP)).action == "XDP_DROP"
    cfg = d1.ov.get_config()
    cfg.flags = 0
    cfg.epoch += 1
    d1.ov.config.update(0, cfg)  # scaled endpoint known but translation switched off
    assert d1.agent(inner(A, VIP)).action == "XDP_DROP"
    assert d1.transit(geneve(inner(C, VIP), VNI_A)).action == "XDP_DROP"
    assert d1.delta() == {"drop_no_backend": 1, "drop_scaled_remote": 2}
