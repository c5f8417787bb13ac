"""Raw-store latency probes: the same-run reference for the API benchmarks (PERF-API-1/2 compare
the API server's p99 with the p99 of the store underneath it, measured the same way).

All functions take a started :class:`~centaurus.store.base.Store` and return clusterloader2
``PerfData`` items (see CONTRACTS.md): ``{"data": {"Perc50", "Perc90", "Perc99"}, "unit": "ms",
"labels": {...}, "samples": [...]}``. Load is *open loop* (operations are started on a fixed
schedule whether or not earlier ones finished) so that queueing shows in the figures, as it does
for locust at a fixed offered rate. No thresholds here: callers judge the figures.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Sequence
from typing import Any

from centaurus.store.base import KV, Store

MAX_SAMPLES = 10_000
PerfData = dict[str, Any]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0 if empty)."""
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1))
    return float(sorted_values[k])


def perfdata(samples_ms: Sequence[float], labels: dict[str, str]) -> PerfData:
    s = sorted(samples_ms)
    item: PerfData = {
        "data": {"Perc50": percentile(s, 0.50), "Perc90": percentile(s, 0.90), "Perc99": percentile(s, 0.99)},
        "unit": "ms",
        "labels": {**labels, "Count": str(len(s))},
    }
    item["samples"] = [round(x, 4) for x in samples_ms[:MAX_SAMPLES]]
    return item


def _value(size: int) -> bytes:
    # JSON-ish filler, incompressible enough not to flatter any backend.
    raw = os.urandom(size // 2).hex().encode()
    return b'{"spec":"' + raw[: max(0, size - 11)] + b'"}'


async def probe(
    store: Store,
    *,
    rate: float = 200.0,
    duration: float = 5.0,
    verbs: Sequence[str] = ("create", "get", "update", "list"),
    prefix: str = "/bench/probe/",
    value_size: int = 2048,
    list_limit: int = 100,
    seed: int = 200,
    cleanup: bool = True,
    kind: str = "",
) -> list[PerfData]:
    """p50/p90/p99 per verb at ``rate`` operations/s in total (verbs take turns) for
    ``duration`` seconds. ``seed`` keys are created first (not measured) so get/update/list
    have something to work on. Returns one PerfData item per verb (Metric ``store_latency``)."""
    prefix = f"{prefix}{os.urandom(3).hex()}/"
    value = _value(value_size)
    latest: dict[str, KV] = {}
    busy: set[str] = set()
    for i in range(seed):
        kv = await store.create(f"{prefix}seed-{i:06d}", value)
        latest[kv.key] = kv
    keys = list(latest)
    samples: dict[str, list[float]] = {v: [] for v in verbs}
    errors: dict[str, int] = dict.fromkeys(verbs, 0)
    counter = 0

    async def one(verb: str, n: int) -> None:
        key = ""
        try:
            t0 = time.perf_counter()
            if verb == "create":
                key = f"{prefix}new-{n:08d}"
                kv = await store.create(key, value)
                latest[key] = kv
                keys.append(key)
            elif verb == "get":
                await store.get(keys[n % len(keys)])
            elif verb == "update":
                ring = (keys[(n + j) % len(keys)] for j in range(len(keys)))
                key = next((k for k in ring if k not in busy), "")
                if not key:
                    errors[verb] += 1
                    return
                busy.add(key)
                t0 = time.perf_counter()
                latest[key] = await store.update(key, value, latest[key].mod_revision)
            elif verb == "list":
                await store.list(prefix, limit=list_limit)
            else:
                raise ValueError(f"unknown verb {verb!r}")
            samples[verb].append((time.perf_counter() - t0) * 1000)
        except Exception:  # Conflict, StoreUnavailable...: counted, the probe goes on
            errors[verb] += 1
        finally:
            busy.discard(key)

    tasks: list[asyncio.Task[None]] = []
    interval = 1.0 / rate
    start = time.perf_counter()
    while True:
        due = start + counter * interval
        if due - start >= duration:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(verbs[counter % len(verbs)], counter)))
        counter += 1
    await asyncio.gather(*tasks)
    achieved = counter / max(1e-9, time.perf_counter() - start)
    if cleanup:
        for key in list(latest):
            try:
                await store.delete(key)
            except Exception:  # best effort: the probe's keys live under their own prefix
                pass
    name = kind or type(store).__name__
    return [
        perfdata(samples[v], {
            "Metric": "store_latency", "Store": name, "Verb": v, "Rate": f"{rate:g}",
            "AchievedRate": f"{achieved:.0f}", "Errors": str(errors[v]), "ValueBytes": str(value_size),
        })
        for v in verbs
    ]


async def sequential_puts(store: Store, *, n: int = 2000, value_size: int = 256, kind: str = "") -> PerfData:
    """Closed loop, one write at a time (NOTES.md's reference figure: etcd ~1,000/s p99 2-3 ms,
    sqlite NORMAL ~13,000/s p99 0.1 ms, measured without an event loop in between)."""
    prefix = f"/bench/seq/{os.urandom(3).hex()}/"
    value = _value(value_size)
    lat = []
    t_start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        await store.create(f"{prefix}{i:08d}", value)
        lat.append((time.perf_counter() - t0) * 1000)
    rate = n / (time.perf_counter() - t_start)
    return perfdata(lat, {"Metric": "store_put_sequential", "Store": kind or type(store).__name__,
                          "Rate": f"{rate:.0f}", "ValueBytes": str(value_size)})


async def fill(store: Store, prefix: str, n: int, *, value_size: int = 3072, concurrency: int = 64) -> float:
    """Create ``n`` keys under ``prefix`` as fast as the store takes them; returns seconds."""
    value = _value(value_size)
    nxt = 0
    t0 = time.perf_counter()

    async def worker() -> None:
        nonlocal nxt
        while nxt < n:
            i = nxt
            nxt += 1
            await store.create(f"{prefix}{i:08d}", value)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0


async def list_time(store: Store, prefix: str, *, repeat: int = 3, limit: int = 0) -> float:
    """Best-of-``repeat`` seconds to list ``prefix`` (with ``limit``, one page)."""
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        await store.list(prefix, limit=limit)
        best = min(best, time.perf_counter() - t0)
    return best


async def watch_fanout(
    store: Store, *, watchers: int = 50, events: int = 1000, rate: float = 500.0, kind: str = ""
) -> PerfData:
    """``watchers`` watches on one prefix while ``events`` writes arrive at ``rate``/s: the
    latency from issuing a write to its delivery to each watcher (commit + fan-out)."""
    prefix = f"/bench/watch/{os.urandom(3).hex()}/"
    start_rev = await store.revision()
    issued: dict[str, float] = {}
    delays: list[float] = []
    done = asyncio.Event()
    remaining = watchers

    async def watcher() -> None:
        nonlocal remaining
        n = 0
        gen = store.watch(prefix, start_rev)
        try:
            async for ev in gen:
                now = time.perf_counter()
                t = issued.get(ev.kv.key)
                if t is not None:
                    delays.append(max(0.0, now - t) * 1000)
                n += 1
                if n == events:
                    break
        finally:
            await gen.aclose()
            remaining -= 1
            if remaining == 0:
                done.set()

    tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
    await asyncio.sleep(0.2)
    value = _value(512)
    t_start = time.perf_counter()
    writes = []

    async def write(i: int) -> None:
        key = f"{prefix}{i:08d}"
        issued[key] = time.perf_counter()
        await store.create(key, value)

    for i in range(events):
        delay = t_start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        writes.append(asyncio.create_task(write(i)))
    await asyncio.gather(*writes)
    await asyncio.wait_for(done.wait(), timeout=60)
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t_start
    item = perfdata(delays, {"Metric": "store_watch_delivery", "Store": kind or type(store).__name__,
                             "Watchers": str(watchers), "Events": str(events), "Rate": f"{rate:g}",
                             "DeliveredPerSec": f"{watchers * events / elapsed:.0f}"})
    return item
