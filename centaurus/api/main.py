"""Run the API server as a process: ``python -m centaurus.api --state-dir D --port P ...``.

Opens the data partitions (one store each), makes sure the CA, the serving certificate and the
token file exist under ``D/pki``, creates the system Tenant object when missing, and serves until
SIGTERM/SIGINT. The control-plane supervisor (:mod:`centaurus.controlplane`) starts it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
from pathlib import Path
from typing import Any

from centaurus.api.server import ServerConfig, bound_port, serve
from centaurus.api.storage import SYSTEM, TENANTS, Storage, encode_for_store
from centaurus.auth.pki import CA
from centaurus.objects.kinds import must
from centaurus.objects.lifecycle import now_rfc3339
from centaurus.store.base import AlreadyExists
from centaurus.store.partitions import Partitions

log = logging.getLogger("centaurus.api")


def pki_paths(state_dir: Path) -> dict[str, Path]:
    pki = state_dir / "pki"
    return {
        "dir": pki,
        "ca": pki / "ca.crt",
        "cert": pki / "apiserver.crt",
        "key": pki / "apiserver.key",
        "tokens": pki / "tokens.csv",
    }


def ensure_pki(state_dir: Path, hosts: list[str] | None = None) -> dict[str, Path]:
    p = pki_paths(state_dir)
    ca = CA(p["dir"])
    ca.ensure_server_files(hosts or ["127.0.0.1", "localhost", "::1"])
    if not p["tokens"].exists():
        p["tokens"].touch(mode=0o600)
    return p


async def ensure_system_tenant(storage: Storage) -> None:
    store = storage.parts[0].store
    obj = {
        "apiVersion": "v1",
        "kind": "Tenant",
        "metadata": {
            "name": SYSTEM,
            "uid": "00000000-0000-0000-0000-000000000000",
            "creationTimestamp": now_rfc3339(),
            "generation": 1,
        },
        "spec": {"storageClusterId": "0"},
        "status": {"phase": "Active"},
    }
    with contextlib.suppress(AlreadyExists):
        await store.create(TENANTS.key(SYSTEM, None, SYSTEM), encode_for_store(obj))
    ns = must("", "v1", "namespaces")
    ns_doc = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "default",
            "tenant": SYSTEM,
            "uid": "00000000-0000-0000-0002-000000000000",
            "creationTimestamp": now_rfc3339(),
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }
    with contextlib.suppress(AlreadyExists):
        await store.create(ns.key(SYSTEM, None, "default"), encode_for_store(ns_doc))
    sc = must("", "v1", "storageclusters")
    for i, part in enumerate(storage.parts):
        addr = getattr(part.store, "path", None) or ",".join(getattr(part.store, "endpoints", []) or [])
        doc: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "StorageCluster",
            "metadata": {
                "name": f"partition-{i}",
                "uid": f"00000000-0000-0000-0001-{i:012d}",
                "creationTimestamp": now_rfc3339(),
                "generation": 1,
            },
            "storageClusterId": str(i),
            "serviceAddress": str(addr or part.store.name),
        }
        with contextlib.suppress(AlreadyExists):
            await store.create(sc.key(SYSTEM, None, doc["metadata"]["name"]), encode_for_store(doc))
    await storage.parts[0].sync()


async def run(args: argparse.Namespace) -> None:
    state = Path(args.state_dir).resolve()
    paths = ensure_pki(state)
    options: dict[str, Any] = {}
    if args.etcd_endpoints:  # the supervisor starts etcd: "a,b,c;d,e,f" = per partition
        options["endpoints"] = [eps.split(",") for eps in args.etcd_endpoints.split(";")]
    partitions = await Partitions.open(
        args.store, args.partitions, state / "data", options, placement="least-loaded", count_system=True
    )
    storage = Storage(partitions)
    await storage.start()
    await ensure_system_tenant(storage)
    # the watch cache holds millions of long-lived objects: move them out of the cyclic GC's
    # generations and collect rarely, or every gen-2 pass walks the whole cache (100k pods:
    # p50 latency x20, measured with perf/api_bench.py)
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 100, 1000)
    cfg = ServerConfig(
        host=args.host,
        port=args.port,
        cert_file=paths["cert"],
        key_file=paths["key"],
        ca_file=paths["ca"],
        token_file=paths["tokens"],
    )
    partitions.start_compactors(args.compact_interval)
    runner = await serve(storage, cfg)
    port = bound_port(runner)
    if args.port_file:
        Path(args.port_file).write_text(str(port))
    log.info("serving on https://%s:%d (%s x%d)", args.host, port, args.store, args.partitions)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await storage.close()
    await partitions.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="centaurus-apiserver")
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6443)
    ap.add_argument("--port-file", default="")
    ap.add_argument("--store", default="sqlite")
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument(
        "--etcd-endpoints", default="", help="per partition, ';'-separated lists of host:port,..."
    )
    ap.add_argument(
        "--compact-interval",
        type=float,
        default=300.0,
        help="seconds; compact each partition to the revision seen one interval earlier",
    )
    ap.add_argument("--log-level", default="WARNING")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
