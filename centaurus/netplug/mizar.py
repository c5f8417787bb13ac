"""``mizar``: pods on the Mizar XDP overlay -- the node end of the provisioning path.

Per node (:meth:`MizarHook.start`): register the node's Droplet object (system tenant, Mizar's
namespace; ip/mac from its transit daemon, which the endpoint operator will program) and open
ONE watch on the endpoints of this droplet (label ``mizar.com/droplet``), through which every
pod waits for its own endpoint.

Per pod (:meth:`MizarHook.setup`), on the pod's startup path:

1. the pod's Network (label ``arktos.futurewei.com/network``, else the tenant's ``default``) must
   be a Ready ``mizar`` network: its status names the Mizar VPC and subnet;
2. the pod's namespace ``cl-pod-<uid>`` and a veth: ``eth0`` inside (its MAC is the endpoint's,
   XDP_PASS attached -- frames the overlay redirects into a veth need a program on the peer --,
   TX checksum offload off: XDP moves frames, it never finishes checksums), ``clm<hash>`` in the
   droplet's namespace, where transitd attaches the transit agent;
3. the Endpoint object (pod's tenant/namespace, named after the pod, owned by the pod): the
   endpoint operator allocates the address and programs the endpoint's host and its network's
   bouncers -- nothing else -- through transitd, then marks it Provisioned;
4. with the address from the Endpoint: ``eth0`` gets it and a default route via the subnet's
   gateway (answered by the agent's ARP responder). Only now is the pod's network ready.

A VM pod gets the same ``eth0``; the VM runtime hands its identity to the guest (one dataplane
for containers and VMs). :meth:`teardown` deletes the Endpoint -- its finalizer makes the
operator remove it from every host it was programmed on -- waits for that (bounded), then
removes the veth and the namespace. State per pod is written before anything is created, so a
restarted agent adopts or removes what an earlier one left (:meth:`existing`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any

from centaurus.client.rest import ApiError
from centaurus.mizar import model as M
from centaurus.mizar.podendpoint import ProvisionWaiters, pod_endpoint
from centaurus.mizar.transit import TransitPool
from centaurus.netplug import nsops, podfiles
from centaurus.netplug.base import NetworkError, NodeNet, PodNetRequest, PodNetResult
from centaurus.netplug.rtnl import Netlink, NetlinkError
from centaurus.transitd.rpc import TransitError

log = logging.getLogger("centaurus.netplug.mizar")
NETWORK_LABEL = "arktos.futurewei.com/network"
Obj = dict[str, Any]


def host_ifname(uid: str, droplet: str) -> str:
    return "clm" + hashlib.sha256(f"{droplet}/{uid}".encode()).hexdigest()[:12]


def pod_mac(uid: str) -> str:
    h = hashlib.sha256(("mizar-mac/" + uid).encode()).digest()
    return "0e:" + ":".join(f"{b:02x}" for b in h[:5])  # locally administered, unicast


async def resolve_network(
    api: Any, pod: PodNetRequest, cache: dict[tuple[str, str], tuple[float, Obj]]
) -> Obj:
    """The pod's Network (label ``arktos.futurewei.com/network``, else the tenant's ``default``):
    a Ready mizar network (its status names the Mizar VPC and subnet), cached for 2 s.
    InvalidNetwork (permanent): missing or of another type; NetworkNotReady: not Ready yet."""
    name = pod.network or pod.labels.get(NETWORK_LABEL) or "default"
    key = (pod.tenant, name)
    have = cache.get(key)
    if have is not None and time.monotonic() - have[0] < 2.0:
        return have[1]
    try:
        net: Obj = await api.get("networks", name, tenant=pod.tenant, group_version=M.NETWORK_GV)
    except ApiError as exc:
        if exc.code == 404:
            raise NetworkError(
                f"network {name} of tenant {pod.tenant} does not exist", "InvalidNetwork"
            ) from None
        raise NetworkError(f"network {name}: {exc}", "NetworkNotReady") from None
    typ = M.spec(net).get("type")
    if typ != "mizar":
        raise NetworkError(
            f"network {name} is of type {typ!r}; this node's network hook serves mizar networks",
            "InvalidNetwork",
        )
    st = M.status(net)
    if st.get("phase") != "Ready" or not st.get("vpc") or not st.get("subnet"):
        raise NetworkError(
            f"network {name} of tenant {pod.tenant} is not Ready ({st.get('phase')})", "NetworkNotReady"
        )
    cache[key] = (time.monotonic(), net)
    return net


class MizarHook:
    name = "mizar"

    def __init__(self, options: dict[str, str] | None = None) -> None:
        self.options = dict(options or {})
        self.provision_timeout = float(self.options.get("provision_timeout", 30.0))
        self.teardown_wait = float(self.options.get("teardown_wait", 10.0))
        self.node: NodeNet | None = None
        self.droplet = ""
        self.api: Any = None
        self.pool = TransitPool(timeout=5.0)
        self.worker: nsops.NsWorker | None = None
        self.nl: Netlink | None = None  # bound to the droplet's netns
        self.pass_fd = -1
        self._bpf: Any = None
        self.pods: dict[str, PodNetResult] = {}
        self._eps: dict[str, Obj] = {}  # "tenant/ns/name" -> latest endpoint object seen
        self._waiters = ProvisionWaiters()
        self._gone: dict[str, asyncio.Event] = {}
        self._watch: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()
        self._nets: dict[tuple[str, str], tuple[float, Obj]] = {}
        self.timings: dict[str, float] = {}

    # ---- node ----------------------------------------------------------------------------------
    @property
    def dir(self) -> Path:
        assert self.node is not None
        return self.node.state_dir / "mizar"

    async def start(self, node: NodeNet) -> dict[str, Any]:
        if node.client is None:
            raise NetworkError("the mizar network hook needs an API client", "NetworkNotReady")
        self.node, self.api = node, node.client
        self.droplet = self.options.get("droplet") or node.node_name
        address = self.options.get("transitd", "")
        if not address:
            raise NetworkError(
                "the mizar network hook needs option transitd (the droplet's transitd address)",
                "NetworkNotReady",
            )
        await asyncio.to_thread((self.dir / "pods").mkdir, parents=True, exist_ok=True)
        self.pods = await asyncio.to_thread(podfiles.load_states, self.dir)
        try:
            st = await self.pool.call(self.droplet, address, "Status", timeout=10.0)
        except TransitError as exc:
            raise NetworkError(
                f"transitd of {self.droplet} does not answer: {exc}", "NetworkNotReady"
            ) from None
        await self._register_droplet(address, st.host_ip or node.host_ip, st.host_mac)
        self.worker = nsops.NsWorker(name="cl-mizar")
        self.pass_fd = await asyncio.to_thread(self._load_pass)

        def init() -> Netlink:
            if not node.netns:
                return Netlink()
            fd = nsops.open_netns(node.netns)
            try:
                assert self.worker is not None
                return self.worker.in_netns(fd, Netlink)
            finally:
                os.close(fd)

        self.nl = await self.worker.call(init)
        self._watch = asyncio.ensure_future(self._watch_endpoints())
        return {}

    def _load_pass(self) -> int:
        from centaurus.bpf.obj import BpfObject, object_path

        self._bpf = BpfObject(object_path("trafficgen"))
        return int(self._bpf.program("tg_pass").fd)

    async def _register_droplet(self, address: str, ip: str, mac: str) -> None:
        """Droplets register themselves: create or refresh this node's Droplet object."""
        spec = {
            "ip": ip,
            "mac": mac,
            "transitd": address,
            "itf": self.options.get("ifname", "eth0"),
            "zone": self.options.get("zone", ""),
        }
        body = {
            "apiVersion": M.GV,
            "kind": "Droplet",
            "metadata": {"name": self.droplet, "labels": {"kubernetes.io/hostname": self.droplet}},
            "spec": spec,
        }
        where = {"namespace": M.MIZAR_NS, "tenant": M.SYSTEM, "group_version": M.GV}
        try:
            await self.api.create("droplets", body, **where)
        except ApiError as exc:
            if exc.code != 409:
                raise NetworkError(
                    f"cannot register droplet {self.droplet}: {exc}", "NetworkNotReady"
                ) from None
            cur = await self.api.get("droplets", self.droplet, **where)
            if M.spec(cur) != spec and not M.deleting(cur):
                cur["spec"] = spec
                cur.setdefault("status", {})["phase"] = M.INIT  # probe the (new) daemon again
                await self.api.replace("droplets", cur, tenant=M.SYSTEM, group_version=M.GV)

    # ---- the endpoint watch ----------------------------------------------------------------------
    async def _watch_endpoints(self) -> None:
        while True:
            try:
                async for ev in self.api.list_watch(
                    "endpoints",
                    tenant="all",
                    group_version=M.GV,
                    label_selector=f"{M.L_DROPLET}={self.droplet}",
                ):
                    if ev["type"] == "SYNC":
                        seen = {M.key_of(o): o for o in ev["items"]}
                        for key in [k for k in self._eps if k not in seen]:
                            self._drop(key)
                        for key, o in seen.items():
                            self._note(key, o)
                        self._synced.set()
                    elif ev["type"] == "DELETED":
                        self._drop(M.key_of(ev["object"]))
                    elif ev["type"] in ("ADDED", "MODIFIED"):
                        self._note(M.key_of(ev["object"]), ev["object"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the stream broke: list again
                log.warning("endpoint watch of %s: %s", self.droplet, exc)
                await asyncio.sleep(0.5)

    def _note(self, key: str, obj: Obj) -> None:
        self._eps[key] = obj
        self._waiters.note(key, obj)

    def _drop(self, key: str) -> None:
        self._eps.pop(key, None)
        ev = self._gone.get(key)
        if ev is not None:
            ev.set()

    # ---- network look-up -------------------------------------------------------------------------
    async def _network(self, pod: PodNetRequest) -> Obj:
        return await resolve_network(self.api, pod, self._nets)

    # ---- pods ----------------------------------------------------------------------------------
    def _state_path(self, uid: str) -> Path:
        return podfiles.state_path(self.dir, uid)

    async def setup(self, pod: PodNetRequest) -> PodNetResult:
        if self.node is None or self.worker is None or self.nl is None:
            raise NetworkError("mizar network hook not started", "NetworkNotReady")
        have = self.pods.get(pod.uid)
        if have is not None and have.ip:
            return have
        t0 = time.perf_counter()
        net = await self._network(pod)
        st = M.status(net)
        res = have or PodNetResult(
            netns_path=str(nsops.netns_path(podfiles.pod_netns_name(pod.uid))),
            ip="",
            mac=pod_mac(pod.uid),
            extra={
                "netns": podfiles.pod_netns_name(pod.uid),
                "hostIf": host_ifname(pod.uid, self.droplet),
                "endpoint": f"{pod.tenant}/{pod.namespace}/{pod.name}",
                "tenant": pod.tenant,
                "namespace": pod.namespace,
                "name": pod.name,
                "network": M.name(net),
                "vpc": st["vpc"],
                "subnet": st["subnet"],
            },
        )
        self.pods[pod.uid] = res
        # intent first: teardown finds what follows
        await asyncio.to_thread(podfiles.save_state, self.dir, pod.uid, res)
        try:
            if have is None or not nsops.exists(str(res.extra["netns"])):
                await self.worker.call(lambda: self._plumb(res))
            t1, w1 = time.perf_counter(), time.time()
            ep = await self._endpoint(pod, res)
            t2, w2 = time.perf_counter(), time.time()
            ip, prefix, gateway = (
                str(M.spec(ep)["ip"]),
                int(M.status(ep)["prefix"]),
                str(M.status(ep)["gateway"]),
            )
            await self.worker.call(lambda: self._address(res, ip, prefix, gateway))
        except NetworkError as exc:
            await self._undo(pod.uid, res, keep_endpoint=exc.reason == "EndpointNotProvisioned")
            raise
        except (OSError, ApiError, NetlinkError) as exc:
            await self._undo(pod.uid, res)
            raise NetworkError(f"pod {pod.namespace}/{pod.name}: {exc}", "NetworkSetupFailed") from exc
        res.ip, res.prefix_len, res.gateway = ip, prefix, gateway
        res.extra["vni"] = int(M.status(ep).get("vni") or 0)
        await asyncio.to_thread(podfiles.save_state, self.dir, pod.uid, res)
        t3 = time.perf_counter()
        self.timings = {
            "plumb_ms": (t1 - t0) * 1e3,
            "endpoint_ms": (t2 - t1) * 1e3,
            "address_ms": (t3 - t2) * 1e3,
            "endpoint_created_at": w1,  # wall clock: compared with the operator's status stamps
            "endpoint_seen_at": w2,
        }
        return PodNetResult(**{**res.__dict__, "extra": {**res.extra, "timings": dict(self.timings)}})

    def _plumb(self, res: PodNetResult) -> None:
        """(worker thread) netns + veth, XDP_PASS and no TX checksum offload on eth0."""
        from centaurus.bpf import xdp
        from centaurus.labs.nsutil import set_gro, set_tx_csum

        assert self.nl is not None and self.worker is not None and self.node is not None
        name, host_if = str(res.extra["netns"]), str(res.extra["hostIf"])
        mtu = self.node.mtu

        def inside() -> Netlink:
            nl = Netlink()
            try:
                nl.link_set(1, up=True)  # lo
            except BaseException:
                nl.close()
                raise
            return nl

        if nsops.exists(name):  # a half-made pod from before a crash: start over
            nsops.delete_netns(name)
        with contextlib.suppress(NetlinkError):
            self.nl.link_del(host_if)
        worker = self.worker
        nsfd, pod_nl = worker.create_netns(name, inside)
        try:
            self.nl.veth_add(host_if, "eth0", peer_netns_fd=nsfd, mtu=mtu, peer_mac=res.mac)
            self._in_droplet(lambda: set_gro([host_if]))

            def pod_side() -> None:
                idx = pod_nl.link_index("eth0")
                if idx is None:
                    raise NetworkError("eth0 did not appear in the pod namespace", "NetworkSetupFailed")
                xdp.attach("eth0", self.pass_fd, mode="native")
                set_gro(["eth0"])
                set_tx_csum(["eth0"], False)
                pod_nl.link_set(idx, up=True)

            worker.in_netns(nsfd, pod_side)
        finally:
            pod_nl.close()
            os.close(nsfd)

    def _in_droplet(self, fn: Any) -> None:
        """(worker thread) ``fn()`` inside the droplet's netns (ioctls act on the caller's netns)."""
        assert self.worker is not None and self.node is not None
        if not self.node.netns:
            fn()
            return
        fd = nsops.open_netns(self.node.netns)
        try:
            self.worker.in_netns(fd, fn)
        finally:
            os.close(fd)

    def _address(self, res: PodNetResult, ip: str, prefix: int, gateway: str) -> None:
        assert self.worker is not None
        fd = os.open(str(res.netns_path), os.O_RDONLY | os.O_CLOEXEC)
        try:

            def inside() -> None:
                with Netlink() as nl:
                    idx = nl.link_index("eth0")
                    if idx is None:
                        raise NetworkError("eth0 vanished from the pod namespace", "NetworkSetupFailed")
                    nl.addr_add(idx, ip, prefix)
                    nl.route_replace(None, gateway)

            self.worker.in_netns(fd, inside)
        finally:
            os.close(fd)

    async def _endpoint(self, pod: PodNetRequest, res: PodNetResult) -> Obj:
        """Create (or adopt) the pod's Endpoint and wait until it is Provisioned."""
        key = str(res.extra["endpoint"])
        body = pod_endpoint(
            pod,
            droplet=self.droplet,
            node=self.node.node_name if self.node else self.droplet,
            vpc=res.extra["vpc"],
            subnet=res.extra["subnet"],
            veth=res.extra["hostIf"],
            mac=res.mac,
            # the operator's finalizer from the start: the endpoint can never be deleted without
            # leaving every host it may already be programmed on
            finalizers=[M.FINALIZER],
            itf="eth0",
            netns=res.extra["netns"],
            vm=pod.vm,
        )
        fut = self._waiters.expect(key)
        for _ in range(3):
            try:
                await self.api.create(
                    "endpoints", body, namespace=pod.namespace, tenant=pod.tenant, group_version=M.GV
                )
                break
            except ApiError as exc:
                if exc.code != 409:
                    raise
                cur = await self.api.get(
                    "endpoints", pod.name, namespace=pod.namespace, tenant=pod.tenant, group_version=M.GV
                )
                if M.spec(cur).get("podUid") == pod.uid and not M.deleting(cur):
                    if M.phase(cur) in (M.PROVISIONED, M.FAILED):
                        self._note(key, cur)
                    break  # ours from before a restart: adopt it
                # an earlier pod's endpoint of the same name: let it go first
                await self._gone_after(
                    key, pod.tenant, pod.namespace, pod.name, self.teardown_wait, delete=not M.deleting(cur)
                )
        else:
            raise NetworkError(f"endpoint {key} is held by an earlier pod", "EndpointNotProvisioned")
        ep = await self._waiters.wait(key, fut, self.provision_timeout)
        if M.phase(ep) == M.FAILED:
            reason = M.status(ep).get("reason") or "failed"
            await self.api.delete(
                "endpoints",
                pod.name,
                namespace=pod.namespace,
                tenant=pod.tenant,
                group_version=M.GV,
                missing_ok=True,
            )
            raise NetworkError(f"endpoint {key}: {reason}", "EndpointFailed")
        if M.spec(ep).get("podUid") != pod.uid:
            raise NetworkError(f"endpoint {key} belongs to another pod", "EndpointNotProvisioned")
        return ep

    async def _gone_after(
        self, key: str, tenant: str, ns: str, name: str, timeout: float, *, delete: bool
    ) -> bool:
        """(Delete and) wait until the endpoint object is gone: the node's endpoint watch says so
        (the event is armed BEFORE the delete, so a fast answer is never missed), or a GET does
        (a lagging or broken watch never makes a pod wait for the full timeout)."""
        ev = self._gone.setdefault(key, asyncio.Event())
        where = {"namespace": ns, "tenant": tenant, "group_version": M.GV}
        try:
            if delete:
                await self.api.delete("endpoints", name, missing_ok=True, **where)
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                try:
                    await asyncio.wait_for(ev.wait(), max(0.01, min(1.0, left)))
                    return True
                except TimeoutError:
                    pass
                try:
                    await self.api.get("endpoints", name, **where)
                except ApiError as exc:
                    if exc.code == 404:
                        return True
                    raise
                if left <= 0:
                    return False
        finally:
            self._gone.pop(key, None)

    async def _undo(self, uid: str, res: PodNetResult, keep_endpoint: bool = False) -> None:
        """A failed setup leaves nothing behind (the endpoint goes through its finalizer)."""
        if not keep_endpoint:
            with contextlib.suppress(ApiError, OSError):
                await self._delete_endpoint(res, wait=False)
        await self._unplumb(uid, res)

    async def _delete_endpoint(self, res: PodNetResult, wait: bool) -> None:
        tenant, ns, name = (str(res.extra.get(k) or "") for k in ("tenant", "namespace", "name"))
        key = str(res.extra.get("endpoint") or "")
        if not name:
            return
        try:
            cur = await self.api.get("endpoints", name, namespace=ns, tenant=tenant, group_version=M.GV)
        except ApiError as exc:
            if exc.code == 404:
                return
            raise
        if M.spec(cur).get("podUid") not in (None, "", res.extra.get("podUid"), self._uid_of(res)):
            return  # another pod's by now
        if wait:
            if not await self._gone_after(
                key, tenant, ns, name, self.teardown_wait, delete=not M.deleting(cur)
            ):
                log.warning(
                    "endpoint %s still being removed after %.0f s; its finalizer completes it",
                    key,
                    self.teardown_wait,
                )
        elif not M.deleting(cur):
            await self.api.delete(
                "endpoints", name, namespace=ns, tenant=tenant, group_version=M.GV, missing_ok=True
            )

    @staticmethod
    def _uid_of(res: PodNetResult) -> str:
        return Path(str(res.netns_path)).name.removeprefix("cl-pod-")

    async def _unplumb(self, uid: str, res: PodNetResult) -> None:
        await podfiles.unplumb(self.worker, self.nl, res, self._state_path(uid) if self.node else None)
        self.pods.pop(uid, None)

    async def teardown(self, uid: str) -> None:
        res = self.pods.get(uid)
        if res is None and self.node is not None:
            res = await podfiles.read_state(self._state_path(uid))
        if res is None:
            return
        try:
            await self._delete_endpoint(res, wait=True)
        except (ApiError, OSError) as exc:  # the owner reference lets the collector finish it
            log.warning("pod %s: endpoint removal: %s", uid, exc)
        await self._unplumb(uid, res)

    async def existing(self) -> dict[str, PodNetResult]:
        return {u: r for u, r in self.pods.items() if r.ip}

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        self._waiters.cancel_all()
        await self.pool.close()
        await podfiles.close_worker(self.worker, self.nl)
        self.worker = self.nl = None
        if self._bpf is not None:
            self._bpf.close()
            self._bpf = None
