"""The OpenAPI documents: ``/openapi/v3`` (index), ``/openapi/v3/<api|apis/g>/<v>`` (one document
per group-version) and ``/openapi/v2`` (JSON, or gnostic protobuf: :mod:`centaurus.api.openapi_pb`).

What clients do with them: ``kubectl explain`` reads the v3 document of the resource's group-version
(the kind's schema is found by ``x-kubernetes-group-version-kind``, the resource by its paths);
``kubectl apply``/``diff`` (client-side) compute a strategic merge patch with the v3 schema's
``x-kubernetes-patch-merge-key``/``-strategy`` when the kind's PATCH operation accepts
``application/strategic-merge-patch+json``, else a JSON merge patch (custom resources), and leave
validation to the server when the PATCH operation lists ``fieldValidation``; kubectl 1.20 fetches
v2 as protobuf and validates manifests against its definitions.

Contents: the built-in kinds' schemas (:mod:`centaurus.api.openapi_models`, in a child process,
once), with what this server adds (Arktos ``metadata.tenant``/``hashKey``, VM pods, the Arktos
kinds), list-merge metadata taken from the server's own strategic-merge table (so the patch kubectl
computes is the one the server applies), and the CRDs the tenant sees with their schemas. Documents
are built per tenant on demand and cached by a hash of what they contain (the ``hash`` kubectl
keys its cache by).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import logging
import sys
from collections.abc import Iterable
from typing import Any

from centaurus.api import discovery
from centaurus.api.openapi_models import INT_OR_STRING, META, REF, def_name
from centaurus.api.storage import Storage
from centaurus.objects import kinds as K
from centaurus.objects.patch import MERGE_KEYS, MERGE_PRIMITIVES

log = logging.getLogger("centaurus.api.openapi")
Schema = dict[str, Any]

OBJECT_META = def_name(META, "ObjectMeta")
LIST_META = def_name(META, "ListMeta")
STATUS = def_name(META, "Status")
PATCH = def_name(META, "Patch")
ARKTOS = "io.arktos.v1"
PATCH_TYPES_BUILTIN = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
PATCH_TYPES_CUSTOM = PATCH_TYPES_BUILTIN[:3]
WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")


def _free_object(description: str) -> Schema:
    return {"type": "object", "description": description, "x-kubernetes-preserve-unknown-fields": True}


def _arktos_definitions() -> dict[str, Schema]:
    """What this server serves beyond upstream's types (field names from the Arktos API)."""
    s = {"type": "string"}
    return {
        f"{ARKTOS}.VirtualMachine": {
            "type": "object",
            "description": "A virtual machine run as the pod's workload (Arktos VM pods).",
            "properties": {
                "name": {**s, "description": "Name of the VM."},
                "image": {**s, "description": "Disk image the VM boots from."},
                "imagePullPolicy": {**s, "description": "Always, Never or IfNotPresent."},
                "resources": {"$ref": REF + "io.k8s.api.core.v1.ResourceRequirements"},
                "volumeMounts": {
                    "type": "array",
                    "items": {"$ref": REF + "io.k8s.api.core.v1.VolumeMount"},
                },
                "keyPairName": {**s, "description": "Key pair whose public key the guest trusts."},
                "publicKey": {**s, "description": "Public key the guest trusts."},
                "userData": {**s, "format": "byte", "description": "cloud-init user data."},
                "cloudInitUserDataScript": {**s, "description": "cloud-init user data as text."},
                "powerSpec": {
                    **s,
                    "description": "Wanted power state.",
                    "enum": ["Running", "Paused", "Shutdown", "Suspended"],
                },
            },
            "required": ["name", "image"],
        },
        f"{ARKTOS}.Tenant": {
            "type": "object",
            "description": "A tenant: its own namespaces, users, quotas and data partition (Arktos).",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "storageClusterId": {**s, "description": "The data partition of the tenant."}
                    },
                    "x-kubernetes-preserve-unknown-fields": True,
                },
                "status": _free_object("Observed state (phase: Active or Terminating)."),
            },
        },
        f"{ARKTOS}.StorageCluster": {
            "type": "object",
            "description": "One data partition of the control plane (written by the API server).",
            "properties": {
                "storageClusterId": {**s, "description": "Partition number."},
                "serviceAddress": {**s, "description": "Where the partition's store is."},
            },
        },
        f"{ARKTOS}.ControllerInstance": {
            "type": "object",
            "description": "One instance of an active-active controller and its share of the work.",
            "properties": {
                "controllerType": s,
                "controllerKey": {"type": "integer", "format": "int64"},
                "workloadNum": {"type": "integer", "format": "int32"},
                "isLocked": {"type": "boolean"},
            },
        },
        f"{ARKTOS}.Action": {
            "type": "object",
            "description": "A request to act on a pod (Reboot, Snapshot, Restore), run by its node.",
            "properties": {
                "spec": _free_object("What to do, on which pod."),
                "status": _free_object("Progress (complete, podActionStatus)."),
            },
        },
        PATCH: {"type": "object", "description": "The body of a PATCH request, in any patch flavour."},
    }


def _annotate(defs: dict[str, Schema]) -> None:
    """Server additions to upstream types and the strategic-merge list metadata, in place."""
    meta = defs.get(OBJECT_META)
    if meta is not None:
        meta.setdefault("properties", {}).update(
            {
                "tenant": {"type": "string", "description": "The tenant the object belongs to (Arktos)."},
                "hashKey": {
                    "type": "integer",
                    "format": "int64",
                    "description": "Hash of the object's identity; controller instances share work by it.",
                },
            }
        )
    for name, field, ref in (
        ("io.k8s.api.core.v1.PodSpec", "virtualMachine", {"$ref": REF + f"{ARKTOS}.VirtualMachine"}),
        ("io.k8s.api.core.v1.PodStatus", "virtualMachineStatus", _free_object("Observed VM state.")),
    ):
        if name in defs:
            defs[name].setdefault("properties", {})[field] = ref
    pod_spec = defs.get("io.k8s.api.core.v1.PodSpec")
    if pod_spec is not None:  # Arktos: a pod runs containers or a virtual machine
        required = [r for r in pod_spec.get("required", []) if r != "containers"]
        if required:
            pod_spec["required"] = required
        else:
            pod_spec.pop("required", None)
    for sch in defs.values():
        for field, prop in (sch.get("properties") or {}).items():
            target = defs.get(str(prop.get("$ref", "")).removeprefix(REF))
            if target is not None and "description" not in prop and target.get("description"):
                prop["description"] = target["description"]  # the client's models lost these
            if prop.get("type") != "array":
                continue
            if field in MERGE_KEYS and "$ref" in (prop.get("items") or {}):
                prop["x-kubernetes-patch-merge-key"] = MERGE_KEYS[field]
                prop["x-kubernetes-patch-strategy"] = "merge"
            elif field in MERGE_PRIMITIVES:
                prop["x-kubernetes-patch-strategy"] = "merge"


def _gvk(k: K.Kind, kind: str | None = None) -> dict[str, str]:
    return {"group": k.group, "kind": kind or k.kind, "version": k.version}


def _with_type_meta(sch: Schema, k: K.Kind) -> Schema:
    out = copy.deepcopy(sch)
    out.setdefault("type", "object")
    props = out.setdefault("properties", {})
    props.setdefault("apiVersion", {"type": "string", "description": "Versioned schema of the object."})
    props.setdefault("kind", {"type": "string", "description": "REST resource this object represents."})
    props["metadata"] = {"$ref": REF + OBJECT_META}
    out["x-kubernetes-group-version-kind"] = [_gvk(k)]
    return out


def _crd_schema(crd: dict[str, Any], version: str) -> Schema | None:
    for v in (crd.get("spec") or {}).get("versions") or []:
        if v.get("name") == version:
            sch = ((v.get("schema") or {}).get("openAPIV3Schema")) or {}
            return copy.deepcopy(sch) if isinstance(sch, dict) else {}
    return None


def crd_definition_name(group: str, version: str, kind: str) -> str:
    """Upstream's name for a custom resource's schema: reversed group, version, kind."""
    return ".".join([*reversed(group.split(".")), version, kind])


class OpenApi:
    """Builds and caches the documents of one API server."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.source = ""
        self._builtin: dict[str, Schema] | None = None
        self._kind_defs: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self._v3_cache: dict[str, dict[str, tuple[str, bytes]]] = {}  # CRD fingerprint -> documents

    async def load(self) -> None:
        """The built-in schemas, from a child process (see :mod:`centaurus.api.openapi_models`)."""
        if self._builtin is not None:
            return
        async with self._lock:
            if self._builtin is not None:
                return
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "centaurus.api.openapi_models",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                out, err = await asyncio.wait_for(proc.communicate(), 120)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise RuntimeError("OpenAPI model extraction timed out") from None
            if proc.returncode != 0:
                raise RuntimeError(f"OpenAPI model extraction failed: {err.decode(errors='replace')[-500:]}")
            doc = json.loads(out)
            defs: dict[str, Schema] = doc["definitions"]
            defs.update(_arktos_definitions())
            defs.setdefault(INT_OR_STRING, {"x-kubernetes-int-or-string": True})
            _annotate(defs)
            self.source = doc["source"]
            self._kind_defs = dict(doc["kinds"])
            for k in K.BUILTIN:
                key = f"{k.group}/{k.version}/{k.kind}"
                if key not in self._kind_defs and f"{ARKTOS}.{k.kind}" in defs:
                    self._kind_defs[key] = f"{ARKTOS}.{k.kind}"
            for key, name in self._kind_defs.items():
                group, version, kind = key.split("/")
                k = K.Kind(group, version, kind, "", "", "Namespaced")
                defs[name] = _with_type_meta(defs[name], k)
            self._builtin = defs
            log.info("OpenAPI schemas from %s: %d definitions", self.source, len(defs))

    # ---- what a tenant sees ----------------------------------------------------------------
    def _kinds(self, tenant: str) -> list[tuple[K.Kind, str, Schema | None]]:
        """(kind, definition name, custom schema or None) of every served kind."""
        out: list[tuple[K.Kind, str, Schema | None]] = []
        for k in K.BUILTIN:
            name = self._kind_defs.get(f"{k.group}/{k.version}/{k.kind}")
            if name:
                out.append((k, name, None))
        for crd in self.storage.crds(tenant):
            spec = crd.get("spec") or {}
            for v in spec.get("versions") or []:
                if not v.get("served", True):
                    continue
                k = K.kind_from_crd(crd, v["name"])
                sch = _crd_schema(crd, v["name"]) or _free_object(f"A {k.kind} (its CRD has no schema).")
                out.append((k, crd_definition_name(k.group, k.version, k.kind), sch))
        return out

    def _group_versions(self, tenant: str) -> list[tuple[str, str]]:
        gvs = [("", "v1")]
        for g in discovery.groups(self.storage, tenant):
            for v in g["versions"]:
                if g["name"] != "authorization.k8s.io":
                    gvs.append((g["name"], v["version"]))
        return gvs

    # ---- v3 --------------------------------------------------------------------------------
    def v3_document(self, tenant: str, group: str, version: str) -> dict[str, Any] | None:
        assert self._builtin is not None
        kinds = [(k, n, c) for k, n, c in self._kinds(tenant) if (k.group, k.version) == (group, version)]
        if not kinds:
            return None
        schemas: dict[str, Schema] = {}
        paths: dict[str, Any] = {}
        for k, name, custom in kinds:
            schemas[name] = _with_type_meta(custom, k) if custom is not None else self._builtin[name]
            list_name = name + "List"
            schemas[list_name] = {
                "type": "object",
                "description": f"A list of {k.kind} objects.",
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"$ref": REF + LIST_META},
                    "items": {"type": "array", "items": {"$ref": REF + name}},
                },
                "required": ["items"],
                "x-kubernetes-group-version-kind": [_gvk(k, k.list_kind)],
            }
            # strategic merge where the schema is complete (upstream types); Arktos kinds with
            # free-form parts and custom resources get JSON merge patches, as upstream does
            smp = custom is None and not name.startswith(ARKTOS)
            paths.update(_paths(k, name, list_name, smp))
        for extra in (STATUS, PATCH, LIST_META):
            if extra in self._builtin:
                schemas.setdefault(extra, self._builtin[extra])
        for ref in _refs_of(list(schemas.values()), self._builtin):
            schemas.setdefault(ref, self._builtin[ref])
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": discovery.VERSION["gitVersion"]},
            "paths": paths,
            "components": {"schemas": dict(sorted(schemas.items()))},
        }

    def _v3_set(self, tenant: str) -> dict[str, tuple[str, bytes]]:
        """Every v3 document the tenant sees, serialized with its hash, by path (``api/v1``,
        ``apis/<g>/<v>``). Cached by the CRDs it depends on (a new or changed CRD changes the
        fingerprint, hence the documents and their hashes)."""
        crds = [
            (c["metadata"].get("name", ""), c["metadata"].get("resourceVersion", ""))
            for c in self.storage.crds(tenant)
        ]
        key = json.dumps(sorted(crds))
        cached = self._v3_cache.get(key)
        if cached is not None:
            return cached
        out: dict[str, tuple[str, bytes]] = {}
        for group, version in self._group_versions(tenant):
            doc = self.v3_document(tenant, group, version)
            if doc is None:
                continue
            body = json.dumps(doc, separators=(",", ":")).encode()
            path = f"apis/{group}/{version}" if group else f"api/{version}"
            out[path] = (hashlib.sha512(body).hexdigest()[:64].upper(), body)
        if len(self._v3_cache) >= 16:
            self._v3_cache.pop(next(iter(self._v3_cache)))
        self._v3_cache[key] = out
        return out

    def v3_index(self, tenant: str) -> dict[str, Any]:
        return {
            "paths": {
                path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={h}"}
                for path, (h, _) in self._v3_set(tenant).items()
            }
        }

    def v3_bytes(self, tenant: str, path: str) -> tuple[str, bytes] | None:
        """(hash, document) of ``api/<v>`` or ``apis/<g>/<v>``; None if the tenant has no such."""
        return self._v3_set(tenant).get(path.strip("/"))

    # ---- v2 --------------------------------------------------------------------------------
    def v2_document(self, tenant: str) -> dict[str, Any]:
        """Swagger 2.0: every definition (refs rewritten), no paths (clients of v2 here --
        kubectl 1.20's validation -- look kinds up by ``x-kubernetes-group-version-kind``)."""
        assert self._builtin is not None
        defs = dict(self._builtin)
        for k, name, custom in self._kinds(tenant):
            if custom is not None:
                defs[name] = _with_type_meta(custom, k)
        return {
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": discovery.VERSION["gitVersion"]},
            "paths": {},
            "definitions": {n: to_v2(s) for n, s in sorted(defs.items())},
        }


def _paths(k: K.Kind, name: str, list_name: str, builtin: bool) -> dict[str, Any]:
    prefix = f"/apis/{k.group}/{k.version}" if k.group else f"/api/{k.version}"
    collection = f"{prefix}/namespaces/{{namespace}}/{k.plural}" if k.namespaced else f"{prefix}/{k.plural}"
    gvk = _gvk(k)
    obj = {"$ref": REF + name}

    def op(verb: str, action: str, body: Schema | None, out: Schema, patch: bool = False) -> Schema:
        o: Schema = {
            "operationId": f"{verb}{k.kind}",
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
            "parameters": [
                {"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                for p in (WRITE_PARAMS if body is not None else ())
            ],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": out}}},
                "401": {"description": "Unauthorized"},
            },
        }
        if body is not None:
            types: tuple[str, ...] = ("application/json",)
            if patch:
                types = PATCH_TYPES_BUILTIN if builtin else PATCH_TYPES_CUSTOM
            o["requestBody"] = {"content": {t: {"schema": body} for t in types}, "required": True}
        return o

    name_param = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    ns_param = {"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}}
    common = [ns_param] if k.namespaced else []
    status = {"$ref": REF + STATUS}
    out = {
        collection: {
            "get": op("list", "list", None, {"$ref": REF + list_name}),
            "post": op("create", "post", obj, obj),
            "delete": op("deletecollection", "deletecollection", None, status),
            "parameters": common,
        },
        f"{collection}/{{name}}": {
            "get": op("read", "get", None, obj),
            "put": op("replace", "put", obj, obj),
            "patch": op("patch", "patch", {"$ref": REF + PATCH}, obj, patch=True),
            "delete": op("delete", "delete", None, status),
            "parameters": [name_param, *common],
        },
    }
    if k.namespaced:
        every = op("listAllNamespaces", "list", None, {"$ref": REF + list_name})
        out[f"{prefix}/{k.plural}"] = {"get": every}
    return out


def _refs_of(schemas: Iterable[Any], known: dict[str, Schema]) -> list[str]:
    """Every definition reachable from ``schemas`` (transitively, through ``known``)."""
    seen: set[str] = set()
    order: list[str] = []
    stack = list(schemas)
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(REF):
                name = ref[len(REF) :]
                if name not in seen and name in known:
                    seen.add(name)
                    order.append(name)
                    stack.append(known[name])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return order


_V2_DROP = {"nullable", "anyOf", "oneOf", "not", "allOf", "x-kubernetes-validations"}


def to_v2(sch: Any) -> Any:
    """An OpenAPI v3 schema as Swagger 2.0 (what v2 cannot say is dropped, as upstream does for
    CRDs: nullable, anyOf/oneOf/not/allOf; an int-or-string has no type; a level that preserves
    unknown fields is free-form)."""
    if isinstance(sch, list):
        return [to_v2(s) for s in sch]
    if not isinstance(sch, dict):
        return sch
    out: dict[str, Any] = {}
    for key, value in sch.items():
        if key in _V2_DROP:
            continue
        if key == "$ref" and isinstance(value, str):
            out[key] = "#/definitions/" + value.removeprefix(REF)
        elif key in ("properties", "patternProperties", "definitions") and isinstance(value, dict):
            out[key] = {n: to_v2(s) for n, s in value.items()}
        else:
            out[key] = to_v2(value) if key in ("items", "additionalProperties") else value
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
    if out.get("x-kubernetes-preserve-unknown-fields"):
        # v2 cannot say "these properties, and any other": a v2 client (kubectl 1.20's validation)
        # would reject the others, so the level becomes free-form
        for key in ("type", "properties", "required", "additionalProperties"):
            out.pop(key, None)
    return out
