"""``provisioning``: endpoint provisioning fan-out and latency (PERF-NET-3, PERF-NET-4).

The Mizar issue's point: programming an endpoint must touch a bounded set of hosts -- its own
host and its network's bouncers -- however many hosts the cluster has. This measurement runs the
real provisioning path at several cluster sizes and reports, per size:

* **hosts programmed per endpoint** -- read back from the daemons themselves after the burst
  (transitd ``Dump`` of every real droplet; the hollow daemon's per-droplet tables), not from
  what the operators claim; plus how many distinct droplets received any call at all during the
  burst (a path that touched every host would show the cluster size here);
* **provisioning latency** -- Endpoint created -> seen Provisioned by a watcher (p50/p90/p99);
  for real droplets also the node hook's whole network setup (netns + veth, endpoint, address),
  i.e. the network part of pod startup;
* **clean deletion** -- after the endpoints are deleted no daemon holds any of them.

Real droplets: a netns lab of N droplets (mizar-xdp, one transitd each), one ``mizar`` node hook
per droplet in this process (exactly what the node agent runs), a mizar Network with 2 bouncers,
Pod objects bound to the droplets and ``hook.setup`` at a fixed rate. Hollow droplets: one
hollow transitd process serving H droplets (no kernel), Droplet objects for each, a hollow VPC
and subnet, Endpoint objects created at a fixed rate (as a hook would). The control plane
(API server, controllers, two network operator instances) runs once for all cases.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from centaurus.perf.core import Context, Figure, Measurement, Result

log = logging.getLogger("centaurus.perf.provisioning")
#: the real droplets: the first N of this spec
SPEC = Path(__file__).resolve().parents[3] / "labs" / "droplets-32.yaml"
Obj = dict[str, Any]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100.0 * len(ordered)) - 1))]


def perfdata(values: list[float], **labels: str) -> Obj:
    return {
        "data": {
            "Perc50": percentile(values, 50),
            "Perc90": percentile(values, 90),
            "Perc99": percentile(values, 99),
        },
        "unit": "ms",
        "labels": {"Metric": "provisioning", **labels},
        "samples": values[:10_000],
    }


@dataclass
class CaseResult:
    kind: str  # real | hollow
    droplets: int
    endpoints: int
    rate: float
    bouncers: int
    latency_ms: list[float] = field(default_factory=list)  # create -> Provisioned (watcher)
    setup_ms: list[float] = field(default_factory=list)  # node hook setup (real droplets)
    hosts_per_endpoint: list[int] = field(default_factory=list)
    touched_droplets: int = 0  # distinct droplets whose tables changed / that got calls in the burst
    unexpected_droplets: int = 0  # ... of which neither hosts an endpoint nor holds one (bouncer)
    calls: int = 0  # hollow: programming RPCs received; real: map entries the burst added
    clean_after_delete: bool = False
    failed: list[str] = field(default_factory=list)
    ping_ok: bool | None = None
    #: CPU seconds per endpoint during the burst: network operators (all instances), API server
    cpu_ms_per_endpoint: dict[str, float] = field(default_factory=dict)
    #: where the time goes (hollow): create -> address allocated and recorded (operator's first
    #: write), -> programmed and Provisioned (second write), -> seen by the watcher
    breakdown: dict[str, list[float]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        d = {
            k: v
            for k, v in asdict(self).items()
            if k not in ("latency_ms", "setup_ms", "hosts_per_endpoint", "breakdown")
        }
        d["breakdown_p50_p99_ms"] = {
            k: [round(percentile(v, 50), 1), round(percentile(v, 99), 1)] for k, v in self.breakdown.items()
        }
        d.update(
            p50_ms=percentile(self.latency_ms, 50),
            p99_ms=percentile(self.latency_ms, 99),
            setup_p99_ms=percentile(self.setup_ms, 99) if self.setup_ms else None,
            hosts_max=max(self.hosts_per_endpoint, default=0),
            hosts_mean=sum(self.hosts_per_endpoint) / len(self.hosts_per_endpoint)
            if self.hosts_per_endpoint
            else 0.0,
        )
        return d


class ProvisioningBench:
    """A control plane with the network operators, and the cases run against it."""

    def __init__(self, work_dir: Path, operators: int = 2, kubeconfig: Path | None = None) -> None:
        """``kubeconfig``: run against that (running) control plane instead of starting one."""
        self.dir = Path(work_dir)
        self.operators = operators
        self.cp: Any = None
        self.kubeconfig = Path(kubeconfig) if kubeconfig else self.dir / "cp" / "kubeconfig"
        self.external = kubeconfig is not None

    # ---- control plane -----------------------------------------------------------------------
    def up(self) -> None:
        import os

        if self.external:
            return
        from centaurus.controlplane.supervisor import ControlPlane

        os.environ["CENTAURUS_NETWORK_OPERATORS"] = str(self.operators)
        self.cp = ControlPlane(self.dir / "cp")
        self.cp.up(store="sqlite", partitions=2, port=0)

    def down(self) -> None:
        if self.cp is not None:
            self.cp.down()

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of the control plane's network operators and API server (empty for
        a control plane this bench did not start)."""
        from centaurus.perf.hostcost import proc_cpu_seconds

        st = self.cp.load() if self.cp is not None else None
        out: dict[str, float] = {}
        for c in st.components if st is not None else []:
            kind = "network-operators" if c.kind == "network-operator" else c.name
            if kind in ("network-operators", "apiserver") and c.pid:
                with contextlib.suppress(OSError, ValueError, IndexError):
                    out[kind] = out.get(kind, 0.0) + proc_cpu_seconds(c.pid)
        return out

    def _cpu_per_endpoint(self, before: dict[str, float], n: int) -> dict[str, float]:
        after = self.cpu()
        return {k: round((after[k] - before.get(k, 0.0)) * 1e3 / max(1, n), 2) for k in after}

    # ---- real droplets ---------------------------------------------------------------------------
    def real_case(self, droplets: int, endpoints: int, rate: float, bouncers: int = 2) -> CaseResult:
        from centaurus.labs.netns import NetnsLab
        from centaurus.labs.spec import load_spec, parse_spec

        base = load_spec(SPEC).to_dict()
        if droplets > len(base["droplets"]):
            raise ValueError(f"{SPEC.name} has {len(base['droplets'])} droplets, {droplets} asked for")
        spec = parse_spec({**base, "name": f"prov{droplets}", "droplets": base["droplets"][:droplets]})
        lab = NetnsLab(self.dir / f"lab{droplets}-{secrets.token_hex(2)}", {})
        lab.up(spec)
        try:
            return asyncio.run(self._real(lab, droplets, endpoints, rate, bouncers))
        finally:
            lab.down()

    async def _real(self, lab: Any, n: int, count: int, rate: float, bouncers: int) -> CaseResult:
        from centaurus.client.aio import AsyncClient
        from centaurus.mizar import model as M
        from centaurus.netplug.base import NodeNet, PodNetRequest
        from centaurus.netplug.mizar import MizarHook

        res = CaseResult("real", n, count, rate, bouncers)
        api = AsyncClient.from_kubeconfig(str(self.kubeconfig))
        names = [h.name for h in lab.hosts("droplet")]
        hooks: dict[str, MizarHook] = {}
        try:
            for d in names:
                info = lab.droplet(d)
                h = MizarHook({"transitd": info.transitd, "zone": f"az{names.index(d) % 3 + 1}"})
                await h.start(
                    NodeNet(
                        node_name=d,
                        host_ip=info.ip,
                        state_dir=lab.state_dir / "hooks" / d,
                        netns=info.netns,
                        client=api,
                    )
                )
                hooks[d] = h
            await _wait(lambda: _all_provisioned(api, "droplets", set(names)), 60, "droplets provisioned")
            net = f"prov{n}-{secrets.token_hex(2)}"
            await api.create(
                "networks",
                {
                    "apiVersion": M.NETWORK_GV,
                    "kind": "Network",
                    "metadata": {"name": net},
                    "spec": {
                        "type": "mizar",
                        "vpcID": net,
                        "cidr": "10.50.0.0/16",
                        "vpcCidr": "10.50.0.0/16",
                        "bouncers": bouncers,
                    },
                },
                tenant=M.SYSTEM,
                group_version=M.NETWORK_GV,
            )

            async def ready() -> bool:
                o = await api.get("networks", net, tenant=M.SYSTEM, group_version=M.NETWORK_GV)
                return bool(M.status(o).get("phase") == "Ready")

            await _wait(ready, 60, f"network {net} Ready")
            mark = await _calls_mark(lab, names)
            pods: list[tuple[str, str, str]] = []  # (droplet, name, uid)
            stamps: dict[str, tuple[float, float]] = {}  # pod -> (endpoint created, seen Provisioned)

            async def one(i: int) -> None:
                d = names[i % n]
                name = f"{net}-{i}"
                pod = await api.create(
                    "pods",
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {"name": name, "labels": {M.L_NETWORK: net}},
                        "spec": {"nodeName": d, "containers": [{"name": "c", "image": "busybox"}]},
                    },
                    namespace="default",
                )
                uid = pod["metadata"]["uid"]
                pods.append((d, name, uid))
                try:
                    out = await hooks[d].setup(
                        PodNetRequest(uid=uid, tenant=M.SYSTEM, namespace="default", name=name, network=net)
                    )
                except Exception as exc:  # recorded, judged by the caller
                    res.failed.append(f"{name}: {exc}")
                    return
                t = out.extra["timings"]
                stamps[name] = (float(t["endpoint_created_at"]), float(t["endpoint_seen_at"]))
                res.latency_ms.append(float(t["endpoint_ms"]))
                res.setup_ms.append(float(t["plumb_ms"]) + float(t["endpoint_ms"]) + float(t["address_ms"]))

            cpu0 = self.cpu()
            await _at_rate(one, count, rate)
            res.cpu_ms_per_endpoint = self._cpu_per_endpoint(cpu0, count)
            eps = await api.list(
                "endpoints",
                namespace="default",
                tenant=M.SYSTEM,
                group_version=M.GV,
                label_selector=f"{M.L_DROPLET}",
            )
            mine = {
                (int(M.status(e).get("vni") or 0), str(M.spec(e).get("ip")))
                for e in eps["items"]
                if M.name(e).startswith(f"{net}-")
            }
            for e in eps["items"]:
                st = M.status(e)
                alloc, prov = M.parse_ts(st.get("allocatedAt")), M.parse_ts(st.get("provisionedAt"))
                t = stamps.get(M.name(e))
                if t and alloc and prov:
                    for k, v in (
                        ("create_to_allocated", alloc - t[0]),
                        ("allocated_to_provisioned", prov - alloc),
                        ("provisioned_to_seen", t[1] - prov),
                    ):
                        res.breakdown.setdefault(k, []).append(v * 1e3)
            holders = await _holders_real(lab, names)
            res.hosts_per_endpoint = [len(holders.get(k, ())) for k in sorted(mine)]
            touched, calls = await _calls_since(lab, names, mark)
            expected = {d for d, _, _ in pods} | {d for k in mine for d in holders.get(k, ())}
            res.touched_droplets, res.calls = len(touched), calls
            res.unexpected_droplets = len(set(touched) - expected)
            res.ping_ok = await _ping_pair(hooks, pods)
            await asyncio.gather(*(hooks[d].teardown(uid) for d, _, uid in pods))

            async def all_gone() -> bool:
                left = await api.list("endpoints", namespace="default", tenant=M.SYSTEM, group_version=M.GV)
                return not [e for e in left["items"] if M.name(e).startswith(f"{net}-")]

            await _wait(all_gone, 120, "endpoints deleted")
            after = await _holders_real(lab, names)
            res.clean_after_delete = not any(k in after for k in mine)
            for _, name, _ in pods:
                with contextlib.suppress(Exception):
                    await api.delete("pods", name, namespace="default", grace_period=0)
            await api.delete("networks", net, tenant=M.SYSTEM, group_version=M.NETWORK_GV, missing_ok=True)
        finally:
            for h in hooks.values():
                with contextlib.suppress(Exception):
                    await h.close()
            with contextlib.suppress(Exception):
                await _delete_all(api, "droplets", names)
            await api.close()
        return res

    # ---- hollow droplets -------------------------------------------------------------------------
    def hollow_case(self, droplets: int, endpoints: int, rate: float, bouncers: int = 2) -> CaseResult:
        sock = self.dir / f"hollow-{secrets.token_hex(2)}.sock"
        proc = subprocess.Popen(
            [sys.executable, "-m", "centaurus.mizar.hollow", "--socket", str(sock)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while not sock.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the hollow transitd did not start")
                time.sleep(0.05)
            return asyncio.run(self._hollow(sock, droplets, endpoints, rate, bouncers))
        finally:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(FileNotFoundError):
                sock.unlink()

    async def _hollow(self, sock: Path, n: int, count: int, rate: float, bouncers: int) -> CaseResult:
        from centaurus.client.aio import AsyncClient
        from centaurus.mizar import hollow
        from centaurus.mizar import model as M

        res = CaseResult("hollow", n, count, rate, bouncers)
        api = AsyncClient.from_kubeconfig(str(self.kubeconfig))
        tag = secrets.token_hex(2)
        names = [f"h{tag}-{i}" for i in range(n)]
        where: dict[str, Any] = {"namespace": M.MIZAR_NS, "tenant": M.SYSTEM, "group_version": M.GV}
        vpc, net, ns = f"hv{tag}", f"hs{tag}", f"prov-{tag}"
        sem = asyncio.Semaphore(32)

        async def droplet(i: int, name: str) -> None:
            async with sem:
                await api.create(
                    "droplets",
                    {
                        "apiVersion": M.GV,
                        "kind": "Droplet",
                        "metadata": {"name": name, "labels": {M.L_HOLLOW: "true"}},
                        "spec": {
                            "ip": f"10.{128 + i // 65536}.{i // 256 % 256}.{i % 256}",
                            "mac": "02:00:00:00:00:01",
                            "zone": f"az{i % 3 + 1}",
                            "transitd": f"hollow:{sock}#{name}",
                        },
                    },
                    **where,
                )

        try:
            await asyncio.gather(*(droplet(i, d) for i, d in enumerate(names)))
            await _wait(lambda: _all_provisioned(api, "droplets", set(names)), 180, f"{n} hollow droplets")
            await api.create(
                "vpcs",
                {
                    "apiVersion": M.GV,
                    "kind": "Vpc",
                    "metadata": {"name": vpc, "labels": {M.L_HOLLOW: "true"}},
                    "spec": {"ip": "10.60.0.0", "prefix": "16", "dividers": 1},
                },
                **where,
            )
            await api.create(
                "subnets",
                {
                    "apiVersion": M.GV,
                    "kind": "Subnet",
                    "metadata": {"name": net},
                    "spec": {"ip": "10.60.0.0", "prefix": "16", "vpc": vpc, "bouncers": bouncers},
                },
                **where,
            )
            await _wait(lambda: _all_provisioned(api, "subnets", {net}), 60, f"subnet {net}")
            with contextlib.suppress(Exception):
                await api.create(
                    "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                )
            await hollow.report(sock, {"reset": True})
            created: dict[str, float] = {}
            seen: dict[str, float] = {}
            watch = asyncio.ensure_future(_stamp_provisioned(api, ns, seen))
            await asyncio.sleep(0.2)
            rnd = random.Random(tag)

            async def one(i: int) -> None:
                name = f"ep{i}"
                created[name] = time.time()
                try:
                    await api.create(
                        "endpoints",
                        {
                            "apiVersion": M.GV,
                            "kind": "Endpoint",
                            "metadata": {"name": name},
                            "spec": {
                                "type": "simple",
                                "vpc": vpc,
                                "net": net,
                                "droplet": rnd.choice(names),
                                "veth": "hollow",
                                "mac": "02:00:00:00:00:02",
                            },
                        },
                        namespace=ns,
                        tenant=M.SYSTEM,
                        group_version=M.GV,
                    )
                except Exception as exc:
                    res.failed.append(f"{name}: {exc}")

            cpu0 = self.cpu()
            await _at_rate(one, count, rate)
            await _wait(
                lambda: _true(len(seen) >= len(created) - len(res.failed)), 60, "endpoints provisioned"
            )
            watch.cancel()
            res.cpu_ms_per_endpoint = self._cpu_per_endpoint(cpu0, count)
            res.latency_ms = [(seen[k] - created[k]) * 1e3 for k in created if k in seen]
            eps = (await api.list("endpoints", namespace=ns, tenant=M.SYSTEM, group_version=M.GV))["items"]
            for e in eps:
                nm, st = M.name(e), M.status(e)
                alloc, prov = M.parse_ts(st.get("allocatedAt")), M.parse_ts(st.get("provisionedAt"))
                if nm in created and nm in seen and alloc and prov:
                    for k, v in (
                        ("create_to_allocated", alloc - created[nm]),
                        ("allocated_to_provisioned", prov - alloc),
                        ("provisioned_to_seen", seen[nm] - prov),
                    ):
                        res.breakdown.setdefault(k, []).append(v * 1e3)
            keys = [[int(M.status(e).get("vni") or 0), str(M.spec(e).get("ip"))] for e in eps]
            rep = await hollow.report(sock, {"keys": keys, "calls": True})
            res.hosts_per_endpoint = [len(v) for v in rep["holders"].values()]
            programming = {d for d, c in rep["calls"].items() if any(m not in ("Status", "Dump") for m in c)}
            expected = {str(M.spec(e).get("droplet")) for e in eps}
            expected |= {h for v in rep["holders"].values() for h in v}
            for plural, field_, value in (("bouncers", "net", net), ("dividers", "vpc", vpc)):
                for o in (await api.list(plural, **where))["items"]:
                    if M.spec(o).get(field_) == value:
                        expected.add(str(M.spec(o).get("droplet")))
            res.touched_droplets = len(programming)
            res.unexpected_droplets = len(programming - expected)
            res.calls = sum(
                n for c in rep["calls"].values() for m, n in c.items() if m not in ("Status", "Dump")
            )
            for e in eps:
                await api.delete("endpoints", M.name(e), namespace=ns, tenant=M.SYSTEM, group_version=M.GV)

            async def gone() -> bool:
                left = await api.list("endpoints", namespace=ns, tenant=M.SYSTEM, group_version=M.GV)
                return not left["items"]

            await _wait(gone, 60, "endpoints deleted")
            after = await hollow.report(sock, {"keys": keys})
            res.clean_after_delete = not any(after["holders"].values())
            await api.delete("subnets", net, **where)
            await api.delete("vpcs", vpc, **where)
            with contextlib.suppress(Exception):
                await _wait(lambda: _absent(api, "vpcs", vpc), 60, "hollow VPC deleted")
        finally:
            with contextlib.suppress(Exception):
                await api.delete("namespaces", ns)
            with contextlib.suppress(Exception):
                await _delete_all(api, "droplets", names)
            await api.close()
        return res


# ---- helpers -------------------------------------------------------------------------------------
async def _true(v: bool) -> bool:
    return v


async def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _all_provisioned(api: Any, plural: str, names: set[str]) -> bool:
    from centaurus.mizar import model as M

    lst = await api.list(plural, namespace=M.MIZAR_NS, tenant=M.SYSTEM, group_version=M.GV)
    ok = {M.name(o) for o in lst["items"] if M.phase(o) == M.PROVISIONED}
    return names <= ok


async def _absent(api: Any, plural: str, name: str) -> bool:
    from centaurus.client.rest import ApiError
    from centaurus.mizar import model as M

    try:
        await api.get(plural, name, namespace=M.MIZAR_NS, tenant=M.SYSTEM, group_version=M.GV)
    except ApiError as exc:
        return exc.code == 404
    return False


async def _delete_all(api: Any, plural: str, names: list[str]) -> None:
    from centaurus.mizar import model as M

    sem = asyncio.Semaphore(32)

    async def one(n: str) -> None:
        async with sem:
            await api.delete(
                plural, n, namespace=M.MIZAR_NS, tenant=M.SYSTEM, group_version=M.GV, missing_ok=True
            )

    await asyncio.gather(*(one(n) for n in names), return_exceptions=True)


async def _at_rate(fn: Any, count: int, rate: float) -> None:
    """Start ``fn(i)`` for i < count at ``rate`` per second (open loop), wait for all."""
    t0 = time.monotonic()
    tasks = []
    for i in range(count):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(fn(i)))
    await asyncio.gather(*tasks)


async def _stamp_provisioned(api: Any, ns: str, seen: dict[str, float]) -> None:
    from centaurus.mizar import model as M

    async for ev in api.list_watch("endpoints", namespace=ns, tenant=M.SYSTEM, group_version=M.GV):
        objs = ev["items"] if ev["type"] == "SYNC" else [ev.get("object") or {}]
        now = time.time()
        for o in objs:
            if M.phase(o) == M.PROVISIONED and M.name(o) not in seen:
                seen[M.name(o)] = now


async def _holders_real(lab: Any, names: list[str]) -> dict[tuple[int, str], set[str]]:
    """(vni, ip) -> droplets whose transitd holds it (each daemon's own table)."""
    from centaurus.mizar.transit import TransitPool

    pool = TransitPool(timeout=10.0)
    out: dict[tuple[int, str], set[str]] = {}
    try:
        for d in names:
            dump = await pool.call(d, lab.droplet(d).transitd, "Dump")
            for e in dump.endpoints:
                out.setdefault((int(e.vni), str(e.ip)), set()).add(d)
    finally:
        await pool.close()
    return out


async def _calls_mark(lab: Any, names: list[str]) -> dict[str, int]:
    """Per droplet: how many map entries it holds now (a cheap "was it touched" reference)."""
    from centaurus.mizar.transit import TransitPool

    pool = TransitPool(timeout=10.0)
    out: dict[str, int] = {}
    try:
        for d in names:
            st = await pool.call(d, lab.droplet(d).transitd, "Stats")
            out[d] = sum(
                int(v) for k, v in st.maps.items() if k in ("cl_endpoints", "cl_networks", "cl_vpcs")
            )
    finally:
        await pool.close()
    return out


async def _calls_since(lab: Any, names: list[str], mark: dict[str, int]) -> tuple[list[str], int]:
    """Droplets whose tables changed since ``mark`` (real daemons keep no call counters: a
    programmed endpoint, network or VPC is what a call leaves behind), and the entries added."""
    now = await _calls_mark(lab, names)
    changed = [d for d in names if now.get(d) != mark.get(d)]
    return changed, sum(max(0, now[d] - mark.get(d, 0)) for d in names)


async def _ping_pair(hooks: dict[str, Any], pods: list[tuple[str, str, str]]) -> bool | None:
    """One ICMP exchange between pods on two different droplets (the endpoints work)."""
    by_drop: dict[str, tuple[str, str]] = {}
    for d, _, uid in pods:
        res = hooks[d].pods.get(uid)
        if res is not None and res.ip and d not in by_drop:
            by_drop[d] = (str(res.extra["netns"]), res.ip)
    if len(by_drop) < 2:
        return None
    (ns_a, _), (_, ip_b) = list(by_drop.values())[:2]
    proc = await asyncio.create_subprocess_exec(
        "ip",
        "netns",
        "exec",
        ns_a,
        "ping",
        "-c",
        "2",
        "-W",
        "2",
        ip_b,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await proc.wait() == 0


# ---- the perf-campaign measurement -----------------------------------------------------------------
class Provisioning(Measurement):
    """Campaign method ``provisioning``; params: ``real`` (list of droplet counts), ``hollow``
    (droplet count, 0 = none), ``endpoints`` / ``hollow_endpoints``, ``rate`` / ``hollow_rate``
    (per second), ``bouncers``, ``target_p99_ms`` (100)."""

    method = "provisioning"

    def gather(self, ctx: Context, params: dict[str, Any]) -> Result:
        bench = ProvisioningBench(ctx.work_dir / "provisioning")
        out = Result()
        cases: list[CaseResult] = []
        bench.up()
        try:
            for n in params.get("real", [2, 8, 32]):
                ctx.log(f"provisioning: {n} real droplets")
                cases.append(
                    bench.real_case(
                        int(n),
                        int(params.get("endpoints", 50)),
                        float(params.get("rate", 10.0)),
                        int(params.get("bouncers", 2)),
                    )
                )
            hollow = int(params.get("hollow", 1000))
            if hollow:
                ctx.log(f"provisioning: {hollow} hollow droplets")
                cases.append(
                    bench.hollow_case(
                        hollow,
                        int(params.get("hollow_endpoints", 300)),
                        float(params.get("hollow_rate", 50.0)),
                        int(params.get("bouncers", 2)),
                    )
                )
        finally:
            bench.down()
        return results(cases, float(params.get("target_p99_ms", 100.0)), out)


def results(cases: list[CaseResult], target_p99_ms: float, out: Result | None = None) -> Result:
    """Figures and PerfData of a set of cases (also used by the tests and the conformance run)."""
    out = out or Result()
    bound = max((c.bouncers + 1 for c in cases), default=3)
    for c in cases:
        labels = {
            "droplets": str(c.droplets),
            "kind": c.kind,
            "rate": f"{c.rate:g}/s",
            "bouncers": str(c.bouncers),
        }
        s = c.summary()
        out.figures.append(
            Figure(
                "hosts_per_endpoint_max",
                float(s["hosts_max"]),
                "hosts",
                labels,
                reference={"name": "endpoint host + bouncers", "value": bound},
            )
        )
        out.figures.append(Figure("hosts_per_endpoint_mean", float(s["hosts_mean"]), "hosts", labels))
        out.figures.append(
            Figure(
                "droplets_touched_by_burst",
                float(c.touched_droplets),
                "hosts",
                labels,
                reference={"name": "droplets in the cluster", "value": c.droplets},
            )
        )
        out.figures.append(
            Figure(
                "droplets_touched_outside_hosts_and_bouncers",
                float(c.unexpected_droplets),
                "hosts",
                labels,
                reference={"name": "bound", "value": 0},
            )
        )
        out.figures.append(
            Figure("transitd_calls_per_endpoint", c.calls / max(1, c.endpoints), "calls", labels)
        )
        for comp, ms in c.cpu_ms_per_endpoint.items():
            out.figures.append(Figure("cpu_per_endpoint", ms, "ms", {**labels, "component": comp}))
        out.figures.append(
            Figure(
                "provisioning_p99",
                float(s["p99_ms"]),
                "ms",
                labels,
                reference={"name": "target", "value": target_p99_ms},
            )
        )
        out.perfdata.append(perfdata(c.latency_ms, Transition="endpoint_create_to_provisioned", **labels))
        if c.setup_ms:
            out.perfdata.append(perfdata(c.setup_ms, Transition="pod_network_setup", **labels))
    out.details["provisioning"] = [c.summary() for c in cases]
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m centaurus.perf.measurements.provisioning --real 2 8 32 --hollow 1000``."""
    import argparse

    ap = argparse.ArgumentParser(prog="provisioning")
    ap.add_argument("--work-dir", default="/tmp/cl-provisioning")
    ap.add_argument("--real", type=int, nargs="*", default=[2, 8, 32])
    ap.add_argument("--hollow", type=int, default=1000)
    ap.add_argument("--endpoints", type=int, default=50)
    ap.add_argument("--hollow-endpoints", type=int, default=300)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--hollow-rate", type=float, default=50.0)
    ap.add_argument("--bouncers", type=int, default=2)
    ap.add_argument("--out", default="")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    bench = ProvisioningBench(Path(a.work_dir))
    cases = []
    bench.up()
    try:
        for n in a.real:
            cases.append(bench.real_case(n, a.endpoints, a.rate, a.bouncers))
            print(json.dumps(cases[-1].summary()), flush=True)
        if a.hollow:
            cases.append(bench.hollow_case(a.hollow, a.hollow_endpoints, a.hollow_rate, a.bouncers))
            print(json.dumps(cases[-1].summary()), flush=True)
    finally:
        bench.down()
    res = results(cases, 100.0)
    if a.out:
        Path(a.out).write_text(
            json.dumps(
                {
                    "figures": [f.as_dict() for f in res.figures],
                    "perfdata": res.perfdata,
                    "details": res.details,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
