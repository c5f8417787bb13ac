"""Pod startup with real workloads at increasing creation rates: how fast can these cores start pods?

Brings up the default netns lab with the builtin control plane and its node agents (crun
containers, endpoints on the lab's dataplane, qemu VMs), then for each rate creates
``--seconds`` worth of pods from several client threads at that steady rate, measures each
pod's create -> scheduled -> running -> seen-by-watch transitions
(:class:`centaurus.perf.measurements.pod_startup.PodStartupMeasurement`, clusterloader2 style),
deletes them, and goes on. VM pods: from template snapshot restore, and (``--vm-cold``) with a
second bring-up that forces cold boots. The highest rate whose create->watch p99 stays under
``--slo-ms`` is reported as the sustained rate.

Output: PerfData (``{"version": "v1", "dataItems": [...]}``) in
``<report-dir>/pod-startup-sweep.json`` and a table on stdout.

    .venv/bin/python perf/pod_startup_sweep.py --rates 10,20,30,40 --seconds 8 --vm-rates 1,2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from centaurus.client.rest import ApiClient  # noqa: E402
from centaurus.perf.measurements.pod_startup import PodStartupMeasurement  # noqa: E402

VM_IMAGE = "download.cirros-cloud.net/0.3.5/cirros-0.3.5-x86_64-disk.img"


def manifest(kind: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any]
    if kind == "vm":
        spec = {
            "virtualMachine": {
                "name": "vm",
                "image": VM_IMAGE,
                "resources": {"limits": {"cpu": "1", "memory": "128Mi"}},
            }
        }
    else:
        spec = {
            "containers": [
                {
                    "name": "main",
                    "image": "busybox:1.36",
                    "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
                }
            ]
        }
    spec.update(restartPolicy="Always", terminationGracePeriodSeconds=1)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "sweep"}},
        "spec": spec,
    }


def run_rate(kubeconfig: str, kind: str, rate: float, count: int, threads: int = 8) -> list[dict[str, Any]]:
    api = ApiClient.from_kubeconfig(kubeconfig)
    ns = f"sweep-{kind}-{uuid.uuid4().hex[:5]}"
    api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    labels = {"rate": f"{rate:g}/s", "pods": str(count)}
    m = PodStartupMeasurement(api, ns, kind=kind, labels=labels).start()
    clients = [ApiClient.from_kubeconfig(kubeconfig) for _ in range(threads)]
    names = [f"{kind[0]}{i}" for i in range(count)]

    def create(i: int) -> None:
        m.created(names[i])
        clients[i % threads].create("pods", manifest(kind, names[i]), namespace=ns)

    t0 = time.monotonic()
    with ThreadPoolExecutor(threads) as ex:
        futs = []
        for i in range(count):
            futs.append(ex.submit(create, i))
            delay = t0 + (i + 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        for f in futs:
            f.result()
    offered = count / max(1e-9, time.monotonic() - t0)
    m.wait(names, timeout=120 + count / rate * 5)
    items = m.gather(names)
    for it in items:
        it["labels"]["offered"] = f"{offered:.1f}/s"
    api.delete("namespaces", ns)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until the pods are gone: the next rate starts clean
        if not api.list("pods", namespace=ns).get("items"):
            break
        time.sleep(0.5)
    for c in clients:
        c.close()
    api.close()
    return items


def bring_up(base: Path, spec: Path, options: dict[str, str]) -> tuple[Any, Any]:
    from centaurus.labs.netns import NetnsLab
    from centaurus.labs.spec import load_spec
    from centaurus.targets.base import TargetContext
    from centaurus.targets.builtin import BuiltinTarget

    lab = NetnsLab(state_dir=base / "lab", options={})
    lab.up(load_spec(spec))
    target = BuiltinTarget(options=options)
    try:
        target.up(TargetContext(state_dir=base / "target", lab=lab))
    except BaseException:
        lab.down()
        raise
    return lab, target


def headline(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((i for i in items if i["labels"].get("Transition") == "create_to_watch"), None)


def sweep(
    args: argparse.Namespace, kind: str, rates: list[float], options: dict[str, str], tag: str
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cl-sweep-") as d:
        lab, target = bring_up(Path(d), Path(args.spec), options)
        try:
            kc = str(target.kubeconfig())
            run_rate(kc, kind, 2.0, 2)  # warm-up: images and templates in place
            for rate in rates:
                count = max(4, int(rate * (args.seconds if kind == "container" else args.vm_seconds)))
                items = run_rate(kc, kind, rate, count)
                for it in items:
                    it["labels"]["mode"] = tag
                out += items
                h = headline(items)
                if h is not None:
                    d_ = h["data"]
                    print(
                        f"{tag:10s} {kind:9s} {rate:5g}/s x{count:4d}  create->watch p50 "
                        f"{d_['Perc50']:7.1f} ms  p90 {d_['Perc90']:7.1f}  p99 {d_['Perc99']:7.1f}",
                        flush=True,
                    )
                    if d_["Perc99"] > args.slo_ms * 3:
                        print(f"{tag}: p99 far above the SLO at {rate:g}/s; stopping this sweep", flush=True)
                        break
        finally:
            target.down()
            lab.down()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", default=str(ROOT / "labs" / "default.yaml"))
    ap.add_argument("--rates", default="10,20,30,40")
    ap.add_argument("--seconds", type=float, default=8.0, help="creation time per container rate")
    ap.add_argument("--vm-rates", default="1,2")
    ap.add_argument("--vm-seconds", type=float, default=6.0)
    ap.add_argument("--vm-cold", action="store_true", help="also a sweep with cold VM boots")
    ap.add_argument("--slo-ms", type=float, default=1000.0)
    ap.add_argument("--report-dir", default=str(ROOT / "reports" / "out"))
    args = ap.parse_args()
    items: list[dict[str, Any]] = []
    rates = [float(r) for r in args.rates.split(",") if r]
    if rates:
        items += sweep(args, "container", rates, {}, "crun")
    vm_rates = [float(r) for r in args.vm_rates.split(",") if r]
    if vm_rates:
        items += sweep(args, "vm", vm_rates, {}, "restore")
        if args.vm_cold:
            items += sweep(args, "vm", vm_rates[:1], {"vm_boot": "cold"}, "cold")
    sustained = [
        float(i["labels"]["rate"].rstrip("/s"))
        for i in items
        if i["labels"].get("Transition") == "create_to_watch"
        and i["labels"]["Kind"] == "container"
        and i["data"]["Perc99"] <= args.slo_ms
    ]
    out = Path(args.report_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pod-startup-sweep.json").write_text(json.dumps({"version": "v1", "dataItems": items}, indent=1))
    print(
        f"highest container rate with create->watch p99 <= {args.slo_ms:g} ms: "
        f"{max(sustained) if sustained else 'none'} pods/s; PerfData in {out / 'pod-startup-sweep.json'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
