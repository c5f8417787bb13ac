"""The three PATCH flavours: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and
Kubernetes strategic merge patch.

Strategic merge differs from merge patch in lists: lists of objects named by a *merge key*
(``containers`` by ``name``, ``ports`` by ``containerPort``, ...) are merged item by item, and
``$patch``/``$retainKeys``/``$deleteFromPrimitiveList``/``$setElementOrder`` directives are
honoured. The merge keys are the ``patchMergeKey`` tags of the upstream Go types for the fields
of the kinds served here; unknown lists are replaced, as upstream does for atomic lists.
"""

from __future__ import annotations

import copy
from typing import Any

from centaurus.objects.status import ApiStatusError

#: field name -> merge key, for lists merged item by item (upstream patchMergeKey tags)
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "conditions": "type",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
#: lists of primitives merged as sets (patchStrategy=merge)
MERGE_PRIMITIVES = {"finalizers"}


def bad(msg: str) -> ApiStatusError:
    return ApiStatusError(422, msg, "Invalid")


# ---- RFC 7386 --------------------------------------------------------------------------------
def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


# ---- RFC 6902 --------------------------------------------------------------------------------
def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> tuple[Any, str]:
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise bad(f"path not found: /{'/'.join(parts)}")
    return cur, parts[-1]


def _get(doc: Any, parts: list[str]) -> Any:
    cur = doc
    for p in parts:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise bad(f"path not found: /{'/'.join(parts)}")
    return cur


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    par, last = _parent(doc, parts)
    if isinstance(par, dict):
        par[last] = value
    elif isinstance(par, list):
        idx = len(par) if last == "-" else int(last) if last.isdigit() else -1
        if not 0 <= idx <= len(par):
            raise bad(f"index out of range: {last}")
        par.insert(idx, value)
    else:
        raise bad("cannot add to a scalar")
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    par, last = _parent(doc, parts)
    if isinstance(par, dict) and last in par:
        return par.pop(last)
    if isinstance(par, list) and last.isdigit() and int(last) < len(par):
        return par.pop(int(last))
    raise bad(f"path not found: /{'/'.join(parts)}")


def json_patch(doc: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise ApiStatusError(400, "a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ApiStatusError(400, "every JSON patch operation needs 'op' and 'path'")
        parts = _pointer(op["path"])
        kind = op["op"]
        if kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, parts)
        elif kind == "replace":
            _get(doc, parts)
            if not parts:
                doc = copy.deepcopy(op.get("value"))
            else:
                par, last = _parent(doc, parts)
                par[int(last) if isinstance(par, list) else last] = copy.deepcopy(op.get("value"))
        elif kind in ("move", "copy"):
            src = _pointer(op.get("from", ""))
            val = _remove(doc, src) if kind == "move" else copy.deepcopy(_get(doc, src))
            doc = _add(doc, parts, val)
        elif kind == "test":
            if _get(doc, parts) != op.get("value"):
                raise bad(f"test operation failed at {op['path']}")
        else:
            raise ApiStatusError(400, f"unknown JSON patch operation {kind!r}")
    return doc


# ---- strategic merge -------------------------------------------------------------------------
def strategic_merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    out = dict(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys") or k.startswith("$setElementOrder/"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            drop = set(v or [])
            out[field] = [x for x in out.get(field) or [] if x not in drop]
            continue
        if v is None:
            out.pop(k, None)
        elif isinstance(v, list) and k in MERGE_KEYS and isinstance(out.get(k), list):
            out[k] = _merge_list(out[k], v, MERGE_KEYS[k])
        elif isinstance(v, list) and k in MERGE_PRIMITIVES and isinstance(out.get(k), list):
            out[k] = list(dict.fromkeys([*out[k], *v]))
        elif isinstance(v, dict):
            merged = strategic_merge(out.get(k), v)
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
        else:
            out[k] = copy.deepcopy(v)
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _merge_list(cur: list[Any], patch: list[Any], key: str) -> list[Any]:
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    out = [copy.deepcopy(c) for c in cur]
    index = {c.get(key): i for i, c in enumerate(out) if isinstance(c, dict)}
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            out.append(copy.deepcopy(item))
            continue
        k = item[key]
        if item.get("$patch") == "delete":
            out = [c for c in out if not (isinstance(c, dict) and c.get(key) == k)]
            index = {c.get(key): i for i, c in enumerate(out) if isinstance(c, dict)}
            continue
        if k in index:
            out[index[k]] = strategic_merge(out[index[k]], item)
        else:
            index[k] = len(out)
            out.append(strategic_merge({}, item))
    return out


#: PATCH content types -> flavour
PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}


def apply_patch(flavour: str, current: dict[str, Any], patch: Any, custom: bool) -> Any:
    if flavour == "json":
        return json_patch(current, patch)
    if not isinstance(patch, dict):
        raise ApiStatusError(400, "a merge patch must be a JSON object")
    if flavour == "merge":
        return merge_patch(current, patch)
    if flavour == "strategic":
        if custom:
            raise ApiStatusError(
                415,
                "strategic merge patch is not supported for custom resources; use a merge patch",
                "UnsupportedMediaType",
            )
        return strategic_merge(current, patch)
    raise ApiStatusError(415, f"patch type {flavour!r} is not supported", "UnsupportedMediaType")
