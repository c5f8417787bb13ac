"""transitd's RPC handlers: validate a request, then program the droplet's maps.

Each handler is a handful of bpf(2) calls through :class:`centaurus.bpf.overlay.Overlay` (no
subprocess, microseconds each), so handlers run inline on the event loop; XDP attach/detach
(a netlink round trip, ~1 ms) happens only when an endpoint appears or goes away here.

State lives in the pinned maps, nowhere else: ``Get*``/``Dump`` read them back, which is what
makes a restarted daemon answer exactly like the one before it. Errors map to gRPC codes:
bad input INVALID_ARGUMENT, an object that needs another one first FAILED_PRECONDITION, a
missing object NOT_FOUND, a kernel refusal INTERNAL -- each with a one-line message.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import grpc

import centaurus
from centaurus.bpf import maps as M
from centaurus.bpf import xdp
from centaurus.bpf._libbpf import BpfError
from centaurus.bpf.overlay import Overlay
from centaurus.transitd.rpc import pb

log = logging.getLogger("centaurus.transitd")


class RpcFailure(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def _bad(msg: str) -> RpcFailure:
    return RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, msg)


def _ip(value: str, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise _bad(f"{what}: {value!r} is not an IPv4 address") from None


def _cidr(value: str, what: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise _bad(f"{what}: {value!r} is not an IPv4 CIDR ({exc})") from None


def _vni(value: int) -> int:
    if not 0 < value < (1 << 24):
        raise _bad(f"vni must be in 1..16777215, got {value}")
    return value


def _mac(value: str, what: str) -> str:
    try:
        return M.mac_str(M.mac_bytes(value))
    except ValueError:
        raise _bad(f"{what}: {value!r} is not a MAC address") from None


def _cidr_str(ip: int, mask: int) -> str:
    net = ipaddress.IPv4Network(f"{M.ip4_str(ip)}/{M.ip4_str(mask)}", strict=False)
    return str(net)


def _in_use(value: Any) -> bool:
    """Array maps list every slot: only non-zero values are entries."""
    try:
        return any(bytes(value))
    except TypeError:
        return bool(value)


class TransitService:
    """One droplet's control surface; ``shutdown_cb`` ends the daemon after Shutdown."""

    def __init__(self, overlay: Overlay, droplet: str, host_ip: str, host_mac: str, substrate: str,
                 adopted: bool, shutdown_cb: Callable[[bool], None]) -> None:
        self.ov = overlay
        self.droplet = droplet
        self.host_ip = host_ip
        self.host_mac = host_mac
        self.substrate = substrate
        self.adopted = adopted
        self.started = time.monotonic()
        self._shutdown_cb = shutdown_cb

    # ---- plumbing ----------------------------------------------------------------------------
    async def _run(self, context: grpc.aio.ServicerContext, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except RpcFailure as exc:
            await context.abort(exc.code, str(exc))
        except (ValueError, KeyError) as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc).strip("'\""))
        except (BpfError, OSError) as exc:
            msg = str(exc).splitlines()[0]
            log.warning("kernel refused: %s", msg)
            await context.abort(grpc.StatusCode.INTERNAL, msg)

    def _require_vpc(self, vni: int) -> Any:
        v = self.ov.vpcs.lookup(vni)
        if v is None:
            raise RpcFailure(grpc.StatusCode.FAILED_PRECONDITION,
                             f"VPC {vni} is not known on {self.droplet}; UpdateVpc first")
        return v

    def _net_of(self, vni: int, ip: str) -> Any:
        return self.ov.networks.lookup(M.NetKey(prefixlen=64, vni=vni, ip=M.ip4(ip)))

    @staticmethod
    def _reply(changed: bool, detail: str = "") -> Any:
        return pb.Reply(changed=changed, detail=detail)

    @staticmethod
    def _snap(m: Any, key: Any) -> bytes | None:
        v = m.lookup(key)
        return None if v is None else bytes(v)

    # ---- droplet ------------------------------------------------------------------------------
    async def Status(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def do() -> Any:
            progs = []
            attached: dict[int, list[str]] = {}
            for ifi, name in socket.if_nameindex():
                try:
                    q = xdp.query(ifi)
                except OSError:
                    continue
                if q.prog_id:
                    attached.setdefault(q.prog_id, []).append(name)
            for name, info in self.ov.prog_info().items():
                progs.append(pb.Program(name=name, id=info.id, interfaces=sorted(attached.get(info.id, []))))
            return pb.StatusReply(droplet=self.droplet, host_ip=self.host_ip, host_mac=self.host_mac,
                                  substrate=self.substrate, pin_dir=str(self.ov.pin_dir), pid=os.getpid(),
                                  adopted=self.adopted, programs=progs,
                                  uptime_s=time.monotonic() - self.started, version=centaurus.__version__)
        return await self._run(context, do)

    async def UpdateDroplet(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def do() -> Any:
            ip = _ip(request.ip, "ip")
            mac = _mac(request.mac, "mac")
            if ip == self.host_ip:
                raise _bad(f"{ip} is this droplet's own address")
            ifindex = self._ifindex(request.ifname) if request.ifname else 0
            before = self._snap(self.ov.neigh, M.ip4(ip))
            self.ov.put_neigh(ip, mac, ifindex)
            return self._reply(before != self._snap(self.ov.neigh, M.ip4(ip)))
        return await self._run(context, do)

    async def DeleteDroplet(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def do() -> Any:
            ip = _ip(request.ip, "ip")
            return self._reply(self.ov.neigh.delete(M.ip4(ip)))
        return await self._run(context, do)

    async def Shutdown(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        cleanup = bool(request.cleanup)
        asyncio.get_running_loop().call_later(0.05, self._shutdown_cb, cleanup)
        return self._reply(True, "cleaning up and exiting" if cleanup else "exiting; dataplane left running")

    # ---- VPCs and dividers -----------------------------------------------------------------------
    def _put_vpc(self, vni: int, cidr: str, dividers: list[str]) -> bool:
        before = self._snap(self.ov.vpcs, vni)
        self.ov.put_vpc(vni, cidr, dividers, divider_here=self.host_ip in dividers)
        return before != self._snap(self.ov.vpcs, vni)

    async def UpdateVpc(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def do() -> Any:
            vni = _vni(request.vni)
            cidr = str(_cidr(request.cidr, "cidr"))
            dividers = [_ip(d, "dividers") for d in request.dividers]
            if len(set(dividers)) != len(dividers):
                raise _bad("dividers listed twice")
            return self._reply(self._put_vpc(vni, cidr, dividers))
        return await self._run(context, do)

    def _vpc_fields(self, vni: int) -> tuple[str, list[str]]:
        v = self._require_vpc(vni)
        return _cidr_str(v.cidr_ip, v.cidr_mask), [M.ip4_str(v.dividers[i]) for i in range(v.ndividers)]

    async def UpdateDivider(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def do() -> Any:
            vni, ip = _vni(request.vni), _ip(request.ip, "ip")
            cidr, ds = self._vpc_fields(vni)
            if ip in ds:
                return self._reply(False, "already a divider")
            if len(ds) >= M.MAX_DIVIDERS:
                raise _bad(f"VPC {vni} already has the maximum of {M.MAX_DIVIDERS} dividers")
            return self._reply(self._put_vpc(vni, cidr, [*ds, ip]))
        return await self._run(context, do)

    async def DeleteDivider(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def do() -> Any:
            vni, ip = _vni(request.vni), _ip(request.ip, "ip")
            cidr, ds = self._vpc_fields(vni)
            if ip not in ds:
                raise RpcFailure(grpc.StatusCode.NOT_FOUND, f"{ip} is not a divider of VPC {vni}")
            return self._reply(self._put_vpc(vni, cidr, [d for d in ds if d != ip]))
        return await self._run(context, do)

    async def DeleteVpc(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def do() -> Any:
            vni = _vni(request.vni)
            if self.ov.vpcs.lookup(vni) is None:
                raise RpcFailure(grpc.StatusCode.NOT_FOUND, f"VPC {vni} is not programmed here")
            nets = [k for k, _ in self.ov.networks.items() if k.vni == vni]
            if nets:
                raise RpcFailure(grpc.StatusCode.FAILED_PRECONDITION,
                                 f"VPC {vni} still has {len(nets)} network(s) here; delete them first")
            self.ov.delete_vpc(vni)
            return self._reply(True)
        return await self._run(context, do)

    async def GetVpc(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def do() -> Any:
            vni = _vni(request.vni)
            if self.ov.vpcs.lookup(vni) is None:
                raise RpcFailure(grpc.StatusCode.NOT_FOUND, f"VPC {vni} is not programmed here")
            cidr, ds = self._vpc_fields(vni)
            return pb.Vpc(vni=vni, cidr=cidr, dividers=ds)
        return await self._run(context, do)

    async def GetDividers(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def do() -> Any:
            _, ds = self._vpc_fields(_vni(request.vni))
            return pb.AddressList(ips=ds)
        return await self._run(context, do)

    # ---- networks and bouncers ----------------------------------------------------------------
    def _put_net(self, vni: int, cidr: ipaddress.IPv4Network, bouncers: list[str], net_id: int) -> bool:
        key = Overlay.net_key(vni, str(cidr))
        before = self._snap(self.ov.networks, key)
        self.ov.put_network(vni, str(cidr), bouncers, net_id=net_id, bouncer_here=self.host_ip in bouncers)
        return before != self._snap(self.ov.networks, key)

    def _net_exact(self, vni: int, cidr: ipaddress.IPv4Network) -> Any:
        v = self.ov.networks.lookup(Overlay.net_key(vni, str(cidr)))
        if v is None or _cidr_str(v.cidr_ip, v.cidr_mask) != str(cidr):
            raise RpcFailure(grpc.StatusCode.NOT_FOUND, f"network {cidr} of VPC {vni} is not programmed here")
        return v

    async def UpdateNet(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def do() -> Any:
            vni = _vni(request.vni)
            cidr = _cidr(request.cidr, "cidr")
            vpc_cidr, _ = self._vpc_fields(vni)
            if not cidr.subnet_of(ipaddress.IPv4Network(vpc_cidr)):
                raise _bad(f"network {cidr} is not inside VPC {vni} ({vpc_cidr})")
            bouncers = [_ip(b, "bouncers") for b in request.bouncers]
            if not bouncers:
                raise _bad(f"network {cidr} needs at least one bouncer")
            if len(set(bouncers)) != len(bouncers):
                raise _bad("bouncers listed twice")
            return self._reply(self._put_net(vni, cidr, bouncers, request.net_id))
        return await self._run(context, do)

    def _bouncer_op(self, request: Any, add: bool) -> Any:
        vni, ip = _vni(request.vni), _ip(request.ip, "ip")
        cidr = _cidr(request.cidr, "cidr")
        v = self._net_exact(vni, cidr)
        bs = [M.ip4_str(v.bouncers[i]) for i in range(v.nbouncers)]
        if add:
            if ip in bs:
                return self._reply(False, "already a bouncer")
            if len(bs) >= M.MAX_BOUNCERS:
                raise _bad(f"network {cidr} already has the maximum of {M.MAX_BOUNCERS} bouncers")
            bs.append(ip)
        else:
            if ip not in bs:
                raise RpcFailure(grpc.StatusCode.NOT_FOUND, f"{ip} is not a bouncer of network {cidr}")
            if len(bs) == 1:
                raise RpcFailure(grpc.StatusCode.FAILED_PRECONDITION,
                                 f"{ip} is the last bouncer of network {cidr}")
            bs.remove(ip)
        return self._reply(self._put_net(vni, cidr, bs, v.net_id))

    async def UpdateBouncer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await self._run(context, lambda: self._bouncer_op(request, True))

    async def DeleteBouncer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await self._run(context, lambda: self._bouncer_op(request, False))

    def _find_net(self, vni: int, text: str) -> tuple[ipaddress.IPv4Network, Any]:
        if "/" in text:
            cidr = _cidr(text, "cidr")
            return cidr, self._net_exact(vni, cidr)
        ip = _ip(text, "cidr")
        v = self._net_of(vni, ip)
        if v is None:
            raise RpcFailure(grpc.StatusCode.NOT_FOUND, f"no network of VPC {vni} holds {ip} here")
        return ipaddress.IPv4Network(_cidr_str(v.cidr_ip, v.cidr_mask)), v

    async def DeleteNet(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def do() -> Any:
            vni = _vni(request.vni)
            cidr, _ = self._find_net(vni, request.cidr)
            eps = [k for k, e in self.ov.endpoints.items()
                   if k.vni == vni and ipaddress.IPv4Address(M.ip4_str(k.ip)) in cidr]
            if eps:
                raise RpcFailure(grpc.StatusCode.FAILED_PRECONDITION,
                                 f"network {cidr} still has {len(eps)} endpoint(s) here; delete them first")
            self.ov.delete_network(vni, str(cidr))
            return self._reply(True)
        return await self._run(context, do)

    async def GetNet(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def do() -> Any:
            vni = _vni(request.vni)
            cidr, v = self._find_net(vni, request.cidr)
            return pb.Net(vni=vni, cidr=str(cidr), net_id=v.net_id,
                          bouncers=[M.ip4_str(v.bouncers[i]) for i in range(v.nbouncers)])
        return await self._run(context, do)

    async def GetBouncers(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def do() -> Any:
            _, v = self._find_net(_vni(request.vni), request.cidr)
            return pb.AddressList(ips=[M.ip4_str(v.bouncers[i]) for i in range(v.nbouncers)])
        return await self._run(context, do)

    # ---- endpoints ------------------------------------------------------------------------------
    @staticmethod
    def _ifindex(name: str) -> int:
        try:
            return socket.if_nametoindex(name)
        except OSError:
            raise RpcFailure(grpc.StatusCode.NOT_FOUND, f"no interface {name!r} on this droplet") from None

    def _update_ep(self, r: Any) -> Any:
        vni = _vni(r.vni)
        ip = _ip(r.ip, "ip")
        vpc_cidr, _ = self._vpc_fields(vni)
        if ipaddress.IPv4Address(ip) not in ipaddress.IPv4Network(vpc_cidr):
            raise _bad(f"endpoint {ip} is not inside VPC {vni} ({vpc_cidr})")
        net = self._net_of(vni, ip)
        if net is None:
            raise RpcFailure(grpc.StatusCode.FAILED_PRECONDITION,
                             f"no network of VPC {vni} holds {ip} on {self.droplet}; UpdateNet first")
        net_cidr = _cidr_str(net.cidr_ip, net.cidr_mask)
        key = M.EpKey(vni=vni, ip=M.ip4(ip))
        kind = r.kind or "simple"
        before = self._snap(self.ov.endpoints, key)
        if kind == "scaled":
            backends = [_ip(b, "backends") for b in r.backends]
            if not backends:
                raise _bad(f"scaled endpoint {ip} needs at least one backend")
            sbefore = self._snap(self.ov.scaled, key)
            self.ov.put_scaled(vni, ip, backends, vpc_cidr=vpc_cidr, net_id=net.net_id)
            return self._reply(before != self._snap(self.ov.endpoints, key)
                               or sbefore != self._snap(self.ov.scaled, key))
        if kind != "simple":
            raise _bad(f"kind must be 'simple' or 'scaled', got {kind!r}")
        host = _ip(r.host_ip, "host_ip")
        mac = _mac(r.mac, "mac")
        if host != self.host_ip:
            old = self.ov.endpoints.lookup(key)
            if old is not None and old.ifindex:
                self._unplug(old.ifindex)  # it moved away from here
            self.ov.put_endpoint(vni, ip, host_ip=host, mac=mac, vpc_cidr=vpc_cidr, net_id=net.net_id)
            return self._reply(before != self._snap(self.ov.endpoints, key))
        if not r.veth:
            raise _bad(f"endpoint {ip} is hosted here: its veth is required")
        ifindex = self._ifindex(r.veth)
        ibefore = self._snap(self.ov.ifaces, ifindex)
        self.ov.put_iface(ifindex, vni=vni, ip=ip, mac=mac, net_cidr=net_cidr, net_id=net.net_id)
        self.ov.put_endpoint(vni, ip, host_ip=host, mac=mac, vpc_cidr=vpc_cidr, ifindex=ifindex,
                             net_id=net.net_id)
        attached = self._ensure_agent(ifindex)
        return self._reply(attached or before != self._snap(self.ov.endpoints, key)
                           or ibefore != self._snap(self.ov.ifaces, ifindex))

    def _ensure_agent(self, ifindex: int) -> bool:
        """Attach the agent to ``ifindex`` unless it already runs there; True if it attached."""
        mine = self.ov.prog_info()["cl_agent"].id
        if xdp.query(ifindex).prog_id == mine:
            return False
        self.ov.attach_agent(ifindex)
        return True

    def _unplug(self, ifindex: int) -> None:
        try:
            xdp.detach(ifindex)
        except OSError as exc:
            log.info("detach agent from ifindex %d: %s", ifindex, exc)
        self.ov.delete_iface(ifindex)
        self.ov.delete_port(ifindex)

    async def UpdateEp(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await self._run(context, lambda: self._update_ep(request))

    async def DeleteEp(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def do() -> Any:
            vni, ip = _vni(request.vni), _ip(request.ip, "ip")
            key = M.EpKey(vni=vni, ip=M.ip4(ip))
            old = self.ov.endpoints.lookup(key)
            if old is None:
                raise RpcFailure(grpc.StatusCode.NOT_FOUND,
                                 f"endpoint {ip} of VPC {vni} is not programmed here")
            if old.ifindex:
                self._unplug(old.ifindex)
            self.ov.delete_endpoint(vni, ip)
            if old.kind == M.EP_SCALED and not any(True for _ in self.ov.scaled.items()):
                self.ov._set_flags(clear_bits=M.CFG_F_LB)
            return self._reply(True)
        return await self._run(context, do)

    def _ep_msg(self, key: Any, e: Any) -> Any:
        ip = M.ip4_str(key.ip)
        msg = pb.Endpoint(vni=key.vni, ip=ip, net_id=e.net_id, ifindex=e.ifindex)
        if e.kind == M.EP_SCALED:
            msg.kind = "scaled"
            s = self.ov.scaled.lookup(key)
            if s is not None:
                msg.backends.extend(M.ip4_str(s.backends[i]) for i in range(s.nbackends))
            return msg
        msg.kind = "simple"
        msg.mac = M.mac_str(e.mac)
        msg.host_ip = M.ip4_str(e.host_ip)
        if e.ifindex:
            try:
                msg.veth = socket.if_indextoname(e.ifindex)
            except OSError:
                msg.veth = ""
        return msg

    async def GetEp(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def do() -> Any:
            vni, ip = _vni(request.vni), _ip(request.ip, "ip")
            key = M.EpKey(vni=vni, ip=M.ip4(ip))
            e = self.ov.endpoints.lookup(key)
            if e is None:
                raise RpcFailure(grpc.StatusCode.NOT_FOUND,
                                 f"endpoint {ip} of VPC {vni} is not programmed here")
            return self._ep_msg(key, e)
        return await self._run(context, do)

    async def Dump(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def do() -> Any:
            out = pb.DumpReply()
            for vni, v in self.ov.vpcs.items():
                out.vpcs.append(pb.Vpc(vni=int(vni), cidr=_cidr_str(v.cidr_ip, v.cidr_mask),
                                       dividers=[M.ip4_str(v.dividers[i]) for i in range(v.ndividers)]))
            for k, n in self.ov.networks.items():
                out.networks.append(pb.Net(vni=k.vni, cidr=_cidr_str(n.cidr_ip, n.cidr_mask), net_id=n.net_id,
                                       bouncers=[M.ip4_str(n.bouncers[i]) for i in range(n.nbouncers)]))
            for k, e in self.ov.endpoints.items():
                out.endpoints.append(self._ep_msg(k, e))
            for ip, n in self.ov.neigh.items():
                out.droplets.append(pb.Droplet(ip=M.ip4_str(int(ip)), mac=M.mac_str(n.mac)))
            return out
        return await self._run(context, do)

    # ---- counters --------------------------------------------------------------------------------
    async def Stats(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def do() -> Any:
            counts = {name: sum(1 for _, v in m.items() if _in_use(v)) for name, m in self.ov.maps.items()
                      if name not in ("cl_counters", "cl_config")}
            return pb.StatsReply(counters=self.ov.stats(), maps=counts)
        return await self._run(context, do)

    async def FlushHostCache(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def do() -> Any:
            gen = self.ov.flush_hostcache()
            return self._reply(True, f"host cache generation {gen}")
        return await self._run(context, do)
