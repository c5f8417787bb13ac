"""``pod-startup``: pod startup with real workloads (PERF-POD-1 containers, PERF-POD-2 VMs) --
the builtin target with its node agents on the droplets of a netns lab (crun containers, qemu
VMs, real endpoints), pods created at a fixed rate, each one's transitions timed by H7's
:class:`~centaurus.perf.measurements.pod_startup.PodStartupMeasurement` (create -> scheduled ->
running -> seen Running by a watcher), clusterloader2 style. A warm-up pod per kind first, so
the image is on the node (image download is outside the figure, as the requirement says).

Params: ``kinds`` (``[container]``; add ``vm``), ``pods`` per kind, ``rate`` (pods/s),
``lab_spec`` (``labs/default.yaml``), ``timeout_s``, ``vm_boot`` (``auto``: VMs restored from the
template snapshot, cold boot as fallback; ``cold``: every VM boots cold -- the control plane and
agents are brought up again with that option on the same lab, after the earlier target's pods are
gone). Figures carry a ``boot`` label for VMs (``restore`` or ``cold``).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from centaurus.perf import shared
from centaurus.perf.core import Context, Figure, Measurement, MeasurementError, Result

BUSYBOX = "busybox:1.36"
VM_IMAGE = "download.cirros-cloud.net/0.3.5/cirros-0.3.5-x86_64-disk.img"


def manifest(kind: str, name: str) -> dict[str, Any]:
    if kind == "vm":
        spec: dict[str, Any] = {
            "virtualMachine": {
                "name": "vm",
                "image": VM_IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "resources": {
                    "requests": {"cpu": "1", "memory": "128Mi"},
                    "limits": {"cpu": "1", "memory": "128Mi"},
                },
            }
        }
    else:
        spec = {
            "containers": [
                {
                    "name": "main",
                    "image": BUSYBOX,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
                }
            ]
        }
    spec.update(restartPolicy="Always", terminationGracePeriodSeconds=2)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "cl-perf"}},
        "spec": spec,
    }


def _ready_nodes(api: Any) -> int:
    n = 0
    for node in api.list("nodes").get("items", []):
        conds = {c.get("type"): c.get("status") for c in (node.get("status") or {}).get("conditions", [])}
        n += conds.get("Ready") == "True" and not (node.get("spec") or {}).get("unschedulable")
    return n


class PodStartup(Measurement):
    method = "pod-startup"

    def gather(self, ctx: Context, params: dict[str, Any]) -> Result:
        from centaurus.perf.measurements.pod_startup import PodStartupMeasurement

        kinds = [str(k) for k in params.get("kinds", ["container"])]
        n, rate = int(params.get("pods", ctx.pick(20, 100))), float(params.get("rate", ctx.pick(5.0, 10.0)))
        timeout = float(params.get("timeout_s", 120 + n / rate * 5))
        lab = shared.lab(
            ctx, str(params.get("lab_spec", "labs/default.yaml")), str(params.get("dataplane", "mizar-xdp"))
        )
        vm_boot = str(params.get("vm_boot") or "auto")
        tgt_spec = str(params.get("target", "builtin"))
        tgt_opts = {"vm_boot": vm_boot} if vm_boot != "auto" else {}
        _only_target(ctx, tgt_spec, tgt_opts, lab)
        tgt = shared.target(ctx, tgt_spec, tgt_opts, lab=lab)
        api = tgt.client()
        deadline = time.monotonic() + 90
        while _ready_nodes(api) == 0:
            if time.monotonic() > deadline:
                raise MeasurementError("no Ready node after 90 s: the target brought no node agents up")
            time.sleep(1)
        ns = f"perf-{uuid.uuid4().hex[:6]}"
        api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        ctx.progress.total(len(kinds) * (n + 1))
        res = Result()
        for kind in kinds:
            warm = f"warm-{kind}-{uuid.uuid4().hex[:4]}"
            m0 = PodStartupMeasurement(api, ns, kind=kind).start()
            api.create("pods", manifest(kind, warm), namespace=ns)
            m0.wait([warm], timeout=240)
            m0.stop()
            ctx.progress.advance(1, f"{kind} warm-up pod running")
            m = PodStartupMeasurement(api, ns, kind=kind).start()
            names = []
            t0 = time.monotonic()
            for i in range(n):
                name = f"s{kind[0]}{i:04d}-{uuid.uuid4().hex[:4]}"
                m.created(name)
                api.create("pods", manifest(kind, name), namespace=ns)
                names.append(name)
                ctx.progress.advance(1, f"{kind} {i + 1}/{n}")
                time.sleep(max(0.0, t0 + (i + 1) / rate - time.monotonic()))
            achieved = n / max(time.monotonic() - t0, 1e-6)
            m.wait(names, timeout=timeout)
            if kind == "vm":  # guest-ready comes after Running: gather only once every guest answered
                _wait_vm_ready(api, ns, names, timeout=60.0)
            items = m.gather(names)
            boot = {"boot": "restore" if vm_boot == "auto" else vm_boot} if kind == "vm" else {}
            for it in items:
                it["labels"].update(Rate=f"{rate:g}/s", Pods=str(n), Nodes=str(_ready_nodes(api)))
                if boot:
                    it["labels"]["Boot"] = boot["boot"]
                res.perfdata.append(it)
                tr = it["labels"].get("Transition", "")
                res.figures.append(
                    Figure(
                        "pod_startup_p99_ms",
                        round(float(it["data"]["Perc99"]), 1),
                        "ms",
                        {"kind": kind, "transition": tr, **boot},
                        note=f"p50 {it['data']['Perc50']:.0f} ms, p90 {it['data']['Perc90']:.0f} ms, "
                        f"{len(it.get('samples') or [])} pods at {achieved:.1f}/s",
                    )
                )
            res.figures.append(Figure("pod_creation_rate", round(achieved, 2), "1/s", {"kind": kind, **boot}))
        try:
            api.delete("namespaces", ns)
        except Exception:
            pass
        _wait_gone(api, ns)
        return res


def _wait_vm_ready(api: Any, ns: str, names: list[str], timeout: float) -> None:
    """Until every named VM pod has ``Ready=True`` (a pod that never gets there is simply missing
    from the ready transitions: the figure's note gives the sample count)."""
    want = set(names)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pods = api.list("pods", namespace=ns).get("items") or []
        except Exception:
            return
        ready = {
            p["metadata"]["name"]
            for p in pods
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
        }
        if want <= ready:
            return
        time.sleep(0.2)


def _wait_gone(api: Any, ns: str, timeout: float = 120.0) -> None:
    """Until the namespace's pods are gone: the next step starts clean (no idle TCG guests
    spinning, no workloads left behind if the next step replaces the target)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not api.list("pods", namespace=ns).get("items"):
                return
        except Exception:
            return
        time.sleep(0.5)


def _only_target(ctx: Context, spec: str, options: dict[str, str], lab: Any) -> None:
    """Take down other targets of ``spec`` on ``lab``: two control planes' agents must not share
    the droplets (same pod CIDRs). Used when a step needs other node options (``vm_boot``)."""
    want = ("target", spec, tuple(sorted(options.items())), id(lab))
    targets = ctx.state.get("targets") or {}
    for key in list(targets):
        if key[0] == "target" and key != want and key[1] == spec and key[3] == id(lab):
            handle = targets.pop(key)
            handle.down()
            # keep counting it: shared.target names state dirs target-<n>, and a reused one holds
            # the old agents' kubeconfigs (pointing at the stopped API server)
            targets[("retired", *key)] = handle
