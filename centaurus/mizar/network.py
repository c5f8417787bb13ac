"""The ``mizar`` network provider: an Arktos Network becomes a Mizar VPC + subnet.

Network ``N`` of tenant ``T`` (spec: ``vpcID`` -- default ``N``; ``vpcCidr`` -- default
``10.0.0.0/8``; ``cidr`` -- the subnet, default ``10.0.0.0/16``; ``dividers``/``bouncers`` --
default 1) gets the Vpc ``T.<vpcID>`` and the Subnet ``T.N`` in Mizar's namespace (Arktos'
"Mizar-arktos-network-controller" workflow). Two Networks of a tenant naming the same vpcID share
the VPC with different subnets -- pods on them reach each other through the VPC's dividers;
different tenants never share a VPC (the name carries the tenant), so equal CIDRs in two tenants
are two isolated address spaces (TEN-3). The Network is Ready when its subnet is Provisioned;
deleting it deletes the subnet, and the VPC when no other subnet uses it.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from centaurus.client.rest import ApiError
from centaurus.mizar import model as M

Obj = dict[str, Any]
DEFAULT_VPC_CIDR = "10.0.0.0/8"
DEFAULT_CIDR = "10.0.0.0/16"


def _split(cidr: str) -> tuple[str, str]:
    net = ipaddress.IPv4Network(cidr, strict=True)
    return str(net.network_address), str(net.prefixlen)


class MizarProvider:
    type = "mizar"

    def setup(self, ctrl: Any) -> None:
        """Re-check a Network when its subnet or VPC changes (labels name the network)."""
        from centaurus.controllers.runtime.informer import FuncHandler

        self.subnets = ctrl.ctx.informers.get(
            "subnets", tenant=M.SYSTEM, namespace=M.MIZAR_NS, group_version=M.GV
        )
        self.vpcs = ctrl.ctx.informers.get("vpcs", tenant=M.SYSTEM, namespace=M.MIZAR_NS, group_version=M.GV)

        def on(typ: str, old: Obj | None, new: Obj | None) -> None:
            obj = new if new is not None else old or {}
            lb = M.labels(obj)
            if lb.get(M.L_TENANT) and lb.get(M.L_NETWORK):
                ctrl.enqueue(f"{lb[M.L_TENANT]}//{lb[M.L_NETWORK]}")

        self.subnets.add_handler(FuncHandler(on))

    @staticmethod
    def names(net: Obj) -> tuple[str, str, str]:
        tenant = M.tenant_of(net)
        vpc_id = str(M.spec(net).get("vpcID") or M.name(net))
        return tenant, M.network_vpc_name(tenant, vpc_id), M.network_subnet_name(tenant, M.name(net))

    async def _ensure(self, api: Any, plural: str, body: Obj) -> Obj:
        try:
            out: Obj = await api.create(
                plural, body, namespace=M.MIZAR_NS, tenant=M.SYSTEM, group_version=M.GV
            )
            return out
        except ApiError as exc:
            if exc.code != 409:
                raise
        got: Obj = await api.get(
            plural, M.name(body), namespace=M.MIZAR_NS, tenant=M.SYSTEM, group_version=M.GV
        )
        return got

    async def reconcile(self, ctrl: Any, net: Obj) -> tuple[Obj, float | None]:
        s = M.spec(net)
        tenant, vpc_name, subnet_name = self.names(net)
        try:
            vip, vprefix = _split(str(s.get("vpcCidr") or DEFAULT_VPC_CIDR))
            sip, sprefix = _split(str(s.get("cidr") or DEFAULT_CIDR))
        except ValueError as exc:
            return {"phase": "Failed", "message": f"bad CIDR: {exc}"}, None
        labels = {M.L_TENANT: tenant, M.L_NETWORK: M.name(net)}
        vpc = self.vpcs.get(M.mizar_key(vpc_name))
        if vpc is None:
            vpc = await self._ensure(
                ctrl.api,
                "vpcs",
                {
                    "apiVersion": M.GV,
                    "kind": "Vpc",
                    "metadata": {"name": vpc_name, "labels": {M.L_TENANT: tenant}},
                    "spec": {
                        "ip": vip,
                        "prefix": vprefix,
                        "dividers": M.count(s.get("dividers"), 1, 1, 16),
                        "status": M.INIT,
                    },
                },
            )
        if M.vpc_tenant(vpc) != tenant:
            return {"phase": "Failed", "message": f"VPC {vpc_name} belongs to another tenant"}, None
        subnet = self.subnets.get(M.mizar_key(subnet_name))
        if subnet is None:
            subnet = await self._ensure(
                ctrl.api,
                "subnets",
                {
                    "apiVersion": M.GV,
                    "kind": "Subnet",
                    "metadata": {"name": subnet_name, "labels": labels},
                    "spec": {
                        "ip": sip,
                        "prefix": sprefix,
                        "vpc": vpc_name,
                        "bouncers": M.count(s.get("bouncers"), 1, 1, 16),
                        "status": M.INIT,
                    },
                },
            )
        st = M.status(subnet)
        out: Obj = {
            "vpc": vpc_name,
            "subnet": subnet_name,
            "cidr": st.get("cidr") or f"{sip}/{sprefix}",
            "gateway": st.get("gateway") or "",
            "vni": st.get("vni") or 0,
        }
        ph = M.phase(subnet)
        if ph == M.PROVISIONED:
            return {**out, "phase": "Ready", "message": ""}, None
        if ph == M.FAILED:
            return {**out, "phase": "Failed", "message": f"subnet {subnet_name}: {st.get('reason')}"}, None
        return {
            **out,
            "phase": "Pending",
            "message": f"subnet {subnet_name} is {ph}: {st.get('reason') or ''}",
        }, 2.0

    async def finalize(self, ctrl: Any, net: Obj) -> bool:
        tenant, vpc_name, subnet_name = self.names(net)
        where = {"namespace": M.MIZAR_NS, "tenant": M.SYSTEM, "group_version": M.GV}
        if self.subnets.get(M.mizar_key(subnet_name)) is not None:
            await ctrl.api.delete("subnets", subnet_name, missing_ok=True, **where)
            return False
        others = [o for o in self.subnets.objects() if M.spec(o).get("vpc") == vpc_name]
        if others:
            return True  # another network of the tenant still uses the VPC
        vpc = self.vpcs.get(M.mizar_key(vpc_name))
        if vpc is not None and M.vpc_tenant(vpc) == tenant:
            await ctrl.api.delete("vpcs", vpc_name, missing_ok=True, **where)
            return False
        return True
