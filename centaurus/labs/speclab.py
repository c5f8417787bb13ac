"""What every lab backend shares: the spec and state it keeps, and how it programs a dataplane.

A backend (netns, ssh, vagrant) says how hosts are created and reached (:meth:`_droplet_infos`,
:meth:`_ep_veth`, processes, teardown); this base turns the spec into dataplane calls -- hosts
first, then VPCs and networks everywhere, then each endpoint on its own host and its network's
bouncers only (PERF-NET-3) -- and answers the look-ups of the lab handle (CONTRACTS.md).
"""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from centaurus import plugins
from centaurus.dataplane.base import DropletInfo, EndpointInfo, NetworkInfo, Unsupported, VpcInfo
from centaurus.labs import topology
from centaurus.labs.base import LabError
from centaurus.labs.spec import EndpointSpec, LabSpec, parse_spec
from centaurus.labs.state import LabState

log = logging.getLogger("centaurus.labs")


class SpecLab:
    name = "spec"
    state_dir: Path
    spec: LabSpec | None
    dataplane: Any
    _state: LabState | None

    # ---- backend hooks ------------------------------------------------------------------------
    def _droplet_infos(self) -> dict[str, DropletInfo]:
        raise NotImplementedError

    def _ep_veth(self, name: str) -> str:
        """Droplet-side interface of endpoint ``name``."""
        return topology.veth_name(name)

    def _program(self) -> None:
        spec, dp = self._spec, self.dataplane
        hosts = list(self._droplet_infos().values())
        with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as pool:
            list(pool.map(dp.setup_host, hosts))
        for vpc in spec.vpcs:
            dp.apply_vpc(self._vpc_info(vpc.name), hosts)
        for net in spec.networks:
            dp.apply_network(self._net_info(net.name), hosts)
        order = sorted(spec.endpoints, key=lambda e: e.kind == "scaled")  # backends first
        for ep in order:
            self._apply_endpoint(ep)

    def _apply_endpoint(self, ep: EndpointSpec) -> EndpointInfo:
        info = self.endpoint(ep.name)
        try:
            self.dataplane.apply_endpoint(info, self._endpoint_hosts(ep))
            self._st.endpoints[ep.name] = {"realised": True}
        except Unsupported as exc:
            self._st.endpoints[ep.name] = {"realised": False, "why": str(exc)}
            log.info("endpoint %s not realised: %s", ep.name, exc)
        return info

    def _endpoint_hosts(self, ep: EndpointSpec) -> list[DropletInfo]:
        """The endpoint's own host and its network's bouncers -- and nothing else (PERF-NET-3).

        A scaled endpoint is translated on its clients' droplets: it also goes to every droplet
        hosting an endpoint of the same VPC."""
        spec = self._spec
        infos = self._droplet_infos()
        names = [ep.host] if ep.host else []
        names += [b for b in spec.network(ep.network).bouncers if b not in names]
        if ep.kind == "scaled":
            vpc = spec.network(ep.network).vpc
            names += [e.host for e in spec.endpoints
                      if e.host and spec.network(e.network).vpc == vpc and e.host not in names]
        return [infos[n] for n in dict.fromkeys(names)]

    # ---- attach to a running lab (another process brought it up) ----------------------------
    def _attach(self) -> None:
        st = self._st
        self.spec = parse_spec(st.spec, source=str(self.state_dir / "lab.json"))
        with contextlib.suppress(Exception):
            self.dataplane = plugins.load("dataplane", st.dataplane)(options=st.options)
            adopt = getattr(self.dataplane, "adopt_hosts", None)
            if adopt is not None:
                adopt(list(self._droplet_infos().values()))
            known = getattr(self.dataplane, "adopt_vpcs", None)
            if known is not None:
                known([self._vpc_info(v.name) for v in self._spec.vpcs])

    # ---- look-ups -----------------------------------------------------------------------------
    @property
    def _st(self) -> LabState:
        if self._state is None:
            raise LabError(f"no lab is up in {self.state_dir}")
        return self._state

    @property
    def _spec(self) -> LabSpec:
        if self.spec is None:
            raise LabError(f"no lab is up in {self.state_dir}")
        return self.spec

    @property
    def _id(self) -> str:
        return self._st.id

    @property
    def id(self) -> str:
        return self._st.id

    def _save(self) -> None:
        self._st.save(self.state_dir)

    def _vpc_info(self, name: str) -> VpcInfo:
        v = self._spec.vpc(name)
        return VpcInfo(vni=v.vni, cidr=v.cidr, tenant=v.tenant, dividers=v.dividers)

    def _net_info(self, name: str) -> NetworkInfo:
        n = self._spec.network(name)
        return NetworkInfo(vni=self._spec.vpc(n.vpc).vni, name=n.name, cidr=n.cidr, gateway=n.gateway,
                           bouncers=n.bouncers)

    def droplet(self, name: str) -> DropletInfo:
        infos = self._droplet_infos()
        if name not in infos:
            raise LabError(f"lab {self._st.id} has no droplet named {name!r}")
        return infos[name]

    def endpoint(self, name: str) -> EndpointInfo:
        spec, st = self._spec, self._st
        ep = spec.endpoint(name)
        vpc = spec.vpc_of(ep.network)
        net = spec.network(ep.network)
        simple = ep.kind == "simple"
        realised = st.endpoints.get(name, {})
        return EndpointInfo(
            vni=vpc.vni, network=ep.network, ip=ep.ip,
            mac=topology.mac_for(st.id, "endpoint", name) if simple else "",
            host=ep.host, veth=self._ep_veth(name) if simple else "",
            netns=topology.netns_name(st.id, name) if simple else None, kind=ep.kind,
            backends=tuple(spec.endpoint(b).ip for b in ep.backends),
            extra={"name": name, "gateway": net.gateway, "prefixlen": net.prefixlen, "vpc": vpc.name,
                   "tenant": vpc.tenant, "realised": realised.get("realised", True),
                   "backend_names": ep.backends},
        )

    def stats(self, droplet_name: str) -> dict[str, int]:
        return dict(self.dataplane.stats(self.droplet(droplet_name)))

