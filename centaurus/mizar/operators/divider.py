"""Divider operator: a divider knows every network of its VPC and their bouncers (network ->
bouncer), so traffic between networks of a VPC goes endpoint -> divider -> bouncer of the
destination network (Mizar's VPC-scoped transit switch). Init (droplet and VPC ready) ->
Programming (the VPC entry with this divider, then every network of the VPC, on its droplet) ->
Provisioned. Deleting one waits until the VPC stopped announcing it, then removes what only the
divider role needed from its droplet."""

from __future__ import annotations

from typing import Any

from centaurus.mizar import model as M
from centaurus.mizar import pipeline as P
from centaurus.mizar.operators.base import MizarOperator, Step
from centaurus.mizar.transit import gather_calls, is_transient, not_found
from centaurus.transitd.rpc import TransitError, pb

Obj = dict[str, Any]
PROGRAMMING = "Programming"


class DividerOperator(MizarOperator):
    plural = "dividers"

    def setup(self) -> Any:
        inf = super().setup()
        dividers = self.plane.inf["dividers"]
        self.watch_related(
            "droplets", lambda d: sorted(dividers.index_keys("droplet", M.name(d))), self.phase_changed
        )
        self.watch_related(
            "vpcs", lambda v: sorted(dividers.index_keys("vpc", M.name(v))), self.phase_changed
        )
        return inf

    def pipeline(self) -> dict[str, Step]:
        return {M.INIT: self.check, PROGRAMMING: self.program}

    async def check(self, obj: Obj) -> P.Outcome:
        droplet = str(M.spec(obj).get("droplet") or "")
        if not self.plane.droplet_ready(droplet):
            return P.wait(f"droplet {droplet} is not provisioned", 2.0)
        vpc = self.plane.get("vpcs", str(M.spec(obj).get("vpc")))
        if vpc is None or not M.status(vpc).get("vni"):
            return P.wait("waiting for its VPC", 1.0)
        return P.advance(PROGRAMMING, {"droplet": droplet})

    async def program(self, obj: Obj) -> P.Outcome:
        droplet = str(M.spec(obj).get("droplet"))
        vpc = self.plane.get("vpcs", str(M.spec(obj).get("vpc")))
        if vpc is None:
            return P.wait("waiting for its VPC", 1.0)
        ips = self.plane.divider_ips(M.name(vpc))
        me = self.plane.droplet_ip(droplet)
        vmsg = self.plane.vpc_msg(vpc, [*ips, me] if me not in ips else ips)
        await self.plane.call(droplet, "UpdateVpc", vmsg)
        self.plane.pushed.pop((droplet, vmsg.vni), None)
        subnets = [
            s
            for s in self.plane.subnets_of(M.name(vpc))
            if M.status(s).get("vni") and self.plane.provisioned_droplets(self.plane.bouncers_of(M.name(s)))
        ]
        errs = await gather_calls(
            *(self.plane.call(droplet, "UpdateNet", self.plane.net_msg(vpc, s)) for s in subnets)
        )
        bad = [e for e in errs if e is not None]
        if bad:
            return P.wait(f"{len(bad)} network(s) not programmed: {bad[0]}", 0.5)
        return P.advance(M.PROVISIONED, {"networks": len(subnets)})

    async def finalize(self, obj: Obj) -> float | None:
        droplet = str(M.spec(obj).get("droplet"))
        vpc = self.plane.get("vpcs", str(M.spec(obj).get("vpc")))
        if vpc is not None and not M.deleting(vpc) and droplet in (M.status(vpc).get("dividers") or []):
            return 1.0  # the VPC still announces us: it republishes first
        if (
            vpc is None
            or M.deleting(vpc)
            or not self.plane.address(droplet)
            or not M.status(obj).get("droplet")
        ):
            return None  # a deleting VPC removes its entries itself
        vni = self.plane.vni(vpc)
        try:
            keep = False
            for s in self.plane.subnets_of(M.name(vpc)):
                local = any(
                    M.spec(e).get("droplet") == droplet
                    for e in self.plane.endpoints_of(M.name(vpc), M.name(s))
                )
                bouncer = any(M.spec(b).get("droplet") == droplet for b in self.plane.bouncers_of(M.name(s)))
                if local or bouncer:
                    keep = True
                    continue
                try:
                    await self.plane.call(droplet, "DeleteNet", pb.NetKey(vni=vni, cidr=str(M.cidr_of(s))))
                except TransitError as exc:
                    if not not_found(exc):
                        raise
            if keep:  # still holds networks of the VPC: only stop being its divider
                await self.plane.call(droplet, "UpdateVpc", self.plane.vpc_msg(vpc))
            else:
                try:
                    await self.plane.call(droplet, "DeleteVpc", pb.VpcKey(vni=vni))
                except TransitError as exc:
                    if not not_found(exc):
                        raise
            self.plane.forget_host(droplet)
        except TransitError as exc:
            if is_transient(exc):
                return 1.0
            self.log.warning("divider %s cleanup on %s: %s", M.name(obj), droplet, exc)
        return None
