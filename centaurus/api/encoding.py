"""Request bodies in, responses out.

Bodies: JSON (also when the Content-Type header is missing: kubectl 1.20 sends generator output
without one), YAML, and the Kubernetes protobuf envelope for built-in kinds. Anything else is 415.
Bodies over :data:`MAX_BODY` (3 MiB, the upstream request limit) are 413.

Responses: JSON, or a ``meta.k8s.io/v1`` Table when the Accept header asks for ``as=Table``.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml
from aiohttp import web

from centaurus.objects import kinds as K
from centaurus.objects import protobuf
from centaurus.objects.status import ApiStatusError

MAX_BODY = 3 * 1024 * 1024
JSON = "application/json"

PROTO_OF: dict[tuple[str, str], str] = {(k.api_version, k.kind): k.proto for k in K.BUILTIN if k.proto}
PROTO_OF[("v1", "DeleteOptions")] = "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions"
PROTO_OF[("authorization.k8s.io/v1", "SelfSubjectAccessReview")] = (
    "k8s.io.api.authorization.v1.SelfSubjectAccessReview"
)


def media_type(request: web.Request) -> str:
    return (request.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()


async def read_raw(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiStatusError(
            413,
            f"the request is too large: {request.content_length} bytes, limit {MAX_BODY}",
            "RequestEntityTooLarge",
        )
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiStatusError(
                413, f"the request is too large: more than {MAX_BODY} bytes", "RequestEntityTooLarge"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def parse_body(raw: bytes, ctype: str, *, allow_patch: bool = False) -> Any:
    if ctype in ("", JSON, "*/*") or (allow_patch and ctype.endswith("+json")):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ApiStatusError(
                400, f"the body of the request was in an unknown format: invalid JSON: {exc}", "BadRequest"
            ) from None
    if ctype in ("application/yaml", "application/x-yaml", "text/yaml") or (
        allow_patch and ctype == "application/apply-patch+yaml"
    ):
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ApiStatusError(
                400,
                f"the body of the request was in an unknown format: invalid YAML: {str(exc).splitlines()[0]}",
                "BadRequest",
            ) from None
    if ctype == protobuf.CONTENT_TYPE:
        try:
            return protobuf.decode_object(raw, PROTO_OF)
        except protobuf.ProtobufError as exc:
            raise ApiStatusError(
                400, f"the body of the request was in an unknown format: {exc}", "BadRequest"
            ) from None
    raise ApiStatusError(
        415,
        f"the body of the request was in an unknown format - accepted media types "
        f"include: application/json, application/yaml, {protobuf.CONTENT_TYPE}",
        "UnsupportedMediaType",
    )


async def read_object(request: web.Request) -> Any:
    raw = await read_raw(request)
    if not raw.strip():
        raise ApiStatusError(400, "the body of the request was empty", "BadRequest")
    return parse_body(raw, media_type(request))


def wants_table(request: web.Request) -> bool:
    acc = request.headers.get("Accept", "")
    for part in acc.split(","):
        params = {
            p.split("=", 1)[0].strip(): p.split("=", 1)[1].strip() for p in part.split(";")[1:] if "=" in p
        }
        if params.get("as") == "Table" and params.get("g", "meta.k8s.io") == "meta.k8s.io":
            return True
        plain = part.strip().split(";")[0] in (JSON, "*/*", "application/*", "") or "json" in part
        if plain and "as=" not in part:
            # a plain JSON alternative listed before any Table request wins
            return False
    return False


def check_accept(request: web.Request) -> None:
    acc = request.headers.get("Accept", "")
    if not acc:
        return
    for part in acc.split(","):
        mt = part.split(";", 1)[0].strip().lower()
        if (
            mt in ("*/*", "application/*", JSON, "application/yaml")
            or mt.endswith("json")
            or mt == protobuf.CONTENT_TYPE
        ):
            return
    raise ApiStatusError(406, f"only the following media types are accepted: {JSON}", "NotAcceptable")


def json_response(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type=JSON)


def raw_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type=JSON)
