"""Droplet operator: a droplet (a host with a transit daemon) registered by its node agent is
Provisioned once its transitd answers; a periodic probe records whether it still does
(``status.reachable``), which placement reads."""

from __future__ import annotations

from typing import Any

from centaurus.mizar import model as M
from centaurus.mizar import pipeline as P
from centaurus.mizar.operators.base import MizarOperator, Step
from centaurus.mizar.transit import is_transient
from centaurus.transitd.rpc import TransitError

Obj = dict[str, Any]
PROBE_EVERY = 30.0


class DropletOperator(MizarOperator):
    plural = "droplets"
    maintain_every = PROBE_EVERY

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
        return PROBE_EVERY
