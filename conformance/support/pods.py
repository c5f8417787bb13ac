"""Create pods the way users do and observe them the way a watcher does.

* Manifests: a busybox container pod and the whitepaper's VM pod (Figure 4.2, the cirros image);
  both are plain Kubernetes/Arktos objects, nothing implementation-specific.
* :class:`PodWatcher` watches a namespace in a background thread and stamps the moment each pod is
  first seen ``Running`` with an IP: that instant closes the startup figure (PERF-POD-1/2).
* :class:`PodFactory` creates pods, waits with a watch, runs "probe" pods to completion (a
  restartPolicy=Never pod whose exit status is the answer: Succeeded = the check passed), and
  deletes what it made.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from centaurus.client.rest import ApiClient, ApiError
from support.waiting import is_finished, is_running, wait_for

BUSYBOX = "busybox:1.36"
#: The VM image of the whitepaper's VM pod sample (Figure 4.2).
VM_IMAGE = "download.cirros-cloud.net/0.3.5/cirros-0.3.5-x86_64-disk.img"

Obj = dict[str, Any]


def container_pod(name: str, command: list[str] | None = None, *, node: str | None = None,
                  labels: dict[str, str] | None = None, restart: str = "Always",
                  node_selector: dict[str, str] | None = None, image: str = BUSYBOX) -> Obj:
    """A busybox pod; by default it sleeps (a long-running workload that needs no network)."""
    spec: Obj = {
        "containers": [{"name": "main", "image": image, "imagePullPolicy": "IfNotPresent",
                        "command": command or ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]}],
        "restartPolicy": restart,
        "terminationGracePeriodSeconds": 2,
    }
    if node:
        spec["nodeName"] = node
    if node_selector:
        spec["nodeSelector"] = node_selector
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "cl-conformance", **(labels or {})}}, "spec": spec}


def vm_pod(name: str, *, node: str | None = None, labels: dict[str, str] | None = None,
           node_selector: dict[str, str] | None = None) -> Obj:
    """The whitepaper's VM pod (Figure 4.2), smaller: 1 CPU, 128Mi."""
    spec: Obj = {
        "virtualMachine": {"name": "vm", "image": VM_IMAGE, "imagePullPolicy": "IfNotPresent",
                           "resources": {"requests": {"cpu": "1", "memory": "128Mi"},
                                         "limits": {"cpu": "1", "memory": "128Mi"}}},
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 2,
    }
    if node:
        spec["nodeName"] = node
    if node_selector:
        spec["nodeSelector"] = node_selector
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "cl-conformance", **(labels or {})}}, "spec": spec}


def tcp_server_pod(name: str, port: int, token: str, **kw: Any) -> Obj:
    """Answers every TCP connection on ``port`` with ``token`` (busybox nc, persistent server)."""
    return container_pod(name, ["nc", "-ll", "-p", str(port), "-e", "echo", token], **kw)


def tcp_probe_pod(name: str, ip: str, port: int, token: str, *, attempts: int = 10, **kw: Any) -> Obj:
    """Exits 0 once a connection to ip:port returns ``token`` (tries ``attempts`` times, 1 s
    apart, to absorb endpoint provisioning), else exits 1."""
    script = (f"i=0; while [ $i -lt {attempts} ]; do "
              f"if nc -w 2 {ip} {port} </dev/null | grep -q {token}; then echo reached; exit 0; fi; "
              f"i=$((i+1)); sleep 1; done; echo unreachable; exit 1")
    return container_pod(name, ["sh", "-c", script], restart="Never", **kw)


def ping_probe_pod(name: str, ip: str, *, count: int = 3, **kw: Any) -> Obj:
    """Exits 0 when ``ip`` answers ICMP echo (tries for ~10 s), else 1."""
    script = (f"i=0; while [ $i -lt 5 ]; do if ping -c {count} -W 2 {ip}; then exit 0; fi; "
              f"i=$((i+1)); sleep 1; done; exit 1")
    return container_pod(name, ["sh", "-c", script], restart="Never", **kw)


@dataclass
class PodWatcher:
    """Stamps the monotonic time each object of a namespace is first seen in a state (default:
    pods Running with an IP) by a watch running in a background thread -- the watcher's view is
    what closes a startup figure. ``resource``/``group_version``/``predicate`` make it watch other
    kinds (e.g. Mizar Endpoints reaching Provisioned)."""

    api: ApiClient
    namespace: str
    tenant: str | None = None
    resource: str = "pods"
    group_version: str | None = None
    predicate: Callable[[Obj], bool] = is_running
    running_at: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{self.resource}-{self.namespace}",
                                        daemon=True)

    def start(self, timeout: float = 30.0) -> PodWatcher:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise AssertionError(f"{self.resource} watch on namespace {self.namespace} did not start "
                                 f"within {timeout:g} s")
        if self.errors:
            raise AssertionError(f"{self.resource} watch on namespace {self.namespace} failed: "
                                 f"{self.errors[0]}")
        return self

    def _run(self) -> None:
        rv: str | None = None
        kw: dict[str, Any] = {"namespace": self.namespace, "tenant": self.tenant,
                              "group_version": self.group_version}
        try:
            listing = self.api.list(self.resource, **kw)
            rv = listing.get("metadata", {}).get("resourceVersion")
            for obj in listing.get("items", []):
                if self.predicate(obj):
                    self.running_at.setdefault(obj["metadata"]["name"], time.monotonic())
        except Exception as exc:
            self.errors.append(f"list: {exc}")
            self._ready.set()
            return
        self._ready.set()
        while not self._stop.is_set():
            try:
                for ev in self.api.watch(self.resource, resource_version=rv, timeout_seconds=5, **kw):
                    now = time.monotonic()
                    obj = ev.get("object") or {}
                    if ev.get("type") == "ERROR":
                        self.errors.append(f"watch error event: {obj}")
                        rv = None
                        break
                    rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                    if ev.get("type") in ("ADDED", "MODIFIED") and self.predicate(obj):
                        self.running_at.setdefault(obj["metadata"]["name"], now)
                    if self._stop.is_set():
                        return
            except Exception as exc:  # the watch itself broke: record, back off, resume
                self.errors.append(f"watch: {exc}")
                if self._stop.wait(0.5):
                    return

    def wait_running(self, names: list[str], timeout: float) -> None:
        """Wait until every name was stamped (a name may also be a prefix of the object's name)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.stamp(n) is not None for n in names):
                return
            time.sleep(0.02)
        missing = [n for n in names if self.stamp(n) is None]
        raise AssertionError(f"{len(missing)} of {len(names)} {self.resource} not in the expected state "
                             f"within {timeout:g} s (e.g. {missing[:3]}); watch errors: {self.errors[:2]}")

    def stamp(self, name: str) -> float | None:
        if name in self.running_at:
            return self.running_at[name]
        found = [t for k, t in list(self.running_at.items()) if k.startswith(name + "-")]
        return min(found) if found else None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=8)


class PodFactory:
    """Creates pods in one namespace (of one tenant) and deletes them all at :meth:`cleanup`."""

    def __init__(self, api: ApiClient, namespace: str, tenant: str | None = None) -> None:
        self.api, self.namespace, self.tenant = api, namespace, tenant
        self.created: list[str] = []

    def create(self, manifest: Obj) -> Obj:
        obj = self.api.create("pods", manifest, namespace=self.namespace, tenant=self.tenant)
        self.created.append(manifest["metadata"]["name"])
        return obj

    def get(self, name: str) -> Obj:
        return self.api.get("pods", name, namespace=self.namespace, tenant=self.tenant)

    def wait_running(self, name: str, timeout: float = 60.0) -> Obj:
        return wait_for(self.api, "pods", name, is_running, namespace=self.namespace, tenant=self.tenant,
                        timeout=timeout, what="to be Running with a pod IP")

    def start(self, manifest: Obj, timeout: float = 60.0) -> Obj:
        self.create(manifest)
        return self.wait_running(manifest["metadata"]["name"], timeout)

    def run_to_completion(self, manifest: Obj, timeout: float = 90.0) -> str:
        """Create a restartPolicy=Never pod and return its final phase (Succeeded | Failed)."""
        self.create(manifest)
        pod = wait_for(self.api, "pods", manifest["metadata"]["name"], is_finished, namespace=self.namespace,
                       tenant=self.tenant, timeout=timeout, what="to finish")
        return str(pod["status"]["phase"])

    def logs(self, name: str) -> str:
        path = (f"/api/v1/{'tenants/' + self.tenant + '/' if self.tenant else ''}namespaces/"
                f"{self.namespace}/pods/{name}/log")
        with contextlib.suppress(ApiError):
            return self.api.request("GET", path).text
        return ""

    def delete(self, name: str) -> None:
        with contextlib.suppress(ApiError):
            self.api.delete("pods", name, namespace=self.namespace, tenant=self.tenant, check=False)

    def cleanup(self) -> None:
        for name in self.created:
            self.delete(name)
        self.created.clear()


def ready_nodes(api: ApiClient) -> list[Obj]:
    """Nodes whose Ready condition is True and that are schedulable."""
    out = []
    for node in api.list("nodes").get("items", []):
        conds = {c.get("type"): c.get("status") for c in (node.get("status") or {}).get("conditions", [])}
        if conds.get("Ready") == "True" and not (node.get("spec") or {}).get("unschedulable"):
            out.append(node)
    return out


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) -- what clusterloader2 reports as PercNN."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100.0 * len(ordered)) - 1))
    return ordered[k]


def perfdata(values_ms: list[float], metric: str, **labels: str) -> dict[str, Any]:
    """A clusterloader2 PerfData item (ms) with the raw samples for CDF plots."""
    return {"data": {"Perc50": percentile(values_ms, 50), "Perc90": percentile(values_ms, 90),
                     "Perc99": percentile(values_ms, 99)},
            "unit": "ms", "labels": {"Metric": metric, **labels}, "samples": list(values_ms)}
