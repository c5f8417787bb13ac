"""Raw store benchmark: sqlite (synchronous NORMAL and FULL) vs a real single-member etcd.

    .venv/bin/python perf/store_bench.py [--keys 100000] [--out store-bench.json]

Figures: sequential put latency (closed loop, 256-B values), fill rate and full-list time for
``--keys`` keys of 3 KiB (pods are 2-4 KiB of JSON), first page of 500, watch fan-out delivery
latency, and the open-loop probe (create/get/update/list at a fixed rate) that the API
benchmark uses as its same-run reference. Prints one line per figure and writes all PerfData.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import uvloop

from centaurus.store import bench
from centaurus.store.base import Store
from centaurus.store.etcd import EtcdStore
from centaurus.store.etcdproc import EtcdCluster
from centaurus.store.sqlite import SqliteStore


def fmt(item: dict[str, Any]) -> str:
    d, lab = item["data"], item["labels"]
    extra = " ".join(f"{k}={v}" for k, v in lab.items() if k not in ("Metric", "Store"))
    return (
        f"{lab['Metric']:<22} {lab['Store']:<14} p50 {d['Perc50']:8.3f}  p90 {d['Perc90']:8.3f}  "
        f"p99 {d['Perc99']:8.3f} ms  {extra}"
    )


async def run_one(kind: str, store: Store, keys: int, out: list[dict[str, Any]]) -> None:
    seq = await bench.sequential_puts(store, n=2000, kind=kind)
    out.append(seq)
    print(fmt(seq), flush=True)
    for item in await bench.probe(store, rate=200, duration=5, kind=kind):
        out.append(item)
        print(fmt(item), flush=True)
    fan = await bench.watch_fanout(store, watchers=20, events=500, rate=250, kind=kind)
    out.append(fan)
    print(fmt(fan), flush=True)
    prefix = "/registry/pods/bench/"
    fill_s = await bench.fill(store, prefix, keys)
    full = await bench.list_time(store, prefix, repeat=3)
    page = await bench.list_time(store, prefix, repeat=5, limit=500)
    probe_full = await bench.probe(store, rate=200, duration=5, kind=kind + f"+{keys // 1000}k")
    for item in probe_full:
        out.append(item)
        print(fmt(item), flush=True)
    summary = {
        "labels": {"Metric": "store_bulk", "Store": kind, "Keys": str(keys), "ValueBytes": "3072"},
        "fill_per_s": round(keys / fill_s),
        "list_all_s": round(full, 3),
        "list_page500_ms": round(page * 1000, 2),
    }
    out.append(summary)
    print(
        f"store_bulk             {kind:<14} fill {keys / fill_s:8.0f} keys/s  "
        f"list {keys} keys {full:6.3f} s  first page of 500 {page * 1000:6.2f} ms",
        flush=True,
    )


async def main(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="cl-storebench-"))
    out: list[dict[str, Any]] = []
    try:
        for sync in ("NORMAL", "FULL"):
            if args.only and args.only != f"sqlite-{sync.lower()}":
                continue
            s = SqliteStore(path=tmp / f"bench-{sync}.db", synchronous=sync)
            await s.start()
            try:
                await run_one(f"sqlite-{sync.lower()}", s, args.keys, out)
            finally:
                await s.close()
        if not args.only or args.only == "etcd":
            cluster = EtcdCluster(tmp, members=1)
            await asyncio.to_thread(cluster.start)
            try:
                e = EtcdStore(endpoints=cluster.endpoints)
                await e.start()
                try:
                    await run_one("etcd", e, args.keys, out)
                finally:
                    await e.close()
            finally:
                await asyncio.to_thread(cluster.stop)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--only", choices=["sqlite-normal", "sqlite-full", "etcd"])
    ap.add_argument("--out")
    sys.exit(uvloop.run(main(ap.parse_args())))
