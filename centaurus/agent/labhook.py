"""The builtin target's node hook: one real node agent per lab droplet.

When the builtin target runs with a lab, each droplet becomes a Node: its agent process lives in
the root network namespace, its pods' interfaces go into the droplet's namespace (flat network:
bridge ``cl-pbr`` with the gateway of the droplet's pod CIDR, routes to the other droplets over
the substrate). Node labels come from the lab spec (zone, site type). Without a lab there are no
real nodes (hollow ones come from ``target.add_hollow_nodes``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from centaurus.agent.config import AgentConfig
from centaurus.agent.fleet import Fleet, agent_credentials
from centaurus.netplug.ipam import node_cidr

log = logging.getLogger("centaurus.agent.labhook")
CLUSTER_CIDR = "10.244.0.0/16"
#: droplets share this machine's cores; TCG guests and busybox containers idle most of the time,
#: so each droplet advertises an overcommitted share (``--target builtin,node_cpu=N`` to change)
NODE_CPU = "16"


def _memory_share(n: int) -> str:
    """This machine's memory split evenly over the droplets, in Gi."""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        return "4Gi"
    return f"{max(1, kib // (1024 * 1024) // max(1, n))}Gi"


def lab_agent_configs(
    lab: Any, cp_dir: Path, server: str, fleet: Fleet, opts: dict[str, Any], owner_pid: int = 0
) -> list[AgentConfig]:
    """One agent config per lab droplet (and edge host) of the control plane in ``cp_dir``."""
    from centaurus.controlplane.credentials import mint_kubeconfig

    cluster = str(opts.get("pod_cidr") or CLUSTER_CIDR)
    network = str(opts.get("network") or _default_network(lab))
    hosts = sorted([*lab.hosts("droplet"), *lab.hosts("edge")], key=lambda h: h.name)
    spec = getattr(lab, "spec", None)
    zones = {d.name: d.zone for d in getattr(spec, "droplets", ())}
    configs = []
    for i, h in enumerate(hosts):
        d = fleet.node_dir(h.name)
        d.mkdir(parents=True, exist_ok=True)
        kc = d / "kubeconfig"
        if not kc.exists():
            mint_kubeconfig(
                cp_dir,
                server,
                "system",
                f"system:node:{h.name}",
                kc,
                groups=["system:masters", "system:nodes"],
            )
        crt, key, ca = agent_credentials(cp_dir / "pki", d, ["127.0.0.1", "localhost"])
        zone = h.zone or zones.get(h.name) or "az1"
        edge = h.role == "edge"
        configs.append(
            AgentConfig(
                node_name=h.name,
                kubeconfig=str(kc),
                state_dir=str(d / "state"),
                host_ip=h.address or "127.0.0.1",
                zone=zone,
                site_type="edge" if edge else "cloud",
                site=str(h.labels.get("centaurus.io/site") or zone),
                labels={k: v for k, v in h.labels.items() if "/" in k},
                network=network,
                network_options=_network_options(lab, network, h.name),
                netns=h.netns,
                pod_cidr=node_cidr(cluster, i),
                cluster_cidr=cluster,
                tls_cert=crt,
                tls_key=key,
                client_ca=ca,
                owner_pid=owner_pid,
                backoff_base_seconds=float(opts.get("backoff_base", 10.0)),
                runtime_options={"vm": {"boot": str(opts.get("vm_boot") or "auto")}},
                cpu=str(opts.get("node_cpu") or NODE_CPU),
                memory=str(opts.get("node_memory") or _memory_share(len(hosts))),
                log_level=str(opts.get("agent_log_level") or "INFO"),
            )
        )
    return configs


def _default_network(lab: Any) -> str:
    """Pods join the lab's dataplane: the Mizar XDP overlay when the lab runs it and the ``mizar``
    hook is installed, else the plain kernel path (``flat``)."""
    from importlib.metadata import entry_points

    from centaurus.netplug.base import GROUP

    dp = getattr(getattr(lab, "dataplane", None), "name", "")
    if dp == "mizar-xdp" and any(ep.name == "mizar" for ep in entry_points(group=GROUP)):
        return "mizar"
    return "flat"


def _network_options(lab: Any, network: str, host: str) -> dict[str, str]:
    if network != "mizar":
        return {}
    try:
        d = lab.droplet(host)
    except Exception:  # an edge host that is no droplet
        return {"droplet": host}
    return {"transitd": str(getattr(d, "transitd", "") or ""), "droplet": host}


def node_hook(target: Any, ctx: Any) -> Callable[[], None] | None:
    """Hollow nodes on demand (always) and one real agent per lab droplet (with a lab)."""
    from centaurus.agent.targethooks import AgentComponents, HollowNodes, resource_usage

    opts = {**dict(getattr(target, "options", {}) or {}), **dict(ctx.options or {})}

    def hollow_network() -> str:
        # pods on hollow nodes get Mizar endpoints when the target runs the Mizar management plane
        # (SCALE-3 measures its per-endpoint cost); option hollow_network=none|mizar overrides
        if opts.get("hollow_network"):
            return str(opts["hollow_network"])
        return "mizar" if "mizar" in target.capabilities() else "none"

    hollow = HollowNodes(
        Path(ctx.state_dir), Path(target.kubeconfig()), {k: str(v) for k, v in opts.items()}, hollow_network
    )
    if hasattr(target, "add_hook_method"):
        target.add_hook_method("add_hollow_nodes", hollow.add_hollow_nodes)
        target.add_hook_method("remove_hollow_nodes", hollow.remove_hollow_nodes)
        target.add_hook_method("hollow_stats", hollow.stats)
        target.add_hook_method("resource_usage", lambda: resource_usage(Path(ctx.state_dir)))
        target.add_capability("hollow-nodes")
    fleet: Fleet | None = None
    if ctx.lab is not None:
        fleet = Fleet(ctx.state_dir)
        fleet.stop(teardown=True)  # leftovers of a crashed run under this state dir
        server = target._need_up().load().server
        configs = lab_agent_configs(ctx.lab, Path(ctx.state_dir), server, fleet, opts, owner_pid=os.getpid())
        procs = [fleet.spawn(c) for c in configs]
        try:
            fleet.wait_started(procs)
        except BaseException:  # also a caller's timeout or ^C: the agents run in their own sessions
            fleet.stop(teardown=True, timeout=5)
            raise
        target.add_capability("nodes", "vm-pods")
        target._agent_fleet = fleet
        if hasattr(target, "add_component_provider"):
            target.add_component_provider(AgentComponents(fleet, {c.node_name: c.zone for c in configs}))

    def stop() -> None:
        hollow.stop()
        if fleet is not None:
            fleet.stop(teardown=True)

    return stop
