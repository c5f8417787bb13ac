"""Names, labels, phases and status helpers of the management-plane objects (pure data).

Where objects live: Mizar has no tenants, so its infrastructure objects (Vpc, Subnet, Bouncer,
Divider, Droplet) live in one place, the system tenant's ``default`` namespace (Mizar's own
namespace); a tenant reaches them only through its Arktos ``Network`` objects, whose controller
names the VPC ``<tenant>.<vpcID>`` (a tenant name holds no dot, so these never collide). Endpoints
are per pod and live with the pod (its tenant and namespace, same name), which is where a tenant
sees them. Every Vpc records its tenant in a label; an Endpoint may only join a VPC of its own
tenant.

Pipeline state is ``status.phase`` (Mizar kept it in ``spec.status``; the conformance suite
accepts both), the instance that handled it in ``status.operator`` and the annotation
``mizar.com/operator``, the reason of a wait or a failure in ``status.reason``.
"""

from __future__ import annotations

import ipaddress
import time
from datetime import UTC, datetime
from typing import Any

GROUP = "mizar.com"
VERSION = "v1"
GV = f"{GROUP}/{VERSION}"
NETWORK_GROUP = "arktos.futurewei.com"
NETWORK_GV = f"{NETWORK_GROUP}/v1"

SYSTEM = "system"
#: the namespace (system tenant) of Vpc, Subnet, Bouncer, Divider and Droplet objects
MIZAR_NS = "default"

# plural -> kind of the management-plane objects
KINDS = {
    "vpcs": "Vpc",
    "subnets": "Subnet",
    "endpoints": "Endpoint",
    "droplets": "Droplet",
    "bouncers": "Bouncer",
    "dividers": "Divider",
}

# phases
INIT = "Init"
PROVISIONED = "Provisioned"
FAILED = "Failed"
TERMINATING = "Terminating"

# labels and annotations
L_VPC = "mizar.com/vpc"
L_SUBNET = "mizar.com/subnet"
L_DROPLET = "mizar.com/droplet"
L_HOLLOW = "mizar.com/hollow"
L_POD_UID = "mizar.com/pod-uid"
L_TENANT = "arktos.futurewei.com/tenant"
L_NETWORK = "arktos.futurewei.com/network"
A_OPERATOR = "mizar.com/operator"
FINALIZER = "mizar.com/operator"

Obj = dict[str, Any]


def now_ts(t: float | None = None) -> str:
    """RFC 3339 with microseconds: provisioning is measured in milliseconds."""
    return datetime.fromtimestamp(time.time() if t is None else t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(s: str | None) -> float | None:
    if not s:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(s, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return None


def md(obj: Obj) -> Obj:
    m: Obj = obj.setdefault("metadata", {})
    return m


def spec(obj: Obj) -> Obj:
    s = obj.get("spec")
    return s if isinstance(s, dict) else {}


def status(obj: Obj) -> Obj:
    s = obj.get("status")
    return s if isinstance(s, dict) else {}


def phase(obj: Obj) -> str:
    """Pipeline phase: ``status.phase``, else Mizar's ``spec.status``, else Init."""
    return str(status(obj).get("phase") or spec(obj).get("status") or INIT)


def is_provisioned(obj: Obj | None) -> bool:
    return obj is not None and phase(obj) == PROVISIONED and not deleting(obj)


def deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def labels(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def tenant_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("tenant") or SYSTEM)


def namespace_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def key_of(obj: Obj) -> str:
    """The runtime's object key ``tenant/namespace/name``."""
    m = obj.get("metadata") or {}
    return f"{m.get('tenant') or ''}/{m.get('namespace') or ''}/{m.get('name') or ''}"


def mizar_key(name_: str) -> str:
    """Key of a Vpc/Subnet/Bouncer/Divider/Droplet object (system tenant, Mizar's namespace)."""
    return f"{SYSTEM}/{MIZAR_NS}/{name_}"


def vpc_tenant(vpc: Obj) -> str:
    """The tenant a VPC belongs to (its label; VPCs the system admin makes are the system's)."""
    return labels(vpc).get(L_TENANT) or SYSTEM


def cidr_of(obj: Obj) -> ipaddress.IPv4Network:
    """A Vpc's or Subnet's CIDR from Mizar's ``spec.ip`` + ``spec.prefix`` (or ``spec.cidr``)."""
    s = spec(obj)
    text = s.get("cidr") or f"{s.get('ip', '')}/{s.get('prefix', '')}"
    return ipaddress.IPv4Network(str(text), strict=True)


def gateway_of(cidr: ipaddress.IPv4Network) -> str:
    return str(cidr.network_address + 1)


def count(value: Any, default: int, lo: int, hi: int) -> int:
    """A count field (``spec.bouncers``, ``spec.dividers``): int or numeric string, clamped."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = default
    return max(lo, min(hi, n))


def bouncer_name(subnet: str, droplet: str) -> str:
    return f"{subnet}-b-{droplet}"


def divider_name(vpc: str, droplet: str) -> str:
    return f"{vpc}-d-{droplet}"


def network_vpc_name(tenant: str, vpc_id: str) -> str:
    """The Mizar VPC of an Arktos Network (``<tenant>.<vpcID>``; tenant names hold no dot)."""
    return f"{tenant}.{vpc_id}"


def network_subnet_name(tenant: str, network: str) -> str:
    return f"{tenant}.{network}"


def is_hollow(obj: Obj) -> bool:
    return labels(obj).get(L_HOLLOW) == "true"
