"""Defaulting: the fields Kubernetes fills in on create, so clients see familiar objects
(``kubectl get -o yaml`` shows the same defaults, controllers can rely on them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _container(c: dict[str, Any]) -> None:
    image = str(c.get("image") or "")
    tag = image.rsplit("/", 1)[-1]
    latest = "@" not in image and (":" not in tag or tag.endswith(":latest"))
    c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for p in c.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")


def pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                _container(c)


def _pod(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    pod_spec(spec)
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    status = obj.setdefault("status", {})
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", "BestEffort")


def _template(spec: dict[str, Any]) -> None:
    tmpl = spec.setdefault("template", {})
    tmpl.setdefault("metadata", {})
    pod_spec(tmpl.setdefault("spec", {}))


def _deployment(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strat = spec.setdefault("strategy", {})
    strat.setdefault("type", "RollingUpdate")
    if strat["type"] == "RollingUpdate":
        ru = strat.setdefault("rollingUpdate", {})
        ru.setdefault("maxUnavailable", "25%")
        ru.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _template(spec)
    obj.setdefault("status", {})


def _replicaset(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    _template(spec)
    obj.setdefault("status", {"replicas": 0})


def _namespace(obj: dict[str, Any]) -> None:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj["status"] = {"phase": "Active"}


def _service(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for p in spec.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
    obj.setdefault("status", {"loadBalancer": {}})


def _tenant(obj: dict[str, Any]) -> None:
    obj.setdefault("spec", {}).setdefault("storageClusterId", "")
    obj["status"] = {"phase": "Active"}


def _quota(obj: dict[str, Any]) -> None:
    hard = dict((obj.get("spec") or {}).get("hard") or {})
    obj["status"] = {"hard": hard, "used": {}}


def _secret(obj: dict[str, Any]) -> None:
    obj.setdefault("type", "Opaque")


_BY_KIND: dict[str, Callable[[dict[str, Any]], None]] = {
    "Pod": _pod,
    "Deployment": _deployment,
    "ReplicaSet": _replicaset,
    "Namespace": _namespace,
    "Service": _service,
    "Tenant": _tenant,
    "ResourceQuota": _quota,
    "Secret": _secret,
}


def apply_defaults(kind: str, obj: dict[str, Any]) -> None:
    fn = _BY_KIND.get(kind)
    if fn is not None:
        fn(obj)
