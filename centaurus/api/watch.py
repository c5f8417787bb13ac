"""Watch: a chunked stream of ``{"type", "object"}`` lines served from the watch cache.

``resourceVersion`` semantics follow upstream: unset or "0" -> synthetic ADDED events for the
current state, then changes; N -> every change after N, or ``410 Gone`` (an ERROR event with an
``Expired`` Status) when the cache history no longer reaches back to N. With
``allowWatchBookmarks`` the stream carries periodic BOOKMARK events; ``sendInitialEvents`` ends
the initial state with a bookmark annotated ``k8s.io/initial-events-end``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
from aiohttp import web

from centaurus.api import encoding
from centaurus.api.handlers import Call, all_tenant_ns_pred, scopes_of, selector_of
from centaurus.api.metrics import METRICS
from centaurus.api.watchcache import CacheEvent, Watcher
from centaurus.objects import table
from centaurus.objects.selectors import both
from centaurus.objects.status import status_failure

BOOKMARK_EVERY = 5.0


def _line(ev_type: str, raw: bytes) -> bytes:
    return b'{"type":"' + ev_type.encode() + b'","object":' + raw + b"}\n"


async def watch(call: Call) -> web.StreamResponse:
    q = call.query
    rv = q.get("resourceVersion", "")
    bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
    initial = q.get("sendInitialEvents") in ("true", "1")
    try:
        timeout = float(q.get("timeoutSeconds") or 1800)
    except ValueError:
        timeout = 1800.0
    pred = selector_of(call)
    as_table = encoding.wants_table(call.request)
    prefixes = scopes_of(call)
    pred = both(pred, all_tenant_ns_pred(call))
    parts = sorted({i for i, _ in prefixes})
    if len(parts) > 1 and rv not in ("", "0"):
        revs = _multi_rv(rv)
    else:
        revs = {parts[0]: int(rv)} if rv.isdigit() and rv != "0" else {}

    # register watchers first, then read history: nothing falls between the two
    watchers: list[tuple[Any, Watcher]] = []
    backlog: list[tuple[int, CacheEvent]] = []
    initial_entries: list[Any] = []
    start_revs: dict[int, int] = {}
    for idx, prefix in prefixes:
        part = call.storage.parts[idx]
        kc = part.kind(call.kind.storage_prefix)
        w = Watcher(prefix, pred)
        kc.watchers.add(w)
        watchers.append((kc, w))
        start_revs[idx] = part.revision
        if idx in revs:
            hist = kc.since(revs[idx])
            if hist is None:
                for kc2, w2 in watchers:
                    kc2.watchers.discard(w2)
                return await _gone(call, revs[idx], kc.oldest)
            backlog.extend(
                (idx, e)
                for e in hist
                if e.key.startswith(prefix)
                and (pred is None or pred(e.entry.obj) or (e.prev is not None and pred(e.prev.obj)))
            )
        elif rv in ("", "0") or initial:
            initial_entries.extend(e for e in kc.entries(prefix) if pred is None or pred(e.obj))

    resp = web.StreamResponse(headers={"Content-Type": encoding.JSON, "Cache-Control": "no-cache"})
    resp.enable_chunked_encoding()
    await resp.prepare(call.request)
    METRICS.watchers.inc(call.kind.plural)
    first_table = [True]

    def encode(ev_type: str, entry_obj: dict[str, Any], raw: bytes) -> bytes:
        if as_table and ev_type != "BOOKMARK":
            t = table.to_table(
                call.kind,
                [entry_obj],
                {"resourceVersion": entry_obj["metadata"].get("resourceVersion", "")},
                q.get("includeObject", "Metadata"),
                first_table[0],
            )
            first_table[0] = False
            return _line(ev_type, orjson.dumps(t))
        return _line(ev_type, raw)

    def bookmark(extra: dict[str, str] | None = None) -> bytes:
        if len(parts) == 1:
            cur = str(call.storage.parts[parts[0]].revision)
        else:
            cur = ".".join(f"{i}:{call.storage.parts[i].revision}" for i in parts)
        md: dict[str, Any] = {"resourceVersion": cur}
        if extra:
            md["annotations"] = extra
        return _line(
            "BOOKMARK",
            orjson.dumps({"kind": call.kind.kind, "apiVersion": call.kind.api_version, "metadata": md}),
        )

    try:
        out = [encode("ADDED", e.obj, e.raw) for e in initial_entries]
        seen_rev = dict(start_revs)
        for idx, ev in sorted(backlog, key=lambda x: x[1].rev):
            out.append(_event_line(ev, pred, encode))
            seen_rev[idx] = max(seen_rev.get(idx, 0), ev.rev)
        if initial and bookmarks:
            out.append(bookmark({"k8s.io/initial-events-end": "true"}))
        if out:
            await resp.write(b"".join(out))
        deadline = time.monotonic() + timeout
        last_mark = time.monotonic()
        queues = [w.queue for _, w in watchers]
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            batch = await _next_events(queues, min(left, BOOKMARK_EVERY if bookmarks else left))
            if batch is None:
                break  # a watcher overflowed or the cache was reset: the client re-lists
            lines = []
            for idx_ev in batch:
                # skip what the backlog already delivered (registered before history was read)
                lines.append(_event_line(idx_ev, pred, encode))
            if bookmarks and time.monotonic() - last_mark >= BOOKMARK_EVERY:
                lines.append(bookmark())
                last_mark = time.monotonic()
            if lines:
                await resp.write(b"".join(lines))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        for kc, w in watchers:
            kc.watchers.discard(w)
        METRICS.watchers.dec(call.kind.plural)
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await resp.write_eof()
    return resp


def _event_line(ev: CacheEvent, pred: Any, encode: Any) -> bytes:
    line: bytes = encode(ev.type, ev.entry.obj, ev.entry.raw)
    return line


async def _next_events(
    queues: list[asyncio.Queue[CacheEvent | None]], wait: float
) -> list[CacheEvent] | None:
    """Everything queued now, or wait up to ``wait`` seconds for the first event. None = closed."""
    out: list[CacheEvent] = []
    for qu in queues:
        while not qu.empty():
            ev = qu.get_nowait()
            if ev is None:
                return None
            out.append(ev)
    if out:
        return out
    getters = [asyncio.ensure_future(qu.get()) for qu in queues]
    try:
        await asyncio.wait(getters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for g in getters:
            if not g.done():
                g.cancel()
    for g in getters:
        if g.done() and not g.cancelled():
            ev = g.result()
            if ev is None:
                return None
            out.append(ev)
    return out


def _multi_rv(rv: str) -> dict[int, int]:
    out = {}
    for part in rv.split("."):
        i, _, r = part.partition(":")
        if i.isdigit() and r.isdigit():
            out[int(i)] = int(r)
    return out


async def _gone(call: Call, rv: int, oldest: int) -> web.StreamResponse:
    """Upstream answers an expired watch with 200 and one ERROR event carrying a 410 Status."""
    resp = web.StreamResponse(headers={"Content-Type": encoding.JSON})
    await resp.prepare(call.request)
    st = status_failure(410, f"too old resource version: {rv} ({oldest})", "Expired")
    await resp.write(_line("ERROR", orjson.dumps(st)))
    await resp.write_eof()
    return resp
