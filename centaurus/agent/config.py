"""Node agent configuration: one JSON file per agent (what the lab hook and ``centaurus node``
write), so a restarted agent comes back with exactly the same identity."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

AGENT_CLIENT_CN = "kube-apiserver-kubelet-client"  # the only client the agent's endpoint serves
ENDPOINT_ANNOTATION = "centaurus.io/agent-endpoint"
HOLLOW_LABEL = "centaurus.io/hollow"
ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"
SITE_TYPE_LABEL = "centaurus.io/site-type"
SITE_LABEL = "centaurus.io/site"
LEASE_NAMESPACE = "kube-node-lease"


@dataclass
class AgentConfig:
    node_name: str
    kubeconfig: str
    state_dir: str
    host_ip: str = "127.0.0.1"
    zone: str = "az1"
    region: str = "region-1"
    site_type: str = "cloud"  # cloud | edge
    site: str = ""  # default: the zone
    labels: dict[str, str] = field(default_factory=dict)
    #: network hook (``centaurus.netplugs``): flat | none | (mizar)
    network: str = "flat"
    network_options: dict[str, str] = field(default_factory=dict)
    netns: str | None = None  # where pod veths go (lab droplet netns)
    pod_cidr: str | None = None
    cluster_cidr: str = "10.244.0.0/16"
    mtu: int = 1500
    #: runtime per workload kind: containers and VMs
    container_runtime: str = "process"
    vm_runtime: str = "vm"
    runtime_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the agent's own HTTPS endpoint (exec/logs/port-forward), serving cert signed by the cluster CA
    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    tls_cert: str = ""
    tls_key: str = ""
    client_ca: str = ""
    allowed_clients: list[str] = field(default_factory=lambda: [AGENT_CLIENT_CN])
    #: capacity advertised in the Node object
    cpu: str = "2"
    memory: str = "4Gi"
    pods: int = 110
    #: kubelet timings
    lease_duration_seconds: int = 40
    lease_renew_seconds: float = 10.0
    node_status_seconds: float = 60.0
    backoff_base_seconds: float = 10.0
    backoff_max_seconds: float = 300.0
    status_concurrency: int = 16
    #: exit (tearing everything down) when this process is gone: a harness that crashed must not
    #: leave agents behind; 0 = run until stopped (``centaurus lab up`` outlives its CLI)
    owner_pid: int = 0
    log_level: str = "INFO"

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir)

    def dump(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> AgentConfig:
        doc = json.loads(Path(path).read_text())
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ValueError(f"{path}: unknown agent config field(s) {', '.join(unknown)}")
        return cls(**doc)
