"""Label and field selectors as the list/watch query strings carry them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from centaurus.objects.status import ApiStatusError

Pred = Callable[[dict[str, Any]], bool]
_SET = re.compile(r"^\s*([^\s!=,()]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split(expr: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in expr:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [p.strip() for p in out if p.strip()]


def label_selector(expr: str | None) -> Pred | None:
    if not expr:
        return None
    reqs: list[tuple[str, str, frozenset[str]]] = []  # (op, key, values)
    for term in _split(expr):
        m = _SET.match(term)
        if m:
            reqs.append((m.group(2), m.group(1), frozenset(v.strip() for v in m.group(3).split(","))))
        elif "!=" in term:
            k, v = (s.strip() for s in term.split("!=", 1))
            reqs.append(("notin", k, frozenset([v])))
        elif "=" in term:
            k, v = (s.strip() for s in re.split("==|=", term, maxsplit=1))
            reqs.append(("in", k, frozenset([v])))
        elif term.startswith("!"):
            reqs.append(("absent", term[1:].strip(), frozenset()))
        elif re.match(r"^[A-Za-z0-9][-A-Za-z0-9_./]*$", term):
            reqs.append(("exists", term, frozenset()))
        else:
            raise ApiStatusError(400, f"unable to parse requirement: {term!r}")

    def ok(labels: dict[str, str], op: str, k: str, vs: frozenset[str]) -> bool:
        if op == "in":
            return labels.get(k) in vs
        if op == "notin":
            return labels.get(k) not in vs
        if op == "exists":
            return k in labels
        return k not in labels

    def match(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(ok(labels, op, k, vs) for op, k, vs in reqs)

    return match


def field_value(obj: dict[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def field_selector(expr: str | None) -> Pred | None:
    if not expr:
        return None
    preds: list[tuple[str, bool, str]] = []
    for term in _split(expr):
        if "!=" in term:
            k, v = term.split("!=", 1)
            preds.append((k.strip(), False, v.strip()))
        elif "=" in term:
            k, v = re.split("==|=", term, maxsplit=1)
            preds.append((k.strip(), True, v.strip()))
        else:
            raise ApiStatusError(400, f"invalid field selector: {term!r}")

    def match(obj: dict[str, Any]) -> bool:
        return all((field_value(obj, k) == v) == eq for k, eq, v in preds)

    return match


def both(a: Pred | None, b: Pred | None) -> Pred | None:
    if a is None:
        return b
    if b is None:
        return a
    return lambda o: a(o) and b(o)
