"""The API server: one aiohttp application, TLS with optional client certificates.

Request path: error/metrics middleware -> non-resource routes (discovery, health, metrics,
openapi) or the resource dispatcher: parse -> authenticate -> tenant scope -> resolve kind ->
authorize -> verb handler. Every failure below is an :class:`ApiStatusError` rendered as a
Kubernetes Status; anything unexpected is a 500 Status and the server keeps serving.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from centaurus.api import discovery, encoding, handlers, openapi_pb, proxy, review, routing, security
from centaurus.api.admission import Admission
from centaurus.api.metrics import METRICS
from centaurus.api.openapi import OpenApi
from centaurus.api.storage import Storage
from centaurus.api.watch import watch
from centaurus.auth.tokens import Identity, TokenFile
from centaurus.objects.status import ApiStatusError, status_failure
from centaurus.store.base import StoreError

log = logging.getLogger("centaurus.api")

STORAGE: web.AppKey[Storage] = web.AppKey("storage", Storage)
AUTHN: web.AppKey[security.Authenticator] = web.AppKey("authn", security.Authenticator)
ADMISSION: web.AppKey[Admission] = web.AppKey("admission", Admission)
OPENAPI: web.AppKey[OpenApi] = web.AppKey("openapi", OpenApi)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
VERB_HANDLERS: dict[str, Callable[[handlers.Call], Awaitable[web.StreamResponse]]] = {
    "get": handlers.get,
    "list": handlers.list_,
    "watch": watch,
    "create": handlers.create,
    "update": handlers.update,
    "patch": handlers.patch_,
    "delete": handlers.delete,
    "deletecollection": handlers.delete_collection,
}


@web.middleware
async def status_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    t0 = time.perf_counter()
    labels = {"verb": request.method, "resource": "", "code": "500"}
    request["labels"] = labels
    try:
        resp = await handler(request)
        labels["code"] = str(resp.status)
        return resp
    except ApiStatusError as exc:
        labels["code"] = str(exc.code)
        return encoding.json_response(exc.status(), exc.code)
    except StoreError as exc:
        labels["code"] = "503"
        return encoding.json_response(
            status_failure(503, f"storage is unavailable: {exc}", "ServiceUnavailable"), 503
        )
    except web.HTTPException as exc:
        labels["code"] = str(exc.status)
        return encoding.json_response(status_failure(exc.status, exc.reason), exc.status)
    except Exception:
        log.exception("internal error on %s %s", request.method, request.path)
        return encoding.json_response(status_failure(500, "internal error"), 500)
    finally:
        if labels.get("resource") and labels["verb"] != "WATCH":
            METRICS.requests.observe(time.perf_counter() - t0, **labels)


def _identity(request: web.Request) -> Identity:
    return request.app[AUTHN].authenticate(request)


async def resource(request: web.Request) -> web.StreamResponse:
    info = routing.parse_resource_path(request.path)
    if info is None or not info.resource:
        raise ApiStatusError(
            404, f"the server could not find the requested resource ({request.path})", "NotFound"
        )
    ident = _identity(request)
    storage = request.app[STORAGE]
    watch_q = request.rel_url.query.get("watch") in ("true", "1")
    verb = routing.verb_of(request.method, info, watch_q)
    tenant = security.request_tenant(ident, info.path_tenant, storage)
    if info.path_tenant == routing.ALL_TENANTS and verb not in ("list", "watch"):
        raise ApiStatusError(400, "the 'all' tenant may only be listed or watched", "BadRequest")
    if (info.group, info.resource) == (
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
    ) and verb == "create":
        return await review.create(
            request, ident, tenant if tenant != routing.ALL_TENANTS else "system", storage
        )
    kind = storage.resolve(
        tenant if tenant != routing.ALL_TENANTS else "system", info.group, info.version, info.resource
    )
    if kind is None:
        raise ApiStatusError(
            404, f"the server could not find the requested resource ({request.path})", "NotFound"
        )
    labels = request["labels"]
    labels.update(resource=kind.plural, verb=verb.upper(), subresource=info.subresource)
    if (
        kind.scope == "Cluster"
        and info.path_tenant not in (None, routing.ALL_TENANTS)
        and kind.kind != "Tenant"
    ):
        raise ApiStatusError(404, f"{kind.plural} are not tenant-scoped", "NotFound")
    if not kind.namespaced and info.namespace is not None:
        raise ApiStatusError(404, f"{kind.plural} are not namespaced", "NotFound")
    if info.subresource and info.subresource not in kind.subresources:
        raise ApiStatusError(404, f"{kind.plural}/{info.subresource} does not exist", "NotFound")
    if info.subresource and info.name is None:
        raise ApiStatusError(404, "a subresource needs an object name", "NotFound")
    security.check_cluster_scope(ident, kind, verb, info.name)
    if (
        kind.scope == "Cluster"
        and kind.kind == "Tenant"
        and not ident.is_system
        and info.name != ident.tenant
    ):
        raise ApiStatusError(403, "tenants are managed by the system tenant", "Forbidden")
    rbac_tenant = tenant if tenant != routing.ALL_TENANTS else "system"
    security.authorize(ident, storage, rbac_tenant, kind, verb, info.subresource, info.namespace, info.name)
    encoding.check_accept(request)
    call = handlers.Call(request, info, kind, rbac_tenant, ident, verb, storage, request.app[ADMISSION])
    if kind.kind == "Pod" and info.subresource in proxy.SUBRESOURCES:
        return await proxy.handle(call)  # node agent streams and Arktos actions (H7)
    return await VERB_HANDLERS[verb](call)


# ---- non-resource endpoints ------------------------------------------------------------------
async def version(request: web.Request) -> web.Response:
    return encoding.json_response(discovery.VERSION)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def metrics(request: web.Request) -> web.Response:
    _identity(request)
    return web.Response(body=METRICS.render(), content_type="text/plain", charset="utf-8")


async def api_root(request: web.Request) -> web.Response:
    _identity(request)
    return encoding.json_response(discovery.core_versions())


async def apis_root(request: web.Request) -> web.Response:
    ident = _identity(request)
    return encoding.json_response(discovery.group_list(request.app[STORAGE], ident.tenant))


async def api_group(request: web.Request) -> web.Response:
    ident = _identity(request)
    g = discovery.group(request.app[STORAGE], ident.tenant, request.match_info["group"])
    if g is None:
        raise ApiStatusError(404, "the server could not find the requested resource", "NotFound")
    return encoding.json_response(g)


async def group_version(request: web.Request) -> web.Response:
    ident = _identity(request)
    group = request.match_info.get("group", "")
    rl = discovery.resource_list(request.app[STORAGE], ident.tenant, group, request.match_info["version"])
    if rl is None:
        raise ApiStatusError(404, "the server could not find the requested resource", "NotFound")
    return encoding.json_response(rl)


async def _openapi(request: web.Request) -> tuple[Identity, OpenApi]:
    ident = _identity(request)
    api = request.app[OPENAPI]
    try:
        await api.load()
    except (OSError, RuntimeError, ValueError) as exc:
        raise ApiStatusError(503, f"OpenAPI schemas unavailable: {exc}", "ServiceUnavailable") from None
    return ident, api


async def openapi_v2(request: web.Request) -> web.Response:
    """Swagger 2.0 of what the tenant sees: protobuf when asked for (kubectl), else JSON."""
    ident, api = await _openapi(request)
    doc = api.v2_document(ident.tenant)
    if "protobuf" in request.headers.get("Accept", ""):
        return web.Response(body=openapi_pb.document(doc), content_type=openapi_pb.CONTENT_TYPE)
    return encoding.json_response(doc)


async def openapi_v3(request: web.Request) -> web.Response:
    ident, api = await _openapi(request)
    return encoding.json_response(api.v3_index(ident.tenant))


async def openapi_v3_gv(request: web.Request) -> web.Response:
    ident, api = await _openapi(request)
    found = api.v3_bytes(ident.tenant, request.match_info["path"])
    if found is None:
        raise ApiStatusError(
            404, f"the server could not find the requested resource ({request.path})", "NotFound"
        )
    h, body = found
    # a request naming the current hash may be cached for good (upstream does the same)
    immutable = request.query.get("hash") == h
    headers = {"Etag": f'"{h}"', "Cache-Control": "public, immutable" if immutable else "no-cache"}
    return web.Response(body=body, content_type=encoding.JSON, headers=headers)


async def debug_partition(request: web.Request) -> web.Response:
    """Fault injection for availability tests (system:masters only): ``{"state": "down"}`` closes
    one data partition's store as if its disk or cluster went away; ``"up"`` reopens it and the
    watch cache resumes from where it stopped."""
    ident = _identity(request)
    if not ident.is_system or "system:masters" not in ident.groups:
        raise ApiStatusError(403, "fault injection is for the system tenant's administrators", "Forbidden")
    storage = request.app[STORAGE]
    idx = int(request.match_info["index"])
    if not 0 <= idx < len(storage.parts):
        raise ApiStatusError(404, f"no data partition {idx}", "NotFound")
    body = await encoding.read_object(request)
    state = (body or {}).get("state")
    store = storage.parts[idx].store
    if state == "down":
        await store.close()
    elif state == "up":
        await store.start()
        await storage.parts[idx].sync(10.0)
    else:
        raise ApiStatusError(400, 'state must be "down" or "up"', "BadRequest")
    return encoding.json_response({"partition": idx, "state": state})


async def not_found(request: web.Request) -> web.Response:
    _identity(request)
    raise ApiStatusError(
        404, f"the server could not find the requested resource ({request.path})", "NotFound"
    )


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 6443
    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None
    token_file: Path | None = None


def make_app(storage: Storage, cfg: ServerConfig) -> web.Application:
    app = web.Application(middlewares=[status_middleware], client_max_size=encoding.MAX_BODY + 1)
    app[STORAGE] = storage
    app[AUTHN] = security.Authenticator(TokenFile(cfg.token_file) if cfg.token_file else None)
    app[ADMISSION] = Admission(storage)
    app[OPENAPI] = OpenApi(storage)
    proxy.setup(app, cfg.ca_file.parent if cfg.ca_file else None)
    r = app.router
    for p in ("/healthz", "/readyz", "/livez"):
        r.add_get(p, healthz)
    r.add_get("/version", version)
    r.add_get("/metrics", metrics)
    r.add_get("/api", api_root)
    r.add_get("/api/{version:v1}", group_version)
    r.add_get("/apis", apis_root)
    r.add_get("/apis/{group}", api_group)
    r.add_get("/apis/{group}/{version}", group_version)
    r.add_get("/openapi/v2", openapi_v2)
    r.add_get("/swagger-2.0.0.pb-v1", openapi_v2)
    r.add_get("/openapi/v3", openapi_v3)
    r.add_get("/openapi/v3/{path:.+}", openapi_v3_gv)
    r.add_put("/debug/partitions/{index:[0-9]+}", debug_partition)
    r.add_route("*", "/api/v1/{tail:.+}", resource)
    r.add_route("*", "/apis/{group}/{version}/{tail:.+}", resource)
    r.add_route("*", "/{tail:.*}", not_found)
    return app


def ssl_context(cfg: ServerConfig) -> ssl.SSLContext | None:
    if cfg.cert_file is None or cfg.key_file is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cfg.cert_file), str(cfg.key_file))
    if cfg.ca_file is not None:
        ctx.load_verify_locations(str(cfg.ca_file))
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


async def serve(storage: Storage, cfg: ServerConfig) -> web.AppRunner:
    """Start serving (storage must be started); returns the runner to ``cleanup()``."""
    app = make_app(storage, cfg)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(
        runner, cfg.host, cfg.port, ssl_context=ssl_context(cfg), backlog=1024, reuse_address=True
    )
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    for site in runner.sites:
        server: Any = getattr(site, "_server", None)
        if server is not None and server.sockets:
            return int(server.sockets[0].getsockname()[1])
    raise RuntimeError("server is not listening")
