"""Test frames and the RFC 2544 conventions every generator reports in.

Frame sizes are RFC 2544 sizes: the Ethernet frame *including* its 4-byte FCS (64, 128, 256,
512, 1024, 1280, 1518). Software paths never see the FCS, so the bytes a generator hands to the
kernel are ``size - 4``. Bit rates are layer-1 rates: every frame also occupies 8 bytes of
preamble + start-of-frame delimiter and 12 bytes of inter-frame gap on the wire, so
``Gbps = pps * (size + 20) * 8 / 1e9`` -- the convention of RFC 2544 testers (TRex's "L1"
figure), which makes 14.88 Mpps of 64-byte frames exactly 10 Gbps.
"""

from __future__ import annotations

import socket
import struct

#: The RFC 2544 section 9 frame sizes for Ethernet.
RFC2544_SIZES = (64, 128, 256, 512, 1024, 1280, 1518)
FCS = 4
#: Preamble (7) + SFD (1) + inter-frame gap (12), per frame on the wire.
L1_OVERHEAD = 20
ETH, IPV4, UDP = 14, 20, 8
MIN_SIZE = 64
MAX_SIZE = 9018  # jumbo upper bound; live frames are further limited by a page


def wire_bits(size: int) -> int:
    """Bits one frame of RFC 2544 ``size`` occupies on the wire (layer 1)."""
    return (size + L1_OVERHEAD) * 8


def l1_gbps(pps: float, size: int) -> float:
    """Layer-1 bit rate of ``pps`` frames/s of ``size`` bytes (preamble + IFG included)."""
    return pps * wire_bits(size) / 1e9


def l2_gbps(pps: float, size: int) -> float:
    """Layer-2 bit rate (frame incl. FCS, no preamble/IFG), for readers who want that one."""
    return pps * size * 8 / 1e9


def line_rate_pps(gbps: float, size: int) -> float:
    """Frames/s a link of ``gbps`` carries at ``size`` (64 B on 10G: 14,880,952)."""
    return gbps * 1e9 / wire_bits(size)


def mac_bytes(mac: str) -> bytes:
    parts = mac.split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return bytes(int(p, 16) for p in parts)


def ipv4_checksum(header: bytes) -> int:
    s = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return int(~s & 0xFFFF)


def udp_frame(
    size: int,
    src_mac: str,
    dst_mac: str,
    src_ip: str,
    dst_ip: str,
    *,
    sport: int = 40000,
    dport: int = 9,
    ttl: int = 64,
) -> bytes:
    """Ethernet / IPv4 (no options) / UDP with a zero payload, ``size - 4`` bytes long (the FCS
    is the NIC's business). UDP checksum 0 (legal for IPv4), so a generator may rewrite the
    source port per flow without touching any checksum."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(
            f"frame size {size} out of range {MIN_SIZE}..{MAX_SIZE} (RFC 2544 sizes include FCS)"
        )
    ip_len = size - FCS - ETH
    payload = b"\0" * (ip_len - IPV4 - UDP)
    udp = struct.pack("!HHHH", sport, dport, UDP + len(payload), 0)
    ip = bytearray(
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            ip_len,
            0,
            0,
            ttl,
            17,
            0,
            socket.inet_aton(src_ip),
            socket.inet_aton(dst_ip),
        )
    )
    ip[10:12] = struct.pack("!H", ipv4_checksum(bytes(ip)))
    return mac_bytes(dst_mac) + mac_bytes(src_mac) + b"\x08\x00" + bytes(ip) + udp + payload
