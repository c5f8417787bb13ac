"""Pod topology spread (``spec.topologySpreadConstraints``): hard constraints
(``DoNotSchedule``) filter nodes whose domain would exceed ``maxSkew``; soft ones
(``ScheduleAnyway``) score emptier domains higher. Counts are of bound (or assumed) pods in the
pod's namespace that match the constraint's selector, per value of ``topologyKey`` on their
nodes; nodes without the key are not candidates for a hard constraint (as upstream).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from centaurus.controllers.runtime.labels import selector_matcher
from centaurus.scheduler.nodetable import Mask, NodeTable, Vec

Obj = dict[str, Any]


def domain_of(table: NodeTable, key: str) -> tuple[np.ndarray[Any, np.dtype[np.int32]], list[str]]:
    """Per node slot the index of its value of label ``key`` (-1: no such label)."""
    values: dict[str, int] = {}
    out = np.full(table.size, -1, dtype=np.int32)
    for name, i in table.index.items():
        node = table.nodes[i]
        v = ((node or {}).get("metadata") or {}).get("labels", {}).get(key) if node else None
        if v is None and key == "kubernetes.io/hostname":
            v = name
        if v is not None:
            out[i] = values.setdefault(str(v), len(values))
    return out, list(values)


def apply(
    table: NodeTable,
    pod: Obj,
    fit: Mask,
    peers: Callable[[], Iterable[tuple[Obj, int]]],
) -> tuple[Mask, Vec | None]:
    """(fit narrowed by hard constraints, soft score or None). ``peers()`` yields (pod, node slot)
    of bound pods in the same namespace."""
    constraints = (pod.get("spec") or {}).get("topologySpreadConstraints") or ()
    if not constraints:
        return fit, None
    labels_cache: list[tuple[Obj, int]] = list(peers())
    score: Vec | None = None
    for c in constraints:
        key = str(c.get("topologyKey") or "")
        skew = int(c.get("maxSkew") or 1)
        match = selector_matcher(c.get("labelSelector"), empty_matches=False)
        dom, values = domain_of(table, key)
        counts: Counter[int] = Counter()
        for p, slot in labels_cache:
            if slot < len(dom) and dom[slot] >= 0 and match((p.get("metadata") or {}).get("labels") or {}):
                counts[int(dom[slot])] += 1
        arr = np.array([counts.get(v, 0) for v in range(len(values))], dtype=np.float64)
        if not len(arr):
            continue
        per_node = np.where(dom >= 0, arr[np.maximum(dom, 0)], np.inf)
        if c.get("whenUnsatisfiable", "DoNotSchedule") == "DoNotSchedule":
            eligible = fit & (dom >= 0)
            lo = float(arr.min())
            fit = eligible & (per_node + 1 - lo <= skew)
        else:
            hi = float(arr.max())
            s = np.where(dom >= 0, (hi - np.minimum(per_node, hi)) / hi * 100.0 if hi > 0 else 100.0, 0.0)
            score = s if score is None else score + s
    return fit, score
