"""A minimal rtnetlink client: just the messages a pod network needs, one syscall each.

Why not ``ip`` or pyroute2: a pod's interface is on the startup path of every pod. One ``ip -b``
process costs ~8 ms of wall time and a few ms of CPU (fork+exec), pyroute2 ~1 ms of Python per
call; a hand-packed netlink message is a few microseconds. A :class:`Netlink` socket belongs to
the network namespace it was *created* in, whatever thread uses it later, so the agent keeps one
socket open in its droplet's namespace and opens a short-lived one inside each new pod namespace.

Every call is synchronous and blocking (microseconds): callers run them in a worker thread, never
on the event loop. Errors are :class:`NetlinkError` carrying the errno and the operation.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
import threading

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR = 20
RTM_NEWROUTE, RTM_DELROUTE = 24, 25
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 1, 3, 4, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RTN_UNICAST = 254, 4, 0, 253, 1
_HDR = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTA = struct.Struct("=HH")


class NetlinkError(OSError):
    def __init__(self, err: int, what: str) -> None:
        super().__init__(err, f"{what}: {os.strerror(err)}")


def _align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    n = _RTA.size + len(payload)
    return _RTA.pack(n, kind) + payload + b"\0" * (_align(n) - n)


def attr_str(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def attr_u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


class Netlink:
    """An rtnetlink socket bound to the network namespace of the thread that created it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((0, 0))
        self._seq = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transport -----------------------------------------------------------------------------
    def request(
        self, msg_type: int, flags: int, body: bytes, what: str, *, dump: bool = False
    ) -> list[bytes]:
        """Send one request; returns the payloads of the answers (``dump``) or [] after the ACK."""
        with self._lock:
            self._seq = (self._seq + 1) & 0xFFFFFFFF
            seq = self._seq
            self.sock.send(_HDR.pack(_HDR.size + len(body), msg_type, flags | NLM_F_REQUEST, seq, 0) + body)
            out: list[bytes] = []
            while True:
                data = self.sock.recv(1 << 16)
                off = 0
                while off + _HDR.size <= len(data):
                    length, mtype, _flags, mseq, _pid = _HDR.unpack_from(data, off)
                    if length < _HDR.size:
                        raise NetlinkError(errno.EPROTO, what)
                    payload = data[off + _HDR.size : off + length]
                    off += _align(length)
                    if mseq != seq:
                        continue
                    if mtype == NLMSG_ERROR:
                        (err,) = struct.unpack_from("=i", payload)
                        if err:
                            raise NetlinkError(-err, what)
                        return out
                    if mtype == NLMSG_DONE:
                        return out
                    out.append(payload)
                    if not dump:
                        continue

    # ---- links ---------------------------------------------------------------------------------
    def link_index(self, name: str) -> int | None:
        body = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + attr_str(IFLA_IFNAME, name)
        try:
            answers = self.request(RTM_GETLINK, NLM_F_ACK, body, f"get link {name}")
        except NetlinkError as exc:
            if exc.errno == errno.ENODEV:
                return None
            raise
        for a in answers:
            _fam, _type, index, _flags, _change = _IFINFO.unpack_from(a)
            return int(index)
        return None

    def link_set(
        self,
        index: int,
        *,
        up: bool | None = None,
        master: int | None = None,
        mtu: int | None = None,
        netns_fd: int | None = None,
    ) -> None:
        flags = change = 0
        if up is not None:
            flags, change = (IFF_UP if up else 0), IFF_UP
        attrs = b""
        if master is not None:
            attrs += attr_u32(IFLA_MASTER, master)
        if mtu is not None:
            attrs += attr_u32(IFLA_MTU, mtu)
        if netns_fd is not None:
            attrs += attr_u32(IFLA_NET_NS_FD, netns_fd)
        body = _IFINFO.pack(socket.AF_UNSPEC, 0, index, flags, change) + attrs
        self.request(RTM_NEWLINK, NLM_F_ACK, body, f"set link {index}")

    def bridge_add(self, name: str, *, mtu: int | None = None, mac: str | None = None) -> None:
        """Create an (up) bridge; an existing one is fine."""
        attrs = attr_str(IFLA_IFNAME, name) + attr(IFLA_LINKINFO, attr_str(IFLA_INFO_KIND, "bridge"))
        if mtu:
            attrs += attr_u32(IFLA_MTU, mtu)
        if mac:
            attrs += attr(IFLA_ADDRESS, mac_bytes(mac))
        body = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, IFF_UP, IFF_UP) + attrs
        try:
            self.request(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body, f"add bridge {name}")
        except NetlinkError as exc:
            if exc.errno != errno.EEXIST:
                raise
            idx = self.link_index(name)
            if idx is not None:
                self.link_set(idx, up=True)

    def veth_add(
        self,
        name: str,
        peer: str,
        *,
        peer_netns_fd: int | None = None,
        master: int | None = None,
        mtu: int | None = None,
        mac: str | None = None,
        peer_mac: str | None = None,
    ) -> None:
        """Create a veth pair whose ``name`` end is up (and enslaved to ``master``) here and whose
        ``peer`` end is created directly inside ``peer_netns_fd`` -- one message for both."""
        peer_attrs = attr_str(IFLA_IFNAME, peer)
        if peer_netns_fd is not None:
            peer_attrs += attr_u32(IFLA_NET_NS_FD, peer_netns_fd)
        if peer_mac:
            peer_attrs += attr(IFLA_ADDRESS, mac_bytes(peer_mac))
        if mtu:
            peer_attrs += attr_u32(IFLA_MTU, mtu)
        peer_msg = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + peer_attrs
        info = attr_str(IFLA_INFO_KIND, "veth") + attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_msg))
        attrs = attr_str(IFLA_IFNAME, name) + attr(IFLA_LINKINFO, info)
        if mtu:
            attrs += attr_u32(IFLA_MTU, mtu)
        if mac:
            attrs += attr(IFLA_ADDRESS, mac_bytes(mac))
        if master is not None:
            attrs += attr_u32(IFLA_MASTER, master)
        body = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, IFF_UP, IFF_UP) + attrs
        self.request(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body, f"add veth {name}/{peer}")

    def link_del(self, name: str) -> bool:
        """Delete a link by name; False when it did not exist."""
        body = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + attr_str(IFLA_IFNAME, name)
        try:
            self.request(RTM_DELLINK, NLM_F_ACK, body, f"delete link {name}")
        except NetlinkError as exc:
            if exc.errno in (errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True

    # ---- addresses and routes ------------------------------------------------------------------
    def addr_add(self, index: int, ip: str, prefix_len: int) -> None:
        a = ipaddress.ip_address(ip)
        fam = socket.AF_INET if a.version == 4 else socket.AF_INET6
        body = _IFADDR.pack(fam, prefix_len, 0, RT_SCOPE_UNIVERSE, index)
        body += attr(IFA_LOCAL, a.packed) + attr(IFA_ADDRESS, a.packed)
        try:
            self.request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body, f"add address {ip}")
        except NetlinkError as exc:
            if exc.errno != errno.EEXIST:
                raise

    def _route(self, msg: int, flags: int, dst: str | None, gateway: str | None, oif: int | None) -> None:
        net = ipaddress.ip_network(dst or "0.0.0.0/0", strict=False)
        fam = socket.AF_INET if net.version == 4 else socket.AF_INET6
        scope = RT_SCOPE_UNIVERSE if gateway else RT_SCOPE_LINK
        body = _RTMSG.pack(fam, net.prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, scope, RTN_UNICAST, 0)
        if net.prefixlen:
            body += attr(RTA_DST, net.network_address.packed)
        if gateway:
            body += attr(RTA_GATEWAY, ipaddress.ip_address(gateway).packed)
        if oif is not None:
            body += attr_u32(RTA_OIF, oif)
        self.request(msg, flags, body, f"route {net} via {gateway or oif}")

    def route_replace(self, dst: str | None, gateway: str | None = None, oif: int | None = None) -> None:
        self._route(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, dst, gateway, oif)

    def route_del(self, dst: str, gateway: str | None = None) -> bool:
        try:
            self._route(RTM_DELROUTE, NLM_F_ACK, dst, gateway, None)
        except NetlinkError as exc:
            if exc.errno == errno.ESRCH:
                return False
            raise
        return True
