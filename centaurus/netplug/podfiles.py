"""What the node network hooks that plumb real pods (``flat``, ``mizar``) keep per pod and undo.

Each pod has a namespace ``cl-pod-<uid>``, a host-side veth and a state file
``<hook dir>/pods/<uid>.json`` (a :class:`PodNetResult`, written BEFORE anything is created, so a
restarted agent finds -- and can remove -- whatever an earlier one left). The hooks differ in how
they address a pod; the bookkeeping and the teardown are the same and live here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

from centaurus.netplug import nsops
from centaurus.netplug.base import PodNetResult
from centaurus.netplug.rtnl import Netlink, NetlinkError
from centaurus.runtimes.podstate import write_atomic

log = logging.getLogger("centaurus.netplug")


def pod_netns_name(uid: str) -> str:
    return f"cl-pod-{uid}"


def state_path(hook_dir: Path, uid: str) -> Path:
    return hook_dir / "pods" / f"{uid}.json"


def save_state(hook_dir: Path, uid: str, res: PodNetResult) -> None:
    write_atomic(state_path(hook_dir, uid), json.dumps(res.__dict__))


def load_states(hook_dir: Path) -> dict[str, PodNetResult]:
    """Every pod's state file (an unreadable one is logged and skipped)."""
    out: dict[str, PodNetResult] = {}
    for p in (hook_dir / "pods").glob("*.json"):
        try:
            out[p.stem] = PodNetResult(**json.loads(p.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            log.warning("unreadable pod network state %s: %s", p, exc)
    return out


async def read_state(path: Path | None) -> PodNetResult | None:
    """One pod's state file, None when missing or unreadable (teardown of an unknown pod)."""
    if path is None:
        return None
    with contextlib.suppress(OSError, ValueError, TypeError):
        return PodNetResult(**json.loads(await asyncio.to_thread(path.read_text)))
    return None


async def _run(worker: nsops.NsWorker | None, fn: Callable[[], None]) -> None:
    if worker is not None:
        await worker.call(fn)
    else:
        await asyncio.to_thread(fn)


async def unplumb(
    worker: nsops.NsWorker | None, nl: Netlink | None, res: PodNetResult, path: Path | None
) -> None:
    """Remove the pod's host veth (through ``nl``, bound to the node's namespace), its namespace
    and its state file; each part may already be gone."""
    host_if, netns = str(res.extra.get("hostIf") or ""), str(res.extra.get("netns") or "")

    def work() -> None:
        if nl is not None and host_if:
            with contextlib.suppress(NetlinkError):
                nl.link_del(host_if)
        if netns:
            nsops.delete_netns(netns)
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    await _run(worker, work)


async def close_worker(worker: nsops.NsWorker | None, nl: Netlink | None) -> None:
    """Close the node-namespace netlink socket on its own thread, then the thread."""
    if worker is not None:
        if nl is not None:
            await worker.call(nl.close)
        worker.close()
