"""Schemas of the built-in kinds, for the OpenAPI documents: ``python -m centaurus.api.openapi_models``
prints ``{"source", "definitions", "kinds"}`` as JSON.

The structure, required fields and field documentation come from the Kubernetes python client's
models (a dependency, generated from upstream's OpenAPI, so current field sets); the kinds are the
ones this server serves (:data:`centaurus.objects.kinds.BUILTIN`). It runs as a child process of
the API server because importing the client's ~800 models takes ~2 s and ~40 MB: in the server
that would stall its event loop and stay resident for a document asked for once. Without a usable
client, the protobuf decoder's field tables (``proto_schema.json``: names and types of an older
API generation, no descriptions) stand in, and ``source`` says so.

Schemas use OpenAPI v3 references (``#/components/schemas/<name>``); names follow upstream
(``io.k8s.api.core.v1.PodSpec``), so ``kubectl explain`` shows the familiar type names.
"""

from __future__ import annotations

import datetime
import json
import re
import sys
import types
import typing
from typing import Any

from centaurus.objects import kinds as K

REF = "#/components/schemas/"
Schema = dict[str, Any]

#: API group -> Go package of its types (as protobuf names it)
GROUP_PACKAGES = {
    "": "k8s.io.api.core.v1",
    "apps": "k8s.io.api.apps.v1",
    "coordination.k8s.io": "k8s.io.api.coordination.v1",
    "rbac.authorization.k8s.io": "k8s.io.api.rbac.v1",
    "authorization.k8s.io": "k8s.io.api.authorization.v1",
    "apiextensions.k8s.io": "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1",
}
META = "k8s.io.apimachinery.pkg.apis.meta.v1"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"


def def_name(package: str, short: str) -> str:
    """``k8s.io.api.core.v1`` + ``Pod`` -> ``io.k8s.api.core.v1.Pod`` (upstream's naming)."""
    if package.startswith("k8s.io."):
        package = "io.k8s." + package[len("k8s.io.") :]
    return f"{package}.{short}"


def int_or_string() -> Schema:
    return {
        "description": "A value that is either an integer or a string.",
        "x-kubernetes-int-or-string": True,
    }


def _packages_by_short_name() -> dict[str, list[str]]:
    from centaurus.objects.protobuf import schema

    out: dict[str, list[str]] = {}
    for full in schema():
        package, _, short = full.rpartition(".")
        out.setdefault(short, []).append(package)
    return out


def _kind_package(k: K.Kind) -> str:
    if k.proto:
        return k.proto.rpartition(".")[0]
    return GROUP_PACKAGES.get(k.group, "io.centaurus." + (k.group or "core") + "." + k.version)


# ---- from the python client's models ----------------------------------------------------------
_VERSION_PREFIX = re.compile(r"^(?:[A-Z][a-z]+)?V\d+(?:alpha\d+|beta\d+)?")


class _Client:
    """Walks pydantic models from the kinds down, naming each model once."""

    def __init__(self, models: Any) -> None:
        self.models = models
        self.known = _packages_by_short_name()
        self.definitions: dict[str, Schema] = {}
        self.names: dict[type, str] = {}

    def model_for(self, k: K.Kind) -> type | None:
        version = k.version[0].upper() + k.version[1:]
        for cls_name in (f"{version}{k.kind}", f"Core{version}{k.kind}"):
            cls = getattr(self.models, cls_name, None)
            if isinstance(cls, type) and hasattr(cls, "model_fields"):
                return cls
        return None

    def name_of(self, cls: type, package: str) -> str:
        if cls in self.names:
            return self.names[cls]
        short = _VERSION_PREFIX.sub("", cls.__name__) or cls.__name__
        candidates = self.known.get(short, [])
        if package not in candidates and candidates:
            package = META if META in candidates else candidates[0]
        name = def_name(package, short)
        self.names[cls] = name
        self.definitions[name] = {}  # placeholder: recursion (JSONSchemaProps) stops here
        self.definitions[name] = self.model(cls, package)
        return name

    def model(self, cls: type, package: str) -> Schema:
        out: Schema = {"type": "object"}
        doc = (cls.__doc__ or "").strip().split("\n\n")[0]
        doc = " ".join(doc.split())
        if doc and not doc.startswith(("NOTE:", "Attributes:")):
            out["description"] = doc
        props: dict[str, Schema] = {}
        required: list[str] = []
        for attr, field in cls.model_fields.items():  # type: ignore[attr-defined]
            json_name = field.serialization_alias or field.alias or attr
            sch = self.annotation(field.annotation, package)
            if field.description and "$ref" not in sch:
                sch["description"] = field.description
            props[json_name] = sch
            if field.is_required():
                required.append(json_name)
        out["properties"] = props
        if required:
            out["required"] = required
        return out

    def annotation(self, ann: Any, package: str) -> Schema:
        origin, args = typing.get_origin(ann), typing.get_args(ann)
        if origin is typing.Annotated:
            return self.annotation(args[0], package)
        if origin in (typing.Union, types.UnionType):
            kinds = [a for a in args if a is not type(None)]
            bare = {typing.get_args(a)[0] if typing.get_origin(a) is typing.Annotated else a for a in kinds}
            if len(kinds) == 1:
                return self.annotation(kinds[0], package)
            if bare == {int, str}:
                return {"$ref": REF + INT_OR_STRING}
            if bare <= {int, float}:
                return {"type": "number", "format": "double"}
            return {}
        if origin in (list, typing.List):  # noqa: UP006 - the client's annotations use both
            return {"type": "array", "items": self.annotation(args[0], package)}
        if origin in (dict, typing.Dict):  # noqa: UP006
            return {"type": "object", "additionalProperties": self.annotation(args[1], package)}
        if isinstance(ann, type) and hasattr(ann, "model_fields"):
            return {"$ref": REF + self.name_of(ann, package)}
        simple: dict[Any, Schema] = {
            str: {"type": "string"},
            int: {"type": "integer", "format": "int64"},
            float: {"type": "number", "format": "double"},
            bool: {"type": "boolean"},
            datetime.datetime: {"type": "string", "format": "date-time"},
            datetime.date: {"type": "string", "format": "date"},
            bytes: {"type": "string", "format": "byte"},
            bytearray: {"type": "string", "format": "byte"},
        }
        return dict(simple.get(ann, {}))


def from_client() -> dict[str, Any]:
    import kubernetes
    import kubernetes.client.models as models

    walker = _Client(models)
    walker.definitions[INT_OR_STRING] = int_or_string()
    kinds: dict[str, str] = {}
    for k in K.BUILTIN:
        cls = walker.model_for(k)
        if cls is not None:
            kinds[f"{k.group}/{k.version}/{k.kind}"] = walker.name_of(cls, _kind_package(k))
    for short in ("ListMeta", "Status"):  # lists and errors refer to them
        cls = getattr(models, f"V1{short}", None)
        if cls is not None:
            walker.name_of(cls, META)
    if not kinds:
        raise RuntimeError("the kubernetes client has no models of the served kinds")
    return {
        "source": f"kubernetes python client {getattr(kubernetes, '__version__', '?')}",
        "definitions": walker.definitions,
        "kinds": kinds,
    }


# ---- from the protobuf field tables (fallback) -------------------------------------------------
_PROTO_SCALARS: dict[str, Schema] = {
    "string": {"type": "string"},
    "int32": {"type": "integer", "format": "int32"},
    "int64": {"type": "integer", "format": "int64"},
    "bool": {"type": "boolean"},
    "bytes": {"type": "string", "format": "byte"},
    "double": {"type": "number", "format": "double"},
    META + ".Time": {"type": "string", "format": "date-time"},
    META + ".MicroTime": {"type": "string", "format": "date-time"},
    META + ".Duration": {"type": "string"},
    META + ".FieldsV1": {"type": "object"},
    "k8s.io.apimachinery.pkg.api.resource.Quantity": {"type": "string"},
    "k8s.io.apimachinery.pkg.runtime.RawExtension": {"type": "object"},
}


def from_proto() -> dict[str, Any]:
    from centaurus.objects.protobuf import _INLINE, schema

    messages = schema()
    definitions: dict[str, Schema] = {INT_OR_STRING: int_or_string()}

    def field_schema(typ: str) -> Schema:
        if typ in _PROTO_SCALARS:
            return dict(_PROTO_SCALARS[typ])
        if typ == "k8s.io.apimachinery.pkg.util.intstr.IntOrString":
            return {"$ref": REF + INT_OR_STRING}
        if typ in messages:
            return {"$ref": REF + visit(typ)}
        return {}

    def properties(msg: str) -> dict[str, Schema]:
        props: dict[str, Schema] = {}
        for name, card, typ in messages[msg].values():
            if (msg, name) in _INLINE and typ in messages:
                props.update(properties(typ))
                continue
            sch = field_schema(typ)
            if card == "rep":
                sch = {"type": "array", "items": sch}
            elif card == "map":
                sch = {"type": "object", "additionalProperties": sch}
            props[name] = sch
        return props

    def visit(msg: str) -> str:
        package, _, short = msg.rpartition(".")
        name = def_name(package, short)
        if name not in definitions:
            definitions[name] = {}
            definitions[name] = {"type": "object", "properties": properties(msg)}
        return name

    kinds = {f"{k.group}/{k.version}/{k.kind}": visit(k.proto) for k in K.BUILTIN if k.proto in messages}
    visit(META + ".ListMeta")
    visit(META + ".Status")
    return {"source": "protobuf field tables (no descriptions)", "definitions": definitions, "kinds": kinds}


def collect() -> dict[str, Any]:
    try:
        return from_client()
    except Exception as exc:  # no client, or one whose models look different: the fallback
        doc = from_proto()
        doc["source"] += f"; kubernetes client unusable: {exc}"
        return doc


def main() -> None:
    sys.stdout.write(json.dumps(collect()))


if __name__ == "__main__":
    main()
