"""The dataplane axis: ``mizar-xdp`` (this project's XDP/Geneve overlay driven through transitd)
and ``bridge-vxlan`` (Linux bridges + VXLAN, the kernel baseline every perf figure is compared
with).

A dataplane programs *hosts* (droplets). The lab calls it to realise a spec; the network
management plane calls it to provision endpoints of pods. Each call touches only the hosts it
names -- the bounded-fan-out rule of Mizar (PERF-NET-3) is checked by counting those calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class DropletInfo:
    name: str
    netns: str | None  # where its substrate interface lives (netns lab) or None (real host)
    ip: str  # substrate address
    mac: str = ""
    ifname: str = "eth0"
    #: where the droplet's transitd answers gRPC: ``unix:/path`` (netns lab) or ``host:port``
    transitd: str = ""


@dataclass(frozen=True)
class VpcInfo:
    vni: int  # = VPC id on the wire
    cidr: str
    tenant: str = "system"
    dividers: tuple[str, ...] = ()  # droplet names acting as dividers


@dataclass(frozen=True)
class NetworkInfo:
    vni: int
    name: str
    cidr: str
    gateway: str = ""
    bouncers: tuple[str, ...] = ()  # droplet names acting as bouncers


@dataclass(frozen=True)
class EndpointInfo:
    vni: int
    network: str
    ip: str
    mac: str
    host: str  # droplet name
    veth: str = ""  # host-side interface (in the droplet)
    netns: str | None = None  # endpoint namespace (netns lab / pods)
    kind: str = "simple"  # "simple" | "scaled" (virtual IP over backends)
    backends: tuple[str, ...] = ()  # scaled endpoint: backend endpoint IPs
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


class DataplaneError(RuntimeError):
    """A dataplane operation failed; the message is one line (host, object, reason)."""


class Unsupported(DataplaneError):
    """The dataplane has no such feature (e.g. scaled endpoints on ``bridge-vxlan``)."""


@runtime_checkable
class Dataplane(Protocol):
    """Constructed as ``cls(options: dict[str, str] | None)``; a lab passes ``lab_id`` and
    ``state_dir`` in the options plus whatever the user gave (``--lab netns,dataplane=X,k=v``)."""

    name: str

    def daemon_argv(self, droplet: DropletInfo) -> list[str] | None:
        """Command the lab must keep running on ``droplet`` before :meth:`setup_host` (transitd), or
        None. The lab owns the process (it runs it in the droplet's netns / over ssh and kills it)."""

    def close(self) -> None:
        """Drop client connections (not the hosts' state)."""

    def setup_host(self, droplet: DropletInfo) -> None:
        """Prepare a droplet (attach programs / create bridge and VXLAN device). Idempotent."""

    def teardown_host(self, droplet: DropletInfo) -> None:
        """Undo :meth:`setup_host`; idempotent, safe after a crash."""

    def apply_vpc(self, vpc: VpcInfo, hosts: list[DropletInfo]) -> None: ...

    def apply_network(self, net: NetworkInfo, hosts: list[DropletInfo]) -> None: ...

    def apply_endpoint(self, ep: EndpointInfo, hosts: list[DropletInfo]) -> None:
        """Program ``ep`` on exactly ``hosts`` (its own host and its network's bouncers)."""

    def remove_endpoint(self, ep: EndpointInfo, hosts: list[DropletInfo]) -> None: ...

    def stats(self, droplet: DropletInfo) -> dict[str, int]:
        """Counters (forwarded, dropped by reason, bounced, ...) of one host."""
