"""``python -m centaurus.mizar --kubeconfig K [--instance NAME]``: one management-plane operator
instance until SIGTERM (then it leaves the ring: its VPCs move to the other instances at once);
SIGKILL is the crash the pipelines resume from."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from centaurus.client.aio import AsyncClient
from centaurus.mizar.manager import OperatorManager


async def _run(args: argparse.Namespace) -> None:
    api = AsyncClient.from_kubeconfig(args.kubeconfig)
    mgr = OperatorManager(
        api,
        instance=args.instance or None,
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
    ap = argparse.ArgumentParser(prog="centaurus-mizar", description="Mizar management-plane operators")
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--instance", default="", help="instance name (default: network-operator-<random>)")
    ap.add_argument("--standalone", action="store_true", help="own every VPC (no hash ring)")
    ap.add_argument("--lease-duration", type=float, default=5.0)
    ap.add_argument("--renew-every", type=float, default=1.0)
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args()
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_run(args))


main()
