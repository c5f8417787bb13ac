"""Malformed and foreign input is dropped AND counted under its own reason -- never
forwarded, never passed to the stack. One case per layer and per rule."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw
from scapy.utils import checksum
from xdputil import (
    D2,
    D2_MAC,
    D3,
    ME,
    ME_MAC,
    NET_A1,
    VNI_A,
    VNI_B,
    VPC_CIDR,
    A,
    C,
    Droplet,
    geneve,
    inner,
    rts,
)

IP_OFF, UDP_OFF, GNV_OFF, OPT_OFF, INNER_OFF = 14, 34, 42, 50, 66


def good() -> bytes:
    return bytes(geneve(inner(C, A[1]), VNI_A))


def fix_ip(b: bytes) -> bytes:
    """Recompute the outer IPv4 header checksum after a mutation."""
    hdr = bytearray(b[IP_OFF:IP_OFF + 20])
    hdr[10:12] = b"\0\0"
    hdr[10:12] = struct.pack("!H", checksum(bytes(hdr)))
    return b[:IP_OFF] + bytes(hdr) + b[IP_OFF + 20:]


def poke(b: bytes, off: int, val: bytes) -> bytes:
    return b[:off] + val + b[off + len(val):]


def udp6081(payload: bytes, dst: str = ME) -> bytes:
    """A UDP datagram to 6081 whose lengths and checksums are all consistent."""
    return bytes(Ether(src=D2_MAC, dst=ME_MAC) / IP(src=D2, dst=dst) / UDP(sport=49152, dport=6081, chksum=0)
                 / Raw(payload))


def gnv(opts: list[GeneveOptions] | None = None, inner_bytes: bytes | None = None, vni: int = VNI_A,
        **kw: int) -> bytes:
    fields = {"proto": 0x6558, **kw}
    g = GENEVE(vni=vni, options=[rts(D2)] if opts is None else opts, **fields)
    return udp6081(bytes(g) + (bytes(inner(C, A[1])) if inner_bytes is None else inner_bytes))


def opt(t: int, data: bytes = b"", cls: int = 0x0102, length: int | None = None) -> GeneveOptions:
    return GeneveOptions(classid=cls, type=t, data=data, length=length)


TRANSIT_CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    # (BPF_PROG_RUN refuses frames shorter than an Ethernet header, as drivers do)
    "ethernet header only": (lambda: good()[:14], "drop_trunc_ip"),
    "truncated outer ip": (lambda: good()[:IP_OFF + 12], "drop_trunc_ip"),
    "truncated udp": (lambda: good()[:UDP_OFF + 4], "drop_trunc_udp"),
    "frame shorter than ip total length": (lambda: good()[:90], "drop_trunc_ip"),
    "ip version 6 in an ipv4 frame": (lambda: fix_ip(poke(good(), IP_OFF, b"\x65")), "drop_bad_ip"),
    "ip header length below 5": (lambda: fix_ip(poke(good(), IP_OFF, b"\x44")), "drop_bad_ip"),
    "ip options on the overlay": (
        lambda: bytes(Ether(dst=ME_MAC) / IP(src=D2, dst=ME, options=[b"\x01\x01\x01\x00"])
                      / UDP(dport=6081, chksum=0) / GENEVE(proto=0x6558, vni=VNI_A)
                      / inner(C, A[1])), "drop_bad_ip"),
    "ip total length below headers": (lambda: fix_ip(poke(good(), IP_OFF + 2, b"\x00\x1b")),
                                      "drop_bad_ip"),
    "bad outer ip checksum": (lambda: poke(good(), IP_OFF + 10, b"\xde\xad"), "drop_bad_csum"),
    "more fragments": (lambda: fix_ip(poke(good(), IP_OFF + 6, b"\x20\x00")), "drop_ip_frag"),
    "fragment offset": (lambda: fix_ip(poke(good(), IP_OFF + 6, b"\x00\x10")), "drop_ip_frag"),
    "udp length disagrees": (lambda: poke(good(), UDP_OFF + 4, b"\x00\x20"), "drop_bad_udp"),
    "non-geneve udp to 6081 (short)": (lambda: udp6081(b"hello"), "drop_trunc_geneve"),
    "non-geneve udp to 6081 (junk)": (lambda: udp6081(b"\xff" * 64), "drop_bad_geneve"),
    "geneve version 1": (lambda: gnv(version=1), "drop_bad_geneve"),
    "geneve carrying ip, not ethernet": (lambda: gnv(proto=0x0800), "drop_bad_geneve"),
    "options longer than the datagram": (
        lambda: udp6081(bytes(GENEVE(proto=0x6558, vni=VNI_A, optionlen=20))), "drop_geneve_opt_len"),
    "option longer than the option area": (lambda: gnv([opt(1, b"\0" * 4, length=5)]),
                                           "drop_geneve_opt_len"),
    "rts option with a wrong length": (lambda: gnv([opt(0x48, b"\0" * 4, cls=0x0111)]),
                                       "drop_geneve_opt_len"),
    "option area not a whole number of options": (
        lambda: gnv([rts(D2), opt(1, length=1)], optionlen=5), "drop_geneve_opt_len"),
    "more options than walked": (lambda: gnv([opt(1) for _ in range(5)]), "drop_geneve_opt_len"),
    "unknown critical option": (lambda: gnv([opt(0x81, b"\0" * 4)]), "drop_geneve_critical"),
    "not addressed to this droplet": (lambda: bytes(geneve(inner(C, A[1]), VNI_A, dst=D3)),
                                      "drop_not_for_us"),
    "unknown vni": (lambda: bytes(geneve(inner(C, A[1]), 4242)), "drop_unknown_vni"),
    "truncated inner ethernet": (lambda: gnv(inner_bytes=bytes(inner(C, A[1]))[:8]), "drop_trunc_inner"),
    "truncated inner ip": (lambda: gnv(inner_bytes=bytes(inner(C, A[1]))[:24]), "drop_trunc_inner"),
    "inner ipv6": (lambda: gnv(inner_bytes=bytes(Ether() / IPv6() / UDP())), "drop_inner_not_ipv4"),
    "inner arp": (lambda: gnv(inner_bytes=bytes(Ether() / ARP())), "drop_inner_not_ipv4"),
    "inner ip header length below 5": (
        lambda: gnv(inner_bytes=poke(bytes(inner(C, A[1])), 14, b"\x44")), "drop_inner_not_ipv4"),
    "inner source outside the vpc (to a local endpoint)": (
        lambda: bytes(geneve(inner((VNI_A, "192.168.7.7", C[2]), A[1]), VNI_A)), "drop_spoofed_src"),
    "inner source outside the vpc (to be divided)": (
        lambda: bytes(geneve(inner((VNI_A, "172.16.0.1", C[2]), "10.10.2.10"), VNI_A)), "drop_spoofed_src"),
    "vni of another vpc aimed at a local endpoint's address": (
        lambda: bytes(geneve(inner((VNI_B, "10.10.1.77", C[2]), A[1]), VNI_B)), "drop_no_network"),
}


@pytest.mark.parametrize("case", list(TRANSIT_CASES))
def test_transit_drops_and_counts(d1: Droplet, case: str) -> None:
    build, reason = TRANSIT_CASES[case]
    frame = build()
    r = d1.transit(frame)
    assert r.action == "XDP_DROP", f"{case}: {r.action}"
    assert d1.delta() == {reason: 1}


def test_vni_of_another_vpc_never_reaches_the_same_address_in_this_vpc(d1: Droplet) -> None:
    """Even where VPC B's network exists here, B's VNI cannot reach A's endpoint."""
    d1.ov.put_network(VNI_B, NET_A1, bouncers=[ME], net_id=9, bouncer_here=True)
    d1.mark()
    r = d1.transit(geneve(inner((VNI_B, "10.10.1.77", C[2]), A[1]), VNI_B))
    assert r.action == "XDP_DROP"
    assert d1.delta() == {"drop_no_endpoint": 1}


def test_transit_without_configuration_drops(d1: Droplet) -> None:
    d1.ov.set_config("0.0.0.0", ME_MAC, d1.ifx["sub0"])
    assert d1.transit(good()).action == "XDP_DROP"
    assert d1.delta() == {"drop_no_config": 1}


AGENT_CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    "ethernet header only": (lambda: bytes(inner(A, C[1]))[:14], "drop_trunc_ip"),
    "truncated ip": (lambda: bytes(inner(A, C[1]))[:30], "drop_trunc_ip"),
    "ip version 6 in an ipv4 frame": (lambda: poke(bytes(inner(A, C[1])), 14, b"\x65"), "drop_bad_ip"),
    "spoofed source address": (lambda: bytes(inner((VNI_A, "10.10.1.99", A[2]), C[1])),
                               "drop_spoofed_src"),
    "ipv6": (lambda: bytes(Ether(src=A[2]) / IPv6() / UDP()), "drop_unsupported"),
}


@pytest.mark.parametrize("case", list(AGENT_CASES))
def test_agent_drops_and_counts(d1: Droplet, case: str) -> None:
    build, reason = AGENT_CASES[case]
    r = d1.agent(build())
    assert r.action == "XDP_DROP", f"{case}: {r.action}"
    assert d1.delta() == {reason: 1}


def test_agent_on_an_interface_of_no_endpoint(d1: Droplet) -> None:
    assert d1.agent(inner(A, C[1]), ingress="sub1").action == "XDP_DROP"
    assert d1.delta() == {"drop_not_endpoint": 1}


def test_agent_without_configuration_drops(d1: Droplet) -> None:
    d1.ov.set_config("0.0.0.0", ME_MAC, d1.ifx["sub0"])
    assert d1.agent(inner(A, C[1])).action == "XDP_DROP"
    assert d1.delta() == {"drop_no_config": 1}


def test_vpc_cidr_guard_uses_the_vpc_not_the_network(d1: Droplet) -> None:
    """A source in another network of the same VPC is legitimate."""
    d1.ov.put_vpc(VNI_A, VPC_CIDR, dividers=[D3])
    r = d1.transit(geneve(inner((VNI_A, "10.10.2.10", C[2]), A[1]), VNI_A))
    assert r.action == "XDP_REDIRECT"
