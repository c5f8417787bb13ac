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
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from centaurus.api import encoding
from centaurus.api.handlers import Call, all_tenant_ns_pred, scopes_of, selector_of
from centaurus.api.metrics import METRICS
from centaurus.api.watchcache import CacheEvent, Watcher
from centaurus.objects import table
from centaurus.objects.selectors import both
from centaurus.objects.status import ApiStatusError, status_failure

BOOKMARK_EVERY = 5.0


def _line(ev_type: str, raw: bytes) -> bytes:
    return b'{"type":"' + ev_type.encode() + b'","object":' + raw + b"}\n"


class Positions:
    """Where a watch stream stands in each partition it reads, and the resourceVersions it
    stamps. A cross-partition stream stamps every object with a composite "<r0>.<r1>..." whose
    own partition's component is the object's revision (a valid update precondition) and whose
    other components are the positions delivered so far (resuming from it misses nothing; see
    docs/ARCHITECTURE.md "The store"). A single-partition stream stamps nothing (objects carry
    their revision)."""

    def __init__(self, start: dict[int, int], n: int, cache_revision: Callable[[int], int]) -> None:
        self.pos = dict(start)
        self.n = n
        self.cache_revision = cache_revision

    def composite(self, idx: int = -1, own: int = 0) -> str:
        return ".".join(
            str(own if i == idx else self.pos.get(i, self.cache_revision(i))) for i in range(self.n)
        )

    def stamp(self, idx: int, rev: int, live: bool = True) -> str:
        """The version of an object of partition ``idx`` at revision ``rev``; ``live`` events
        advance the position (initial-state objects are all below it already)."""
        if live:
            self.pos[idx] = max(self.pos[idx], rev)
        return self.composite(idx, rev)

    def bookmark(self, drained: Callable[[int], bool]) -> str:
        """A partition whose event queue is ``drained`` has sent everything up to its cache
        revision; one with events still queued (a getter woken but not yet run) stays where it
        is, or a client resuming from the bookmark would skip those events."""
        for i in self.pos:
            if drained(i):
                self.pos[i] = max(self.pos[i], self.cache_revision(i))
        if len(self.pos) == 1:
            return str(next(iter(self.pos.values())))
        return self.composite()


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
    multi = len(parts) > 1
    if multi and rv not in ("", "0"):
        if rv.isdigit():  # a plain revision cannot be placed across partitions: relist
            return await _gone(call, int(rv), 0)
        revs = _multi_rv(rv, len(call.storage.parts))
        if revs is None:
            raise ApiStatusError(400, f"invalid resourceVersion {rv!r}", "BadRequest")
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
            initial_entries.extend((idx, e) for e in kc.entries(prefix) if pred is None or pred(e.obj))

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

    positions = Positions(
        {i: revs.get(i, start_revs[i]) for i in parts},
        len(call.storage.parts),
        lambda i: call.storage.parts[i].revision,
    )
    queue_of = {idx: w.queue for (idx, _), (_, w) in zip(prefixes, watchers, strict=True)}

    def emit(ev_type: str, idx: int, rev: int, obj: dict[str, Any], raw: bytes, live: bool = True) -> bytes:
        if not multi:
            return encode(ev_type, obj, raw)
        stamped = {**obj, "metadata": {**obj["metadata"], "resourceVersion": positions.stamp(idx, rev, live)}}
        return encode(ev_type, stamped, orjson.dumps(stamped))

    def bookmark(extra: dict[str, str] | None = None) -> bytes:
        md: dict[str, Any] = {"resourceVersion": positions.bookmark(lambda i: queue_of[i].empty())}
        if extra:
            md["annotations"] = extra
        return _line(
            "BOOKMARK",
            orjson.dumps({"kind": call.kind.kind, "apiVersion": call.kind.api_version, "metadata": md}),
        )

    try:
        out = []
        for idx, e in initial_entries:
            out.append(emit("ADDED", idx, e.rev, e.obj, e.raw, live=False))
        for idx, ev in sorted(backlog, key=lambda x: x[1].rev):
            out.append(emit(ev.type, idx, ev.rev, ev.entry.obj, ev.entry.raw))
        if initial and bookmarks:
            out.append(bookmark({"k8s.io/initial-events-end": "true"}))
        if out:
            await resp.write(b"".join(out))
        deadline = time.monotonic() + timeout
        last_mark = time.monotonic()
        queues = list(queue_of.items())
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            batch = await _next_events(queues, min(left, BOOKMARK_EVERY if bookmarks else left))
            if batch is None:
                break  # a watcher overflowed or the cache was reset: the client re-lists
            lines = [emit(ev.type, idx, ev.rev, ev.entry.obj, ev.entry.raw) for idx, ev in batch]
            if bookmarks and time.monotonic() - last_mark >= BOOKMARK_EVERY:
                lines.append(bookmark())
                last_mark = time.monotonic()
            if lines:
                METRICS.watch_events.values[call.kind.plural] += len(batch)
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


async def _next_events(
    queues: list[tuple[int, asyncio.Queue[CacheEvent | None]]], wait: float
) -> list[tuple[int, CacheEvent]] | None:
    """Everything queued now, or wait up to ``wait`` seconds for the first event. None = closed."""
    out: list[tuple[int, CacheEvent]] = []
    for idx, qu in queues:
        while not qu.empty():
            ev = qu.get_nowait()
            if ev is None:
                return None
            out.append((idx, ev))
    if out:
        return out
    getters = [(idx, asyncio.ensure_future(qu.get())) for idx, qu in queues]
    try:
        await asyncio.wait([g for _, g in getters], timeout=wait, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for _, g in getters:
            if not g.done():
                g.cancel()
    for idx, g in getters:
        if g.done() and not g.cancelled():
            ev = g.result()
            if ev is None:
                return None
            out.append((idx, ev))
    return out


def _multi_rv(rv: str, n: int) -> dict[int, int] | None:
    """``"<r0>.<r1>..."`` (one revision per partition) -> {index: revision}; None if malformed."""
    parts = rv.split(".")
    if len(parts) != n or not all(p.isdigit() for p in parts):
        return None
    return {i: int(p) for i, p in enumerate(parts)}


async def _gone(call: Call, rv: int, oldest: int) -> web.StreamResponse:
    """Upstream answers an expired watch with 200 and one ERROR event carrying a 410 Status."""
    resp = web.StreamResponse(headers={"Content-Type": encoding.JSON})
    await resp.prepare(call.request)
    st = status_failure(410, f"too old resource version: {rv} ({oldest})", "Expired")
    await resp.write(_line("ERROR", orjson.dumps(st)))
    await resp.write_eof()
    return resp
