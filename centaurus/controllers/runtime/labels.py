"""Label selectors as objects (``matchLabels`` + ``matchExpressions``), the form workload specs
use; the string form of list calls lives in :mod:`centaurus.objects.selectors`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

LabelPred = Callable[[Mapping[str, str]], bool]


def _expr(e: Mapping[str, Any]) -> LabelPred:
    key, op = str(e.get("key", "")), str(e.get("operator", ""))
    values = frozenset(str(v) for v in e.get("values") or ())
    if op == "In":
        return lambda lb: lb.get(key) in values
    if op == "NotIn":
        return lambda lb: lb.get(key) not in values
    if op == "Exists":
        return lambda lb: key in lb
    if op == "DoesNotExist":
        return lambda lb: key not in lb
    if op in ("Gt", "Lt"):  # node selector terms only
        bound = int(next(iter(values))) if len(values) == 1 else 0

        def cmp(lb: Mapping[str, str]) -> bool:
            try:
                v = int(lb[key])
            except (KeyError, ValueError):
                return False
            return v > bound if op == "Gt" else v < bound

        return cmp
    raise ValueError(f"unknown selector operator {op!r}")


def selector_matcher(sel: Mapping[str, Any] | None, *, empty_matches: bool = True) -> LabelPred:
    """A LabelSelector as a predicate over a label map. An empty selector matches everything
    (workload selectors) unless ``empty_matches`` is False (e.g. PodDisruptionBudget style)."""
    if not sel or (not sel.get("matchLabels") and not sel.get("matchExpressions")):
        return (lambda lb: True) if empty_matches else (lambda lb: False)
    want = {str(k): str(v) for k, v in (sel.get("matchLabels") or {}).items()}
    exprs = [_expr(e) for e in sel.get("matchExpressions") or ()]

    def match(lb: Mapping[str, str]) -> bool:
        return all(lb.get(k) == v for k, v in want.items()) and all(x(lb) for x in exprs)

    return match


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})
