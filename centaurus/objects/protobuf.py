"""Decode the Kubernetes protobuf encoding of built-in kinds into their JSON form.

kubectl >= 1.32 sends typed creates (``kubectl create configmap``, ``kubectl run``) as
``application/vnd.kubernetes.protobuf`` and does not fall back when refused, so the server must
read it. The wire form is the 4-byte magic ``k8s\\0`` followed by a ``runtime.Unknown`` envelope
whose ``raw`` field holds the object's message. Field numbers come from the upstream
``generated.proto`` files (``proto_schema.json``: message -> number -> [jsonName, one|rep|map,
type]); the decoder is schema-driven so a kind is supported as soon as its messages are listed.

Only decoding is implemented: responses are JSON, which every client accepts.
"""

from __future__ import annotations

import base64
import json
import struct
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
_SPECIAL = {
    _META + "Time",
    _META + "MicroTime",
    _META + "Duration",
    _META + "FieldsV1",
    "k8s.io.apimachinery.pkg.api.resource.Quantity",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString",
    "k8s.io.apimachinery.pkg.runtime.RawExtension",
}
#: fields that protobuf nests but JSON inlines into the parent (``json:",inline"``)
_INLINE = {
    ("k8s.io.api.core.v1.Volume", "volumeSource"),
    ("k8s.io.api.core.v1.PersistentVolumeSpec", "persistentVolumeSource"),
}
_ZERO: tuple[Any, ...] = ("", 0, False, None, "1970-01-01T00:00:00Z")
_SIGNED32 = {"int32", "sint32", "sfixed32", "enum"}


class ProtobufError(ValueError):
    """The body is not a decodable Kubernetes protobuf object."""


@cache
def schema() -> dict[str, dict[str, list[str]]]:
    text = resources.files("centaurus.objects").joinpath("proto_schema.json").read_text()
    return json.loads(text)  # type: ignore[no-any-return]


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise ProtobufError("varint too long")


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """Raw (number, wire type, value) triples; length-delimited values stay bytes."""
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        num, wt = tag >> 3, tag & 7
        val: Any
        if wt == 0:
            val, pos = _varint(buf, pos)
        elif wt == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise ProtobufError("truncated length-delimited field")
            val, pos = buf[pos : pos + n], pos + n
        elif wt == 1:
            val, pos = buf[pos : pos + 8], pos + 8
        elif wt == 5:
            val, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wt}")
        out.append((num, wt, val))
    return out


def _scalar(typ: str, wt: int, val: Any) -> Any:
    if typ == "string":
        try:
            return bytes(val).decode()
        except UnicodeDecodeError:
            raise ProtobufError("invalid UTF-8 in string field") from None
    if typ == "bytes":
        return base64.b64encode(bytes(val)).decode()
    if typ == "bool":
        return bool(val)
    if typ == "double" and wt == 1:
        return struct.unpack("<d", val)[0]
    if typ == "float" and wt == 5:
        return struct.unpack("<f", val)[0]
    if typ in ("sint32", "sint64"):
        return (val >> 1) ^ -(val & 1)
    if isinstance(val, int):
        if typ in _SIGNED32:
            val &= 0xFFFFFFFF
            return val - (1 << 32) if val >= 1 << 31 else val
        if typ == "int64" and val >= 1 << 63:
            return val - (1 << 64)
        return val
    raise ProtobufError(f"wire type {wt} does not match {typ}")


def _special(typ: str, buf: bytes) -> Any:
    f = {num: val for num, _, val in _fields(buf)}
    name = typ.rsplit(".", 1)[1]
    if name in ("Time", "MicroTime"):
        secs = f.get(1, 0)
        if secs >= 1 << 63:
            secs -= 1 << 64
        dt = datetime.fromtimestamp(secs, UTC)
        if name == "MicroTime":
            return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{f.get(2, 0) // 1000:06d}Z"
        return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    if name == "Duration":
        return f"{f.get(1, 0) / 1e9:g}s"
    if name == "Quantity":
        return bytes(f.get(1, b"")).decode()
    if name == "IntOrString":
        return bytes(f.get(3, b"")).decode() if f.get(1, 0) == 1 else _scalar("int32", 0, f.get(2, 0))
    raw = bytes(f.get(1, b""))  # RawExtension, FieldsV1: embedded JSON
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        raise ProtobufError(f"{name} does not hold JSON") from None


def decode_message(typ: str, buf: bytes) -> dict[str, Any]:
    if typ in _SPECIAL:
        raise ProtobufError(f"{typ} is not a message object")
    spec = schema().get(typ)
    if spec is None:
        raise ProtobufError(f"no protobuf schema for {typ}")
    out: dict[str, Any] = {}
    for num, wt, val in _fields(buf):
        fd = spec.get(str(num))
        if fd is None:
            raise ProtobufError(f"{typ}: unknown field number {num}")
        name, card, ftyp = fd
        if card == "map":
            entry = {n: v for n, _, v in _fields(val)}
            key = bytes(entry.get(1, b"")).decode()
            raw = entry.get(2, b"" if ftyp in ("string", "bytes") or "." in ftyp else 0)
            out.setdefault(name, {})[key] = _value(ftyp, 2 if isinstance(raw, bytes) else 0, raw)
            continue
        if card == "rep" and wt == 2 and ftyp not in ("string", "bytes") and "." not in ftyp:
            # packed repeated scalars
            items, pos = [], 0
            while pos < len(val):
                v, pos = _varint(val, pos)
                items.append(_scalar(ftyp, 0, v))
            out.setdefault(name, []).extend(items)
            continue
        value = _value(ftyp, wt, val)
        if card == "one" and value in _ZERO and not isinstance(value, dict):
            # Go's non-pointer fields are always on the wire; JSON (omitempty) leaves them out
            continue
        if (typ, name) in _INLINE and isinstance(value, dict):
            out.update(value)
        elif card == "rep":
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    return out


def _value(typ: str, wt: int, val: Any) -> Any:
    if "." not in typ:
        return _scalar(typ, wt, val)
    if wt != 2:
        raise ProtobufError(f"message field {typ} has wire type {wt}")
    if typ in _SPECIAL:
        return _special(typ, bytes(val))
    return decode_message(typ, bytes(val))


def decode_object(body: bytes, proto_of: dict[tuple[str, str], str]) -> dict[str, Any]:
    """Decode a ``k8s\\0`` + runtime.Unknown body into a JSON-shaped object.

    ``proto_of`` maps (apiVersion, kind) to the message name; an unknown pair is an error.
    """
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic prefix")
    env = {num: val for num, _, val in _fields(body[len(MAGIC) :])}
    tm = {num: val for num, _, val in _fields(bytes(env.get(1, b"")))}
    api_version = bytes(tm.get(1, b"")).decode()
    kind = bytes(tm.get(2, b"")).decode()
    ctype = bytes(env.get(4, b"")).decode()
    if bytes(env.get(3, b"")):
        raise ProtobufError("compressed protobuf content is not supported")
    if ctype and ctype != CONTENT_TYPE:
        raise ProtobufError(f"unsupported inner content type {ctype!r}")
    typ = proto_of.get((api_version, kind))
    if typ is None:
        raise ProtobufError(f"no protobuf decoding for {api_version}/{kind}")
    obj = decode_message(typ, bytes(env.get(2, b"")))
    return {"apiVersion": api_version, "kind": kind, **obj}
