"""The API server's side of pod streaming and actions: ``pods/{name}/log``, ``exec``, ``attach``,
``portforward`` and Arktos' ``action``.

By the time a request gets here it is authenticated, scoped to its tenant (another tenant's pod
is 404 because the lookup happens in the caller's tenant) and authorized by RBAC on the
subresource. Then:

* ``log``: a GET to the pod's node agent, streamed back as it arrives (``follow`` included).
* ``exec``/``attach``/``portforward``: upgrade requests (WebSocket, SPDY/3.1, SPDY tunneled in a
  WebSocket) are relayed byte for byte, as kube-apiserver's UpgradeAwareHandler does: the
  client's handshake goes to the agent, the agent's 101 comes back, then both directions are
  copied. Protocol negotiation is thus entirely the agent's.
* ``action``: a ``CustomAction`` body becomes an ``Action`` object (``spec.nodeName``,
  ``spec.podAction``) that the node's agent executes and completes (Arktos' Action API).

The agent is reached over TLS verified against the cluster CA, with a client certificate whose
common name is ``kube-apiserver-kubelet-client`` (minted into the PKI dir on first use); the
agent accepts nobody else.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import secrets
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from centaurus.objects import kinds as K
from centaurus.objects import lifecycle
from centaurus.objects.status import ApiStatusError

if TYPE_CHECKING:
    from centaurus.api.handlers import Call

log = logging.getLogger("centaurus.api.proxy")
SUBRESOURCES = frozenset({"log", "exec", "attach", "portforward", "action"})
AGENT_CLIENT_CN = "kube-apiserver-kubelet-client"
ENDPOINT_ANNOTATION = "centaurus.io/agent-endpoint"
ACTIONS = {
    "reboot": "rebootAction",
    "snapshot": "snapshotAction",
    "restore": "restoreAction",
    "stop": "stopAction",
    "start": "startAction",
    "pause": "pauseAction",
    "resume": "resumeAction",
}
_FORWARD_HEADERS = (
    "Connection",
    "Upgrade",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "X-Stream-Protocol-Version",
    "Content-Length",
)
_BACK_HEADERS = (
    "Connection",
    "Upgrade",
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "X-Stream-Protocol-Version",
)


class _Proxy:
    def __init__(self, pki_dir: Path | None) -> None:
        self.pki_dir = pki_dir
        self._ssl: ssl.SSLContext | None = None
        self._session: ClientSession | None = None

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            if self.pki_dir is None:
                raise ApiStatusError(
                    503, "the API server has no PKI to reach node agents", "ServiceUnavailable"
                )
            from centaurus.auth.pki import CA, _write

            crt, key = self.pki_dir / "agent-client.crt", self.pki_dir / "agent-client.key"
            if not crt.exists() or not key.exists():
                pair = CA(self.pki_dir).client_cert(AGENT_CLIENT_CN, "system", ["system:masters"])
                _write(key, pair.key_pem)
                _write(crt, pair.cert_pem, 0o644)
            ctx = ssl.create_default_context(cafile=str(self.pki_dir / "ca.crt"))
            ctx.load_cert_chain(str(crt), str(key))
            self._ssl = ctx
        return self._ssl

    def session(self) -> ClientSession:
        if self._session is None or self._session.closed:
            self._session = ClientSession(connector=TCPConnector(ssl=self.ssl_context(), limit=256))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


PROXY: web.AppKey[_Proxy] = web.AppKey("agent_proxy", _Proxy)


def setup(app: web.Application, pki_dir: Path | None) -> None:
    app[PROXY] = _Proxy(pki_dir)

    async def cleanup(_app: web.Application) -> None:
        await app[PROXY].close()

    app.on_cleanup.append(cleanup)


# ---- helpers ------------------------------------------------------------------------------------
def _containers(pod: dict[str, Any]) -> list[str]:
    spec = pod.get("spec") or {}
    if spec.get("virtualMachine"):
        return [str(spec["virtualMachine"].get("name") or "vm")]
    return [
        str(c.get("name")) for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    ]


def _container(pod: dict[str, Any], wanted: str | None) -> str:
    spec = pod.get("spec") or {}
    names = _containers(pod)
    main = [str(c.get("name")) for c in spec.get("containers") or []] or names
    name = pod["metadata"]["name"]
    if not wanted:
        if len(main) == 1:
            return main[0]
        raise ApiStatusError(
            400,
            f"a container name must be specified for pod {name}, choose one of: [{' '.join(main)}]",
            "BadRequest",
        )
    if wanted not in names:
        raise ApiStatusError(400, f"container {wanted} is not valid for pod {name}", "BadRequest")
    return wanted


async def _agent(call: Call, pod: dict[str, Any]) -> str:
    node = (pod.get("spec") or {}).get("nodeName")
    name = pod["metadata"]["name"]
    if not node:
        raise ApiStatusError(400, f"pod {name} does not have a host assigned", "BadRequest")
    nodes = K.must("", "v1", "nodes")
    try:
        nobj, _ = await call.storage.get(nodes, "system", None, node)
    except ApiStatusError:
        raise ApiStatusError(404, f"node {node} of pod {name} does not exist", "NotFound") from None
    ep = ((nobj.get("metadata") or {}).get("annotations") or {}).get(ENDPOINT_ANNOTATION)
    if ep:
        return str(ep).rstrip("/")
    st = nobj.get("status") or {}
    port = ((st.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    ip = next((a["address"] for a in st.get("addresses") or [] if a.get("type") == "InternalIP"), None)
    if not port or not ip:
        raise ApiStatusError(503, f"node {node} publishes no agent endpoint", "ServiceUnavailable")
    return f"https://{ip}:{port}"


def _query(call: Call, drop: tuple[str, ...] = ()) -> str:
    items = [(k, v) for k, v in call.request.rel_url.query.items() if k not in drop]
    return urlencode(items)


# ---- entry --------------------------------------------------------------------------------------
async def handle(call: Call) -> web.StreamResponse:
    sub = call.info.subresource
    if sub == "action":
        if call.request.method != "POST":
            raise ApiStatusError(405, "pods/action only accepts POST", "MethodNotAllowed")
        return await _action(call)
    pod, _ = await call.storage.get(call.kind, call.tenant, call.ns, call.name)
    base = await _agent(call, pod)
    ident = f"{call.tenant}/{call.ns}/{call.name}"
    if sub == "log":
        if call.request.method not in ("GET", "HEAD"):
            raise ApiStatusError(405, "pods/log only accepts GET", "MethodNotAllowed")
        c = _container(pod, call.query.get("container"))
        return await _logs(call, f"{base}/containerLogs/{ident}/{c}?{_query(call, ('container',))}")
    if sub in ("exec", "attach"):
        c = _container(pod, call.query.get("container"))
        target = f"{base}/{sub}/{ident}/{c}?{_query(call, ('container',))}"
    else:
        target = f"{base}/portForward/{ident}?{_query(call)}"
    if "upgrade" not in ",".join(call.request.headers.getall("Connection", [])).lower():
        raise ApiStatusError(400, "Upgrade request required", "BadRequest")
    return await _relay(call, target)


async def _logs(call: Call, url: str) -> web.StreamResponse:
    proxy = call.request.app[PROXY]
    try:
        upstream = await proxy.session().get(url, timeout=ClientTimeout(total=None, sock_connect=10))
    except (TimeoutError, OSError) as exc:
        raise ApiStatusError(503, f"the node agent did not answer: {exc}", "ServiceUnavailable") from None
    async with upstream:
        if upstream.status != 200:
            body = await upstream.read()
            return web.Response(
                status=upstream.status, body=body, content_type=upstream.content_type or "application/json"
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(call.request)
        try:
            async for chunk in upstream.content.iter_any():
                await resp.write(chunk)
        except (ConnectionResetError, RuntimeError):
            return resp
        await resp.write_eof()
        return resp


async def _relay(call: Call, url: str) -> web.StreamResponse:
    from centaurus.agent.streams.hijack import upgrade

    req = call.request
    proxy = req.app[PROXY]
    u = urlsplit(url)
    host, port = u.hostname or "127.0.0.1", u.port or 443
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=proxy.ssl_context(), server_hostname=host), 10
        )
    except (TimeoutError, OSError) as exc:
        raise ApiStatusError(
            503, f"the node agent at {host}:{port} did not answer: {exc}", "ServiceUnavailable"
        ) from None
    lines = [f"{req.method} {u.path}?{u.query} HTTP/1.1", f"Host: {host}:{port}"]
    for h in _FORWARD_HEADERS:
        for v in req.headers.getall(h, []):
            lines.append(f"{h}: {v}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as exc:
        writer.close()
        raise ApiStatusError(502, f"the node agent answered no upgrade: {exc}", "BadGateway") from None
    status_line, *hdr_lines = head.decode("latin-1").split("\r\n")
    code = int(status_line.split()[1])
    headers: list[tuple[str, str]] = []
    for line in hdr_lines:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.append((k.strip(), v.strip()))
    if code != 101:
        length = next((int(v) for k, v in headers if k.lower() == "content-length"), None)
        body = b""
        with contextlib.suppress(asyncio.IncompleteReadError, TimeoutError, OSError):
            body = await asyncio.wait_for(
                reader.readexactly(length) if length is not None else reader.read(), 10
            )
        writer.close()
        ctype = next((v for k, v in headers if k.lower() == "content-type"), "application/json")
        return web.Response(status=code, body=body, content_type=ctype.split(";")[0])
    back = {k: v for k, v in headers if k.lower() in {h.lower() for h in _BACK_HEADERS}}
    resp, client = await upgrade(req, back)

    async def down() -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                await client.write(data)
        except (ConnectionError, OSError, RuntimeError):
            pass

    async def up() -> None:
        try:
            while True:
                data = await client.read()
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError, RuntimeError):
            pass
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()

    d, u_task = asyncio.ensure_future(down()), asyncio.ensure_future(up())
    await asyncio.wait([d], return_when=asyncio.FIRST_COMPLETED)
    u_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await u_task
    writer.close()
    await client.close()
    return resp


# ---- Arktos actions -----------------------------------------------------------------------------
async def _action(call: Call) -> web.Response:
    from centaurus.api import encoding

    body = await encoding.read_object(call.request) or {}
    if not isinstance(body, dict):
        raise ApiStatusError(400, "the action must be a CustomAction object", "BadRequest")
    name = str(body.get("actionName") or "")
    verb = name.lower()
    if verb not in ACTIONS:
        raise ApiStatusError(
            400,
            f"unsupported actionName {name!r} (supported: {', '.join(a.capitalize() for a in ACTIONS)})",
            "BadRequest",
        )
    pod, _ = await call.storage.get(call.kind, call.tenant, call.ns, call.name)
    if not (pod.get("spec") or {}).get("virtualMachine"):
        raise ApiStatusError(
            400, f"action {name} applies to VM pods only; pod {call.name} runs containers", "BadRequest"
        )
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        raise ApiStatusError(409, f"pod {call.name} is not scheduled to a node yet", "Conflict")
    params = copy.deepcopy(body.get(f"{verb}Params") or {})
    kind = K.must("", "v1", "actions")
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Action",
        "metadata": {
            "name": f"{call.name}-{verb}-{secrets.token_hex(3)}",
            "labels": {"centaurus.io/pod": call.name, "centaurus.io/action": verb},
        },
        "spec": {
            "nodeName": node,
            "podAction": {"podName": call.name, "podID": pod["metadata"].get("uid"), ACTIONS[verb]: params},
        },
        "status": {},
    }
    lifecycle.prepare_create(kind, obj, call.tenant, call.ns)
    out = await call.storage.create(kind, call.tenant, call.ns, obj["metadata"]["name"], obj)
    return encoding.json_response(out, 201)
