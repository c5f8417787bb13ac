"""``flat``: the plain kernel pod network (Arktos' "flat" network type; the baseline).

Per node: a bridge (``cl-pbr``) in the node's network namespace (the lab droplet) carrying the
gateway address of the node's pod CIDR; per pod: a network namespace ``cl-pod-<uid>`` and a veth
pair, ``eth0`` inside the pod (address, default route via the gateway) and ``clv<hash>`` on the
bridge. Between nodes: one route per other node's pod CIDR via that node's substrate address
(host-gw style -- the droplets share the substrate link, so no tunnel is needed), kept in sync
with the Node objects (``spec.podCIDR`` + ``InternalIP``) by a watch.

Speed: the pod namespace is created in-process (:mod:`.nsops`) and everything else is five
netlink messages (:mod:`.rtnl`) from one worker thread: ~1 ms, no process per pod.
Crash safety: a pod's state file is written *before* anything is created, so teardown after an
agent crash finds the namespace, the veth and the address.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import logging
import os
from pathlib import Path
from typing import Any

from centaurus.netplug import nsops, podfiles
from centaurus.netplug.base import NetworkError, NodeNet, PodNetRequest, PodNetResult
from centaurus.netplug.ipam import Pool
from centaurus.netplug.rtnl import Netlink, NetlinkError
from centaurus.runtimes.podstate import write_atomic

log = logging.getLogger("centaurus.netplug.flat")
BRIDGE = "cl-pbr"
HOLLOW_SELECTOR = "centaurus.io/hollow!=true"


def host_ifname(uid: str, node: str) -> str:
    return "clv" + hashlib.sha256(f"{node}/{uid}".encode()).hexdigest()[:12]


def pod_mac(uid: str) -> str:
    h = hashlib.sha256(("mac/" + uid).encode()).digest()
    return "0a:" + ":".join(f"{b:02x}" for b in h[:5])  # locally administered, unicast


class FlatHook:
    name = "flat"

    def __init__(self, options: dict[str, str] | None = None) -> None:
        self.options = dict(options or {})
        self.bridge = self.options.get("bridge", BRIDGE)
        self.node: NodeNet | None = None
        self.pool: Pool | None = None
        self.worker: nsops.NsWorker | None = None
        self.nl: Netlink | None = None  # bound to the node's netns
        self.bridge_index = 0
        self.pods: dict[str, PodNetResult] = {}
        self.routes: dict[str, tuple[str, str]] = {}  # node -> (cidr, via)
        self._route_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # ---- node ----------------------------------------------------------------------------------
    @property
    def dir(self) -> Path:
        assert self.node is not None
        return self.node.state_dir / "flat"

    async def start(self, node: NodeNet) -> dict[str, Any]:
        self.node = node
        cidr = node.pod_cidr or await self._choose_cidr(node)
        await asyncio.to_thread((self.dir / "pods").mkdir, parents=True, exist_ok=True)
        state = await asyncio.to_thread(self._load_node_state)
        if state.get("podCIDR") and state["podCIDR"] != cidr:
            raise NetworkError(
                f"node {node.node_name} had pod CIDR {state['podCIDR']}, now given {cidr}: "
                "remove its pods first",
                "InvalidPodCIDR",
            )
        self.pods = await asyncio.to_thread(podfiles.load_states, self.dir)
        self.pool = Pool(cidr, [p.ip for p in self.pods.values()], int(state.get("cursor", 0)))
        self.worker = nsops.NsWorker()
        gw, plen, mtu = self.pool.gateway, self.pool.prefix_len, node.mtu

        def init() -> tuple[Netlink, int]:
            nl = Netlink()
            try:
                nl.bridge_add(self.bridge, mtu=mtu)
                idx = nl.link_index(self.bridge)
                if idx is None:
                    raise NetworkError(f"bridge {self.bridge} vanished", "NetworkNotReady")
                nl.addr_add(idx, gw, plen)
                with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
                    f.write("1\n")
                return nl, idx
            except BaseException:
                nl.close()
                raise

        def init_in_ns() -> tuple[Netlink, int]:
            assert self.worker is not None
            if not node.netns:
                return init()
            fd = nsops.open_netns(node.netns)
            try:
                return self.worker.in_netns(fd, init)
            finally:
                os.close(fd)

        try:
            self.nl, self.bridge_index = await self.worker.call(init_in_ns)
        except (OSError, NetworkError) as exc:
            raise NetworkError(f"flat network on node {node.node_name}: {exc}", "NetworkNotReady") from exc
        await asyncio.to_thread(self._save_node_state)
        if node.client is not None:
            self._route_task = asyncio.ensure_future(self._sync_routes())
        return {"podCIDR": cidr}

    async def _choose_cidr(self, node: NodeNet) -> str:
        """No CIDR given: the lowest /24 of the cluster CIDR no other node holds (best effort --
        operators that start agents concurrently should pass one, as the lab hook does)."""
        from centaurus.netplug.ipam import node_cidr

        taken: set[str] = set()
        if node.client is not None:
            nodes = await node.client.list("nodes", label_selector=HOLLOW_SELECTOR)
            for n in nodes.get("items", []):
                if n["metadata"]["name"] != node.node_name and (n.get("spec") or {}).get("podCIDR"):
                    taken.add(n["spec"]["podCIDR"])
                elif n["metadata"]["name"] == node.node_name and (n.get("spec") or {}).get("podCIDR"):
                    return str(n["spec"]["podCIDR"])
        for i in range(4096):
            cidr = node_cidr(node.cluster_cidr, i)
            if cidr not in taken:
                return cidr
        raise NetworkError(f"cluster CIDR {node.cluster_cidr} is full", "InvalidPodCIDR")

    def _load_node_state(self) -> dict[str, Any]:
        with contextlib.suppress(FileNotFoundError, ValueError):
            return dict(json.loads((self.dir / "node.json").read_text()))
        return {}

    def _save_node_state(self) -> None:
        assert self.pool is not None
        write_atomic(
            self.dir / "node.json",
            json.dumps(
                {
                    "podCIDR": str(self.pool.net),
                    "cursor": self.pool.cursor,
                    "bridge": self.bridge,
                    "netns": self.node.netns if self.node else None,
                    "routes": sorted(self.routes.values()),
                }
            ),
        )

    # ---- routes to other nodes -----------------------------------------------------------------
    async def _sync_routes(self) -> None:
        assert self.node is not None
        me = self.node.node_name
        seen: dict[str, tuple[str, str]] = {}
        while True:
            try:
                async for ev in self.node.client.list_watch("nodes", label_selector=HOLLOW_SELECTOR):
                    if ev["type"] == "SYNC":
                        seen = {}
                        for n in ev["items"]:
                            self._note(seen, n)
                    elif ev["type"] == "DELETED":
                        seen.pop(ev["object"]["metadata"]["name"], None)
                    else:
                        self._note(seen, ev["object"])
                    seen.pop(me, None)
                    await self._apply_routes(dict(seen))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the watch broke: keep the routes, retry
                log.warning("node watch for routes failed: %s", exc)
                await asyncio.sleep(1.0)

    @staticmethod
    def _note(seen: dict[str, tuple[str, str]], n: dict[str, Any]) -> None:
        cidr = (n.get("spec") or {}).get("podCIDR")
        ip = next(
            (
                a["address"]
                for a in (n.get("status") or {}).get("addresses", [])
                if a.get("type") == "InternalIP"
            ),
            None,
        )
        if cidr and ip:
            seen[n["metadata"]["name"]] = (str(cidr), str(ip))

    async def _apply_routes(self, want: dict[str, tuple[str, str]]) -> None:
        assert self.worker is not None and self.nl is not None
        nl = self.nl
        adds = [v for k, v in want.items() if self.routes.get(k) != v]
        dels = [v for k, v in self.routes.items() if k not in want or want[k] != v]
        if not adds and not dels:
            return
        own = str(self.pool.net) if self.pool else ""

        def apply() -> None:
            for cidr, via in dels:
                with contextlib.suppress(NetlinkError):
                    nl.route_del(cidr, via)
            for cidr, via in adds:
                if cidr == own:
                    continue
                try:
                    nl.route_replace(cidr, via)
                except NetlinkError as exc:
                    log.warning("route %s via %s: %s", cidr, via, exc)

        await self.worker.call(apply)
        self.routes = want
        await asyncio.to_thread(self._save_node_state)

    # ---- pods ----------------------------------------------------------------------------------
    async def setup(self, pod: PodNetRequest) -> PodNetResult:
        if self.node is None or self.pool is None or self.worker is None or self.nl is None:
            raise NetworkError("flat network hook not started", "NetworkNotReady")
        if pod.uid in self.pods:
            return self.pods[pod.uid]
        async with self._lock:
            ip = self.pool.allocate()
        name = podfiles.pod_netns_name(pod.uid)
        res = PodNetResult(
            netns_path=str(nsops.netns_path(name)),
            ip=ip,
            prefix_len=self.pool.prefix_len,
            gateway=self.pool.gateway,
            mac=pod_mac(pod.uid),
            extra={"netns": name, "hostIf": host_ifname(pod.uid, self.node.node_name)},
        )
        self.pods[pod.uid] = res
        state = podfiles.state_path(self.dir, pod.uid)
        text = json.dumps(res.__dict__)
        nl, worker, bridge, mtu = self.nl, self.worker, self.bridge_index, self.node.mtu

        def work() -> None:
            write_atomic(state, text)  # intent first: a crash below leaves something teardown finds
            nsfd, pod_nl = worker.create_netns(name, _lo_up_socket)
            try:
                nl.veth_add(
                    res.extra["hostIf"], "eth0", peer_netns_fd=nsfd, master=bridge, mtu=mtu, peer_mac=res.mac
                )
                idx = pod_nl.link_index("eth0")
                if idx is None:
                    raise NetworkError("eth0 did not appear in the pod namespace")
                pod_nl.link_set(idx, up=True)
                pod_nl.addr_add(idx, ip, res.prefix_len)
                pod_nl.route_replace(None, res.gateway)
            finally:
                pod_nl.close()
                os.close(nsfd)

        try:
            await worker.call(work)
        except (OSError, NetworkError) as exc:
            await self.teardown(pod.uid)
            raise NetworkError(f"pod {pod.namespace}/{pod.name}: {exc}", "NetworkSetupFailed") from exc
        await asyncio.to_thread(self._save_node_state)
        return res

    async def teardown(self, uid: str) -> None:
        res = self.pods.pop(uid, None)
        path = podfiles.state_path(self.dir, uid) if self.node else None
        if res is None:
            res = await podfiles.read_state(path)
        if res is None:
            return
        await podfiles.unplumb(self.worker, self.nl, res, path)
        if self.pool is not None and res.ip and ipaddress.ip_address(res.ip) in self.pool.net:
            self.pool.release(res.ip)

    async def existing(self) -> dict[str, PodNetResult]:
        return dict(self.pods)

    async def close(self) -> None:
        if self._route_task is not None:
            self._route_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._route_task
        await podfiles.close_worker(self.worker, self.nl)
        self.worker = self.nl = None

    async def destroy(self) -> None:
        """Remove the node-level setup (routes, bridge) after every pod was torn down."""
        if self.worker is None or self.nl is None:
            return
        nl, routes = self.nl, list(self.routes.values())

        def work() -> None:
            for cidr, via in routes:
                with contextlib.suppress(NetlinkError):
                    nl.route_del(cidr, via)
            with contextlib.suppress(NetlinkError):
                nl.link_del(self.bridge)

        await self.worker.call(work)
        self.routes = {}
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread((self.dir / "node.json").unlink)

    @staticmethod
    async def purge_offline(node: NodeNet) -> None:
        """Remove what a (crashed) flat hook left on this node, from its state files alone: pod
        namespaces and veths, routes to other nodes, the bridge."""
        d = node.state_dir / "flat"

        def work() -> None:
            try:
                state = json.loads((d / "node.json").read_text())
            except (OSError, ValueError):
                state = {}
            pods = []
            for p in (d / "pods").glob("*.json") if (d / "pods").exists() else []:
                with contextlib.suppress(OSError, ValueError):
                    pods.append(json.loads(p.read_text()))
            netns = state.get("netns") or node.netns
            for pod in pods:
                name = (pod.get("extra") or {}).get("netns")
                if name:
                    nsops.delete_netns(name)

            def in_node() -> None:
                with Netlink() as nl:
                    for pod in pods:
                        host_if = (pod.get("extra") or {}).get("hostIf")
                        if host_if:
                            with contextlib.suppress(NetlinkError):
                                nl.link_del(host_if)
                    for cidr, via in state.get("routes") or []:
                        with contextlib.suppress(NetlinkError):
                            nl.route_del(cidr, via)
                    with contextlib.suppress(NetlinkError):
                        nl.link_del(state.get("bridge") or BRIDGE)

            if netns and nsops.exists(netns):
                w = nsops.NsWorker("cl-purge")
                try:
                    fd = nsops.open_netns(netns)
                    try:
                        w.run_sync(lambda: w.in_netns(fd, in_node))
                    finally:
                        os.close(fd)
                finally:
                    w.close()
            import shutil

            shutil.rmtree(d, ignore_errors=True)

        await asyncio.to_thread(work)


def _lo_up_socket() -> Netlink:
    """(inside a new pod netns) a netlink socket bound to it, with ``lo`` brought up."""
    nl = Netlink()
    try:
        nl.link_set(1, up=True)
    except BaseException:
        nl.close()
        raise
    return nl
