"""Lab spec: the topology every lab backend realises (``labs/*.yaml``).

One YAML file names droplets (hosts) with their substrate addresses, VPCs (VNI = VPC id on the
wire), networks with their bouncers, and static endpoints. :func:`load_spec` validates all of it
up front and reports the first problem as ONE line naming the file and the field path
(``labs/x.yaml: endpoints[2].ip: 10.10.3.4 is not in network net-a1 (10.10.1.0/24)``), so a bad
spec never leaves a half-built lab behind.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from centaurus.labs.base import LabError

#: Geneve adds 50 bytes (outer Ethernet 14 + IPv4 20 + UDP 8 + Geneve 8) to a 1500-byte inner frame;
#: VXLAN adds the same. A smaller substrate MTU silently breaks full-size packets.
MIN_SUBSTRATE_MTU = 1550
MAX_VNI = (1 << 24) - 1
_T = TypeVar("_T")
DATAPLANES = ("mizar-xdp", "bridge-vxlan")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_HOSTNAME = re.compile(r"^[a-z][a-z0-9-]{0,11}$")  # droplets: short, they appear in ifnames
#: Names the netns backend uses for its own hosts.
RESERVED_NAMES = frozenset({"sw", "switch", "lab", "all"})


class SpecError(LabError):
    """The spec is invalid; the message is one line: ``<file>: <field path>: <problem>``."""


@dataclass(frozen=True)
class SubstrateSpec:
    cidr: str
    mtu: int = 1600
    mode: str = "switch"  # "switch": a switch netns bridging all droplets; "p2p": two droplets, one veth

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.cidr).prefixlen


@dataclass(frozen=True)
class DropletSpec:
    name: str
    ip: str
    zone: str = ""


@dataclass(frozen=True)
class VpcSpec:
    name: str
    vni: int
    cidr: str
    tenant: str = "system"
    dividers: tuple[str, ...] = ()


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    vpc: str
    cidr: str
    bouncers: tuple[str, ...]
    gateway: str = ""  # first host of the CIDR unless given

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.cidr).prefixlen


@dataclass(frozen=True)
class EndpointSpec:
    name: str
    network: str
    ip: str
    host: str = ""  # droplet name; empty for a scaled endpoint (a virtual IP)
    kind: str = "simple"  # "simple" | "scaled"
    backends: tuple[str, ...] = ()  # scaled: names of simple endpoints of the same network


@dataclass(frozen=True)
class LabSpec:
    name: str
    substrate: SubstrateSpec
    droplets: tuple[DropletSpec, ...]
    vpcs: tuple[VpcSpec, ...] = ()
    networks: tuple[NetworkSpec, ...] = ()
    endpoints: tuple[EndpointSpec, ...] = ()
    dataplane: str = "mizar-xdp"
    control: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    source: str = ""  # file it came from, for messages

    # ---- look-ups ------------------------------------------------------------------------
    def droplet(self, name: str) -> DropletSpec:
        return _find(self.droplets, name, "droplet")

    def vpc(self, name: str) -> VpcSpec:
        return _find(self.vpcs, name, "vpc")

    def network(self, name: str) -> NetworkSpec:
        return _find(self.networks, name, "network")

    def endpoint(self, name: str) -> EndpointSpec:
        return _find(self.endpoints, name, "endpoint")

    def vpc_of(self, network: str) -> VpcSpec:
        return self.vpc(self.network(network).vpc)

    def networks_of(self, vpc: str) -> list[NetworkSpec]:
        return [n for n in self.networks if n.vpc == vpc]

    def endpoints_on(self, droplet: str) -> list[EndpointSpec]:
        return [e for e in self.endpoints if e.host == droplet]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the state file keeps it, so ``down``/``status`` never need the YAML again)."""
        d: dict[str, Any] = json.loads(json.dumps(asdict(self)))  # tuples -> lists, as YAML gives them
        d.pop("source", None)
        return d


def _find(items: tuple[_T, ...], name: str, what: str) -> _T:
    for it in items:
        if getattr(it, "name", None) == name:
            return it
    raise LabError(f"no {what} named {name!r} in the lab spec")


def load_spec(path: str | Path) -> LabSpec:
    """Read and validate a lab spec file."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise SpecError(f"{p}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SpecError(f"{p}: not valid YAML{where}") from None
    return parse_spec(doc, source=str(p))


def parse_spec(doc: Any, source: str = "<spec>") -> LabSpec:
    """Validate a spec given as data (``yaml.safe_load`` output or :meth:`LabSpec.to_dict`)."""
    return _Parser(source).spec(doc)


# ---- validation ----------------------------------------------------------------------------
class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> SpecError:
        return SpecError(f"{self.source}: {where}: {problem}" if where else f"{self.source}: {problem}")

    def mapping(self, doc: Any, where: str, allowed: set[str], required: set[str]) -> Mapping[str, Any]:
        if not isinstance(doc, Mapping):
            raise self.fail(where or "spec", f"expected a mapping, got {type(doc).__name__}")
        unknown = sorted(set(map(str, doc)) - allowed)
        if unknown:
            raise self.fail(where, f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
        missing = sorted(required - set(doc))
        if missing:
            raise self.fail(where, f"missing required key {missing[0]!r}")
        return doc

    def items(self, doc: Mapping[str, Any], key: str) -> Iterator[tuple[str, Any]]:
        seq = doc.get(key) or []
        if not isinstance(seq, list):
            raise self.fail(key, f"expected a list, got {type(seq).__name__}")
        for i, item in enumerate(seq):
            yield f"{key}[{i}]", item

    def name(self, value: Any, where: str, pattern: re.Pattern[str] = _NAME) -> str:
        if not isinstance(value, str) or not pattern.match(value):
            raise self.fail(where, f"{value!r} is not a valid name (lowercase letters, digits, '-', "
                                   f"starting with a letter, at most {_maxlen(pattern)} characters)")
        if value in RESERVED_NAMES:
            raise self.fail(where, f"{value!r} is reserved")
        return value

    def net(self, value: Any, where: str) -> ipaddress.IPv4Network:
        try:
            n = ipaddress.ip_network(str(value), strict=True)
        except ValueError as exc:
            raise self.fail(where, f"{value!r} is not an IPv4 CIDR ({exc})") from None
        if not isinstance(n, ipaddress.IPv4Network):
            raise self.fail(where, f"{value!r}: only IPv4 is supported")
        return n

    def addr(self, value: Any, where: str, within: ipaddress.IPv4Network, what: str) -> str:
        try:
            a = ipaddress.ip_address(str(value))
        except ValueError:
            raise self.fail(where, f"{value!r} is not an IPv4 address") from None
        if a not in within:
            raise self.fail(where, f"{a} is not in {what} ({within})")
        if within.prefixlen < 31 and a in (within.network_address, within.broadcast_address):
            raise self.fail(where, f"{a} is the network or broadcast address of {within}")
        return str(a)

    def names(self, value: Any, where: str, known: Mapping[str, Any], what: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise self.fail(where, f"expected a list of {what} names")
        for v in value:
            if v not in known:
                raise self.fail(where, f"unknown {what} {v!r}")
        if len(set(value)) != len(value):
            raise self.fail(where, f"{what} listed twice")
        return tuple(value)

    def integer(self, value: Any, where: str, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"expected an integer, got {value!r}")
        if not lo <= value <= hi:
            raise self.fail(where, f"{value} is out of range {lo}..{hi}")
        return value

    # ---- sections --------------------------------------------------------------------------
    def spec(self, doc: Any) -> LabSpec:
        keys = {"name", "substrate", "dataplane", "droplets", "vpcs", "networks", "endpoints", "control",
                "description"}
        top = self.mapping(doc, "", keys, {"name", "substrate", "droplets"})
        name = self.name(top["name"], "name")
        dataplane = top.get("dataplane", "mizar-xdp")
        if dataplane not in DATAPLANES:
            raise self.fail("dataplane", f"{dataplane!r} is not one of {', '.join(DATAPLANES)}")
        substrate = self.substrate(top["substrate"])
        droplets = self.droplets(top, substrate)
        vpcs = self.vpcs(top, droplets)
        networks = self.networks(top, vpcs, droplets)
        endpoints = self.endpoints(top, networks, vpcs, droplets)
        control = top.get("control") or {}
        if not isinstance(control, Mapping):
            raise self.fail("control", "expected a mapping")
        return LabSpec(name=name, substrate=substrate, droplets=tuple(droplets.values()),
                       vpcs=tuple(vpcs.values()), networks=tuple(networks.values()),
                       endpoints=tuple(endpoints.values()), dataplane=dataplane,
                       control=dict(control), source=self.source)

    def substrate(self, doc: Any) -> SubstrateSpec:
        s = self.mapping(doc, "substrate", {"cidr", "mtu", "mode"}, {"cidr"})
        cidr = self.net(s["cidr"], "substrate.cidr")
        mtu = self.integer(s.get("mtu", 1600), "substrate.mtu", 576, 9000)
        if mtu < MIN_SUBSTRATE_MTU:
            raise self.fail("substrate.mtu", f"{mtu} is below {MIN_SUBSTRATE_MTU}: Geneve/VXLAN add 50 bytes "
                                             "to a 1500-byte inner packet")
        mode = s.get("mode", "switch")
        if mode not in ("switch", "p2p"):
            raise self.fail("substrate.mode", f"{mode!r} is not 'switch' or 'p2p'")
        return SubstrateSpec(cidr=str(cidr), mtu=mtu, mode=mode)

    def droplets(self, top: Mapping[str, Any], substrate: SubstrateSpec) -> dict[str, DropletSpec]:
        cidr = ipaddress.IPv4Network(substrate.cidr)
        out: dict[str, DropletSpec] = {}
        ips: set[str] = set()
        for where, d in self.items(top, "droplets"):
            m = self.mapping(d, where, {"name", "ip", "zone"}, {"name", "ip"})
            name = self.name(m["name"], f"{where}.name", _HOSTNAME)
            if name in out:
                raise self.fail(f"{where}.name", f"droplet {name!r} defined twice")
            ip = self.addr(m["ip"], f"{where}.ip", cidr, "substrate cidr")
            if ip in ips:
                raise self.fail(f"{where}.ip", f"{ip} is used by another droplet")
            ips.add(ip)
            out[name] = DropletSpec(name=name, ip=ip, zone=str(m.get("zone") or ""))
        if not out:
            raise self.fail("droplets", "a lab needs at least one droplet")
        if substrate.mode == "p2p" and len(out) != 2:
            raise self.fail("droplets", f"substrate mode p2p joins exactly 2 droplets, got {len(out)}")
        return out

    def vpcs(self, top: Mapping[str, Any], droplets: Mapping[str, DropletSpec]) -> dict[str, VpcSpec]:
        out: dict[str, VpcSpec] = {}
        vnis: set[int] = set()
        for where, v in self.items(top, "vpcs"):
            m = self.mapping(v, where, {"name", "vni", "cidr", "tenant", "dividers"}, {"name", "vni", "cidr"})
            name = self.name(m["name"], f"{where}.name")
            if name in out:
                raise self.fail(f"{where}.name", f"vpc {name!r} defined twice")
            vni = self.integer(m["vni"], f"{where}.vni", 1, MAX_VNI)
            if vni in vnis:
                raise self.fail(f"{where}.vni", f"VNI {vni} is used by another vpc")
            vnis.add(vni)
            cidr = self.net(m["cidr"], f"{where}.cidr")
            tenant = self.name(m.get("tenant", "system"), f"{where}.tenant")
            dividers = self.names(m.get("dividers"), f"{where}.dividers", droplets, "droplet")
            out[name] = VpcSpec(name=name, vni=vni, cidr=str(cidr), tenant=tenant, dividers=dividers)
        return out

    def networks(self, top: Mapping[str, Any], vpcs: Mapping[str, VpcSpec],
                 droplets: Mapping[str, DropletSpec]) -> dict[str, NetworkSpec]:
        out: dict[str, NetworkSpec] = {}
        for where, n in self.items(top, "networks"):
            m = self.mapping(n, where, {"name", "vpc", "cidr", "bouncers", "gateway"},
                             {"name", "vpc", "cidr", "bouncers"})
            name = self.name(m["name"], f"{where}.name")
            if name in out:
                raise self.fail(f"{where}.name", f"network {name!r} defined twice")
            if m["vpc"] not in vpcs:
                raise self.fail(f"{where}.vpc", f"unknown vpc {m['vpc']!r}")
            vpc = vpcs[m["vpc"]]
            cidr = self.net(m["cidr"], f"{where}.cidr")
            if not cidr.subnet_of(ipaddress.IPv4Network(vpc.cidr)):
                raise self.fail(f"{where}.cidr", f"{cidr} is not inside vpc {vpc.name} ({vpc.cidr})")
            if cidr.prefixlen > 30:
                raise self.fail(f"{where}.cidr", f"{cidr} is too small for a gateway and endpoints")
            for other in out.values():
                if other.vpc == vpc.name and cidr.overlaps(ipaddress.IPv4Network(other.cidr)):
                    raise self.fail(f"{where}.cidr", f"{cidr} overlaps network {other.name} ({other.cidr}) "
                                                     f"of the same vpc")
            bouncers = self.names(m["bouncers"], f"{where}.bouncers", droplets, "droplet")
            if not bouncers:
                raise self.fail(f"{where}.bouncers", "a network needs at least one bouncer")
            gw = m.get("gateway") or str(next(cidr.hosts()))
            gateway = self.addr(gw, f"{where}.gateway", cidr, f"network {name}")
            out[name] = NetworkSpec(name=name, vpc=vpc.name, cidr=str(cidr), bouncers=bouncers,
                                    gateway=gateway)
        return out

    def endpoints(self, top: Mapping[str, Any], networks: Mapping[str, NetworkSpec],
                  vpcs: Mapping[str, VpcSpec],
                  droplets: Mapping[str, DropletSpec]) -> dict[str, EndpointSpec]:
        out: dict[str, EndpointSpec] = {}
        raw_backends: dict[str, tuple[str, Any]] = {}
        by_vpc_ip: dict[tuple[str, str], str] = {}
        for where, e in self.items(top, "endpoints"):
            m = self.mapping(e, where, {"name", "network", "ip", "host", "kind", "backends"},
                             {"name", "network", "ip"})
            out_ep = self.endpoint(where, m, networks, droplets, out)
            vpc = networks[out_ep.network].vpc
            clash = by_vpc_ip.get((vpc, out_ep.ip))
            if clash:
                raise self.fail(f"{where}.ip",
                                f"{out_ep.ip} is already used by endpoint {clash} in vpc {vpc}")
            by_vpc_ip[(vpc, out_ep.ip)] = out_ep.name
            out[out_ep.name] = out_ep
            if out_ep.kind == "scaled":
                raw_backends[out_ep.name] = (where, m.get("backends"))
        # Backends may be defined after the scaled endpoint that names them: resolve at the end.
        for name, (where, raw) in raw_backends.items():
            ep = out[name]
            backends = self.names(raw, f"{where}.backends", out, "endpoint")
            if not backends:
                raise self.fail(f"{where}.backends", "a scaled endpoint needs at least one backend")
            for b in backends:
                be = out[b]
                if be.kind != "simple" or be.network != ep.network:
                    raise self.fail(f"{where}.backends",
                                    f"{b} is not a simple endpoint of network {ep.network}")
            out[name] = EndpointSpec(name=ep.name, network=ep.network, ip=ep.ip, kind="scaled",
                                     backends=backends)
        return out

    def endpoint(self, where: str, m: Mapping[str, Any], networks: Mapping[str, NetworkSpec],
                 droplets: Mapping[str, DropletSpec], seen: Mapping[str, EndpointSpec]) -> EndpointSpec:
        name = self.name(m["name"], f"{where}.name")
        if name in seen:
            raise self.fail(f"{where}.name", f"endpoint {name!r} defined twice")
        if name in droplets:
            raise self.fail(f"{where}.name", f"{name!r} is also a droplet name")
        if m["network"] not in networks:
            raise self.fail(f"{where}.network", f"unknown network {m['network']!r}")
        net = networks[m["network"]]
        ip = self.addr(m["ip"], f"{where}.ip", ipaddress.IPv4Network(net.cidr), f"network {net.name}")
        if ip == net.gateway:
            raise self.fail(f"{where}.ip", f"{ip} is the gateway of network {net.name}")
        kind = m.get("kind", "simple")
        if kind not in ("simple", "scaled"):
            raise self.fail(f"{where}.kind", f"{kind!r} is not 'simple' or 'scaled'")
        host = m.get("host") or ""
        if kind == "simple":
            if not host:
                raise self.fail(where, "a simple endpoint needs a 'host' droplet")
            if host not in droplets:
                raise self.fail(f"{where}.host", f"unknown droplet {host!r}")
            if m.get("backends"):
                raise self.fail(f"{where}.backends", "only a scaled endpoint has backends")
        elif host:
            raise self.fail(f"{where}.host", "a scaled endpoint is a virtual IP and has no host")
        return EndpointSpec(name=name, network=net.name, ip=ip, host=host, kind=kind)


def parse_endpoint(spec: LabSpec, doc: Any) -> EndpointSpec:
    """Validate one endpoint added at run time (``lab.add_endpoint``) against a running spec."""
    p = _Parser("add_endpoint")
    m = p.mapping(doc, "endpoint", {"name", "network", "ip", "host", "kind", "backends"},
                  {"name", "network", "ip"})
    networks = {n.name: n for n in spec.networks}
    droplets = {d.name: d for d in spec.droplets}
    seen = {e.name: e for e in spec.endpoints}
    ep = p.endpoint("endpoint", m, networks, droplets, seen)
    vpc = networks[ep.network].vpc
    for other in spec.endpoints:
        if other.ip == ep.ip and spec.network(other.network).vpc == vpc:
            raise p.fail("endpoint.ip", f"{ep.ip} is already used by endpoint {other.name} in vpc {vpc}")
    if ep.kind == "scaled":
        backends = p.names(m.get("backends"), "endpoint.backends", seen, "endpoint")
        if not backends:
            raise p.fail("endpoint.backends", "a scaled endpoint needs at least one backend")
        ep = EndpointSpec(name=ep.name, network=ep.network, ip=ep.ip, kind="scaled", backends=backends)
    return ep


def _maxlen(pattern: re.Pattern[str]) -> int:
    m = re.search(r"\{0,(\d+)\}", pattern.pattern)
    return int(m.group(1)) + 1 if m else 0
