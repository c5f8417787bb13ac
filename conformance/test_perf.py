"""Performance (whitepaper §2, §3.3, §5.5): API latency under load, pod startup for containers and
VMs, dataplane packet rate and overhead against the kernel baseline, provisioning fan-out and
latency.

Figures are recorded with ``record_measurement`` (judged against the catalog threshold, all
recorded before any assertion so the report always has them) and as clusterloader2 PerfData with
raw samples for the report's plots. Sizes come from ``profile.pick(smoke, full)``: the smoke
profile keeps every test to seconds; the full profile is campaign-sized.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import transit
from support.fixtures import own_client
from support.names import unique
from support.pods import PodFactory, PodWatcher, container_pod, percentile, perfdata, vm_pod

from centaurus import plugins
from centaurus.client.rest import ApiClient, ApiError
from centaurus.harness.selection import Choice, make_lab
from centaurus.trafficgen.base import GeneratorUnavailable, Trial

pytestmark = pytest.mark.timeout(900)
MIZAR = "mizar.com/v1"


def cm(name: str, size: int = 64) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": "x" * size}}


def deployment(name: str) -> dict[str, Any]:
    """A deployment with no replicas: its create/patch/delete are API calls, no pods follow."""
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": container_pod(name)["spec"]}}}


def timed(samples: list[float], fn: Any, *args: Any, **kw: Any) -> Any:
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    samples.append((time.perf_counter() - t0) * 1000.0)
    return out


def record_all(record_measurement: Any, record_perfdata: Any, req: str, metric: str,
               groups: dict[tuple[str, str], list[float]], **extra: str) -> list[str]:
    """Record p99 per (resource, verb) and PerfData; return the figures that miss the threshold."""
    misses = []
    for (resource, verb), values in sorted(groups.items()):
        if not values:
            continue
        labels = {"resource": resource, "verb": verb, **extra}
        m = record_measurement(req, percentile(values, 99), "ms", labels, check=False)
        record_perfdata(perfdata(values, metric, **labels))
        if m.met is False:
            misses.append(f"{resource} {verb}: p99 {m.value:.1f} ms")
    return misses


# ---- PERF-API-1: mutating calls under sustained load ---------------------------------------------
@pytest.mark.requirement("PERF-API-1")
def test_mutating_api_latency_under_sustained_load(target: Any, namespace: str, profile: Any,
                                                   record_measurement: Any, record_perfdata: Any) -> None:
    """Several clients mutate configmaps (create, update, patch, delete), pods and deployments
    (create, patch, delete) for a sustained period; the p99 latency of each (resource, verb) must
    stay below 1 s. Pods need no node here and deployments have no replicas: the write path is
    what is measured. (The campaign `centaurus perf run api-latency` adds tenants, watchers, lists
    and the SLI's 5-minute windows at a fixed offered rate; docs/perf.md.)"""
    duration, workers = profile.pick(6.0, 60.0), profile.pick(4, 16)
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + duration

    def work(i: int) -> None:
        client = own_client(target)
        local: dict[tuple[str, str], list[float]] = defaultdict(list)
        try:
            n = 0
            while time.monotonic() < deadline:
                name = unique(f"l{i}")
                obj = timed(local["configmaps", "create"], client.create, "configmaps", cm(name),
                            namespace=namespace)
                obj["data"] = {"v": "y" * 64}
                timed(local["configmaps", "update"], client.replace, "configmaps", obj)
                timed(local["configmaps", "patch"], client.patch, "configmaps", name, {"data": {"w": "1"}},
                      namespace=namespace)
                timed(local["configmaps", "delete"], client.delete, "configmaps", name, namespace=namespace)
                if n % 4 == 0:
                    pod = unique(f"lp{i}")
                    timed(local["pods", "create"], client.create, "pods", container_pod(pod),
                          namespace=namespace)
                    timed(local["pods", "patch"], client.patch, "pods", pod,
                          {"metadata": {"labels": {"x": "y"}}}, namespace=namespace)
                    timed(local["pods", "delete"], client.delete, "pods", pod, namespace=namespace)
                if n % 4 == 2:
                    dep = unique(f"ld{i}")
                    timed(local["deployments", "create"], client.create, "deployments", deployment(dep),
                          namespace=namespace)
                    timed(local["deployments", "patch"], client.patch, "deployments", dep,
                          {"metadata": {"labels": {"x": "y"}}}, namespace=namespace)
                    timed(local["deployments", "delete"], client.delete, "deployments", dep,
                          namespace=namespace)
                n += 1
        except (ApiError, OSError, Exception) as exc:
            errors.append(f"worker {i}: {exc}")
        finally:
            client.close()
            with lock:
                for k, v in local.items():
                    groups[k].extend(v)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + 120)
    calls = sum(len(v) for v in groups.values())
    record_perfdata({"data": {"Rate": calls / duration}, "unit": "1/s",
                     "labels": {"Metric": "api_throughput", "workers": str(workers)}})
    misses = record_all(record_measurement, record_perfdata, "PERF-API-1", "api_latency", groups,
                        workers=str(workers))
    assert not errors, f"calls failed under load: {errors[:3]}"
    assert calls > 0, "no call completed"
    assert not misses, f"p99 over 1 s: {misses}"


# ---- PERF-API-2: reads and lists -----------------------------------------------------------------
@pytest.mark.requirement("PERF-API-2")
def test_read_and_list_latency(target: Any, api: ApiClient, namespace: str, profile: Any,
                               record_measurement: Any, record_perfdata: Any) -> None:
    """With N objects stored and a background writer running, p99 of single-object GETs stays
    below 1 s and p99 of LIST calls (one namespace; all namespaces) below 30 s."""
    n, reads, lists = profile.pick(100, 3000), profile.pick(300, 5000), profile.pick(10, 50)
    names = [unique("r") for _ in range(n)]
    for name in names:
        api.create("configmaps", cm(name, 256), namespace=namespace)
    stop = threading.Event()

    def writer() -> None:
        c = own_client(target)
        try:
            while not stop.is_set():
                name = unique("bg")
                c.create("configmaps", cm(name), namespace=namespace)
                c.delete("configmaps", name, namespace=namespace)
        except Exception:
            pass
        finally:
            c.close()

    bg = threading.Thread(target=writer, daemon=True)
    bg.start()
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    try:
        rng = random.Random(1)
        for _ in range(reads):
            timed(groups["configmaps", "get"], api.get, "configmaps", rng.choice(names), namespace=namespace)
        lists_ns: list[float] = []
        lists_all: list[float] = []
        for _ in range(lists):
            items = timed(lists_ns, api.list, "configmaps", namespace=namespace)["items"]
            assert len(items) >= n
            timed(lists_all, api.list, "configmaps")
    finally:
        stop.set()
        bg.join(timeout=30)
    misses = record_all(record_measurement, record_perfdata, "PERF-API-2", "api_latency", groups,
                        objects=str(n))
    for scope, values in (("namespace", lists_ns), ("cluster", lists_all)):
        labels = {"resource": "configmaps", "verb": "list", "scope": scope, "objects": str(n)}
        m = record_measurement("PERF-API-2", percentile(values, 99), "ms", labels, check=False)
        record_perfdata(perfdata(values, "api_latency", **labels))
        if m.met is False:
            misses.append(f"list {scope}: p99 {m.value:.0f} ms")
    assert not misses, misses


# ---- PERF-POD-1 / PERF-POD-2: startup seen by a watcher ------------------------------------------
def _startup(api: ApiClient, namespace: str, manifests: list[dict[str, Any]], rate: float,
             timeout: float) -> list[float]:
    """Create pods at ``rate``/s; return each one's create -> Running-seen-by-watcher time (ms)."""
    watcher = PodWatcher(api, namespace).start()
    created: dict[str, float] = {}
    try:
        for m in manifests:
            name = m["metadata"]["name"]
            created[name] = time.monotonic()
            api.create("pods", m, namespace=namespace)
            time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - created[name])))
        watcher.wait_running(list(created), timeout)
    finally:
        watcher.stop()
    return [(watcher.running_at[n] - t) * 1000.0 for n, t in created.items()]


@pytest.mark.requirement("PERF-POD-1")
def test_container_pod_startup(api: ApiClient, pods: PodFactory, namespace: str, nodes: list[dict[str, Any]],
                               profile: Any, record_measurement: Any, record_perfdata: Any) -> None:
    """p99 container pod startup (create -> Running with an IP, seen by a watcher), network
    endpoint provisioning included, image already on the nodes (a warm-up pod pulls it first),
    under 5 s for N pods created at a steady rate."""
    pods.start(container_pod(unique("warm")), timeout=120)
    n, rate = profile.pick(10, 100), profile.pick(5.0, 10.0)
    manifests = [container_pod(unique("s")) for _ in range(n)]
    pods.created += [m["metadata"]["name"] for m in manifests]
    values = _startup(api, namespace, manifests, rate, timeout=60 + n / rate * 5)
    labels = {"kind": "container", "pods": str(n), "rate": f"{rate:g}/s", "nodes": str(len(nodes))}
    record_perfdata(perfdata(values, "pod_startup", **labels))
    record_measurement("PERF-POD-1", percentile(values, 99), "ms", labels)


@pytest.mark.requirement("PERF-POD-2")
def test_vm_pod_startup(api: ApiClient, pods: PodFactory, namespace: str, nodes: list[dict[str, Any]],
                        requires: Any, profile: Any, record_measurement: Any, record_perfdata: Any) -> None:
    """p99 VM pod startup, same definition as PERF-POD-1 (the VM image present beforehand),
    under 5 s."""
    requires("vm-pods")
    pods.start(vm_pod(unique("warm")), timeout=180)
    n, rate = profile.pick(4, 30), profile.pick(1.0, 3.0)
    manifests = [vm_pod(unique("v")) for _ in range(n)]
    pods.created += [m["metadata"]["name"] for m in manifests]
    values = _startup(api, namespace, manifests, rate, timeout=120 + n / rate * 10)
    labels = {"kind": "vm", "pods": str(n), "rate": f"{rate:g}/s", "nodes": str(len(nodes))}
    record_perfdata(perfdata(values, "pod_startup", **labels))
    record_measurement("PERF-POD-2", percentile(values, 99), "ms", labels)


# ---- PERF-NET-1: near line rate ------------------------------------------------------------------
def _generator(name: str) -> Any:
    """A traffic generator of the ``centaurus.trafficgens`` axis, constructed as ``cls(options)``."""
    if name not in plugins.available("trafficgen"):
        pytest.fail(f"traffic generator {name!r} is not built yet (no centaurus.trafficgens entry point)")
    return plugins.load("trafficgen", name)(options={})


def _mizar_lab(need_lab: Any) -> Any:
    name = getattr(need_lab.dataplane, "name", "?")
    if name != "mizar-xdp":
        pytest.skip(f"not-applicable: lab dataplane is {name}; the figure is the Mizar dataplane's")
    return need_lab


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else 0.0


@pytest.fixture
def perf_lab(need_lab: Any, conformance: Any, tmp_path: Path) -> Iterator[Any]:
    """The packet-rate lab (``labs/perf-p2p.yaml``: two droplets on one veth pair, one endpoint
    each, so s1 -> r1 is exactly 3 veth hops) on the conformance lab's backend with the Mizar
    dataplane, up for one test."""
    from centaurus.labs.spec import load_spec

    _mizar_lab(need_lab)
    choice = conformance.lab_choice
    lab = make_lab(Choice(choice.name, choice.arg, {**choice.options, "dataplane": "mizar-xdp"}, "lab"),
                   tmp_path / "perf-p2p")
    try:
        lab.up(load_spec(Path(__file__).resolve().parents[1] / "labs" / "perf-p2p.yaml"))
        yield lab
    finally:
        lab.down()


@pytest.mark.requirement("PERF-NET-1")
def test_packet_rate_near_the_host_link(perf_lab: Any, profile: Any, record_measurement: Any,
                                        record_perfdata: Any) -> None:
    """Packet rate between endpoints on different hosts, on the direct path and via one bouncer,
    divided by the host link's own limit, same generator, frame size and run: at least 0.8 for
    each path and frame size (the worse one decides).

    On this single-machine veth lab the host link's limit for a path is a plain XDP_REDIRECT chain
    with the same number of veth hops (the lead's definition, docs/perf.md): every veth hop runs on
    the sending CPU, so no overlay over N hops can beat N plain redirects, and the 1-hop rate is no
    bound for a 3-hop path. Direct path: s1 -> r1 of the perf-p2p lab (transitd-programmed, 3
    hops) against a 3-hop plain chain; via a bouncer: the overlay's 4-hop shape (agent, bouncer,
    decap; a p2p lab has no third droplet on the path) against a 4-hop plain chain -- the bouncer
    must really bounce (its counter). Trials interleave path and reference; the figure is the
    median of the per-round ratios of packets per CPU-second of the generator's pinned thread
    (where every hop runs), counted at the receiving side. The 1-hop figure is recorded beside."""
    gen = _generator("xdp-live")
    gen.check()
    sizes = profile.pick([64], [64, 512, 1518])
    # many short rounds: a vCPU's per-core rate here swings up to 2x between phases of a few
    # seconds, so a path and its reference must be measured close together, often
    rounds, dur = profile.pick(9, 25), profile.pick(0.1, 0.2)
    paths = {"raw_1hop": {"kind": "chain", "hops": 1},
             "plain_3hop": {"kind": "chain", "hops": 3},
             "direct": {"kind": "endpoint", "lab": perf_lab, "src": "s1", "dst": "r1"},
             "plain_4hop": {"kind": "chain", "hops": 4},
             "bouncer": {"kind": "chain", "mode": "overlay", "via": "bouncer"}}
    misses: list[str] = []
    try:
        for size in sizes:
            rates: dict[str, list[float]] = {n: [] for n in paths}
            for _ in range(rounds):
                for name, path in paths.items():
                    res = gen.run_trial(path, Trial(size, 0.0, dur))
                    assert res.rx_packets > 0, f"{name} carried nothing at {size} B"
                    rates[name].append(res.extra["pps_per_core"])
            for name, vals in rates.items():
                record_perfdata({"data": {"Rate": _median(vals)}, "unit": "pps",
                                 "labels": {"Metric": "packet_rate", "Path": name, "FrameSize": str(size),
                                            "Basis": "per core"}})
            for via, ref in (("direct", "plain_3hop"), ("bouncer", "plain_4hop")):
                ratio = _median([a / b for a, b in zip(rates[via], rates[ref], strict=True) if b])
                m = record_measurement("PERF-NET-1", ratio, "ratio",
                                       {"path": via, "frame_size": str(size), "reference": ref,
                                        "reference_mpps": f"{_median(rates[ref]) / 1e6:.3f}",
                                        "raw_1hop_mpps": f"{_median(rates['raw_1hop']) / 1e6:.3f}"},
                                       check=False)
                if m.met is False:
                    misses.append(f"{via} {size} B: {ratio:.2f} of the {ref} chain")
        bounced = gen.route(paths["bouncer"]).counters().get("bouncer1", {}).get("bounced", 0)
    finally:
        gen.close()
    assert bounced > 0, "the via-bouncer path never went through its bouncer"
    assert not misses, misses


@pytest.mark.requirement("PERF-NET-1")
def test_packet_rate_on_a_nic_testbed(need_lab: Any) -> None:
    """The same figure on real NICs with TRex (labs over ssh): a machine without a TRex server
    reports this not-verified; the veth figure above stands for this machine."""
    gen = _generator("trex")
    try:
        try:
            gen.check()
        except GeneratorUnavailable as exc:
            pytest.skip(f"not-verified: {exc}")
        res = gen.run_trial({"lab": need_lab, "kind": "endpoint", "src": "a2", "dst": "a4", "via": "direct"},
                            Trial(64, 0.0, 5.0))
        assert res.rx_packets > 0
    finally:
        gen.close()


# ---- PERF-NET-2: overhead against the kernel baseline --------------------------------------------
@pytest.fixture
def baseline_lab(need_lab: Any, conformance: Any, tmp_path: Path) -> Iterator[Any]:
    """The same lab spec on the same backend with the kernel bridge+VXLAN dataplane, up for one
    test: the same-run reference of the performance model."""
    from centaurus.labs.spec import load_spec

    choice = conformance.lab_choice
    lab = make_lab(Choice(choice.name, choice.arg, {**choice.options, "dataplane": "bridge-vxlan"}, "lab"),
                   tmp_path / "baseline")
    try:
        lab.up(load_spec(conformance.lab_spec))
        yield lab
    finally:
        lab.down()


@pytest.mark.requirement("PERF-NET-2")
def test_dataplane_cpu_and_memory_against_the_kernel_baseline(need_lab: Any, baseline_lab: Any, profile: Any,
                                                              record_measurement: Any,
                                                              record_perfdata: Any) -> None:
    """At the same offered rate on the same path shape (a2 -> a4 across hosts), the CPU time the
    Mizar dataplane spends per received packet is at most that of the kernel bridge+VXLAN
    baseline (ratio <= 1). CPU is the pinned generator thread's CPU time (every hop of both paths
    runs in its softirq context; machine-wide counters would add whatever else runs here) minus
    the same for the generator and one veth hop into a sink. Rounds interleave the three. Per-host
    memory (transit daemon RSS + its BPF maps) idle and under traffic, and machine memory, are
    recorded beside."""
    from centaurus.perf import hostcost
    from centaurus.perf.measurements.net_overhead import host_memory

    lab = _mizar_lab(need_lab)
    gen = _generator("xdp-live")
    gen.check()
    rate, dur, rounds = profile.pick(50_000.0, 200_000.0), profile.pick(1.0, 5.0), profile.pick(2, 3)
    paths = {"baseline": {"kind": "chain", "hops": 1},
             "mizar-xdp": {"kind": "endpoint", "lab": lab, "src": "a2", "dst": "a4"},
             "bridge-vxlan": {"kind": "endpoint", "lab": baseline_lab, "src": "a2", "dst": "a4"}}
    per: dict[str, list[float]] = {n: [] for n in paths}
    try:
        for path in paths.values():
            gen.route(path)  # set up (sinks, warm-up pings) before the idle figures
        idle = host_memory(lab)
        machine_idle = hostcost.mem_used_bytes()
        for _ in range(rounds):
            for name, path in paths.items():
                res = gen.run_trial(path, Trial(64, rate, dur))
                assert res.rx_packets > 0, f"{name}: nothing received"
                per[name].append(res.extra["cpu_s"] / res.rx_packets * 1e9)
        traffic = host_memory(lab)
        machine_traffic = hostcost.mem_used_bytes()
    finally:
        gen.close()
    base = _median(per["baseline"])
    cost = {n: max(0.0, _median(per[n]) - base) for n in ("mizar-xdp", "bridge-vxlan")}
    for name, v in cost.items():
        record_perfdata({"data": {"CpuPerPacket": v}, "unit": "ns",
                         "labels": {"Metric": "resource_usage", "Resource": "cpu", "Dataplane": name,
                                    "rate_pps": f"{rate:g}"}})
    for phase, mem in (("idle", idle), ("traffic", traffic)):
        for host, m in mem.items():
            data = {"Total": m["total"], "DaemonRss": m["daemon_rss"], "BpfMaps": m["bpf_maps"]}
            labels = {"Metric": "resource_usage", "Resource": "memory", "Dataplane": "mizar-xdp",
                      "Host": host, "Phase": phase}
            record_perfdata({"data": data, "unit": "B", "labels": labels})
    record_perfdata({"data": {"Idle": machine_idle, "Traffic": machine_traffic}, "unit": "B",
                     "labels": {"Metric": "resource_usage", "Resource": "machine memory", "labs": "both up"}})
    ratio = cost["mizar-xdp"] / cost["bridge-vxlan"] if cost["bridge-vxlan"] > 0 else float("inf")
    record_measurement("PERF-NET-2", ratio, "ratio",
                       {"resource": "cpu", "rate_pps": f"{rate:g}",
                        "mizar_ns_per_packet": f"{cost['mizar-xdp']:.0f}",
                        "bridge_vxlan_ns_per_packet": f"{cost['bridge-vxlan']:.0f}"})
    assert cost["bridge-vxlan"] > 0, "the kernel baseline cost nothing beyond the generator: broken figure"


# ---- PERF-NET-3: bounded provisioning fan-out ----------------------------------------------------
@pytest.mark.requirement("PERF-NET-3")
def test_endpoint_provisioning_touches_only_its_host_and_bouncers(need_lab: Any,
                                                                  record_measurement: Any) -> None:
    """A new endpoint is programmed on its own host and on its network's bouncers, and nowhere
    else: the hosts whose transit daemon holds it after provisioning, divided by (1 + bouncers),
    is 1 for a one-bouncer and a two-bouncer network."""
    lab = _mizar_lab(need_lab)
    drops = [h.name for h in lab.hosts("droplet")]
    worst = 0.0
    cases = (("net-a2", "d1", "10.10.2.201", 1), ("net-a1", "d3", "10.10.1.201", 2))
    for network, host, ip, bouncers in cases:
        name = f"fan{unique('x')[-4:]}"
        info = lab.add_endpoint({"name": name, "network": network, "ip": ip, "host": host})
        try:
            key = (info.vni, info.ip)
            touched = [d for d in drops if key in transit.endpoint_keys(transit.dump(lab, d))]
        finally:
            lab.remove_endpoint(name)
        assert host in touched, f"{name} not programmed on its own host {host}"
        ratio = len(touched) / (1 + bouncers)
        worst = max(worst, ratio)
        labels = {"network": network, "hosts_touched": ",".join(touched), "droplets": str(len(drops))}
        record_measurement("PERF-NET-3", ratio, "ratio", labels, check=False)
    assert worst <= 1.0, f"provisioning touched more hosts than the endpoint's host and bouncers " \
        f"({worst:.2f})"


# ---- PERF-NET-4: provisioning latency ------------------------------------------------------------
@pytest.mark.requirement("PERF-NET-4")
def test_endpoint_provisioning_latency(api: ApiClient, pods: PodFactory, namespace: str,
                                       nodes: list[dict[str, Any]], requires: Any, profile: Any,
                                       record_measurement: Any, record_perfdata: Any) -> None:
    """For pods created at a steady rate, the time from pod creation to its Mizar Endpoint being
    Provisioned (seen by a watcher) -- the network part of pod startup; p99 reported."""
    requires("mizar")
    pods.start(container_pod(unique("warm")), timeout=120)
    n, rate = profile.pick(10, 100), profile.pick(5.0, 10.0)

    def provisioned(obj: dict[str, Any]) -> bool:
        st = (obj.get("status") or {}).get("phase") or (obj.get("spec") or {}).get("status")
        return st == "Provisioned"

    watcher = PodWatcher(api, namespace, resource="endpoints", group_version=MIZAR,
                         predicate=provisioned).start()
    created: dict[str, float] = {}
    try:
        for _ in range(n):
            name = unique("np")
            created[name] = time.monotonic()
            pods.create(container_pod(name))
            time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - created[name])))
        watcher.wait_running(list(created), timeout=60 + n / rate * 5)
    finally:
        watcher.stop()
    values = [(float(watcher.stamp(nm) or 0.0) - t) * 1000.0 for nm, t in created.items()]
    labels = {"pods": str(n), "rate": f"{rate:g}/s"}
    record_perfdata(perfdata(values, "provisioning", **labels))
    record_measurement("PERF-NET-4", percentile(values, 99), "ms", labels)
