"""What the conformance suite needs from a control plane under test.

A target is either started by the project (``builtin``) or already running somewhere
(``kubeconfig=PATH``). Tests ask the target for clients and kubeconfigs per (tenant, user) and
check :meth:`Target.capabilities` before using an optional feature: a test whose feature the
target lacks is reported ``not-applicable`` -- never silently passed -- unless the target lists the
feature in its optional ``promised_capabilities`` attribute (the builtin target promises all of
them): then the missing feature fails the test, because it is simply not built yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from centaurus.client.rest import ApiClient
    from centaurus.labs.base import Lab

#: Capability names a target may declare. Tests name the ones they need.
CAPABILITIES: dict[str, str] = {
    "api": "Kubernetes core API (namespaces, pods, configmaps, ...)",
    "tenants": "Arktos tenants API and tenant from credentials (short path)",
    "tenant-paths": "Arktos tenant-scoped paths /api/v1/tenants/{t}/...",
    "rbac": "RBAC authorization inside a tenant",
    "data-partitions": "store sharded by tenant into data partitions",
    "api-partitions": "several API server partitions behind one cluster",
    "nodes": "node agents that run real workloads",
    "hollow-nodes": "hollow nodes for scale runs",
    "vm-pods": "VM pods (spec.virtualMachine) and pod actions",
    "networks": "Arktos Network objects",
    "mizar": "Mizar management plane (VPC/Net/Endpoint/... objects) and XDP overlay",
    "active-active": "active-active controllers partitioned by hash",
    "ha": "multi-AZ control plane on quorum storage",
    "edge": "Fornax edge layer (missions, edge clusters, gateways)",
    "csi": "CSI volumes",
    "portal": "management portal",
    "tenant-partitions": "regional control plane of tenant partitions and resource managers",
    "fault-injection": "components()/stop_component()/start_component() for failure tests",
}


@dataclass
class TargetContext:
    """What a target gets when it is brought up."""

    state_dir: Path
    lab: Lab | None = None
    profile: str = "smoke"
    options: dict[str, str] = field(default_factory=dict)


class TargetError(RuntimeError):
    """The target cannot be brought up or reached; the message says why in one line."""


@runtime_checkable
class Target(Protocol):
    name: str

    def capabilities(self) -> frozenset[str]:
        """Subset of :data:`CAPABILITIES` this target really provides."""

    def up(self, ctx: TargetContext) -> None:
        """Start (builtin) or connect to (kubeconfig) the control plane. Raises TargetError."""

    def down(self) -> None:
        """Stop what :meth:`up` started; idempotent, safe after a crash."""

    def kubeconfig(self, tenant: str = "system", user: str = "admin") -> Path:
        """A kubeconfig file for ``user`` of ``tenant`` (created on demand where possible)."""

    def client(self, tenant: str = "system", user: str = "admin") -> ApiClient:
        """A REST client authenticated as ``user`` of ``tenant``."""

    def ensure_tenant(self, name: str) -> None:
        """Create tenant ``name`` if missing and wait until it is Active."""

    def describe(self) -> dict[str, Any]:
        """Facts for the report: name, server URL, versions, store, partitions, ..."""
