"""Droplet operator: a droplet (a host with a transit daemon) registered by its node agent is
Provisioned once its transitd answers; a periodic probe records whether it still does
(``status.reachable``), which placement reads."""

from __future__ import annotations

import os
import time
from typing import Any

from centaurus.mizar import model as M
from centaurus.mizar import pipeline as P
from centaurus.mizar.operators.base import MizarOperator, Step
from centaurus.mizar.transit import ep_key, is_transient
from centaurus.transitd.rpc import TransitError

Obj = dict[str, Any]
#: seconds between transitd probes of a droplet, and between its anti-entropy sweeps (tests shorten
#: them through the environment of the operator processes)
PROBE_EVERY = float(os.environ.get("CENTAURUS_MIZAR_PROBE_S", "30"))
SWEEP_EVERY = float(os.environ.get("CENTAURUS_MIZAR_SWEEP_S", "120"))
#: hollow droplets (thousands behind one hollow daemon in scale runs) are probed and swept this
#: many times less often
HOLLOW_FACTOR = float(os.environ.get("CENTAURUS_MIZAR_HOLLOW_FACTOR", "10"))


class DropletOperator(MizarOperator):
    plural = "droplets"
    maintain_every = PROBE_EVERY

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self._next_sweep: dict[str, float] = {}
        self._suspects: dict[str, set[tuple[int, str]]] = {}

    def vpc_name(self, obj: Obj) -> str:
        return ""  # droplets hash by their own key

    def pipeline(self) -> dict[str, Step]:
        return {M.INIT: self.probe}

    async def probe(self, obj: Obj) -> P.Outcome:
        s = M.spec(obj)
        if not s.get("ip") or not s.get("transitd"):
            return P.fail("spec.ip and spec.transitd (the droplet's transit daemon address) are required")
        try:
            st = await self.plane.pool.call(M.name(obj), str(s["transitd"]), "Status", timeout=3.0)
        except TransitError as exc:
            if is_transient(exc):
                return P.wait(f"transitd does not answer: {exc}", 2.0)
            return P.fail(str(exc))
        if st.host_ip and st.host_ip != s["ip"]:
            return P.fail(f"transitd at {s['transitd']} serves {st.host_ip}, not {s['ip']}")
        return P.advance(
            M.PROVISIONED,
            {
                "hostIp": st.host_ip or s["ip"],
                "hostMac": st.host_mac or s.get("mac", ""),
                "transitdVersion": st.version,
                "reachable": True,
                "probedAt": M.now_ts(),
            },
        )

    async def maintain(self, obj: Obj) -> float | None:
        s = M.spec(obj)
        try:
            await self.plane.pool.call(M.name(obj), str(s.get("transitd") or ""), "Status", timeout=3.0)
            ok = True
        except TransitError:
            ok = False
        if bool(M.status(obj).get("reachable", True)) != ok:
            await self.write(obj, status={"reachable": ok, "probedAt": M.now_ts()})
        factor = HOLLOW_FACTOR if M.is_hollow(obj) else 1.0
        if ok and time.monotonic() >= self._next_sweep.get(M.name(obj), 0.0):
            self._next_sweep[M.name(obj)] = time.monotonic() + SWEEP_EVERY * factor
            await self.sweep(obj)
        return PROBE_EVERY * factor

    async def sweep(self, obj: Obj) -> None:
        """Anti-entropy, the last resort behind the finalizers: endpoint entries of a managed VPC
        (one a Vpc object holds the VNI of) that no endpoint object explains -- neither hosted
        here nor of a network this droplet bounces for -- are removed, once they were found
        unexplained in two sweeps in a row (a cache that lags a fresh endpoint never costs it)."""
        name = M.name(obj)
        try:
            dump = await self.plane.pool.call(
                name, str(M.spec(obj).get("transitd") or ""), "Dump", timeout=10.0
            )
        except TransitError:
            return
        vpcs = {self.plane.vni(v): M.name(v) for v in self.plane.inf["vpcs"].objects() if self.plane.vni(v)}
        nets = {str(M.spec(b).get("net")) for b in self.plane.inf["bouncers"].by_index("droplet", name)}
        explained: set[tuple[int, str]] = set()
        for e in self.plane.inf["endpoints"].objects():
            st, sp = M.status(e), M.spec(e)
            ip = str(sp.get("ip") or st.get("ip") or "")
            if ip and (
                sp.get("droplet") == name or sp.get("net") in nets or name in (st.get("targets") or [])
            ):
                explained.add((int(st.get("vni") or 0), ip))
        stray = {
            (int(e.vni), str(e.ip))
            for e in dump.endpoints
            if int(e.vni) in vpcs and (int(e.vni), str(e.ip)) not in explained and e.kind != "scaled"
        }
        suspects = self._suspects.setdefault(name, set())
        for vni, ip in stray & suspects:
            try:
                await self.plane.pool.call(
                    name, str(M.spec(obj).get("transitd")), "DeleteEp", ep_key(vni, ip)
                )
                self.log.warning("droplet %s: removed stray endpoint %s of VPC %s", name, ip, vpcs[vni])
            except TransitError:
                continue
        self._suspects[name] = stray - suspects
