"""Endpoint operator -- the pod provisioning path (PERF-NET-3/4).

Init: check the endpoint against its VPC (same tenant), subnet and droplet, take an address
from the subnet's pool (or check the requested one), choose the hosts to program -- the
endpoint's own droplet and its network's bouncers, nothing else -- and record all of it in ONE
write (``spec.ip``, labels, finalizer, ``status.targets``, phase ``Programming``). Programming:
the transitd calls, concurrently: on the endpoint's droplet the VPC and network entries (skipped
when already there) and the endpoint with its veth (transitd attaches the agent program); on
each bouncer the endpoint. Then phase ``Provisioned`` (second write) -- which the node's network
hook is waiting for. Deleting it removes it from every host it was programmed on (the recorded
targets plus the current bouncers) before the finalizer goes.

Endpoints of a tenant must belong to a pod of that tenant bound to the endpoint's droplet (the
node agent creates them with an owner reference to the pod): a tenant user cannot plug an
interface of its own into another host or VPC.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from typing import Any

from centaurus.client.rest import ApiError
from centaurus.controllers.runtime.informer import FuncHandler
from centaurus.mizar import model as M
from centaurus.mizar import pipeline as P
from centaurus.mizar.operators.base import MizarOperator, Step
from centaurus.mizar.transit import ep_key, ep_msg, gather_calls, is_transient, not_found, precondition
from centaurus.netplug.base import NetworkError
from centaurus.transitd.rpc import TransitError

Obj = dict[str, Any]
PROGRAMMING = "Programming"


class EndpointOperator(MizarOperator):
    plural = "endpoints"
    workers = 16

    def setup(self) -> Any:
        inf = super().setup()
        eps = self.plane.inf["endpoints"]

        def waiting(subnet: Obj) -> list[str]:
            vpc = str(M.spec(subnet).get("vpc"))
            return [
                M.key_of(e) for e in eps.by_index("net", f"{vpc}/{M.name(subnet)}") if M.phase(e) == M.INIT
            ]

        def vanished(typ: str, old: Obj | None, new: Obj | None) -> None:
            """An endpoint deleted while it still carried our finalizer (someone stripped it, e.g.
            a namespace being force-emptied): remove it from its hosts from its last state."""
            if typ != "DELETED" or old is None:
                return
            uid = str(M.md(old).get("uid"))
            if uid in self._finalized:
                self._finalized.pop(uid, None)
                return
            if self.owns(M.key_of(old)) and M.status(old).get("targets"):
                task = asyncio.ensure_future(self._cleanup_vanished(old))
                self._vanished.add(task)
                task.add_done_callback(self._vanished.discard)

        self._vanished: set[asyncio.Future[None]] = set()
        #: uids this instance finalized itself (their DELETED event needs no cleanup)
        self._finalized: dict[str, None] = {}
        inf.add_handler(FuncHandler(vanished))
        self.watch_related("subnets", waiting, self.phase_changed)
        self.watch_related(
            "droplets",
            lambda d: [M.key_of(e) for e in eps.by_index("droplet", M.name(d)) if M.phase(e) == M.INIT],
            self.phase_changed,
        )
        return inf

    def pipeline(self) -> dict[str, Step]:
        return {M.INIT: self.allocate, PROGRAMMING: self.program}

    # ---- Init ------------------------------------------------------------------------------------
    async def _pod_ok(self, obj: Obj, droplet: str) -> str:
        """'' when the endpoint may be provisioned, else why not."""
        tenant = M.tenant_of(obj)
        if tenant == M.SYSTEM:
            return ""  # the system tenant's users administer the cluster: no look-up on its hot path
        owners = [o for o in M.md(obj).get("ownerReferences") or [] if o.get("kind") == "Pod"]
        if not owners:
            return "endpoints of a tenant must be owned by one of its pods"
        try:
            pod = await self.api.get("pods", owners[0]["name"], namespace=M.namespace_of(obj), tenant=tenant)
        except ApiError as exc:
            if exc.code == 404:
                return f"pod {owners[0]['name']} does not exist"
            raise
        if (pod.get("metadata") or {}).get("uid") != owners[0].get("uid"):
            return f"pod {owners[0]['name']} was replaced"
        if (pod.get("spec") or {}).get("nodeName") != droplet:
            return f"pod {owners[0]['name']} is not bound to droplet {droplet}"
        return ""

    async def allocate(self, obj: Obj) -> P.Outcome:
        s = M.spec(obj)
        if (s.get("type") or "simple") != "simple":
            return P.fail(f"endpoint type {s.get('type')!r} is not supported (simple)")
        vpc_name, net_name, droplet = (str(s.get(k) or "") for k in ("vpc", "net", "droplet"))
        if not (vpc_name and net_name and droplet):
            return P.fail("spec.vpc, spec.net and spec.droplet are required")
        vpc = self.plane.get("vpcs", vpc_name)
        if vpc is None:
            return P.wait(f"VPC {vpc_name} not found", 2.0)
        if M.vpc_tenant(vpc) != M.tenant_of(obj) and M.tenant_of(obj) != M.SYSTEM:
            return P.fail(f"VPC {vpc_name} belongs to another tenant")
        subnet = self.plane.get("subnets", net_name)
        if subnet is None or M.spec(subnet).get("vpc") != vpc_name:
            return P.wait(f"subnet {net_name} of VPC {vpc_name} not found", 2.0)
        if not M.is_provisioned(subnet):
            return P.wait(f"subnet {net_name} is {M.phase(subnet)}", 2.0)
        if not self.plane.droplet_ready(droplet):
            return P.wait(f"droplet {droplet} is not provisioned", 2.0)
        why = await self._pod_ok(obj, droplet)
        if why:
            return P.fail(why)
        pool = await self.plane.pool_for(vpc, subnet)
        ip = str(s.get("ip") or "")
        try:
            if ip:
                mine = [
                    e
                    for e in self.plane.endpoints_of(vpc_name, net_name)
                    if M.spec(e).get("ip") == ip and M.md(e).get("uid") != M.md(obj).get("uid")
                ]
                if mine:
                    return P.fail(f"address {ip} is in use in subnet {net_name}")
                if ipaddress.IPv4Address(ip) not in pool.net or ip == pool.gateway:
                    return P.fail(
                        f"address {ip} is not an endpoint address of subnet {net_name} ({pool.net})"
                    )
                pool.reserve(ip)  # already there when this endpoint asked for it before a restart
            else:
                uid = str(M.md(obj).get("uid"))
                ip = self.plane.allocated.get(uid) or pool.allocate()
                pool.reserve(ip)
                self.plane.allocated[uid] = ip
        except (NetworkError, ValueError) as exc:
            return P.fail(str(exc))
        targets = [
            droplet,
            *[b for b in self.plane.provisioned_droplets(self.plane.bouncers_of(net_name)) if b != droplet],
        ]
        cidr = M.cidr_of(subnet)
        return P.advance(
            PROGRAMMING,
            {
                "ip": ip,
                "vni": self.plane.vni(vpc),
                "prefix": cidr.prefixlen,
                "gateway": M.gateway_of(cidr),
                "cidr": str(cidr),
                "targets": targets,
                "hostIp": self.plane.droplet_ip(droplet),
                "allocatedAt": M.now_ts(),
            },
            spec={"ip": ip} if s.get("ip") != ip else None,
            labels={
                M.L_SUBNET: str(M.md(subnet).get("uid")),
                M.L_VPC: str(M.md(vpc).get("uid")),
                M.L_DROPLET: droplet,
            },
        )

    # ---- Programming -----------------------------------------------------------------------------
    async def program(self, obj: Obj) -> P.Outcome:
        s, st = M.spec(obj), M.status(obj)
        self.plane.allocated.pop(str(M.md(obj).get("uid")), None)  # recorded on the object now
        vpc = self.plane.get("vpcs", str(s.get("vpc")))
        subnet = self.plane.get("subnets", str(s.get("net")))
        if vpc is None or subnet is None:
            return P.wait("VPC or subnet gone", 2.0)
        droplet = str(s["droplet"])
        vni, ip = int(st["vni"]), str(s.get("ip") or st.get("ip"))
        host_ip = self.plane.droplet_ip(droplet)
        mac = str(s.get("mac") or "")
        targets = list(
            dict.fromkeys(
                [
                    *st.get("targets", [droplet]),
                    *self.plane.provisioned_droplets(self.plane.bouncers_of(M.name(subnet))),
                ]
            )
        )

        async def on_host() -> None:
            await self.plane.ensure_net(droplet, vpc, subnet)
            await self.plane.call(
                droplet,
                "UpdateEp",
                ep_msg(vni, ip, mac, host_ip, veth=str(s.get("veth") or ""), name=M.name(obj)),
            )

        async def on_bouncer(b: str) -> None:
            msg = ep_msg(vni, ip, mac, host_ip, name=M.name(obj))
            try:
                await self.plane.call(b, "UpdateEp", msg)
            except TransitError as exc:
                if not precondition(exc):
                    raise
                await self.plane.ensure_net(b, vpc, subnet, force=True)
                await self.plane.call(b, "UpdateEp", msg)

        errs = await gather_calls(on_host(), *(on_bouncer(b) for b in targets if b != droplet))
        bad = [e for e in errs if e is not None]
        if bad:
            if all(is_transient(e) for e in bad):
                return P.wait(f"transitd: {bad[0]}", 0.5)
            return P.fail(f"programming failed: {bad[0]}")
        created = M.parse_ts(M.md(obj).get("creationTimestamp"))
        status: Obj = {"targets": targets, "programmed": targets, "provisionedAt": M.now_ts()}
        if created:
            status["provisionDelayMs"] = round((time.time() - created) * 1000.0, 1)
        return P.advance(M.PROVISIONED, status)

    async def _cleanup_vanished(self, obj: Obj) -> None:
        for attempt in range(20):
            try:
                if await self.finalize(obj) is None:
                    self.log.info(
                        "endpoint %s vanished with its finalizer: removed from its hosts", M.key_of(obj)
                    )
                    return
            except Exception as exc:  # best effort; the droplet sweep is the last resort
                self.log.warning("endpoint %s vanished: cleanup: %s", M.key_of(obj), exc)
            await asyncio.sleep(min(0.5 * 2**attempt, 10.0))

    # ---- deletion ----------------------------------------------------------------------------
    async def finalize(self, obj: Obj) -> float | None:
        s, st = M.spec(obj), M.status(obj)
        vni, ip = int(st.get("vni") or 0), str(s.get("ip") or st.get("ip") or "")
        self.plane.allocated.pop(str(M.md(obj).get("uid")), None)
        if vni and ip:
            hosts = list(
                dict.fromkeys(
                    [
                        *(st.get("targets") or []),
                        str(s.get("droplet") or ""),
                        *[
                            str(M.spec(b).get("droplet"))
                            for b in self.plane.inf["bouncers"].by_index("net", str(s.get("net")))
                        ],
                    ]
                )
            )
            hosts = [h for h in hosts if h and self.plane.address(h)]
            errs = await gather_calls(*(self.plane.call(h, "DeleteEp", ep_key(vni, ip)) for h in hosts))
            bad = [e for e in errs if e is not None and not not_found(e)]
            if bad:
                if any(is_transient(e) for e in bad):
                    return 0.5
                self.log.warning("endpoint %s: DeleteEp: %s", M.name(obj), bad[0])
            have = self.plane.pools.get(str(s.get("net")))
            if have is not None:
                have[1].release(ip)
        self._finalized[str(M.md(obj).get("uid"))] = None
        while len(self._finalized) > 100_000:
            self._finalized.pop(next(iter(self._finalized)))
        return None
