"""Vpc operator: Init (validate, claim a VNI) -> Placing (Divider objects on droplets, scaled to
``spec.dividers``) -> Publishing (the VPC entry with its dividers on every host holding the VPC)
-> Provisioned. Deleting a Vpc deletes its subnets and dividers first, then its entry on the
hosts, then releases the VNI.

VNI claims are Lease objects ``kube-system/mizar-vni-<vni>`` of the system tenant held by the
Vpc's uid: creating one is atomic in the store, so two operator instances can never give one
VNI to two VPCs, and a resumed pipeline finds its own claim again.
"""

from __future__ import annotations

from typing import Any

from centaurus.client.rest import ApiError
from centaurus.mizar import model as M
from centaurus.mizar import pipeline as P
from centaurus.mizar.ipam import VNI_LAST, vni_candidates
from centaurus.mizar.operators.base import MizarOperator, Step
from centaurus.mizar.placement import place
from centaurus.mizar.transit import gather_calls, is_transient

Obj = dict[str, Any]
CLAIM_NS = "kube-system"
LEASE_GV = "coordination.k8s.io/v1"
MAX_DIVIDERS = 16
PLACING = "Placing"
PUBLISHING = "Publishing"


def claim_name(vni: int) -> str:
    return f"mizar-vni-{vni}"


class VpcOperator(MizarOperator):
    plural = "vpcs"
    respec_phase = PLACING
    maintain_every = 30.0

    def vpc_name(self, obj: Obj) -> str:
        return M.name(obj)

    def setup(self) -> Any:
        inf = super().setup()
        vpcs = self.plane.inf["vpcs"]
        self.watch_related("dividers", lambda d: [M.mizar_key(str(M.spec(d).get("vpc")))], self.phase_changed)
        self.watch_related(
            "subnets", lambda s: [M.mizar_key(str(M.spec(s).get("vpc")))], lambda o, n: n is None
        )  # a deleted subnet may unblock a deleting VPC
        self.watch_related(
            "droplets",
            lambda d: [k for k, v in vpcs.cache.items() if not M.is_provisioned(v)],
            self.phase_changed,
        )
        return inf

    def pipeline(self) -> dict[str, Step]:
        return {M.INIT: self.allocate, PLACING: self.place_dividers, PUBLISHING: self.publish}

    # ---- Init: validate, claim a VNI -------------------------------------------------------------
    async def _claim(self, vni: int, uid: str) -> bool:
        body = {
            "apiVersion": LEASE_GV,
            "kind": "Lease",
            "metadata": {
                "name": claim_name(vni),
                "namespace": CLAIM_NS,
                "labels": {"mizar.com/vni-claim": "true"},
            },
            "spec": {"holderIdentity": uid},
        }
        try:
            await self.api.create("leases", body, namespace=CLAIM_NS, tenant=M.SYSTEM, group_version=LEASE_GV)
            return True
        except ApiError as exc:
            if exc.code == 404:  # the namespace does not exist yet
                try:
                    await self.api.create(
                        "namespaces",
                        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CLAIM_NS}},
                        tenant=M.SYSTEM,
                    )
                except ApiError as e2:
                    if e2.code != 409:
                        raise
                return await self._claim(vni, uid)
            if exc.code != 409:
                raise
        have = await self.api.get(
            "leases", claim_name(vni), namespace=CLAIM_NS, tenant=M.SYSTEM, group_version=LEASE_GV
        )
        return bool((have.get("spec") or {}).get("holderIdentity") == uid)

    async def allocate(self, obj: Obj) -> P.Outcome:
        try:
            cidr = M.cidr_of(obj)
        except ValueError as exc:
            return P.fail(f"bad VPC CIDR (spec.ip/spec.prefix): {exc}")
        uid = str(M.md(obj).get("uid"))
        vni = int(M.status(obj).get("vni") or 0)
        want = M.spec(obj).get("vni")
        if vni:
            pass  # resumed: the claim is ours already
        elif want not in (None, ""):
            try:
                vni = int(want)
            except (TypeError, ValueError):
                return P.fail(f"spec.vni {want!r} is not a number")
            if not 0 < vni <= VNI_LAST:
                return P.fail(f"spec.vni {vni} is outside 1..{VNI_LAST}")
            if not await self._claim(vni, uid):
                return P.fail(f"VNI {vni} is already used by another VPC")
        else:
            for cand in vni_candidates(uid):
                if await self._claim(cand, uid):
                    vni = cand
                    break
            else:
                return P.wait("no free VNI found", 5.0)
        return P.advance(PLACING, {"vni": vni, "cidr": str(cidr)})

    # ---- Placing: dividers ---------------------------------------------------------------------
    async def place_dividers(self, obj: Obj) -> P.Outcome:
        name = M.name(obj)
        want = M.count(M.spec(obj).get("dividers"), 1, 1, MAX_DIVIDERS)
        current = {str(M.spec(d).get("droplet")): d for d in self.plane.dividers_of(name)}
        usable = [n for n in current if self.plane.get("droplets", n) is not None]
        cands = self.plane.candidates(M.is_hollow(obj))
        chosen = place(f"vpc/{name}", want, cands, usable)
        if not chosen:
            return P.wait("no provisioned droplet can host a divider", 2.0)
        for droplet in chosen:
            if droplet not in current:
                await self.create_child(
                    "dividers",
                    {
                        "apiVersion": M.GV,
                        "kind": "Divider",
                        "metadata": {
                            "name": M.divider_name(name, droplet),
                            "namespace": M.MIZAR_NS,
                            "labels": {M.L_DROPLET: droplet},
                            "ownerReferences": [self.owner_ref(obj)],
                        },
                        "spec": {
                            "vpc": name,
                            "droplet": droplet,
                            "ip": self.plane.droplet_ip(droplet),
                            "mac": str(M.spec(self.plane.get("droplets", droplet) or {}).get("mac") or ""),
                        },
                    },
                )
        for droplet, d in current.items():
            if droplet not in chosen:
                await self.delete_obj("dividers", M.name(d))
        ready = [d for d in chosen if M.is_provisioned(current.get(d))]
        if len(ready) < len(chosen):
            return P.wait(f"{len(ready)}/{len(chosen)} dividers provisioned", 2.0)
        return P.advance(
            PUBLISHING,
            {
                "dividers": chosen,
                "reason": ""
                if len(chosen) == want
                else f"only {len(chosen)} of {want} dividers placed (not enough droplets)",
            },
        )

    # ---- Publishing: the VPC entry everywhere it is held ----------------------------------------
    async def publish(self, obj: Obj) -> P.Outcome:
        name = M.name(obj)
        hosts = sorted(self.plane.hosts_of_vpc(name))
        msg = self.plane.vpc_msg(obj)
        errs = await gather_calls(*(self.plane.call(h, "UpdateVpc", msg) for h in hosts))
        bad = [e for e in errs if e is not None]
        if bad:
            if all(is_transient(e) for e in bad):
                return P.wait(f"publishing to {len(bad)} host(s): {bad[0]}", 0.5)
            return P.wait(f"publishing: {bad[0]}", 2.0)
        for h in hosts:
            self.plane.pushed[(h, msg.vni)] = (msg.cidr, tuple(msg.dividers))
        return P.advance(
            M.PROVISIONED,
            {"dividers": self.plane.provisioned_droplets(self.plane.dividers_of(name)), "hosts": hosts},
        )

    async def maintain(self, obj: Obj) -> float | None:
        name = M.name(obj)
        divs = self.plane.dividers_of(name)
        lost = [d for d in divs if self.plane.get("droplets", str(M.spec(d).get("droplet"))) is None]
        for d in lost:
            await self.delete_obj("dividers", M.name(d))
        if lost or self.plane.provisioned_droplets(divs) != sorted(M.status(obj).get("dividers") or []):
            await self.write(obj, phase=PLACING)
            return 0.0
        return self.maintain_every

    # ---- deletion ----------------------------------------------------------------------------
    async def finalize(self, obj: Obj) -> float | None:
        name = M.name(obj)
        subnets = self.plane.inf["subnets"].by_index("vpc", name)
        for s in subnets:
            if not M.deleting(s):
                await self.delete_obj("subnets", M.name(s))
        if subnets:
            return 1.0
        divs = self.plane.inf["dividers"].by_index("vpc", name)
        for d in divs:
            if not M.deleting(d):
                await self.delete_obj("dividers", M.name(d))
        if divs:
            return 1.0
        vni = int(M.status(obj).get("vni") or 0)
        if vni:
            from centaurus.transitd.rpc import pb

            hosts = [h for h in M.status(obj).get("hosts") or [] if self.plane.address(h)]
            errs = await gather_calls(*(self.plane.call(h, "DeleteVpc", pb.VpcKey(vni=vni)) for h in hosts))
            if any(e is not None and is_transient(e) for e in errs):
                return 1.0
            for h in hosts:
                self.plane.pushed.pop((h, vni), None)
            try:
                have = await self.api.get(
                    "leases", claim_name(vni), namespace=CLAIM_NS, tenant=M.SYSTEM, group_version=LEASE_GV
                )
                if (have.get("spec") or {}).get("holderIdentity") == M.md(obj).get("uid"):
                    await self.api.delete(
                        "leases",
                        claim_name(vni),
                        namespace=CLAIM_NS,
                        tenant=M.SYSTEM,
                        group_version=LEASE_GV,
                        missing_ok=True,
                    )
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return None
