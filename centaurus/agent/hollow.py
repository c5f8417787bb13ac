"""Hollow nodes: thousands of nodes in one process for scale runs (kubemark/KWOK-like).

A hollow node is a real Node object with a real Lease and real pod lifecycle as the control
plane sees it -- pods bound to it become Running with an IP from its pod CIDR, terminate on
delete -- but no workload. What makes 10,000 of them cheap in one process:

* one API client (one connection pool) and one pod watch for all of them
  (``fieldSelector=spec.nodeName!=``: bound pods only), dispatched by node name;
* a node is a small ``__slots__`` object; its pods are one dict entry each;
* Node objects are created with their status in one POST (no separate status write);
* lease renewals are spread evenly over the renew period by one ticking task (each node at its
  own offset), with bounded concurrency, written compare-and-swap with the last known version;
* pod status writes go through the agent's coalescing :class:`StatusWriter`.

Control: a small HTTP API on a unix socket (``<state>.sock``): ``POST /nodes {"count": n}`` ->
names, ``DELETE /nodes {"names": [...]}``, ``GET /stats``. :class:`HollowClient` speaks it.
``python -m centaurus.agent.hollow --kubeconfig K --count N ...`` runs a fleet; the state file
(JSON: pid, socket, nodes, ready) is written once all requested nodes exist.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import logging
import os
import resource
import secrets
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from centaurus.agent.config import HOLLOW_LABEL, LEASE_NAMESPACE, AgentConfig
from centaurus.agent.node import node_labels, node_object
from centaurus.agent.podstatus import PodView, build_status, ts
from centaurus.agent.writer import StatusWriter
from centaurus.client.rest import ApiError
from centaurus.netplug.base import PodNetResult
from centaurus.netplug.ipam import Pool, node_cidr
from centaurus.runtimes.base import ContainerStatus
from centaurus.runtimes.linux import pid_alive

log = logging.getLogger("centaurus.agent.hollow")
Obj = dict[str, Any]
HOLLOW_CIDR = "100.64.0.0/10"  # room for 16,383 /24 node CIDRs
LEASE_GV = "coordination.k8s.io/v1"


class HollowNode:
    __slots__ = ("index", "lease_rv", "name", "pods", "pool", "uid", "zone")

    def __init__(self, name: str, index: int, zone: str) -> None:
        self.name, self.index, self.zone = name, index, zone
        self.uid = ""
        self.lease_rv: str | None = None
        self.pool = Pool(node_cidr(HOLLOW_CIDR, index))
        self.pods: dict[str, str] = {}  # pod uid -> ip


class HollowFleet:
    def __init__(
        self,
        client: Any,
        *,
        prefix: str,
        zones: list[str],
        cpu: str = "32",
        memory: str = "256Gi",
        pods: int = 110,
        lease_duration: int = 240,
        lease_renew: float = 60.0,
        concurrency: int = 32,
        net: Any = None,
    ) -> None:
        self.client = client
        #: ``centaurus.mizar.hollownet.HollowEndpoints`` when pods get Mizar endpoints, else None
        #: (addresses from each node's own pool)
        self.net = net
        self.prefix, self.zones = prefix, zones or ["az1"]
        self.cpu, self.memory, self.max_pods = cpu, memory, pods
        self.lease_duration, self.lease_renew = lease_duration, lease_renew
        self.concurrency = concurrency
        self.nodes: dict[str, HollowNode] = {}
        self._next_index = 0
        self.writer = StatusWriter(client, concurrency)
        self.pods: dict[str, tuple[str, tuple[str, str, str], float]] = {}  # uid -> (node, key, start)
        self._tasks: list[asyncio.Task[None]] = []
        self.lease_writes = 0
        self.lease_errors = 0
        self.pods_started = 0
        self.synced = asyncio.Event()
        self._ring = 0
        self._jobs: set[asyncio.Task[None]] = set()
        self._lease_queue: asyncio.Queue[HollowNode] = asyncio.Queue()

    # ---- nodes ---------------------------------------------------------------------------------
    def _cfg(self, n: HollowNode) -> AgentConfig:
        return AgentConfig(
            node_name=n.name,
            kubeconfig="",
            state_dir="",
            host_ip=self._host_ip(n.index),
            zone=n.zone,
            labels={HOLLOW_LABEL: "true"},
            cpu=self.cpu,
            memory=self.memory,
            pods=self.max_pods,
            lease_duration_seconds=self.lease_duration,
        )

    @staticmethod
    def _host_ip(i: int) -> str:
        return f"100.127.{(i >> 8) & 0xFF}.{i & 0xFF}"

    async def add(self, count: int) -> list[str]:
        made: list[HollowNode] = []
        for _ in range(count):
            i = self._next_index
            self._next_index += 1
            made.append(HollowNode(f"{self.prefix}-{i:05d}", i, self.zones[i % len(self.zones)]))
        await self._pool(self._register, made)
        for n in made:
            self.nodes[n.name] = n
        return [n.name for n in made]

    async def _register(self, n: HollowNode) -> None:
        cfg = self._cfg(n)
        obj = node_object(
            cfg,
            endpoint="",
            port=0,
            pod_cidr=str(n.pool.net),
            ready=True,
            now=time.time(),
            runtime_version="hollow",
        )
        obj["metadata"]["labels"] = node_labels(cfg)
        for attempt in range(5):
            try:
                try:
                    out = await self.client.create("nodes", obj)
                except ApiError as exc:
                    if exc.code != 409:
                        raise
                    out = await self.client.get("nodes", n.name)
                n.uid = out["metadata"]["uid"]
                await self._renew(n)
                if self.net is not None:
                    await self.net.add_node(n.name, self._host_ip(n.index), n.zone)
                return
            except (ApiError, OSError, TimeoutError) as exc:
                if attempt == 4:
                    raise
                log.info("register %s: %s (retrying)", n.name, exc)
                await asyncio.sleep(0.5 * 2**attempt)

    def _lease(self, n: HollowNode) -> Obj:
        md: Obj = {
            "name": n.name,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": n.name, "uid": n.uid}],
        }
        if n.lease_rv:
            md["resourceVersion"] = n.lease_rv
        return {
            "apiVersion": LEASE_GV,
            "kind": "Lease",
            "metadata": md,
            "spec": {
                "holderIdentity": n.name,
                "leaseDurationSeconds": self.lease_duration,
                "renewTime": ts(time.time()),
            },
        }

    async def _renew(self, n: HollowNode) -> None:
        try:
            if n.lease_rv is None:
                try:
                    out = await self.client.create(
                        "leases", self._lease(n), namespace=LEASE_NAMESPACE, group_version=LEASE_GV
                    )
                except ApiError as exc:
                    if exc.code != 409:
                        raise
                    cur = await self.client.get(
                        "leases", n.name, namespace=LEASE_NAMESPACE, group_version=LEASE_GV
                    )
                    n.lease_rv = cur["metadata"]["resourceVersion"]
                    out = await self.client.replace("leases", self._lease(n), group_version=LEASE_GV)
            else:
                out = await self.client.replace("leases", self._lease(n), group_version=LEASE_GV)
            n.lease_rv = out["metadata"]["resourceVersion"]
            self.lease_writes += 1
        except ApiError as exc:
            self.lease_errors += 1
            if exc.code in (404, 409):
                n.lease_rv = None
            raise

    async def remove(self, names: list[str]) -> list[str]:
        gone = [self.nodes.pop(nm) for nm in names if nm in self.nodes]

        async def one(n: HollowNode) -> None:
            with contextlib.suppress(ApiError):
                await self.client.delete(
                    "leases", n.name, namespace=LEASE_NAMESPACE, group_version=LEASE_GV, missing_ok=True
                )
            with contextlib.suppress(ApiError):
                await self.client.delete("nodes", n.name, missing_ok=True)
            if self.net is not None:
                await self.net.remove_node(n.name)

        await self._pool(one, gone)
        return [n.name for n in gone]

    async def _lease_loop(self) -> None:
        """Each node renews once per period at its own offset: ``tick`` slices of the ring."""
        tick = 0.25
        pos = 0.0
        while True:
            await asyncio.sleep(tick)
            nodes = list(self.nodes.values())
            if not nodes:
                continue
            per_tick = len(nodes) * tick / self.lease_renew
            pos += per_tick
            k = int(pos)
            pos -= k
            start = self._ring % len(nodes)
            batch = [nodes[(start + j) % len(nodes)] for j in range(min(k, len(nodes)))]
            self._ring = start + len(batch)
            for n in batch:
                self._lease_queue.put_nowait(n)

    def _spawn(self, coro: Any) -> None:
        t = asyncio.ensure_future(coro)
        self._jobs.add(t)
        t.add_done_callback(self._jobs.discard)

    async def _lease_worker(self) -> None:
        while True:
            n = await self._lease_queue.get()
            if n.name in self.nodes:
                with contextlib.suppress(ApiError, OSError, TimeoutError):
                    await self._renew(n)

    async def _pool(self, fn: Any, items: list[HollowNode]) -> None:
        """``fn(item)`` for every item by ``concurrency`` workers: never thousands of tasks queued on
        a semaphore (Python 3.11's Semaphore.acquire scans its waiters: quadratic)."""
        it = iter(items)
        errors: list[BaseException] = []

        async def worker() -> None:
            for item in it:
                try:
                    await fn(item)
                except (ApiError, OSError, TimeoutError) as exc:
                    errors.append(exc)

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, max(1, len(items))))))
        if errors:
            raise errors[0]

    # ---- pods ----------------------------------------------------------------------------------
    async def _watch(self) -> None:
        while True:
            try:
                async for ev in self.client.list_watch(
                    "pods", tenant="all", field_selector="spec.nodeName!="
                ):
                    if ev["type"] == "SYNC":
                        for p in ev["items"]:
                            self._pod(p)
                        self.synced.set()
                    elif ev["type"] == "DELETED":
                        self._gone(ev["object"])
                    else:
                        self._pod(ev["object"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("hollow pod watch failed: %s", exc)
                await asyncio.sleep(1.0)

    def _pod(self, pod: Obj) -> None:
        md, spec = pod["metadata"], pod.get("spec") or {}
        n = self.nodes.get(spec.get("nodeName") or "")
        if n is None:
            return
        uid = str(md["uid"])
        key = (str(md.get("tenant") or "system"), str(md.get("namespace") or "default"), str(md["name"]))
        if md.get("deletionTimestamp"):
            self._spawn(self._finish(n, uid, key))
            return
        if uid in self.pods or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        self.pods[uid] = (n.name, key, time.time())
        if self.net is not None:
            self._spawn(self._start_with_endpoint(n, pod, uid, key))
            return
        ip = n.pool.allocate()
        n.pods[uid] = ip
        self._running(n, pod, uid, key, PodNetResult(netns_path=None, ip=ip, prefix_len=n.pool.prefix_len))

    async def _start_with_endpoint(
        self, n: HollowNode, pod: Obj, uid: str, key: tuple[str, str, str]
    ) -> None:
        """A Mizar Endpoint for the pod (its network's pipeline does the real provisioning work),
        retried while the pod exists; pods of non-Mizar networks keep the node's pool."""
        from centaurus.agent.podspec import net_request
        from centaurus.netplug.base import NetworkError

        delay = 0.5
        while uid in self.pods:
            try:
                res = await self.net.setup(net_request(pod), n.name)
            except NetworkError as exc:
                if exc.reason == "InvalidNetwork":
                    ip = n.pool.allocate()
                    n.pods[uid] = ip
                    self._running(
                        n, pod, uid, key, PodNetResult(netns_path=None, ip=ip, prefix_len=n.pool.prefix_len)
                    )
                    return
                log.info("hollow pod %s/%s/%s: %s (retrying)", *key, exc)
                await asyncio.sleep(delay)
                delay = min(10.0, delay * 2)
                continue
            if uid in self.pods:
                self._running(n, pod, uid, key, res)
            return

    def _running(
        self, n: HollowNode, pod: Obj, uid: str, key: tuple[str, str, str], net: PodNetResult
    ) -> None:
        spec = pod.get("spec") or {}
        now = time.time()
        names = [str(c.get("name")) for c in spec.get("containers") or []] or [
            str((spec.get("virtualMachine") or {}).get("name") or "vm")
        ]
        statuses = [
            ContainerStatus(nm, "running", started_at=now, ready=True, container_id=f"hollow://{uid}-{nm}")
            for nm in names
        ]
        view = PodView(
            pod=pod, host_ip=self._host_ip(n.index), start_time=now, net=net, statuses=statuses, ready_at=now
        )
        self.writer.submit(key, uid, build_status(view, now), pod.get("status") or {})
        self.pods_started += 1

    async def _finish(self, n: HollowNode, uid: str, key: tuple[str, str, str]) -> None:
        self.writer.forget(key)
        with contextlib.suppress(ApiError, OSError, TimeoutError):
            await self.client.request(
                "DELETE",
                f"/api/v1/tenants/{key[0]}/namespaces/{key[1]}/pods/{key[2]}",
                body={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "gracePeriodSeconds": 0,
                    "preconditions": {"uid": uid},
                },
            )
        self._release(n, uid)

    def _gone(self, pod: Obj) -> None:
        uid = str(pod["metadata"]["uid"])
        n = self.nodes.get((pod.get("spec") or {}).get("nodeName") or "")
        if n is not None:
            self.writer.forget(
                (
                    str(pod["metadata"].get("tenant") or "system"),
                    str(pod["metadata"].get("namespace") or "default"),
                    str(pod["metadata"]["name"]),
                )
            )
            self._release(n, uid)

    def _release(self, n: HollowNode, uid: str) -> None:
        ip = n.pods.pop(uid, None)
        if ip:
            n.pool.release(ip)
        entry = self.pods.pop(uid, None)
        if entry is not None and self.net is not None and not ip:
            self._spawn(self.net.teardown(*entry[1]))

    # ---- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        with contextlib.suppress(ApiError):
            await self.client.create(
                "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NAMESPACE}}
            )
        self.writer.start()
        if self.net is not None:
            await self.net.start()
        self._tasks = [asyncio.ensure_future(self._lease_loop()), asyncio.ensure_future(self._watch())]
        self._tasks += [
            asyncio.ensure_future(self._lease_worker()) for _ in range(max(4, self.concurrency // 2))
        ]

    async def close(self, *, remove: bool = False) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await self.writer.flush(2.0)
        await self.writer.close()
        if remove:
            await self.remove(list(self.nodes))
        if self.net is not None:
            await self.net.close(remove_nodes=remove)

    def stats(self) -> Obj:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        rss = _rss_bytes()
        n = max(1, len(self.nodes))
        return {
            "nodes": len(self.nodes),
            "pods": len(self.pods),
            "podsStarted": self.pods_started,
            "leaseWrites": self.lease_writes,
            "leaseErrors": self.lease_errors,
            "statusWrites": self.writer.writes,
            "cpuSeconds": ru.ru_utime + ru.ru_stime,
            "rssBytes": rss,
            "rssPerNodeBytes": rss / n,
            "leaseRenewSeconds": self.lease_renew,
            "leaseDurationSeconds": self.lease_duration,
        }


def _rss_bytes() -> int:
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return 0


# ---- control API (unix socket) -----------------------------------------------------------------
def control_app(fleet: HollowFleet, on_change: Any) -> web.Application:
    app = web.Application()

    async def add(request: web.Request) -> web.Response:
        body = await request.json()
        count = int(body.get("count", 0))
        if count < 0 or count > 50_000:
            return web.json_response({"error": "count must be 0..50000"}, status=400)
        names = await fleet.add(count)
        on_change()
        return web.json_response({"names": names})

    async def remove(request: web.Request) -> web.Response:
        body = await request.json()
        names = await fleet.remove([str(n) for n in body.get("names") or []])
        on_change()
        return web.json_response({"names": names})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(fleet.stats())

    app.router.add_post("/nodes", add)
    app.router.add_delete("/nodes", remove)
    app.router.add_get("/stats", stats)
    return app


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


class HollowClient:
    """Talks to a running fleet through its socket (what the target hooks and campaigns use)."""

    def __init__(self, socket_path: str, timeout: float = 600.0) -> None:
        self.path, self.timeout = socket_path, timeout

    def _call(self, method: str, path: str, body: Obj | None = None) -> Obj:
        conn = _UnixConnection(self.path, self.timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            out: Obj = json.loads(resp.read() or b"{}")
            if resp.status >= 400:
                raise RuntimeError(f"hollow fleet: {method} {path}: {out.get('error') or resp.status}")
            return out
        finally:
            conn.close()

    def add(self, count: int) -> list[str]:
        return list(self._call("POST", "/nodes", {"count": count})["names"])

    def remove(self, names: list[str]) -> list[str]:
        return list(self._call("DELETE", "/nodes", {"names": names})["names"])

    def stats(self) -> Obj:
        return self._call("GET", "/stats")


# ---- process -----------------------------------------------------------------------------------
async def run(args: argparse.Namespace) -> int:
    from centaurus.client.aio import AsyncClient

    client = AsyncClient.from_kubeconfig(args.kubeconfig, pool=args.concurrency * 2)
    net = None
    if args.network == "mizar":
        from centaurus.mizar.hollownet import HollowEndpoints

        net = HollowEndpoints(client, Path(args.state_file).parent, fleet=args.prefix)
    fleet = HollowFleet(
        client,
        net=net,
        prefix=args.prefix,
        zones=[z for z in args.zones.split(",") if z],
        cpu=args.cpu,
        memory=args.memory,
        pods=args.pods,
        lease_duration=args.lease_duration,
        lease_renew=args.lease_renew,
        concurrency=args.concurrency,
    )
    state = Path(args.state_file)
    sock = str(state.with_suffix(".sock"))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(sock)

    def write_state(ready: bool = True) -> None:
        doc = {
            "pid": os.getpid(),
            "socket": sock,
            "nodes": sorted(fleet.nodes),
            "ready": ready,
            "prefix": args.prefix,
        }
        tmp = state.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(state)

    await fleet.start()
    runner = web.AppRunner(control_app(fleet, write_state), access_log=None, handle_signals=False)
    await runner.setup()
    await web.UnixSite(runner, sock).start()
    t0 = time.monotonic()
    if args.count:
        await fleet.add(args.count)
    await asyncio.wait_for(fleet.synced.wait(), 60)
    write_state(True)
    log.warning("ready %d hollow nodes in %.1f s", len(fleet.nodes), time.monotonic() - t0)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    owner = args.owner_pid
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 2.0)
        if owner and not pid_alive(owner):
            log.warning("owner %d gone: removing the hollow nodes", owner)
            break
    await fleet.close(remove=True)
    await runner.cleanup()
    await client.close()
    with contextlib.suppress(FileNotFoundError):
        state.unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="centaurus-hollow", description="many hollow nodes in one process")
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--prefix", default=f"hollow-{secrets.token_hex(2)}")
    ap.add_argument("--zones", default="az1,az2,az3")
    ap.add_argument("--cpu", default="32")
    ap.add_argument("--memory", default="256Gi")
    ap.add_argument("--pods", type=int, default=110)
    ap.add_argument("--lease-duration", type=int, default=240)
    ap.add_argument("--lease-renew", type=float, default=60.0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--state-file", required=True)
    ap.add_argument("--owner-pid", type=int, default=0)
    ap.add_argument(
        "--network",
        choices=("none", "mizar"),
        default="none",
        help="mizar: every pod gets a Mizar Endpoint (SCALE-3); none: the node's pool",
    )
    ap.add_argument("--log-level", default="WARNING")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
