"""A Swagger 2.0 document in the protobuf form kubectl asks for (Accept
``application/com.github.proto-openapi.spec.v2@v1.0+protobuf``: gnostic's ``openapi.v2.Document``).

Only what a document of definitions needs is encoded: ``swagger``, ``info``, ``paths`` (empty) and
``definitions`` with the schema keywords used here. Vendor extensions travel as gnostic ``Any``
values whose ``yaml`` field holds the value as JSON (valid YAML), which is how kube-openapi reads
``x-kubernetes-group-version-kind``. Field numbers are those of gnostic's ``OpenAPIv2.proto``.
"""

from __future__ import annotations

import json
import struct
from typing import Any

#: what the answer is labelled: the media type clients ask for has an ``@``, which Go's mime parser
#: (client-go decoding the response) rejects; upstream answers octet-stream too
CONTENT_TYPE = "application/octet-stream"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _bytes(field: int, data: bytes) -> bytes:
    return _key(field, 2) + _varint(len(data)) + data


def _str(field: int, s: str) -> bytes:
    return _bytes(field, s.encode()) if s else b""


def _bool(field: int, v: bool) -> bytes:
    return _key(field, 0) + b"\x01" if v else b""


def _int(field: int, v: int) -> bytes:
    return _key(field, 0) + _varint(v & 0xFFFFFFFFFFFFFFFF)


def _double(field: int, v: float) -> bytes:
    return _key(field, 1) + struct.pack("<d", v)


def _any(value: Any) -> bytes:
    """gnostic ``Any``: field 2 ``yaml``."""
    return _str(2, json.dumps(value))


def _named_any(field: int, name: str, value: Any) -> bytes:
    return _bytes(field, _str(1, name) + _bytes(2, _any(value)))


# Schema fields (OpenAPIv2.proto ``message Schema``)
_S_STR = {"$ref": 1, "format": 2, "title": 3, "description": 4, "pattern": 13}
_S_DOUBLE = {"multipleOf": 6, "maximum": 7, "minimum": 9}
_S_BOOL = {"exclusiveMaximum": 8, "exclusiveMinimum": 10, "uniqueItems": 16, "readOnly": 27}
_S_INT = {
    "maxLength": 11,
    "minLength": 12,
    "maxItems": 14,
    "minItems": 15,
    "maxProperties": 17,
    "minProperties": 18,
}


def schema(s: dict[str, Any]) -> bytes:
    out = bytearray()
    for key, value in s.items():
        if key in _S_STR and isinstance(value, str):
            out += _str(_S_STR[key], value)
        elif key in _S_DOUBLE and isinstance(value, int | float):
            out += _double(_S_DOUBLE[key], float(value))
        elif key in _S_BOOL and isinstance(value, bool):
            out += _bool(_S_BOOL[key], value)
        elif key in _S_INT and isinstance(value, int):
            out += _int(_S_INT[key], value)
        elif key == "default":
            out += _bytes(5, _any(value))
        elif key == "required" and isinstance(value, list):
            for r in value:
                out += _str(19, str(r))
        elif key == "enum" and isinstance(value, list):
            for e in value:
                out += _bytes(20, _any(e))
        elif key == "additionalProperties":
            item = _bytes(1, schema(value)) if isinstance(value, dict) else _bool(2, bool(value))
            out += _bytes(21, item)
        elif key == "type" and isinstance(value, str):
            out += _bytes(22, _str(1, value))
        elif key == "items" and isinstance(value, dict):
            out += _bytes(23, _bytes(1, schema(value)))
        elif key == "properties" and isinstance(value, dict):
            props = b"".join(_bytes(1, _str(1, n) + _bytes(2, schema(v))) for n, v in value.items())
            out += _bytes(25, props)
        elif key.startswith("x-"):
            out += _named_any(31, key, value)
    return bytes(out)


def document(doc: dict[str, Any]) -> bytes:
    """``openapi.v2.Document`` of a Swagger 2.0 document (definitions only; paths are empty)."""
    info = doc.get("info") or {}
    out = bytearray()
    out += _str(1, str(doc.get("swagger", "2.0")))
    out += _bytes(2, _str(1, str(info.get("title", ""))) + _str(2, str(info.get("version", ""))))
    out += _bytes(8, b"")  # Paths
    defs = b"".join(
        _bytes(1, _str(1, name) + _bytes(2, schema(s))) for name, s in (doc.get("definitions") or {}).items()
    )
    out += _bytes(9, defs)
    return bytes(out)
