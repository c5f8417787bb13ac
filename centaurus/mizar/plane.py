"""What the operators of one instance share: informers (with indexes) over every Mizar kind,
the transitd channels, the subnet address pools and the record of what each droplet holds.

Look-ups here answer the questions the pipelines ask -- "which hosts hold this network?" (its
endpoints' hosts, its bouncers, the VPC's dividers: never every host), "which droplets may
host a bouncer?" -- from the local caches, without API calls.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

import grpc

from centaurus.client.rest import ApiError
from centaurus.controllers.runtime.informer import Informer, InformerSet
from centaurus.mizar import model as M
from centaurus.mizar import transit as T
from centaurus.mizar.ipam import SubnetPool, net_id
from centaurus.mizar.placement import Candidate
from centaurus.transitd.rpc import TransitError

log = logging.getLogger("centaurus.mizar")
Obj = dict[str, Any]


def _spec_field(field: str) -> Any:
    def fn(obj: Obj) -> list[str]:
        v = M.spec(obj).get(field)
        return [str(v)] if v else []

    return fn


def _ep_net(obj: Obj) -> list[str]:
    s = M.spec(obj)
    return [f"{s.get('vpc')}/{s.get('net')}"] if s.get("vpc") and s.get("net") else []


class Plane:
    def __init__(
        self, api: Any, informers: InformerSet, instance: str, pool: T.TransitPool | None = None
    ) -> None:
        self.api = api
        self.instance = instance
        self.pool = pool or T.TransitPool()
        self.inf: dict[str, Informer] = {}
        for plural in ("vpcs", "subnets", "bouncers", "dividers", "droplets"):
            self.inf[plural] = informers.get(
                plural, tenant=M.SYSTEM, namespace=M.MIZAR_NS, group_version=M.GV
            )
        self.inf["endpoints"] = informers.get("endpoints", tenant="all", group_version=M.GV)
        self._index("subnets", "vpc", _spec_field("vpc"))
        self._index("dividers", "vpc", _spec_field("vpc"))
        self._index("dividers", "droplet", _spec_field("droplet"))
        self._index("bouncers", "net", _spec_field("net"))
        self._index("bouncers", "droplet", _spec_field("droplet"))
        self._index("endpoints", "net", _ep_net)
        self._index("endpoints", "droplet", _spec_field("droplet"))
        #: subnet name -> (pool epoch, pool)
        self.pools: dict[str, tuple[int, SubnetPool]] = {}
        self._pool_locks: dict[str, asyncio.Lock] = {}
        #: endpoint uid -> address this instance gave it (a retried Init keeps its address)
        self.allocated: dict[str, str] = {}
        self.epoch = 0
        #: (droplet, vni) -> signature of the VPC entry pushed; (droplet, vni, cidr) -> net signature
        self.pushed: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        #: uid -> last status.seq this instance wrote
        self.seq: dict[str, int] = {}
        #: the operators of this instance (workload reporting)
        self.operators: list[Any] = []

    def _index(self, plural: str, name: str, fn: Any) -> None:
        inf = self.inf[plural]
        if not inf.has_index(name):
            inf.add_index(name, fn)

    # ---- objects -----------------------------------------------------------------------------
    def get(self, plural: str, name: str) -> Obj | None:
        return self.inf[plural].get(M.mizar_key(name))

    def live(self, objs: list[Obj]) -> list[Obj]:
        return [o for o in objs if not M.deleting(o)]

    def subnets_of(self, vpc: str) -> list[Obj]:
        return self.live(self.inf["subnets"].by_index("vpc", vpc))

    def dividers_of(self, vpc: str) -> list[Obj]:
        return self.live(self.inf["dividers"].by_index("vpc", vpc))

    def bouncers_of(self, subnet: str) -> list[Obj]:
        return self.live(self.inf["bouncers"].by_index("net", subnet))

    def endpoints_of(self, vpc: str, subnet: str) -> list[Obj]:
        return self.inf["endpoints"].by_index("net", f"{vpc}/{subnet}")

    def droplet_ready(self, name: str) -> Obj | None:
        d = self.get("droplets", name)
        return d if M.is_provisioned(d) else None

    def droplet_ip(self, name: str) -> str:
        d = self.get("droplets", name)
        return str(M.spec(d).get("ip") or "") if d else ""

    def address(self, name: str) -> str:
        d = self.get("droplets", name)
        return str(M.spec(d).get("transitd") or "") if d else ""

    def provisioned_droplets(self, objs: list[Obj]) -> list[str]:
        """Droplets of the provisioned, live objects among ``objs`` (bouncers or dividers)."""
        return sorted({str(M.spec(o).get("droplet")) for o in objs if M.is_provisioned(o)})

    def candidates(self, hollow: bool) -> list[Candidate]:
        out = []
        for d in self.inf["droplets"].objects():
            if not M.is_provisioned(d) or M.is_hollow(d) != hollow:
                continue
            n = M.name(d)
            load = len(self.inf["bouncers"].index_keys("droplet", n)) + len(
                self.inf["dividers"].index_keys("droplet", n)
            )
            out.append(Candidate(n, str(M.spec(d).get("zone") or ""), load))
        return out

    # ---- what a VPC / a network is on the wire -----------------------------------------------
    def vni(self, vpc: Obj | None) -> int:
        return int(M.status(vpc).get("vni") or 0) if vpc else 0

    def divider_ips(self, vpc: str) -> list[str]:
        return [self.droplet_ip(d) for d in self.provisioned_droplets(self.dividers_of(vpc))]

    def bouncer_ips(self, subnet: str, extra: str = "") -> list[str]:
        names = self.provisioned_droplets(self.bouncers_of(subnet))
        if extra and extra not in names:
            names.append(extra)
        return [self.droplet_ip(b) for b in names]

    def vpc_msg(self, vpc: Obj, dividers: list[str] | None = None) -> Any:
        return T.vpc_msg(
            self.vni(vpc),
            str(M.cidr_of(vpc)),
            self.divider_ips(M.name(vpc)) if dividers is None else dividers,
            name=M.name(vpc),
            tenant=M.vpc_tenant(vpc),
        )

    def net_msg(self, vpc: Obj, subnet: Obj, bouncers: list[str] | None = None) -> Any:
        cidr = M.cidr_of(subnet)
        vni = self.vni(vpc)
        return T.net_msg(
            vni,
            str(cidr),
            self.bouncer_ips(M.name(subnet)) if bouncers is None else bouncers,
            net_id(vni, str(cidr)),
            name=M.name(subnet),
            gateway=M.gateway_of(cidr),
        )

    def hosts_of_net(self, vpc: str, subnet: str) -> set[str]:
        """Droplets that hold a network: its endpoints' hosts, its bouncers, the VPC's dividers."""
        hosts = {
            str(M.spec(e).get("droplet"))
            for e in self.endpoints_of(vpc, subnet)
            if M.spec(e).get("droplet") and M.status(e).get("targets")
        }
        hosts |= {str(M.spec(b).get("droplet")) for b in self.bouncers_of(subnet) if M.is_provisioned(b)}
        hosts |= {str(M.spec(d).get("droplet")) for d in self.dividers_of(vpc) if M.is_provisioned(d)}
        return {h for h in hosts if h and h != "None"}

    def hosts_of_vpc(self, vpc: str) -> set[str]:
        hosts: set[str] = set()
        for s in self.subnets_of(vpc):
            hosts |= self.hosts_of_net(vpc, M.name(s))
        hosts |= {str(M.spec(d).get("droplet")) for d in self.dividers_of(vpc) if M.is_provisioned(d)}
        return hosts

    # ---- transitd ----------------------------------------------------------------------------
    async def call(self, droplet: str, method: str, request: Any = None, timeout: float | None = None) -> Any:
        addr = self.address(droplet)
        if not addr:
            raise TransitError(
                f"{droplet}: no Droplet object with a transitd address", grpc.StatusCode.UNAVAILABLE
            )
        try:
            return await self.pool.call(droplet, addr, method, request, timeout)
        except TransitError:
            self.forget_host(droplet)
            raise

    def forget_host(self, droplet: str) -> None:
        for k in [k for k in self.pushed if k[0] == droplet]:
            del self.pushed[k]

    async def ensure_net(self, droplet: str, vpc: Obj, subnet: Obj, force: bool = False) -> None:
        """The VPC and network entries on ``droplet`` (skipped when this instance pushed the same
        ones already; a failed call to the droplet forgets what was pushed there)."""
        vmsg = self.vpc_msg(vpc)
        vkey, vsig = (droplet, vmsg.vni), (vmsg.cidr, tuple(vmsg.dividers))
        if force or self.pushed.get(vkey) != vsig:
            await self.call(droplet, "UpdateVpc", vmsg)
            self.pushed[vkey] = vsig
        nmsg = self.net_msg(vpc, subnet)
        nkey, nsig = (droplet, nmsg.vni, nmsg.cidr), (tuple(nmsg.bouncers), nmsg.net_id)
        if force or self.pushed.get(nkey) != nsig:
            await self.call(droplet, "UpdateNet", nmsg)
            self.pushed[nkey] = nsig

    # ---- address pools -----------------------------------------------------------------------
    async def pool_for(self, vpc: Obj, subnet: Obj) -> SubnetPool:
        """The subnet's pool, rebuilt from a consistent list when this instance (re)gained it.
        One rebuild at a time per subnet, and a rebuild keeps what this instance handed out
        itself (allocations whose write may still be in flight are in no list yet)."""
        name = M.name(subnet)
        lock = self._pool_locks.setdefault(name, asyncio.Lock())
        async with lock:
            have = self.pools.get(name)
            cidr = M.cidr_of(subnet)
            same = have is not None and str(have[1].net) == str(cidr)
            if have is not None and same and have[0] == self.epoch:
                return have[1]
            used: set[str] = set()
            try:
                lst = await self.api.list(
                    "endpoints",
                    tenant="all",
                    group_version=M.GV,
                    label_selector=f"{M.L_SUBNET}={M.md(subnet).get('uid')}",
                )
                used |= {str(M.spec(e).get("ip")) for e in lst.get("items") or [] if M.spec(e).get("ip")}
            except ApiError as exc:
                log.warning("listing the endpoints of subnet %s failed (%s): using the cache", name, exc)
            used |= {
                str(M.spec(e).get("ip")) for e in self.endpoints_of(M.name(vpc), name) if M.spec(e).get("ip")
            }
            if have is not None and same:
                used |= {str(ipaddress.IPv4Address(n)) for n in have[1].used}
            keep = []
            for ip in used:
                try:
                    if ipaddress.IPv4Address(ip) in cidr:
                        keep.append(ip)
                except ValueError:
                    continue
            pool = SubnetPool(str(cidr), keep, have[1].cursor if have is not None and same else 0)
            self.pools[name] = (self.epoch, pool)
            return pool

    def new_epoch(self) -> None:
        """Ring change: pools and push records may be stale (another instance worked meanwhile)."""
        self.epoch += 1
        self.pushed.clear()

    async def push_net(self, droplet: str, vpc: Obj, subnet: Obj) -> None:
        """(Re)write a network entry on ``droplet``, its VPC first when the droplet lacks it."""
        msg = self.net_msg(vpc, subnet)
        try:
            await self.call(droplet, "UpdateNet", msg)
        except TransitError as exc:
            if not T.precondition(exc):
                raise
            await self.ensure_net(droplet, vpc, subnet, force=True)
        self.pushed[(droplet, msg.vni, msg.cidr)] = (tuple(msg.bouncers), msg.net_id)

    def pushed_hosts(self, vni: int, cidr: str | None = None) -> set[str]:
        """Droplets this instance wrote the VPC (``cidr`` None) or that network to."""
        if cidr is None:
            return {k[0] for k in self.pushed if len(k) == 2 and k[1] == vni}
        return {k[0] for k in self.pushed if len(k) == 3 and k[1] == vni and k[2] == cidr}
