"""``python -m centaurus.controllers --kubeconfig K [--only a,b]``: run controllers until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from centaurus.client.aio import AsyncClient
from centaurus.controllers import registry


async def _run(args: argparse.Namespace) -> None:
    api = AsyncClient.from_kubeconfig(args.kubeconfig)
    names = [n for n in (args.only.split(",") if args.only else registry())]
    tasks = [asyncio.create_task(registry()[n](api).run(), name=n) for n in names]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*tasks, waiter], return_when=asyncio.FIRST_COMPLETED)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await api.close()
    for t in done:
        if t is not waiter and t.exception():
            raise SystemExit(f"controller {t.get_name()} failed: {t.exception()}")


def main() -> None:
    ap = argparse.ArgumentParser(prog="centaurus-controllers")
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--only", default="")
    ap.add_argument("--instance", default="controllers-0", help="this instance's name (active-active)")
    ap.add_argument("--log-level", default="WARNING")
    args = ap.parse_args()
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(_run(args))


main()
