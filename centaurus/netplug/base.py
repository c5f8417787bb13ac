"""The pod network hook: how a pod gets its interface and address before it runs.

The node agent calls one :class:`NetworkHook` per node, chosen by name from the
``centaurus.netplugs`` entry-point group (``flat`` = plain kernel path: a bridge per node and
routes between nodes, Arktos' "flat" network type; ``none`` = no pod network, hollow nodes;
the Network-control issue adds ``mizar``: Endpoint objects provisioned through transitd).

Contract (the agent relies on it):

* ``await hook.start(node)`` once per agent start, with the node's facts (:class:`NodeNet`);
  node-level setup (bridge, routes to other nodes, daemon connections) happens here. Returns what
  goes into the Node object (``spec.podCIDR``) -- a hook may choose the CIDR itself.
* ``await hook.setup(pod)`` creates the pod's network namespace and interface and returns a
  :class:`PodNetResult`; it is on every pod's startup path, so it must be fast (one batch of
  netlink messages, no process per pod) and must leave nothing behind when it fails. Its time is
  reported by the agent as the pod's ``network`` startup phase.
* ``await hook.teardown(uid)`` is idempotent and works after an agent restart (state on disk).
* ``await hook.existing()`` lists what is set up on this node (uids -> results), so a restarted
  agent adopts pods and removes orphans.
* ``await hook.close()`` drops connections and leaves pods' networking in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

GROUP = "centaurus.netplugs"


class NetworkError(RuntimeError):
    """A pod's network could not be set up; ``reason`` ends up in the pod's events/status."""

    def __init__(self, message: str, reason: str = "NetworkNotReady") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class NodeNet:
    """What a hook knows about its node."""

    node_name: str
    host_ip: str  # the node's address on the substrate (pods' hostIP)
    state_dir: Path  # private to this hook instance
    netns: str | None = None  # where pod veths go (the lab droplet's netns); None = this netns
    pod_cidr: str | None = None  # given by the operator (lab hook); None = the hook chooses
    cluster_cidr: str = "10.244.0.0/16"
    mtu: int = 1500
    client: Any = None  # centaurus.client.aio.AsyncClient (routes to other nodes, Mizar objects)
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass
class PodNetRequest:
    uid: str
    tenant: str
    namespace: str
    name: str
    vm: bool = False
    network: str = ""  # Arktos network name (label arktos.futurewei.com/network), "" = default
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass
class PodNetResult:
    netns_path: str | None  # /run/netns/<name>; None = no network namespace (hollow)
    ip: str
    prefix_len: int = 24
    gateway: str | None = None
    mac: str | None = None
    interface: str = "eth0"
    extra: dict[str, Any] = field(default_factory=dict)  # hook-specific (veth name, endpoint)


@runtime_checkable
class NetworkHook(Protocol):
    name: str

    async def start(self, node: NodeNet) -> dict[str, Any]:
        """Node-level setup; returns Node fields to publish, e.g. ``{"podCIDR": "10.244.1.0/24"}``."""

    async def setup(self, pod: PodNetRequest) -> PodNetResult: ...

    async def teardown(self, uid: str) -> None: ...

    async def existing(self) -> dict[str, PodNetResult]: ...

    async def close(self) -> None: ...


def load_hook(name: str, options: Mapping[str, str] | None = None) -> NetworkHook:
    """The hook registered as ``name`` in the ``centaurus.netplugs`` entry-point group (a group of
    its own rather than a harness axis: users pick it per node, not per conformance run)."""
    from importlib.metadata import entry_points

    eps = {ep.name: ep for ep in entry_points(group=GROUP)}
    if name not in eps:
        raise NetworkError(
            f"unknown network hook {name!r} (available: {', '.join(sorted(eps)) or 'none'})", "InvalidNetwork"
        )
    hook: NetworkHook = eps[name].load()(dict(options or {}))
    return hook
