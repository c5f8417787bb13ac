"""Locust load for the API server: pod and configmap lifecycles at a fixed offered rate.

Each user runs one object lifecycle per step -- create, get, patch, list (small namespace),
delete -- with ``constant_throughput`` pacing, so ``users x CL_USER_RATE`` is the offered rate in
requests/s whatever the latency (open-loop enough that queueing shows up in the tail). Requests
are named ``<verb> <resource>`` so locust's statistics are per (resource, verb).

Environment: ``CL_TOKEN`` (bearer token), ``CL_CA`` (CA file), ``CL_NAMESPACE`` (namespace the
users work in; must exist), ``CL_USER_RATE`` (requests/s per user, default 10),
``CL_SAMPLES`` (file: every sample ``[name, ms, ok, unix time]`` is written as JSON lines when
the runner quits).

Single process: ``locust -f perf/locustfile_api.py --headless -u 50 -r 50 -t 60s --host https://...``.
Distributed (several cores or machines): one ``--master --expect-workers N`` plus N
``--worker --master-host H`` processes with the same file and environment; each worker writes
its own ``CL_SAMPLES`` file (suffix ``.<pid>``) and ``make perf-api`` merges them.
"""

from __future__ import annotations

import json
import os
import ssl
import time
import uuid
from typing import Any

from locust import FastHttpUser, constant_throughput, events, task

TOKEN = os.environ.get("CL_TOKEN", "")
CA = os.environ.get("CL_CA", "")
NS = os.environ.get("CL_NAMESPACE", "perf")
RATE = float(os.environ.get("CL_USER_RATE", "10"))
SAMPLES = os.environ.get("CL_SAMPLES", "")
_samples: list[tuple[str, float, bool, float]] = []


def _ssl_factory() -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=CA or None)
    return ctx


@events.request.add_listener
def _record(
    request_type: str, name: str, response_time: float, response_length: int, exception: Any, **_: Any
) -> None:
    _samples.append((name, float(response_time), exception is None, time.time()))


@events.quitting.add_listener
def _dump(environment: Any, **_: Any) -> None:
    if not SAMPLES:
        return
    with open(f"{SAMPLES}.{os.getpid()}", "w") as fh:
        for name, ms, ok, at in _samples:
            fh.write(json.dumps([name, ms, ok, at]) + "\n")


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "perf"}},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "busybox:1.36",
                    "command": ["sleep", "3600"],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ]
        },
    }


class ApiUser(FastHttpUser):
    wait_time = constant_throughput(RATE)
    ssl_context_factory = staticmethod(_ssl_factory)
    connection_timeout = 10.0
    network_timeout = 30.0

    def on_start(self) -> None:
        self.headers = {
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self.base = f"/api/v1/namespaces/{NS}"
        self.step = 0

    def _req(self, method: str, path: str, name: str, body: Any = None, ctype: str | None = None) -> None:
        headers = dict(self.headers)
        if ctype:
            headers["Content-Type"] = ctype
        data = json.dumps(body) if body is not None else None
        with self.client.request(
            method, path, data=data, headers=headers, name=name, catch_response=True
        ) as resp:
            if resp.status_code >= 400:
                resp.failure(f"{resp.status_code}: {resp.text[:200] if resp.text else ''}")

    @task
    def lifecycle(self) -> None:
        """One request per task run; the step counter walks the lifecycle in order."""
        s = self.step % 5
        if s == 0:
            self.name = f"perf-{uuid.uuid4().hex[:10]}"
            self._req("POST", f"{self.base}/pods", "create pods", pod(self.name))
        elif s == 1:
            self._req("GET", f"{self.base}/pods/{self.name}", "get pods")
        elif s == 2:
            self._req(
                "PATCH",
                f"{self.base}/pods/{self.name}",
                "patch pods",
                {"metadata": {"labels": {"step": "patched"}}},
                "application/merge-patch+json",
            )
        elif s == 3:
            self._req("GET", f"/api/v1/namespaces/{NS}-small/configmaps", "list configmaps")
        else:
            self._req("DELETE", f"{self.base}/pods/{self.name}", "delete pods")
        self.step += 1
