"""Static filters: does a node accept a pod regardless of what already runs on it?

Pure functions over the node and pod objects, each answering None (passes) or the reason in the
words kube-scheduler uses, which end up in the ``0/N nodes are available: ...`` message. What
changes with every binding (CPU, memory, pod count) is checked on arrays in :mod:`nodetable`.

Cloud/edge placement needs nothing special: sites and zones are node labels
(``centaurus.io/site-type``, ``centaurus.io/site``, ``topology.kubernetes.io/zone``) that
nodeSelector and node affinity select on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from centaurus.controllers.runtime.labels import selector_matcher

Obj = dict[str, Any]
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
NOT_READY = "node(s) were not ready"
UNSCHEDULABLE = "node(s) were unschedulable"
AFFINITY = "node(s) didn't match Pod's node affinity/selector"


def _labels(node: Obj) -> dict[str, str]:
    return dict((node.get("metadata") or {}).get("labels") or {})


def node_ready(node: Obj) -> bool:
    for c in (node.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


def toleration_matches(tol: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    eff = tol.get("effect")
    if eff and eff != taint.get("effect"):
        return False
    op = tol.get("operator") or "Equal"
    key = tol.get("key")
    if not key:
        return op == "Exists"
    if key != taint.get("key"):
        return False
    return op == "Exists" or str(tol.get("value", "")) == str(taint.get("value", ""))


def untolerated_taint(pod_spec: Obj, node: Obj) -> Obj | None:
    tols = pod_spec.get("tolerations") or ()
    for taint in (node.get("spec") or {}).get("taints") or ():
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue  # PreferNoSchedule only lowers the score in Kubernetes
        if not any(toleration_matches(t, taint) for t in tols):
            return dict(taint)
    return None


def node_selector_term_matches(term: Obj, node: Obj) -> bool:
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False  # an empty term matches nothing (Kubernetes)
    if exprs and not selector_matcher({"matchExpressions": exprs})(_labels(node)):
        return False
    if fields:
        name = (node.get("metadata") or {}).get("name", "")
        return bool(selector_matcher({"matchExpressions": fields})({"metadata.name": name}))
    return True


def affinity_matches(pod_spec: Obj, node: Obj) -> bool:
    labels = _labels(node)
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(k) != str(v):
            return False
    req = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if req:
        terms = req.get("nodeSelectorTerms") or []
        return any(node_selector_term_matches(t, node) for t in terms)  # terms are ORed
    return True


def static_reason(pod_spec: Obj, node: Obj) -> str | None:
    """None when the node may take the pod, else why not (first failing filter, as upstream)."""
    if not node_ready(node):
        return NOT_READY
    if (node.get("spec") or {}).get("unschedulable") and not any(
        toleration_matches(t, {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"})
        for t in pod_spec.get("tolerations") or ()
    ):
        return UNSCHEDULABLE
    if not affinity_matches(pod_spec, node):
        return AFFINITY
    taint = untolerated_taint(pod_spec, node)
    if taint is not None:
        return f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"
    return None


def failure_message(total: int, reasons: dict[str, int]) -> str:
    """``0/3 nodes are available: 1 Insufficient memory, 2 Insufficient cpu.`` -- kube-scheduler's
    FitError text: "<count> <reason>" strings, sorted as strings."""
    if total == 0:
        return "0/0 nodes are available: no nodes available to schedule pods."
    parts = ", ".join(sorted(f"{n} {r}" for r, n in reasons.items()))
    return f"0/{total} nodes are available: {parts}."
