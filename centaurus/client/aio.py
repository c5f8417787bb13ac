"""The one asynchronous API client every component uses (controllers, scheduler, node agents,
operators): aiohttp with a pooled connection, Kubernetes paths with the Arktos tenant segment,
Status errors as :class:`ApiError`, compare-and-swap helpers and list/watch with resumption.

``list_watch`` is the informer primitive: it lists, then watches from the list's
resourceVersion, resumes from the last seen version after a dropped stream, and re-lists on
``410 Gone`` (announcing the fresh state with a ``SYNC`` event so caches can be replaced).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import orjson

from centaurus.client.kubeconfig import Credentials
from centaurus.client.kubeconfig import load as load_kubeconfig
from centaurus.client.rest import ApiError, resource_path

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}
Obj = dict[str, Any]


def _status(code: int, text: str) -> dict[str, Any]:
    with contextlib.suppress(ValueError):
        doc = json.loads(text)
        if isinstance(doc, dict) and doc.get("kind") == "Status":
            return doc
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": "Unknown",
        "message": text[:500],
    }


class AsyncClient:
    def __init__(self, creds: Credentials, *, pool: int = 64, timeout: float = 30.0) -> None:
        self.creds = creds
        self.timeout = timeout
        self._pool = pool
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(cls, path: str, context: str | None = None, **kw: Any) -> AsyncClient:
        return cls(load_kubeconfig(path, context), **kw)

    @property
    def tenant(self) -> str | None:
        return self.creds.tenant

    def _ssl(self) -> ssl.SSLContext | bool:
        if not self.creds.server.startswith("https"):
            return False
        if self.creds.insecure:
            return False
        ctx = (
            ssl.create_default_context(cafile=self.creds.ca_file)
            if self.creds.ca_file
            else ssl.create_default_context()
        )
        if self.creds.cert_file and self.creds.key_file:
            ctx.load_cert_chain(self.creds.cert_file, self.creds.key_file)
        return ctx

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Accept": "application/json", "User-Agent": "centaurus-aio/0.1"}
            if self.creds.token:
                headers["Authorization"] = f"Bearer {self.creds.token}"
            conn = aiohttp.TCPConnector(limit=self._pool, ssl=self._ssl())
            self._session = aiohttp.ClientSession(self.creds.server, connector=conn, headers=headers)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- raw ---------------------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if data is not None else {}
        q = {
            k: str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in (params or {}).items()
            if v is not None
        }
        async with self.session().request(
            method,
            path,
            data=data,
            params=q,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        ) as resp:
            if resp.status >= 400:
                text = await resp.text()
                raise ApiError(resp.status, _status(resp.status, text))
            raw = await resp.read()
            # orjson: a third of the stdlib's decoding time on pod-sized bodies (UTF-8 as the API)
            return orjson.loads(raw) if raw else None

    # ---- verbs -------------------------------------------------------------------------------
    async def get(
        self,
        resource: str,
        name: str,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
        group_version: str | None = None,
        subresource: str | None = None,
    ) -> Obj:
        path = resource_path(
            resource,
            namespace=namespace,
            name=name,
            tenant=tenant,
            group_version=group_version,
            subresource=subresource,
        )
        out: Obj = await self.request("GET", path)
        return out

    async def list(
        self,
        resource: str,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
        group_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        resource_version: str | None = None,
    ) -> Obj:
        """All pages of a list (``limit`` sets the page size), items concatenated."""
        path = resource_path(resource, namespace=namespace, tenant=tenant, group_version=group_version)
        params: dict[str, Any] = {
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "limit": limit,
            "resourceVersion": resource_version,
        }
        first: Obj | None = None
        while True:
            page: Obj = await self.request("GET", path, params=params)
            if first is None:
                first = page
            else:
                first["items"].extend(page.get("items") or [])
            cont = (page.get("metadata") or {}).get("continue")
            if not cont:
                break
            params = {"continue": cont, "limit": limit}
        first["metadata"].pop("continue", None)
        return first

    async def create(
        self,
        resource: str,
        obj: Obj,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
        group_version: str | None = None,
        subresource: str | None = None,
        name: str | None = None,
    ) -> Obj:
        ns = namespace if namespace is not None else (obj.get("metadata") or {}).get("namespace")
        path = resource_path(
            resource,
            namespace=ns,
            name=name,
            subresource=subresource,
            tenant=tenant,
            group_version=group_version,
        )
        out: Obj = await self.request("POST", path, body=obj)
        return out

    async def replace(
        self,
        resource: str,
        obj: Obj,
        *,
        tenant: str | None = None,
        group_version: str | None = None,
        subresource: str | None = None,
    ) -> Obj:
        md = obj["metadata"]
        path = resource_path(
            resource,
            namespace=md.get("namespace"),
            name=md["name"],
            subresource=subresource,
            tenant=tenant,
            group_version=group_version,
        )
        out: Obj = await self.request("PUT", path, body=obj)
        return out

    async def update_status(self, resource: str, obj: Obj, **kw: Any) -> Obj:
        return await self.replace(resource, obj, subresource="status", **kw)

    async def patch(
        self,
        resource: str,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        kind: str = "merge",
        tenant: str | None = None,
        group_version: str | None = None,
        subresource: str | None = None,
    ) -> Obj:
        path = resource_path(
            resource,
            namespace=namespace,
            name=name,
            subresource=subresource,
            tenant=tenant,
            group_version=group_version,
        )
        out: Obj = await self.request("PATCH", path, body=patch, content_type=PATCH_TYPES[kind])
        return out

    async def delete(
        self,
        resource: str,
        name: str,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
        group_version: str | None = None,
        propagation: str | None = None,
        grace_period: int | None = None,
        missing_ok: bool = False,
    ) -> Obj | None:
        path = resource_path(
            resource, namespace=namespace, name=name, tenant=tenant, group_version=group_version
        )
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation:
            body["propagationPolicy"] = propagation
        if grace_period is not None:
            body["gracePeriodSeconds"] = grace_period
        try:
            out: Obj = await self.request("DELETE", path, body=body)
            return out
        except ApiError as exc:
            if missing_ok and exc.code == 404:
                return None
            raise

    async def update_with_retry(
        self,
        resource: str,
        name: str,
        mutate: Callable[[Obj], Obj | Awaitable[Any] | None],
        *,
        namespace: str | None = None,
        tenant: str | None = None,
        group_version: str | None = None,
        subresource: str | None = None,
        retries: int = 10,
    ) -> Obj:
        """GET, ``mutate`` (in place or returning the new object; returning None from a sync
        mutate means "in place"), PUT with the read resourceVersion; retried on 409."""
        for _ in range(retries):
            cur = await self.get(
                resource, name, namespace=namespace, tenant=tenant, group_version=group_version
            )
            res = mutate(cur)
            if asyncio.iscoroutine(res) or isinstance(res, asyncio.Future):
                res = await res
            new = res if isinstance(res, dict) else cur
            try:
                return await self.replace(
                    resource, new, tenant=tenant, group_version=group_version, subresource=subresource
                )
            except ApiError as exc:
                if exc.code != 409:
                    raise
        raise ApiError(
            409,
            {
                "kind": "Status",
                "code": 409,
                "reason": "Conflict",
                "message": f"{resource}/{name}: gave up after {retries} conflicts",
            },
        )

    # ---- watch -------------------------------------------------------------------------------
    async def watch(
        self,
        resource: str,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
        group_version: str | None = None,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
        bookmarks: bool = True,
    ) -> AsyncIterator[Obj]:
        """Raw watch events until the server closes the stream. An ``ERROR`` event with code
        410 raises :class:`ApiError` (410) so callers can re-list."""
        path = resource_path(resource, namespace=namespace, tenant=tenant, group_version=group_version)
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "timeoutSeconds": timeout_seconds,
            "allowWatchBookmarks": "true" if bookmarks else None,
        }
        q = {k: str(v) for k, v in params.items() if v is not None}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=timeout_seconds + 30)
        async with self.session().get(path, params=q, timeout=timeout) as resp:
            if resp.status >= 400:
                raise ApiError(resp.status, _status(resp.status, await resp.text()))
            # whatever arrived at once, split into lines here (one await per chunk, not per event)
            # and decoded with orjson: ~15-25 us less per event per watcher than readline + json
            rest = b""
            while True:
                chunk = await resp.content.readany()
                if not chunk:
                    if not rest.strip():
                        return
                    chunk = b"\n"  # a last event without its newline
                lines = (rest + chunk).split(b"\n") if rest else chunk.split(b"\n")
                rest = lines.pop()
                for line in lines:
                    if not line.strip():
                        continue
                    ev = orjson.loads(line)
                    if ev.get("type") == "ERROR":
                        st = ev.get("object") or {}
                        raise ApiError(int(st.get("code") or 500), st)
                    yield ev

    async def list_watch(
        self,
        resource: str,
        *,
        namespace: str | None = None,
        tenant: str | None = None,
        group_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> AsyncIterator[Obj]:
        """Informer stream: ``{"type": "SYNC", "items": [...]}`` after every (re-)list, then
        ADDED/MODIFIED/DELETED events forever; survives stream ends and 410 Gone."""
        rv: str | None = None
        while True:
            if rv is None:
                lst = await self.list(
                    resource,
                    namespace=namespace,
                    tenant=tenant,
                    group_version=group_version,
                    label_selector=label_selector,
                    field_selector=field_selector,
                    limit=page_size,
                )
                rv = str((lst.get("metadata") or {}).get("resourceVersion") or "")
                yield {"type": "SYNC", "items": lst.get("items") or [], "resourceVersion": rv}
            try:
                async for ev in self.watch(
                    resource,
                    namespace=namespace,
                    tenant=tenant,
                    group_version=group_version,
                    resource_version=rv,
                    label_selector=label_selector,
                    field_selector=field_selector,
                ):
                    obj_rv = ((ev.get("object") or {}).get("metadata") or {}).get("resourceVersion")
                    # cross-partition streams stamp each object with the composite version
                    # after its event, so every event is a resume point
                    if obj_rv:
                        rv = str(obj_rv)
                    if ev["type"] != "BOOKMARK":
                        yield ev
            except ApiError as exc:
                if exc.code == 410:
                    rv = None
                    continue
                raise
            except (TimeoutError, aiohttp.ClientError):
                await asyncio.sleep(0.5)
