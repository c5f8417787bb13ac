"""Validation of object bodies: names, metadata and the per-kind rules clients rely on.

Rules are the Kubernetes ones (apimachinery validation: DNS-1123 subdomain for most names, DNS
label for namespaces, services and tenants) so a manifest that Kubernetes rejects is rejected
here too, with the same ``Invalid`` shape.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any

from centaurus.objects.kinds import Kind
from centaurus.objects.quantity import QuantityError, parse_quantity
from centaurus.objects.status import ApiStatusError, invalid

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

#: kinds whose names must be DNS labels (<= 63)
_LABEL_NAMED = {"Namespace", "Service", "Tenant"}
#: kinds whose names only need to be valid path segments
_PATH_NAMED = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}

Causes = list[tuple[str, str]]


def name_problem(kind: str, name: str) -> str | None:
    if not name:
        return "name or generateName is required"
    if kind in _PATH_NAMED:
        if name in (".", "..") or "/" in name or "%" in name:
            return f"{name!r}: may not be '.' or '..' and may not contain '/' or '%'"
        return None
    limit = 63 if kind in _LABEL_NAMED else 253
    rx = DNS1123_LABEL if kind in _LABEL_NAMED else DNS1123_SUBDOMAIN
    if len(name) > limit:
        return f"must be no more than {limit} characters"
    if not rx.match(name):
        return (
            f"a lowercase RFC 1123 {'label' if limit == 63 else 'subdomain'} must consist of lower case "
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        )
    return None


def _labels(causes: Causes, where: str, labels: Any) -> None:
    if labels is None:
        return
    if not isinstance(labels, dict):
        causes.append((where, "must be a map of strings"))
        return
    for k, v in labels.items():
        name = k.rsplit("/", 1)[-1]
        if (
            not isinstance(v, str)
            or len(name) > 63
            or not LABEL_NAME.match(name)
            or len(v) > 63
            or not LABEL_VALUE.match(v)
        ):
            causes.append((f"{where}[{k}]", "invalid label key or value"))


def validate_metadata(kind: Kind, obj: dict[str, Any], causes: Causes) -> None:
    md = obj.get("metadata")
    if not isinstance(md, dict):
        causes.append(("metadata", "Required value"))
        return
    name = md.get("name") or ""
    if not isinstance(name, str):
        causes.append(("metadata.name", "must be a string"))
        return
    prob = name_problem(kind.kind, name)
    if prob:
        causes.append(("metadata.name", prob))
    _labels(causes, "metadata.labels", md.get("labels"))
    ann = md.get("annotations")
    if ann is not None and (not isinstance(ann, dict) or not all(isinstance(v, str) for v in ann.values())):
        causes.append(("metadata.annotations", "must be a map of strings"))
    fin = md.get("finalizers")
    if fin is not None and (not isinstance(fin, list) or not all(isinstance(f, str) for f in fin)):
        causes.append(("metadata.finalizers", "must be a list of strings"))


def _pod_spec(causes: Causes, where: str, spec: Any) -> None:
    if not isinstance(spec, dict):
        causes.append((where, "Required value"))
        return
    containers = spec.get("containers")
    if spec.get("virtualMachine") is not None:
        # Arktos VM pod: a VM instead of containers
        vm = spec["virtualMachine"]
        if not isinstance(vm, dict) or not vm.get("name") or not vm.get("image"):
            causes.append((f"{where}.virtualMachine", "name and image are required"))
        if containers:
            causes.append((f"{where}.containers", "a VM pod may not also have containers"))
        return
    if not isinstance(containers, list) or not containers:
        causes.append((f"{where}.containers", "Required value"))
        return
    seen: set[str] = set()
    for i, c in enumerate(containers + list(spec.get("initContainers") or [])):
        at = f"{where}.containers[{i}]"
        if not isinstance(c, dict):
            causes.append((at, "must be an object"))
            continue
        n = c.get("name")
        if not isinstance(n, str) or not DNS1123_LABEL.match(n):
            causes.append((f"{at}.name", "a DNS-1123 label is required"))
        elif n in seen:
            causes.append((f"{at}.name", f"Duplicate value: {n!r}"))
        seen.add(str(n))
        if not c.get("image"):
            causes.append((f"{at}.image", "Required value"))
        for kind in ("requests", "limits"):
            for r, q in ((c.get("resources") or {}).get(kind) or {}).items():
                try:
                    parse_quantity(q)
                except QuantityError as exc:
                    causes.append((f"{at}.resources.{kind}[{r}]", str(exc)))
    rp = spec.get("restartPolicy")
    if rp is not None and rp not in ("Always", "OnFailure", "Never"):
        causes.append((f"{where}.restartPolicy", f"Unsupported value: {rp!r}"))


def _pod(obj: dict[str, Any], causes: Causes) -> None:
    _pod_spec(causes, "spec", obj.get("spec"))


def _workload(obj: dict[str, Any], causes: Causes) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        causes.append(("spec", "Required value"))
        return
    reps = spec.get("replicas")
    if reps is not None and (not isinstance(reps, int) or reps < 0):
        causes.append(("spec.replicas", "must be greater than or equal to 0"))
    sel = spec.get("selector")
    tmpl = spec.get("template") or {}
    if not isinstance(sel, dict) or not (sel.get("matchLabels") or sel.get("matchExpressions")):
        causes.append(("spec.selector", "Required value"))
    else:
        labels = (tmpl.get("metadata") or {}).get("labels") or {}
        for k, v in (sel.get("matchLabels") or {}).items():
            if labels.get(k) != v:
                causes.append(
                    ("spec.template.metadata.labels", "`selector` does not match template `labels`")
                )
                break
    _pod_spec(causes, "spec.template.spec", tmpl.get("spec"))


def _configmap(obj: dict[str, Any], causes: Causes) -> None:
    for field in ("data", "binaryData"):
        data = obj.get(field)
        if data is None:
            continue
        if not isinstance(data, dict):
            causes.append((field, "must be a map"))
            continue
        for k, v in data.items():
            if not CONFIG_KEY.match(k) or len(k) > 253:
                causes.append(
                    (
                        f"{field}[{k}]",
                        "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                    )
                )
            if not isinstance(v, str):
                causes.append((f"{field}[{k}]", "must be a string"))
            elif field == "binaryData":
                _b64(causes, f"{field}[{k}]", v)


def _b64(causes: Causes, where: str, v: str) -> None:
    try:
        base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        causes.append((where, "illegal base64 data"))


def _secret(obj: dict[str, Any], causes: Causes) -> None:
    data = obj.get("data") or {}
    if not isinstance(data, dict):
        causes.append(("data", "must be a map"))
        return
    for k, v in data.items():
        if not CONFIG_KEY.match(k):
            causes.append((f"data[{k}]", "invalid key"))
        if not isinstance(v, str):
            causes.append((f"data[{k}]", "must be a base64 string"))
        else:
            _b64(causes, f"data[{k}]", v)


def _quota(obj: dict[str, Any], causes: Causes) -> None:
    for r, q in ((obj.get("spec") or {}).get("hard") or {}).items():
        try:
            parse_quantity(q)
        except QuantityError as exc:
            causes.append((f"spec.hard[{r}]", str(exc)))


def _binding(obj: dict[str, Any], causes: Causes) -> None:
    ref = obj.get("roleRef")
    if not isinstance(ref, dict) or not ref.get("name") or ref.get("kind") not in ("Role", "ClusterRole"):
        causes.append(("roleRef", "kind Role or ClusterRole and name are required"))
    for i, s in enumerate(obj.get("subjects") or []):
        if (
            not isinstance(s, dict)
            or s.get("kind") not in ("User", "Group", "ServiceAccount")
            or not s.get("name")
        ):
            causes.append((f"subjects[{i}]", "kind User, Group or ServiceAccount and name are required"))


def _rules(obj: dict[str, Any], causes: Causes) -> None:
    rules = obj.get("rules") or []
    if not isinstance(rules, list):
        causes.append(("rules", "must be a list"))
        return
    for i, r in enumerate(rules):
        if not isinstance(r, dict) or not isinstance(r.get("verbs"), list) or not r["verbs"]:
            causes.append((f"rules[{i}].verbs", "Required value"))


def _crd(obj: dict[str, Any], causes: Causes) -> None:
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    group, plural, kind = spec.get("group"), names.get("plural"), names.get("kind")
    if not group or not DNS1123_SUBDOMAIN.match(str(group)) or "." not in str(group):
        causes.append(("spec.group", "a DNS subdomain with at least one dot is required"))
    if not plural or not DNS1123_LABEL.match(str(plural)):
        causes.append(("spec.names.plural", "a lowercase DNS label is required"))
    if not kind:
        causes.append(("spec.names.kind", "Required value"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(("spec.scope", "must be Namespaced or Cluster"))
    versions = spec.get("versions") or []
    if (
        not versions
        or not isinstance(versions, list)
        or sum(1 for v in versions if isinstance(v, dict) and v.get("storage")) != 1
    ):
        causes.append(("spec.versions", "must have exactly one version marked as storage version"))
    name = (obj.get("metadata") or {}).get("name")
    if plural and group and name != f"{plural}.{group}":
        causes.append(("metadata.name", f'must be spec.names.plural+"."+spec.group: {plural}.{group}'))


def _tenant(obj: dict[str, Any], causes: Causes) -> None:
    sid = (obj.get("spec") or {}).get("storageClusterId")
    if sid is not None and not isinstance(sid, str):
        causes.append(("spec.storageClusterId", "must be a string"))


_BY_KIND: dict[str, Callable[[dict[str, Any], Causes], None]] = {
    "Pod": _pod,
    "Deployment": _workload,
    "ReplicaSet": _workload,
    "ConfigMap": _configmap,
    "Secret": _secret,
    "ResourceQuota": _quota,
    "RoleBinding": _binding,
    "ClusterRoleBinding": _binding,
    "Role": _rules,
    "ClusterRole": _rules,
    "CustomResourceDefinition": _crd,
    "Tenant": _tenant,
}


def validate(kind: Kind, obj: dict[str, Any]) -> None:
    """Raise 422 Invalid listing every problem found."""
    causes: Causes = []
    validate_metadata(kind, obj, causes)
    check = _BY_KIND.get(kind.kind) if kind.crd is None else None
    if check is not None:
        check(obj, causes)
    if causes:
        name = str((obj.get("metadata") or {}).get("name") or "")
        raise invalid(kind.kind, name, causes, kind.group)


def check_type(kind: Kind, obj: Any) -> dict[str, Any]:
    """The body is an object of ``kind``: right apiVersion and kind, or 400 BadRequest."""
    if not isinstance(obj, dict):
        raise ApiStatusError(400, "the body of the request was in an unknown format: expected a JSON object")
    av, k = obj.get("apiVersion"), obj.get("kind")
    if k is not None and k != kind.kind:
        raise ApiStatusError(
            400,
            f"the API version in the data ({av}) does not match the expected API "
            f"version ({kind.api_version}) or kind {k!r} is not {kind.kind!r}",
        )
    if av is not None and av != kind.api_version:
        raise ApiStatusError(
            400,
            f"the API version in the data ({av}) does not match the expected API "
            f"version ({kind.api_version})",
        )
    obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
    if obj.get("metadata") is None:
        obj["metadata"] = {}
    if not isinstance(obj["metadata"], dict):
        raise ApiStatusError(400, "metadata must be an object")
    return obj


#: top-level fields of kinds without a protobuf message
_TOP_FIELDS: dict[str, set[str]] = {
    "Tenant": {"spec", "status"},
    "CustomResourceDefinition": {"spec", "status"},
    "StorageCluster": {"storageClusterId", "serviceAddress"},
    "ControllerInstance": {"controllerType", "controllerKey", "workloadNum", "isLocked"},
}
_META_EXTRA = {"tenant", "hashKey"}  # Arktos ObjectMeta additions


def unknown_fields(kind: Kind, obj: dict[str, Any]) -> list[str]:
    """Top-level and metadata fields the kind does not define (``fieldValidation=Strict``).

    Nested fields are not checked: the field tables here come from an older API generation, and
    rejecting a newer nested field would break valid manifests of current kubectl users.
    """
    from centaurus.objects.protobuf import schema

    if kind.crd is not None:
        return []
    sch = schema()
    if kind.proto and kind.proto in sch:
        top = {f[0] for f in sch[kind.proto].values()}
    elif kind.kind in _TOP_FIELDS:
        top = _TOP_FIELDS[kind.kind]
    else:
        return []
    if kind.kind == "ConfigMap":
        top.add("immutable")
    if kind.kind == "Secret":
        top.add("immutable")
    out = [f for f in obj if f not in top and f not in ("apiVersion", "kind", "metadata")]
    meta = sch.get("k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta", {})
    known_meta = {f[0] for f in meta.values()} | _META_EXTRA
    md = obj.get("metadata")
    if isinstance(md, dict):
        out += [f"metadata.{f}" for f in md if f not in known_meta]
    return out


def check_strict(kind: Kind, obj: dict[str, Any], mode: str) -> None:
    if mode != "Strict":
        return
    bad = unknown_fields(kind, obj)
    if bad:
        raise ApiStatusError(
            400, "strict decoding error: " + ", ".join(f'unknown field "{f}"' for f in bad), "BadRequest"
        )
