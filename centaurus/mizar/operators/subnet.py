"""Subnet (Mizar Net) operator: Init (validate against its VPC, wait for the VPC) -> Placing
(Bouncer objects on droplets, scaled to ``spec.bouncers``) -> Publishing (the network entry with
its bouncers on every host holding the network: its endpoints' hosts, its bouncers, the VPC's
dividers -- never other hosts) -> Provisioned. A subnet is deleted once no endpoint uses it:
bouncers first, then its entry on the hosts."""

from __future__ import annotations

from typing import Any

from centaurus.mizar import model as M
from centaurus.mizar import pipeline as P
from centaurus.mizar.operators.base import MizarOperator, Step
from centaurus.mizar.placement import place
from centaurus.mizar.transit import gather_calls, is_transient, net_key

Obj = dict[str, Any]
MAX_BOUNCERS = 16
PLACING = "Placing"
PUBLISHING = "Publishing"


class SubnetOperator(MizarOperator):
    plural = "subnets"
    respec_phase = PLACING
    maintain_every = 30.0

    def setup(self) -> Any:
        inf = super().setup()
        subnets = self.plane.inf["subnets"]
        self.watch_related("bouncers", lambda b: [M.mizar_key(str(M.spec(b).get("net")))], self.phase_changed)
        self.watch_related(
            "vpcs", lambda v: self.keys_of(self.plane.subnets_of(M.name(v))), self.phase_changed
        )
        self.watch_related(
            "endpoints",
            lambda e: (
                [M.mizar_key(str(M.spec(e).get("net")))] if M.deleting(e) or M.spec(e).get("net") else []
            ),
            lambda o, n: n is None,
        )
        self.watch_related(
            "droplets",
            lambda d: [k for k, v in subnets.cache.items() if not M.is_provisioned(v)],
            self.phase_changed,
        )
        return inf

    def pipeline(self) -> dict[str, Step]:
        return {M.INIT: self.validate, PLACING: self.place_bouncers, PUBLISHING: self.publish}

    async def validate(self, obj: Obj) -> P.Outcome:
        s = M.spec(obj)
        vpc_name = str(s.get("vpc") or "")
        if not vpc_name:
            return P.fail("spec.vpc is required")
        try:
            cidr = M.cidr_of(obj)
        except ValueError as exc:
            return P.fail(f"bad subnet CIDR (spec.ip/spec.prefix): {exc}")
        vpc = self.plane.get("vpcs", vpc_name)
        if vpc is None or M.deleting(vpc):
            return P.wait(f"VPC {vpc_name} not found", 2.0)
        try:
            vcidr = M.cidr_of(vpc)
        except ValueError:
            return P.wait(f"VPC {vpc_name} has no valid CIDR", 5.0)
        if not cidr.subnet_of(vcidr):
            return P.fail(f"subnet {cidr} is not inside VPC {vpc_name} ({vcidr})")
        for other in self.plane.subnets_of(vpc_name):
            if M.name(other) == M.name(obj):
                continue
            try:
                if M.cidr_of(other).overlaps(cidr):
                    return P.fail(f"subnet {cidr} overlaps subnet {M.name(other)} ({M.cidr_of(other)})")
            except ValueError:
                continue
        if not M.is_provisioned(vpc):
            return P.wait(f"VPC {vpc_name} is {M.phase(vpc)}", 2.0)
        msg = self.plane.net_msg(vpc, obj, bouncers=[])
        return P.advance(
            PLACING,
            {
                "vni": msg.vni,
                "cidr": str(cidr),
                "gateway": M.gateway_of(cidr),
                "prefix": cidr.prefixlen,
                "netId": msg.net_id,
                "vpcUid": M.md(vpc).get("uid"),
            },
        )

    async def place_bouncers(self, obj: Obj) -> P.Outcome:
        name = M.name(obj)
        vpc_name = str(M.spec(obj).get("vpc"))
        want = M.count(M.spec(obj).get("bouncers"), 1, 1, MAX_BOUNCERS)
        current = {str(M.spec(b).get("droplet")): b for b in self.plane.bouncers_of(name)}
        usable = [n for n in current if self.plane.get("droplets", n) is not None]
        vpc = self.plane.get("vpcs", vpc_name)
        chosen = place(f"net/{name}", want, self.plane.candidates(M.is_hollow(vpc or obj)), usable)
        if not chosen:
            return P.wait("no provisioned droplet can host a bouncer", 2.0)
        for droplet in chosen:
            if droplet not in current:
                await self.create_child(
                    "bouncers",
                    {
                        "apiVersion": M.GV,
                        "kind": "Bouncer",
                        "metadata": {
                            "name": M.bouncer_name(name, droplet),
                            "namespace": M.MIZAR_NS,
                            "labels": {M.L_DROPLET: droplet},
                            "ownerReferences": [self.owner_ref(obj)],
                        },
                        "spec": {
                            "vpc": vpc_name,
                            "net": name,
                            "droplet": droplet,
                            "ip": self.plane.droplet_ip(droplet),
                            "mac": str(M.spec(self.plane.get("droplets", droplet) or {}).get("mac") or ""),
                        },
                    },
                )
        for droplet, b in current.items():
            if droplet not in chosen:
                await self.delete_obj("bouncers", M.name(b))
        ready = [d for d in chosen if M.is_provisioned(current.get(d))]
        if len(ready) < len(chosen):
            return P.wait(f"{len(ready)}/{len(chosen)} bouncers provisioned", 2.0)
        return P.advance(
            PUBLISHING,
            {
                "bouncers": chosen,
                "reason": ""
                if len(chosen) == want
                else f"only {len(chosen)} of {want} bouncers placed (not enough droplets)",
            },
        )

    async def publish(self, obj: Obj) -> P.Outcome:
        name = M.name(obj)
        vpc = self.plane.get("vpcs", str(M.spec(obj).get("vpc")))
        if vpc is None:
            return P.wait("VPC gone", 2.0)
        hosts = sorted(self.plane.hosts_of_net(M.name(vpc), name))
        errs = await gather_calls(*(self.plane.push_net(h, vpc, obj) for h in hosts))
        bad = [e for e in errs if e is not None]
        if bad:
            return P.wait(
                f"publishing to {len(bad)} host(s): {bad[0]}", 0.5 if all(map(is_transient, bad)) else 2.0
            )
        return P.advance(
            M.PROVISIONED,
            {"bouncers": self.plane.provisioned_droplets(self.plane.bouncers_of(name)), "hosts": hosts},
        )

    async def maintain(self, obj: Obj) -> float | None:
        name = M.name(obj)
        bouncers = self.plane.bouncers_of(name)
        lost = [b for b in bouncers if self.plane.get("droplets", str(M.spec(b).get("droplet"))) is None]
        for b in lost:
            await self.delete_obj("bouncers", M.name(b))
        if lost or self.plane.provisioned_droplets(bouncers) != sorted(M.status(obj).get("bouncers") or []):
            await self.write(obj, phase=PLACING)
            return 0.0
        return self.maintain_every

    async def finalize(self, obj: Obj) -> float | None:
        name = M.name(obj)
        vpc_name = str(M.spec(obj).get("vpc"))
        eps = self.plane.endpoints_of(vpc_name, name)
        if eps:
            self.log.info("subnet %s waits for %d endpoint(s) to go", name, len(eps))
            return 2.0
        bouncers = self.plane.inf["bouncers"].by_index("net", name)
        for b in bouncers:
            if not M.deleting(b):
                await self.delete_obj("bouncers", M.name(b))
        if bouncers:
            return 1.0
        vni = int(M.status(obj).get("vni") or 0)
        cidr = str(M.status(obj).get("cidr") or "")
        if vni and cidr:
            hosts = set(M.status(obj).get("hosts") or []) | self.plane.pushed_hosts(vni, cidr)
            hosts |= {str(M.spec(d).get("droplet")) for d in self.plane.dividers_of(vpc_name)}
            hosts = {h for h in hosts if self.plane.address(h)}
            errs = await gather_calls(
                *(self.plane.call(h, "DeleteNet", net_key(vni, cidr)) for h in sorted(hosts))
            )
            if any(e is not None and is_transient(e) for e in errs):
                return 1.0
            for h in hosts:
                self.plane.pushed.pop((h, vni, cidr), None)
        self.plane.pools.pop(name, None)
        return None
