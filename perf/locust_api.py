"""Locust load for the ``api-latency`` campaign (PERF-API-1/2): object lifecycles of pods,
deployments and configmaps across tenants, list calls, and watchers whose delivery latency is
measured -- at a fixed offered rate, shaped by a :class:`StagesShape` (ramp-up, then hold).

``ApiUser`` (FastHttpUser): one request per task run, walking a lifecycle per resource --
create, get, patch, (update), list, delete -- paced by ``constant_throughput`` so the offered
rate is users x CL_USER_RATE whatever the latency (queueing shows up in the tail). Requests are
named ``<verb> <resource>`` so statistics are per (resource, verb). Each user works in one tenant
(round-robin over the kubeconfigs), with the tenant taken from its credential (Kubernetes path
form) as real clients do.

``WatchUser``: a custom client (plain ``requests``, cooperative under gevent) that lists and then
watches one resource of its tenant from the list's resourceVersion; it fires ``events.request``
for the list (``list <resource> (watch)``) and for every ADDED event of an object that carries
``perf.centaurus.io/sent-at`` (``watch <resource>``: send time of the create -> event received,
same machine clock; across machines the clocks must be synchronised).

Environment: ``CL_KUBECONFIGS`` (comma-separated kubeconfig paths: one tenant each; the server
and CA come from the first), ``CL_NAMESPACE`` (default ``perf``), ``CL_USER_RATE`` (requests/s
per ApiUser), ``CL_STAGES`` (JSON list of ``{"duration": s, "users": n, "spawn_rate": r}``;
empty: locust's -u/-r/-t), ``CL_WATCHERS`` (WatchUser count, default 3), ``CL_SAMPLES`` (file
prefix: every sample ``[name, ms, ok, unix time]`` as JSON lines at exit, ``.<pid>`` appended).

Single process: ``locust -f perf/locust_api.py --headless --csv out/api``. Distributed (more
cores or machines): ``locust -f perf/locust_api.py --headless --master --expect-workers N --csv
out/api`` plus N ``locust -f perf/locust_api.py --worker --master-host HOST`` with the same
environment (each worker writes its own samples file). See docs/perf.md.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
import time
import uuid
from typing import Any

import requests
import yaml
from locust import FastHttpUser, LoadTestShape, User, constant, constant_throughput, events, task

SENT_AT = "perf.centaurus.io/sent-at"
NS = os.environ.get("CL_NAMESPACE", "perf")
RATE = float(os.environ.get("CL_USER_RATE", "2"))
SAMPLES = os.environ.get("CL_SAMPLES", "")
_samples: list[tuple[str, float, bool, float]] = []


def _tenant(path: str) -> dict[str, str]:
    """server, CA file, token of one kubeconfig (the first cluster and user)."""
    with open(path) as fh:
        kc = yaml.safe_load(fh)
    cluster = kc["clusters"][0]["cluster"]
    user = kc["users"][0]["user"]
    ca = cluster.get("certificate-authority", "")
    if not ca and cluster.get("certificate-authority-data"):
        fd, ca = tempfile.mkstemp(prefix="cl-locust-ca-", suffix=".crt")
        os.write(fd, base64.b64decode(cluster["certificate-authority-data"]))
        os.close(fd)
    return {"server": cluster["server"], "ca": ca, "token": user.get("token", ""), "file": path}


TENANTS = [_tenant(p) for p in os.environ.get("CL_KUBECONFIGS", "").split(",") if p]


@events.request.add_listener
def _record(request_type: str, name: str, response_time: float, response_length: int, exception: Any,
            **_: Any) -> None:
    _samples.append((name, float(response_time), exception is None, time.time()))


@events.quitting.add_listener
def _dump(environment: Any, **_: Any) -> None:
    if SAMPLES:
        with open(f"{SAMPLES}.{os.getpid()}", "w") as fh:
            fh.writelines(json.dumps(s) + "\n" for s in _samples)


def _meta(name: str) -> dict[str, Any]:
    return {"name": name, "labels": {"app": "perf"}, "annotations": {SENT_AT: f"{time.time():.6f}"}}


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": _meta(name),
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"],
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}


def configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(name), "data": {"k": "v" * 256}}


def deployment(name: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(name),
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": pod(name)["spec"]}}}


#: resource -> (collection path under a namespace, manifest, patch body, steps)
RESOURCES: dict[str, tuple[str, Any, dict[str, Any], tuple[str, ...]]] = {
    "pods": ("/api/v1/namespaces/{ns}/pods", pod, {"metadata": {"labels": {"step": "patched"}}},
             ("create", "get", "patch", "list", "delete")),
    "configmaps": ("/api/v1/namespaces/{ns}/configmaps", configmap, {"data": {"k2": "patched"}},
                   ("create", "patch", "get", "update", "list", "delete")),  # update what get returned
    "deployments": ("/apis/apps/v1/namespaces/{ns}/deployments", deployment, {"spec": {"replicas": 0}},
                    ("create", "get", "patch", "list", "delete")),
}
_counter = {"users": 0, "watchers": 0}


def _ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=(TENANTS[0]["ca"] if TENANTS else None) or None)


class ApiUser(FastHttpUser):
    wait_time = constant_throughput(RATE)
    ssl_context_factory = staticmethod(_ssl_context)
    connection_timeout = 10.0
    network_timeout = 60.0

    def on_start(self) -> None:
        if not TENANTS:
            raise RuntimeError("CL_KUBECONFIGS is empty: nothing to authenticate with")
        i = _counter["users"]
        _counter["users"] += 1
        self.t = TENANTS[i % len(TENANTS)]
        self.headers = {"Authorization": f"Bearer {self.t['token']}", "Content-Type": "application/json",
                        "Accept": "application/json"}
        self.plan = [(r, v) for r in RESOURCES for v in RESOURCES[r][3]]
        self.step = (i * 5) % len(self.plan)  # users start at different places of the cycle
        self.names: dict[str, str] = {}
        self.last: dict[str, dict[str, Any]] = {}

    def _req(self, method: str, path: str, name: str, body: Any = None, ctype: str | None = None) -> Any:
        headers = dict(self.headers, **({"Content-Type": ctype} if ctype else {}))
        data = json.dumps(body) if body is not None else None
        with self.client.request(method, path, data=data, headers=headers, name=name,
                                 catch_response=True) as resp:
            if resp.status_code >= 400:
                resp.failure(f"{resp.status_code}: {(resp.text or '')[:200]}")
                return None
            return resp

    @task
    def step_once(self) -> None:
        resource, verb = self.plan[self.step % len(self.plan)]
        self.step += 1
        base, make, patch, _ = RESOURCES[resource]
        coll = base.format(ns=NS)
        name = self.names.get(resource)
        label = f"{verb} {resource}"
        if verb == "create":
            name = self.names[resource] = f"p{uuid.uuid4().hex[:12]}"
            self._req("POST", coll, label, make(name))
        elif name is None:
            return  # this user's cycle started after a create: nothing to act on yet
        elif verb == "get":
            r = self._req("GET", f"{coll}/{name}", label)
            if r is not None:
                self.last[resource] = json.loads(r.text)
        elif verb == "patch":
            self._req("PATCH", f"{coll}/{name}", label, patch, "application/merge-patch+json")
        elif verb == "update" and resource in self.last:
            obj = self.last[resource]
            obj.setdefault("data", {})["k3"] = str(time.time())
            self._req("PUT", f"{coll}/{name}", label, obj)
        elif verb == "list":
            self._req("GET", f"{coll}?limit=500", label)
        elif verb == "delete":
            self._req("DELETE", f"{coll}/{name}", label)
            self.names.pop(resource, None)
            self.last.pop(resource, None)


class WatchUser(User):
    """List + watch of one resource in its tenant's namespace, re-established every 30 s."""

    wait_time = constant(0)
    fixed_count = int(os.environ.get("CL_WATCHERS", "3"))

    def on_start(self) -> None:
        i = _counter["watchers"]
        _counter["watchers"] += 1
        self.t = TENANTS[i % len(TENANTS)]
        self.resource = list(RESOURCES)[i % len(RESOURCES)]
        self.s = requests.Session()
        self.s.trust_env = False  # REQUESTS_CA_BUNDLE would replace our CA
        self.s.verify = self.t["ca"] or True
        self.s.headers.update({"Authorization": f"Bearer {self.t['token']}", "Accept": "application/json"})

    def _fire(self, name: str, ms: float, length: int, exc: Exception | None) -> None:
        self.environment.events.request.fire(request_type="WATCH", name=name, response_time=ms,
                                             response_length=length, exception=exc, context={})

    @task
    def list_and_watch(self) -> None:
        url = self.t["server"] + RESOURCES[self.resource][0].format(ns=NS)
        t0 = time.perf_counter()
        try:
            r = self.s.get(url, timeout=60)
            r.raise_for_status()
            rv = r.json()["metadata"].get("resourceVersion", "")
            ms = (time.perf_counter() - t0) * 1000
            self._fire(f"list {self.resource} (watch)", ms, len(r.content), None)
        except (requests.RequestException, ValueError, KeyError) as exc:
            self._fire(f"list {self.resource} (watch)", (time.perf_counter() - t0) * 1000, 0, exc)
            time.sleep(1)
            return
        try:
            with self.s.get(url, params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "30",
                                         "allowWatchBookmarks": "true"}, stream=True, timeout=90) as w:
                w.raise_for_status()
                for line in w.iter_lines():
                    if not line:
                        continue
                    ev = json.loads(line)
                    meta = (ev.get("object") or {}).get("metadata") or {}
                    sent = (meta.get("annotations") or {}).get(SENT_AT)
                    if ev.get("type") == "ADDED" and sent:
                        ms = (time.time() - float(sent)) * 1000
                        self._fire(f"watch {self.resource}", ms, len(line), None)
        except (requests.RequestException, ValueError) as exc:
            self._fire(f"watch {self.resource}", 0.0, 0, exc)


class StagesShape(LoadTestShape):
    """Stages from ``CL_STAGES`` (JSON list of ``{"duration", "users", "spawn_rate"}``): e.g. a
    ramp-up stage (not counted by the campaign) and a hold stage at the offered rate. Without
    CL_STAGES the shape is off and locust's own -u/-r/-t apply."""

    stages: list[dict[str, float]] = json.loads(os.environ.get("CL_STAGES", "[]") or "[]")
    abstract = not stages

    def tick(self) -> tuple[int, float] | None:
        t = self.get_run_time()
        end = 0.0
        for s in self.stages:
            end += float(s["duration"])
            if t < end:
                return int(s["users"]), float(s.get("spawn_rate", s["users"]))
        return None
