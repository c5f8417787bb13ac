"""The agent's own HTTPS endpoint: logs, exec, attach, port-forward (what kubelet serves on
:10250 for the API server).

Nobody else may use it: the listener requires a client certificate from the cluster CA and the
certificate's common name must be one of ``allowed_clients`` (the API server's
``kube-apiserver-kubelet-client``) -- a tenant user's certificate from the same CA is refused,
so the agent is not an open door on loopback. Paths carry the tenant:
``/containerLogs/{tenant}/{namespace}/{pod}/{container}``, ``/exec/...``, ``/attach/...``,
``/portForward/{tenant}/{namespace}/{pod}``.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from centaurus.agent.streams import hijack, portforward, remotecommand, spdy
from centaurus.auth.pki import identity_from_peercert
from centaurus.runtimes.base import Connection, ExecSession, RuntimeError_

if TYPE_CHECKING:
    from centaurus.agent.pods import PodManager
    from centaurus.agent.worker import PodWorker

log = logging.getLogger("centaurus.agent.server")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def status(code: int, message: str, reason: str) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return web.json_response(body, status=code)


def _client_cn(request: web.Request) -> str | None:
    transport = request.transport
    if transport is None:
        return None
    sslobj = transport.get_extra_info("ssl_object")
    if sslobj is None:
        return None
    ident = identity_from_peercert(sslobj.getpeercert())
    return ident[0] if ident else None


class AgentServer:
    def __init__(
        self,
        mgr: PodManager,
        allowed: list[str],
        extra_routes: Callable[[web.Application], None] | None = None,
    ) -> None:
        self.mgr = mgr
        self.allowed = set(allowed)
        self.runner: web.AppRunner | None = None
        self.port = 0
        self._extra = extra_routes

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        r = app.router
        r.add_get("/healthz", self.healthz)
        r.add_get("/containerLogs/{tenant}/{ns}/{pod}/{container}", self.logs)
        r.add_route("*", "/exec/{tenant}/{ns}/{pod}/{container}", self.exec)
        r.add_route("*", "/attach/{tenant}/{ns}/{pod}/{container}", self.attach)
        r.add_route("*", "/portForward/{tenant}/{ns}/{pod}", self.port_forward)
        r.add_get("/pods", self.pods)
        r.add_get("/metrics", self.metrics)
        if self._extra is not None:
            self._extra(app)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/healthz":
            return await handler(request)
        cn = _client_cn(request)
        if cn is None:
            return status(401, "a client certificate is required", "Unauthorized")
        if cn not in self.allowed:
            return status(403, f"user {cn!r} may not use the node agent", "Forbidden")
        return await handler(request)

    async def start(self, host: str, port: int, cert: str, key: str, ca: str) -> int:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        ctx.load_verify_locations(ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port, ssl_context=ctx, reuse_address=True)
        await site.start()
        server: Any = getattr(site, "_server", None)
        self.port = int(server.sockets[0].getsockname()[1]) if server and server.sockets else port
        return self.port

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    # ---- lookups -------------------------------------------------------------------------------
    def _worker(self, request: web.Request) -> PodWorker:
        mi = request.match_info
        w = self.mgr.find(mi["tenant"], mi["ns"], mi["pod"])
        if w is None or w.sandbox is None:
            raise web.HTTPNotFound(
                text=json.dumps(
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "message": f"pod {mi['ns']}/{mi['pod']} is not running on this node",
                        "reason": "NotFound",
                        "code": 404,
                    }
                ),
                content_type="application/json",
            )
        return w

    # ---- handlers ------------------------------------------------------------------------------
    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def pods(self, request: web.Request) -> web.Response:
        out = [
            {
                "uid": w.uid,
                "key": list(w.key),
                "sandbox": bool(w.sandbox),
                "phases": w.phases,
                "phase": (w.last_status or {}).get("phase"),
            }
            for w in self.mgr.workers.values()
        ]
        return web.json_response(out)

    async def metrics(self, request: web.Request) -> web.Response:
        m = self.mgr.metrics
        out = {
            "podsStarted": m.pods_started,
            "podsDeleted": m.pods_deleted,
            "statusWrites": self.mgr.writer.writes,
            "statusCoalesced": self.mgr.writer.coalesced,
            "statusErrors": self.mgr.writer.errors,
            "phases": m.phase_samples,
        }
        return web.json_response(out)

    async def logs(self, request: web.Request) -> web.StreamResponse:
        w = self._worker(request)
        q = request.rel_url.query
        container = request.match_info["container"]
        tail = q.get("tailLines")
        limit = int(q["limitBytes"]) if q.get("limitBytes", "").isdigit() else None
        assert w.sandbox is not None
        try:
            chunks = w.runtime.logs(
                w.sandbox,
                container,
                follow=q.get("follow") in ("true", "1"),
                tail_lines=int(tail) if tail and tail.lstrip("-").isdigit() else None,
                previous=q.get("previous") in ("true", "1"),
            )
        except RuntimeError_ as exc:
            code = 404 if exc.reason == "NotFound" else 400
            return status(code, exc.message, "NotFound" if code == 404 else "BadRequest")
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        sent = 0
        try:
            async for chunk in chunks:
                if limit is not None:
                    chunk = chunk[: max(0, limit - sent)]
                if chunk:
                    await resp.write(chunk)
                    sent += len(chunk)
                if limit is not None and sent >= limit:
                    break
        except (ConnectionResetError, RuntimeError):
            return resp
        await resp.write_eof()
        return resp

    async def _remote(
        self,
        request: web.Request,
        start: Callable[[remotecommand.ExecOptions], Awaitable[ExecSession]],
        attach: bool,
    ) -> web.StreamResponse:
        opts = remotecommand.options(request.rel_url.query, attach=attach)
        if hijack.wants_upgrade(request, "websocket"):
            return await remotecommand.serve_websocket(request, opts, start)
        if hijack.wants_upgrade(request, "spdy/3.1"):
            proto = remotecommand.negotiate(request, remotecommand.SPDY_PROTOCOLS)
            if proto is None:
                return status(
                    400, "no supported X-Stream-Protocol-Version (want v4.channel.k8s.io)", "BadRequest"
                )
            resp, conn = await hijack.upgrade(
                request, {"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": proto}
            )
            await remotecommand.serve_spdy(
                spdy.StreamConn(conn.reader, conn.write, conn.close), proto, opts, start
            )
            return resp
        return status(400, "Upgrade request required", "BadRequest")

    async def exec(self, request: web.Request) -> web.StreamResponse:
        w = self._worker(request)
        container = request.match_info["container"]

        async def start(opts: remotecommand.ExecOptions) -> ExecSession:
            if not opts.command:
                raise RuntimeError_("BadRequest", "you must specify at least one command for the container")
            assert w.sandbox is not None
            return await w.runtime.exec(w.sandbox, container, opts.command, tty=opts.tty, stdin=opts.stdin)

        return await self._remote(request, start, attach=False)

    async def attach(self, request: web.Request) -> web.StreamResponse:
        w = self._worker(request)
        container = request.match_info["container"]

        async def start(opts: remotecommand.ExecOptions) -> ExecSession:
            assert w.sandbox is not None
            return await w.runtime.attach(w.sandbox, container)

        return await self._remote(request, start, attach=True)

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        w = self._worker(request)

        async def dial(port: int) -> Connection:
            if not 0 < port < 65536:
                raise RuntimeError_("BadRequest", f"invalid port {port}")
            assert w.sandbox is not None
            return await w.runtime.port_forward(w.sandbox, port)

        if hijack.wants_upgrade(request, "websocket"):
            return await portforward.serve_websocket(request, dial)
        if hijack.wants_upgrade(request, "spdy/3.1"):
            resp, conn = await hijack.upgrade(
                request,
                {
                    "Connection": "Upgrade",
                    "Upgrade": "SPDY/3.1",
                    "X-Stream-Protocol-Version": portforward.PROTOCOL,
                },
            )
            await portforward.serve_spdy(spdy.StreamConn(conn.reader, conn.write, conn.close), dial)
            return resp
        return status(400, "Upgrade request required", "BadRequest")
