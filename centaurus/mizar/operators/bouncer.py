"""Bouncer operator: a bouncer holds every endpoint of its network (endpoint -> host), so a
sender that does not know a destination's host sends to a bouncer, which forwards it (Mizar's
network-scoped transit switch). Init (droplet and network ready) -> Programming (VPC + network
entries with this bouncer, then every endpoint of the network, on its droplet) -> Provisioned.
Every 30 s the droplet's table is compared with the network's endpoints and repaired (a missed
event, a daemon that lost state). Deleting a bouncer waits until the subnet stopped announcing
it, then removes what only the bouncer role needed from its droplet."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from centaurus.mizar import model as M
from centaurus.mizar import pipeline as P
from centaurus.mizar.operators.base import MizarOperator, Step
from centaurus.mizar.transit import ep_key, ep_msg, is_transient, net_key, not_found
from centaurus.transitd.rpc import TransitError

Obj = dict[str, Any]
PROGRAMMING = "Programming"
CONCURRENCY = 32


class BouncerOperator(MizarOperator):
    plural = "bouncers"
    maintain_every = 30.0

    def setup(self) -> Any:
        inf = super().setup()
        bouncers = self.plane.inf["bouncers"]
        self.watch_related(
            "droplets", lambda d: sorted(bouncers.index_keys("droplet", M.name(d))), self.phase_changed
        )
        self.watch_related(
            "subnets", lambda s: sorted(bouncers.index_keys("net", M.name(s))), self.phase_changed
        )
        return inf

    def pipeline(self) -> dict[str, Step]:
        return {M.INIT: self.check, PROGRAMMING: self.program}

    def _refs(self, obj: Obj) -> tuple[Obj | None, Obj | None]:
        s = M.spec(obj)
        return self.plane.get("vpcs", str(s.get("vpc"))), self.plane.get("subnets", str(s.get("net")))

    async def check(self, obj: Obj) -> P.Outcome:
        droplet = str(M.spec(obj).get("droplet") or "")
        if not self.plane.droplet_ready(droplet):
            return P.wait(f"droplet {droplet} is not provisioned", 2.0)
        vpc, subnet = self._refs(obj)
        if vpc is None or subnet is None or not M.status(subnet).get("vni"):
            return P.wait("waiting for its VPC and subnet", 1.0)
        return P.advance(PROGRAMMING, {"droplet": droplet})

    def _desired(self, vpc: Obj, subnet: Obj) -> list[Obj]:
        return [
            e
            for e in self.plane.endpoints_of(M.name(vpc), M.name(subnet))
            if M.spec(e).get("ip") and M.status(e).get("targets") and not M.deleting(e)
        ]

    async def _put_eps(self, droplet: str, vni: int, eps: list[Obj]) -> list[BaseException]:
        sem = asyncio.Semaphore(CONCURRENCY)
        errors: list[BaseException] = []

        async def one(e: Obj) -> None:
            s = M.spec(e)
            host = str(s.get("droplet"))
            msg = ep_msg(
                vni,
                str(s["ip"]),
                str(s.get("mac") or ""),
                self.plane.droplet_ip(host),
                veth=str(s.get("veth") or "") if host == droplet else "",
                name=M.name(e),
            )
            async with sem:
                try:
                    await self.plane.call(droplet, "UpdateEp", msg)
                except TransitError as exc:
                    errors.append(exc)

        await asyncio.gather(*(one(e) for e in eps))
        return errors

    async def program(self, obj: Obj) -> P.Outcome:
        droplet = str(M.spec(obj).get("droplet"))
        vpc, subnet = self._refs(obj)
        if vpc is None or subnet is None:
            return P.wait("waiting for its VPC and subnet", 1.0)
        vmsg = self.plane.vpc_msg(vpc)
        await self.plane.call(droplet, "UpdateVpc", vmsg)
        self.plane.pushed[(droplet, vmsg.vni)] = (vmsg.cidr, tuple(vmsg.dividers))
        # this droplet must know it is a bouncer before it holds the endpoints
        msg = self.plane.net_msg(vpc, subnet, self.plane.bouncer_ips(M.name(subnet), extra=droplet))
        await self.plane.call(droplet, "UpdateNet", msg)
        self.plane.pushed.pop((droplet, msg.vni, msg.cidr), None)
        eps = self._desired(vpc, subnet)
        errors = await self._put_eps(droplet, msg.vni, eps)
        if errors:
            return P.wait(f"{len(errors)} endpoint(s) not programmed: {errors[0]}", 0.5)
        return P.advance(M.PROVISIONED, {"endpoints": len(eps)})

    async def maintain(self, obj: Obj) -> float | None:
        """Anti-entropy: the droplet holds exactly the network's endpoints (plus its own)."""
        droplet = str(M.spec(obj).get("droplet"))
        vpc, subnet = self._refs(obj)
        if vpc is None or subnet is None or not self.plane.droplet_ready(droplet):
            return self.maintain_every
        vni, cidr = self.plane.vni(vpc), M.cidr_of(subnet)
        try:
            dump = await self.plane.call(droplet, "Dump", timeout=10.0)
        except TransitError:
            return self.maintain_every
        held = {e.ip for e in dump.endpoints if e.vni == vni and ipaddress.IPv4Address(e.ip) in cidr}
        desired = self._desired(vpc, subnet)
        want = {str(M.spec(e)["ip"]) for e in desired}
        missing = [e for e in desired if str(M.spec(e)["ip"]) not in held]
        local = {e.ip for e in dump.endpoints if e.veth}
        extra = held - want - local
        if missing:
            self.log.info(
                "bouncer %s: %d endpoint(s) missing on %s, repairing", M.name(obj), len(missing), droplet
            )
            await self._put_eps(droplet, vni, missing)
        for ip in extra:
            try:
                await self.plane.call(droplet, "DeleteEp", ep_key(vni, ip))
            except TransitError as exc:
                if not not_found(exc):
                    break
        return self.maintain_every

    async def finalize(self, obj: Obj) -> float | None:
        droplet = str(M.spec(obj).get("droplet"))
        vpc, subnet = self._refs(obj)
        if (
            subnet is not None
            and not M.deleting(subnet)
            and droplet in (M.status(subnet).get("bouncers") or [])
        ):
            return 1.0  # the subnet still announces us: it republishes first
        if (
            vpc is None
            or subnet is None
            or not self.plane.address(droplet)
            or not M.status(obj).get("droplet")
        ):
            return None
        vni, cidr = self.plane.vni(vpc), M.cidr_of(subnet)
        try:
            dump = await self.plane.call(droplet, "Dump", timeout=10.0)
            for e in dump.endpoints:
                if e.vni == vni and not e.veth and ipaddress.IPv4Address(e.ip) in cidr:
                    try:
                        await self.plane.call(droplet, "DeleteEp", ep_key(vni, e.ip))
                    except TransitError as exc:
                        if not not_found(exc):
                            raise
            local = any(
                e.vni == vni and e.veth and ipaddress.IPv4Address(e.ip) in cidr for e in dump.endpoints
            )
            divider = any(M.spec(d).get("droplet") == droplet for d in self.plane.dividers_of(M.name(vpc)))
            if not local and not divider and not M.deleting(subnet):
                try:
                    await self.plane.call(droplet, "DeleteNet", net_key(vni, str(cidr)))
                except TransitError as exc:
                    if not not_found(exc):
                        raise
                self.plane.pushed.pop((droplet, vni, str(cidr)), None)
        except TransitError as exc:
            if is_transient(exc):
                return 1.0
            self.log.warning("bouncer %s cleanup on %s: %s", M.name(obj), droplet, exc)
        return None
