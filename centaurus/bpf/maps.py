"""The one Python mirror of ``xdp/lib/maps.h`` and ``xdp/lib/counters.h``.

Field names, order and sizes follow the C structs exactly (``tests/xdp/test_layout.py`` checks
them against the compiled objects' BTF). ``__be32`` fields hold the address bytes in network
order: fill them with :func:`ip4` and read them with :func:`ip4_str`.
"""

from __future__ import annotations

import ctypes
import ipaddress
import socket
import sys
from ctypes import Structure, c_uint8, c_uint16, c_uint32, c_uint64
from typing import Any

# ---- wire constants (common.h / geneve.h) ----------------------------------------------------
GENEVE_PORT = 6081
ETH_P_TEB = 0x6558
OPT_CLASS = 0x0111
OPT_TYPE_RTS = 0x48
RTS_F_BOUNCED = 1 << 1
RTS_F_LEARN = 1 << 2
RTS_F_VIA = 1 << 3
RTS_F_STALE = 1 << 4
ENCAP_LEN = 66  # outer Eth 14 + IPv4 20 + UDP 8 + Geneve 8 + RTS option 16
OUTER_TTL = 64
SPORT_BASE = 0xC000
SPORT_MASK = 0x3FFF
GW_MAC = "02:43:4c:00:00:01"  # what ARP answers for every peer/gateway; source MAC on delivery

# ---- limits (maps.h) ----------------------------------------------------------------------------
MAX_BOUNCERS = 16
MAX_DIVIDERS = 16
MAX_BACKENDS = 32
HOSTCACHE_TTL_DEFAULT_NS = 30_000_000_000
IFACE_SLOTS = 16384  # cl_ifaces is an array indexed by ifindex below this; cl_ifaces_x above
HOSTCACHE_NOTIFY = 3

CFG_F_LB = 1 << 0
VPC_F_DIVIDER = 1 << 0
NET_F_BOUNCER = 1 << 0
EP_SIMPLE = 1
EP_SCALED = 2


def ip4(addr: str | int | ipaddress.IPv4Address) -> int:
    """An IPv4 address as the u32 whose memory holds it in network order (a ``__be32``)."""
    if isinstance(addr, int):
        addr = ipaddress.IPv4Address(addr)
    return int.from_bytes(socket.inet_aton(str(addr)), sys.byteorder)


def ip4_str(v: int) -> str:
    return socket.inet_ntoa(int(v).to_bytes(4, sys.byteorder))


def mask4(prefixlen: int) -> int:
    return ip4(int(ipaddress.IPv4Network(f"0.0.0.0/{prefixlen}").netmask))


def mac_bytes(mac: str | bytes) -> bytes:
    if isinstance(mac, bytes):
        if len(mac) != 6:
            raise ValueError(f"MAC must be 6 bytes, got {len(mac)}")
        return mac
    b = bytes(int(x, 16) for x in mac.split(":"))
    if len(b) != 6:
        raise ValueError(f"bad MAC {mac!r}")
    return b


def mac_str(b: Any) -> str:
    return ":".join(f"{x:02x}" for x in bytes(b))


def set_mac(field: Any, mac: str | bytes) -> None:
    ctypes.memmove(ctypes.addressof(field), mac_bytes(mac), 6)


Mac = c_uint8 * 6


class Config(Structure):
    _fields_ = [
        ("host_ip", c_uint32),
        ("substrate_ifindex", c_uint32),
        ("host_mac", Mac),
        ("nexthop_mac", Mac),
        ("flags", c_uint32),
        ("hostcache_gen", c_uint32),
        ("hz", c_uint32),
        ("hostcache_ttl_ns", c_uint64),
        ("epoch", c_uint32),
        ("kepoch", c_uint32),
    ]


class Vpc(Structure):
    _fields_ = [
        ("cidr_ip", c_uint32),
        ("cidr_mask", c_uint32),
        ("flags", c_uint32),
        ("ndividers", c_uint32),
        ("dividers", c_uint32 * MAX_DIVIDERS),
    ]


class NetKey(Structure):
    _fields_ = [("prefixlen", c_uint32), ("vni", c_uint32), ("ip", c_uint32)]


class Net(Structure):
    _fields_ = [
        ("cidr_ip", c_uint32),
        ("cidr_mask", c_uint32),
        ("net_id", c_uint32),
        ("flags", c_uint32),
        ("nbouncers", c_uint32),
        ("bouncers", c_uint32 * MAX_BOUNCERS),
    ]


class EpKey(Structure):
    _fields_ = [("vni", c_uint32), ("ip", c_uint32)]


class Ep(Structure):
    _fields_ = [
        ("kind", c_uint8),
        ("_pad0", c_uint8),
        ("flags", c_uint16),
        ("host_ip", c_uint32),
        ("ifindex", c_uint32),
        ("net_id", c_uint32),
        ("vpc_ip", c_uint32),
        ("vpc_mask", c_uint32),
        ("mac", Mac),
        ("_pad1", c_uint8 * 2),
    ]


class Iface(Structure):
    _fields_ = [
        ("vni", c_uint32),
        ("ip", c_uint32),
        ("net_ip", c_uint32),
        ("net_mask", c_uint32),
        ("net_id", c_uint32),
        ("mac", Mac),
        ("_pad", c_uint8 * 2),
    ]


class Scaled(Structure):
    _fields_ = [("nbackends", c_uint32), ("backends", c_uint32 * MAX_BACKENDS)]


class HostCache(Structure):
    _fields_ = [
        ("host_ip", c_uint32),
        ("ifindex", c_uint32),
        ("mac", Mac),
        ("notify", c_uint8),
        ("_pad0", c_uint8),
        ("gen", c_uint32),
        ("_pad1", c_uint32),
        ("expires_j", c_uint64),
    ]


class LbKey(Structure):
    _fields_ = [
        ("vni", c_uint32),
        ("client_ip", c_uint32),
        ("backend_ip", c_uint32),
        ("client_port", c_uint16),
        ("backend_port", c_uint16),
        ("proto", c_uint8),
        ("_pad", c_uint8 * 3),
    ]


class LbVal(Structure):
    _fields_ = [("vip", c_uint32), ("_pad", c_uint32)]


class Gone(Structure):
    _fields_ = [("until_j", c_uint64)]


class Neigh(Structure):
    _fields_ = [("mac", Mac), ("_pad", c_uint8 * 2), ("ifindex", c_uint32)]


class FcAgent(Structure):
    """Per-CPU decision-cache slot of the agent (internal to the dataplane, lib/fcache.h)."""

    _fields_ = [
        ("saddr", c_uint32), ("daddr", c_uint32), ("ports", c_uint32), ("ifindex", c_uint32),
        ("proto", c_uint8), ("flags", c_uint8), ("event", c_uint8), ("_pad0", c_uint8),
        ("dst_ip", c_uint32), ("epoch", c_uint32), ("kepoch", c_uint32), ("port", c_uint32),
        ("csum_base", c_uint32), ("mac", Mac), ("_pad1", c_uint8 * 2), ("expires_j", c_uint64),
        ("hdr", c_uint8 * 68), ("packets", c_uint32),
    ]


class FcTransit(Structure):
    """Per-CPU decision-cache slot of transit."""

    _fields_ = [
        ("vni", c_uint32), ("daddr", c_uint32), ("sport", c_uint16), ("_pad0", c_uint16),
        ("epoch", c_uint32), ("vpc_ip", c_uint32), ("vpc_mask", c_uint32), ("target", c_uint32),
        ("port", c_uint32), ("mac", Mac), ("event", c_uint8), ("_pad1", c_uint8),
        ("packets", c_uint32), ("_pad2", c_uint32),
    ]


class FcLearn(Structure):
    """Per-CPU cache of transit's learner: entries found fresh (nothing to write)."""

    _fields_ = [
        ("vni", c_uint32), ("ip", c_uint32), ("epoch", c_uint32), ("kepoch", c_uint32),
        ("host", c_uint32), ("armed", c_uint8), ("_pad", c_uint8 * 3), ("fresh_until_j", c_uint64),
    ]


#: C struct name -> mirror (what the BTF drift test walks)
STRUCTS: dict[str, type[Structure]] = {
    "cl_config": Config, "cl_vpc": Vpc, "cl_net_key": NetKey, "cl_net": Net,
    "cl_ep_key": EpKey, "cl_ep": Ep, "cl_iface": Iface, "cl_scaled": Scaled,
    "cl_hostcache": HostCache, "cl_lb_key": LbKey, "cl_lb_val": LbVal, "cl_neigh": Neigh,
    "cl_fc_agent": FcAgent, "cl_fc_transit": FcTransit, "cl_fc_learn": FcLearn,
}

#: pinned map name -> (key type, value type)
MAPS: dict[str, tuple[Any, Any]] = {
    "cl_config": (c_uint32, Config),
    "cl_vpcs": (c_uint32, Vpc),
    "cl_networks": (NetKey, Net),
    "cl_endpoints": (EpKey, Ep),
    "cl_ifaces": (c_uint32, Iface),
    "cl_ifaces_x": (c_uint32, Iface),
    "cl_scaled": (EpKey, Scaled),
    "cl_hostcache": (EpKey, HostCache),
    "cl_lb_rnat": (LbKey, LbVal),
    "cl_neigh": (c_uint32, Neigh),
    "cl_gone": (EpKey, Gone),
    "cl_tx_ports": (c_uint32, c_uint32),
    "cl_counters": (c_uint32, c_uint64),
    "cl_fc_agent": (c_uint32, FcAgent),
    "cl_fc_transit": (c_uint32, FcTransit),
    "cl_fc_learn": (c_uint32, FcLearn),
}

#: enum cl_counter, in order: the stats key of CL_CNT_<NAME> is name.lower()
COUNTER_NAMES: tuple[str, ...] = (
    "pass", "rx_decap", "bounced", "divided", "rerouted", "learned",
    "tx_encap", "direct", "via_bouncer", "via_divider", "local", "arp_reply", "lb_dnat", "lb_rnat",
    "drop_trunc_eth", "drop_trunc_ip", "drop_bad_ip", "drop_bad_csum", "drop_ip_frag",
    "drop_trunc_udp", "drop_bad_udp", "drop_trunc_geneve", "drop_bad_geneve",
    "drop_geneve_opt_len", "drop_geneve_critical", "drop_not_for_us", "drop_unknown_vni",
    "drop_trunc_inner", "drop_inner_not_ipv4", "drop_spoofed_src", "drop_no_endpoint",
    "drop_no_network", "drop_no_bouncer", "drop_no_divider", "drop_no_neigh", "drop_ttl",
    "drop_no_port", "drop_no_config", "drop_not_endpoint", "drop_unsupported", "drop_arp",
    "drop_no_backend", "drop_scaled_remote", "drop_adjust", "drop_loop",
    "reflected", "invalidated",
)
COUNTER = {name: i for i, name in enumerate(COUNTER_NAMES)}
