"""Periodic compaction, the way kube-apiserver does it for etcd: every ``interval`` seconds,
compact to the revision seen one interval earlier. History younger than one interval therefore
always survives (a watcher that was at most ``interval`` behind can resume), and the history
tables/etcd's backend stop growing with every write. The API server starts one per partition.
"""

from __future__ import annotations

import asyncio
import logging

from centaurus.store.base import Store, StoreError

log = logging.getLogger(__name__)


async def compact_periodically(store: Store, interval: float = 300.0) -> None:
    """Run until cancelled. Store errors are logged and retried next round (a compaction
    missed is harmless: the next one covers it)."""
    previous = 0
    while True:
        await asyncio.sleep(interval)
        try:
            current = await store.revision()
            if previous:
                await store.compact(previous)
                log.debug("store %s compacted to %d", store.name, previous)
            previous = current
        except StoreError as exc:
            log.warning("store %s: compaction failed, retrying next round: %s", store.name, exc)
