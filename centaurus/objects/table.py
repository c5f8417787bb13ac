"""``meta.k8s.io/v1`` Table conversion: what ``kubectl get`` prints.

Column sets follow the upstream printers (pkg/printers/internalversion) for the kinds served
here; custom resources use their CRD's ``additionalPrinterColumns`` (JSONPath subset ``.a.b``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from centaurus.objects.kinds import Kind

Col = tuple[str, str, str, int]  # name, type, format, priority
Row = Callable[[dict[str, Any]], list[Any]]

NAME: Col = ("Name", "string", "name", 0)
AGE: Col = ("Age", "string", "", 0)


def age(obj: dict[str, Any], now: datetime | None = None) -> str:
    ts = (obj.get("metadata") or {}).get("creationTimestamp")
    if not ts:
        return "<unknown>"
    try:
        t = datetime.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    s = max(0, int(((now or datetime.now(UTC)) - t).total_seconds()))
    if s < 120:
        return f"{s}s"
    if s < 3600 * 3:
        return f"{s // 60}m"
    if s < 86400 * 2:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def _name(o: dict[str, Any]) -> str:
    return str((o.get("metadata") or {}).get("name", ""))


def _pod(o: dict[str, Any]) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    cs = st.get("containerStatuses") or []
    total = len(spec.get("containers") or []) or (1 if spec.get("virtualMachine") else 0)
    ready = sum(1 for c in cs if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in cs)
    phase = st.get("reason") or st.get("phase") or "Unknown"
    if (o.get("metadata") or {}).get("deletionTimestamp"):
        phase = "Terminating"
    return [
        _name(o),
        f"{ready}/{total}",
        phase,
        restarts,
        age(o),
        st.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
    ]


def _deploy(o: dict[str, Any]) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    return [
        _name(o),
        f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
        st.get("updatedReplicas", 0),
        st.get("availableReplicas", 0),
        age(o),
    ]


def _rs(o: dict[str, Any]) -> list[Any]:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    return [_name(o), spec.get("replicas", 0), st.get("replicas", 0), st.get("readyReplicas", 0), age(o)]


def _node(o: dict[str, Any]) -> list[Any]:
    conds = {c.get("type"): c.get("status") for c in (o.get("status") or {}).get("conditions") or []}
    ready = "Ready" if conds.get("Ready") == "True" else "NotReady"
    if (o.get("spec") or {}).get("unschedulable"):
        ready += ",SchedulingDisabled"
    labels = (o.get("metadata") or {}).get("labels") or {}
    roles = (
        ",".join(sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")))
        or "<none>"
    )
    ver = ((o.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")
    return [_name(o), ready, roles, age(o), ver]


def _svc(o: dict[str, Any]) -> list[Any]:
    spec = o.get("spec") or {}
    ports = (
        ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or []) or "<none>"
    )
    return [
        _name(o),
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP") or "<none>",
        "<none>",
        ports,
        age(o),
    ]


def _quota(o: dict[str, Any]) -> list[Any]:
    st = o.get("status") or {}
    hard = (o.get("spec") or {}).get("hard") or {}
    used = st.get("used") or {}
    req = ", ".join(f"{k}: {used.get(k, 0)}/{v}" for k, v in sorted(hard.items()))
    return [_name(o), age(o), req]


def _binding(o: dict[str, Any]) -> list[Any]:
    ref = o.get("roleRef") or {}
    return [_name(o), f"{ref.get('kind')}/{ref.get('name')}", age(o)]


def _crd(o: dict[str, Any]) -> list[Any]:
    return [_name(o), (o.get("metadata") or {}).get("creationTimestamp", "")]


COLUMNS: dict[str, tuple[list[Col], Row]] = {
    "Pod": (
        [
            NAME,
            ("Ready", "string", "", 0),
            ("Status", "string", "", 0),
            ("Restarts", "integer", "", 0),
            AGE,
            ("IP", "string", "", 1),
            ("Node", "string", "", 1),
        ],
        _pod,
    ),
    "Deployment": (
        [
            NAME,
            ("Ready", "string", "", 0),
            ("Up-to-date", "string", "", 0),
            ("Available", "string", "", 0),
            AGE,
        ],
        _deploy,
    ),
    "ReplicaSet": (
        [
            NAME,
            ("Desired", "integer", "", 0),
            ("Current", "integer", "", 0),
            ("Ready", "integer", "", 0),
            AGE,
        ],
        _rs,
    ),
    "ConfigMap": (
        [NAME, ("Data", "integer", "", 0), AGE],
        lambda o: [_name(o), len(o.get("data") or {}) + len(o.get("binaryData") or {}), age(o)],
    ),
    "Secret": (
        [NAME, ("Type", "string", "", 0), ("Data", "integer", "", 0), AGE],
        lambda o: [_name(o), o.get("type", "Opaque"), len(o.get("data") or {}), age(o)],
    ),
    "Namespace": (
        [NAME, ("Status", "string", "", 0), AGE],
        lambda o: [_name(o), (o.get("status") or {}).get("phase", ""), age(o)],
    ),
    "Tenant": (
        [NAME, ("Status", "string", "", 0), ("Storage", "string", "", 0), AGE],
        lambda o: [
            _name(o),
            (o.get("status") or {}).get("phase", ""),
            (o.get("spec") or {}).get("storageClusterId", ""),
            age(o),
        ],
    ),
    "Node": (
        [NAME, ("Status", "string", "", 0), ("Roles", "string", "", 0), AGE, ("Version", "string", "", 0)],
        _node,
    ),
    "Service": (
        [
            NAME,
            ("Type", "string", "", 0),
            ("Cluster-IP", "string", "", 0),
            ("External-IP", "string", "", 0),
            ("Port(s)", "string", "", 0),
            AGE,
        ],
        _svc,
    ),
    "ServiceAccount": (
        [NAME, ("Secrets", "integer", "", 0), AGE],
        lambda o: [_name(o), len(o.get("secrets") or []), age(o)],
    ),
    "ResourceQuota": ([NAME, AGE, ("Request", "string", "", 0)], _quota),
    "RoleBinding": ([NAME, ("Role", "string", "", 0), AGE], _binding),
    "ClusterRoleBinding": ([NAME, ("Role", "string", "", 0), AGE], _binding),
    "Role": ([NAME, ("Created At", "date", "", 0)], _crd),
    "ClusterRole": ([NAME, ("Created At", "date", "", 0)], _crd),
    "CustomResourceDefinition": ([NAME, ("Created At", "date", "", 0)], _crd),
    "Lease": (
        [NAME, ("Holder", "string", "", 0), AGE],
        lambda o: [_name(o), (o.get("spec") or {}).get("holderIdentity", ""), age(o)],
    ),
}


def _jsonpath(obj: Any, path: str) -> Any:
    cur = obj
    for part in path.strip().lstrip(".").split("."):
        if not part:
            continue
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def columns_for(kind: Kind) -> tuple[list[Col], Row]:
    if kind.crd is not None:
        extra = kind.crd.get("additionalPrinterColumns") or []
        cols: list[Col] = [NAME] + [
            (c.get("name", ""), c.get("type", "string"), c.get("format", ""), int(c.get("priority", 0)))
            for c in extra
        ]
        if not any(c.get("jsonPath") == ".metadata.creationTimestamp" for c in extra):
            cols.append(AGE)

        def row(o: dict[str, Any]) -> list[Any]:
            cells: list[Any] = [_name(o)]
            for c in extra:
                v = _jsonpath(o, c.get("jsonPath", ""))
                cells.append(age(o) if c.get("jsonPath") == ".metadata.creationTimestamp" else v)
            if len(cells) < len(cols):
                cells.append(age(o))
            return cells

        return cols, row
    return COLUMNS.get(kind.kind, ([NAME, AGE], lambda o: [_name(o), age(o)]))


def column_definitions(kind: Kind) -> list[dict[str, Any]]:
    cols, _ = columns_for(kind)
    return [{"name": n, "type": t, "format": f, "description": n, "priority": p} for n, t, f, p in cols]


def partial_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata") or {},
    }


def to_table(
    kind: Kind,
    objs: list[dict[str, Any]],
    list_meta: dict[str, Any],
    include_object: str = "Metadata",
    with_columns: bool = True,
) -> dict[str, Any]:
    _, row = columns_for(kind)
    rows = []
    for o in objs:
        r: dict[str, Any] = {"cells": row(o)}
        if include_object == "Object":
            r["object"] = o
        elif include_object != "None":
            r["object"] = partial_metadata(o)
        rows.append(r)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": column_definitions(kind) if with_columns else [],
        "rows": rows,
    }
