"""``python -m centaurus.controllers --kubeconfig K [--instance NAME] [--only a,b] [--set k=v]``:
run one controller instance until SIGTERM (then it leaves the ring, so its share moves at once)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

import uvloop

from centaurus.client.aio import AsyncClient
from centaurus.controllers.manager import Manager


async def _run(args: argparse.Namespace) -> None:
    api = AsyncClient.from_kubeconfig(args.kubeconfig)
    options = dict(kv.split("=", 1) for kv in args.set)
    mgr = Manager(
        api,
        instance=args.instance or None,
        only=[n for n in args.only.split(",") if n] or None,
        options=options,
        sharded=not args.standalone,
        lease_duration=args.lease_duration,
        renew_every=args.renew_every,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await mgr.start()
    waiter = asyncio.create_task(stop.wait())
    runner = asyncio.create_task(mgr.wait())
    done, _ = await asyncio.wait([waiter, runner], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    await mgr.stop(leave=True)
    await api.close()
    if runner in done and runner.exception() is not None:
        raise SystemExit(str(runner.exception()))


def main() -> None:
    ap = argparse.ArgumentParser(prog="centaurus-controllers")
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--instance", default="", help="instance name (default: controllers-<random>)")
    ap.add_argument("--only", default="", help="comma-separated controllers (default: all)")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="K=V",
        help="controller option, e.g. pod_eviction_timeout=10 node_grace=0",
    )
    ap.add_argument("--standalone", action="store_true", help="own everything (no membership)")
    ap.add_argument("--lease-duration", type=float, default=5.0)
    ap.add_argument("--renew-every", type=float, default=1.0)
    ap.add_argument("--log-level", default="WARNING")
    args = ap.parse_args()
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    uvloop.install()
    asyncio.run(_run(args))


main()
