"""Arktos Action objects: ``POST .../pods/{pod}/action`` makes the API server store an ``Action``
(``spec.nodeName``, ``spec.podAction`` with ``rebootAction``/``snapshotAction``/``restoreAction``);
the agent of that node watches its Actions, runs them on the pod's VM and writes
``status.complete`` with ``podActionStatus`` (Arktos' Action API design: the API server never
calls the node; the node reports back through the object).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from centaurus.client.rest import ApiError
from centaurus.runtimes.base import RuntimeError_

if TYPE_CHECKING:
    from centaurus.agent.pods import PodManager

log = logging.getLogger("centaurus.agent.actions")
Obj = dict[str, Any]
KINDS = {
    "rebootAction": "reboot",
    "snapshotAction": "snapshot",
    "restoreAction": "restore",
    "stopAction": "stop",
    "startAction": "start",
    "pauseAction": "pause",
    "resumeAction": "resume",
}


def action_kind(action: Obj) -> tuple[str, Obj] | None:
    pa = (action.get("spec") or {}).get("podAction") or {}
    for key, verb in KINDS.items():
        if pa.get(key) is not None:
            return verb, dict(pa[key] or {})
    return None


class ActionRunner:
    def __init__(self, mgr: PodManager) -> None:
        self.mgr = mgr
        self._running: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._watch())

    async def close(self) -> None:
        for t in [self._task, *self._jobs]:
            if t is not None:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    async def _watch(self) -> None:
        node = self.mgr.cfg.node_name
        while True:
            try:
                async for ev in self.mgr.client.list_watch(
                    "actions", tenant="all", field_selector=f"spec.nodeName={node}"
                ):
                    items = ev["items"] if ev["type"] == "SYNC" else [ev["object"]]
                    if ev["type"] == "DELETED":
                        continue
                    for a in items:
                        self._maybe_run(a)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("action watch of node %s failed: %s", node, exc)
                await asyncio.sleep(1.0)

    def _maybe_run(self, action: Obj) -> None:
        uid = str(action["metadata"].get("uid"))
        if (action.get("status") or {}).get("complete") or uid in self._running:
            return
        self._running.add(uid)
        t = asyncio.ensure_future(self._run(action))
        self._jobs.add(t)
        t.add_done_callback(self._jobs.discard)

    async def _run(self, action: Obj) -> None:
        md = action["metadata"]
        tenant, ns = str(md.get("tenant") or "system"), str(md.get("namespace") or "default")
        pa = (action.get("spec") or {}).get("podAction") or {}
        pod_name = str(pa.get("podName") or "")
        kind = action_kind(action)
        t0 = time.monotonic()
        result: Obj = {}
        ok, message = False, ""
        # the pod may have been bound a moment ago: give the pod watch a chance to deliver it
        w = None
        for _ in range(50):
            w = self.mgr.find(tenant, ns, pod_name)
            if w is not None and w.sandbox is not None:
                break
            await asyncio.sleep(0.1)
        if kind is None:
            message = "the action names no known podAction (rebootAction, snapshotAction, restoreAction, ...)"
        elif w is None or w.sandbox is None:
            message = f"pod {ns}/{pod_name} does not run on node {self.mgr.cfg.node_name}"
        else:
            verb, params = kind
            params.setdefault("wait", True)
            try:
                async with w.lock:
                    assert w.sandbox is not None
                    result = await w.runtime.action(w.sandbox, verb, params)
                ok = True
            except RuntimeError_ as exc:
                message = f"{exc.reason}: {exc.message}"
            w.kick()
        status = self._status(action, kind[0] if kind else "", ok, result, message, pa)
        status["durationSeconds"] = round(time.monotonic() - t0, 3)
        try:
            await self.mgr.client.patch(
                "actions", md["name"], {"status": status}, namespace=ns, tenant=tenant, subresource="status"
            )
        except ApiError as exc:
            log.warning("action %s/%s status: %s", ns, md["name"], exc)
        finally:
            self._running.discard(str(md.get("uid")))

    @staticmethod
    def _status(action: Obj, verb: str, ok: bool, result: Obj, message: str, pa: Obj) -> Obj:
        pst: Obj = {"podName": pa.get("podName"), "podID": pa.get("podID")}
        if verb == "reboot":
            pst["rebootStatus"] = {"rebootSuccessful": ok}
        elif verb == "snapshot":
            pst["snapshotStatus"] = (
                {
                    "snapshotID": result.get("snapshotID", ""),
                    "snapshotSizeInBytes": int(result.get("bytes") or 0),
                }
                if ok
                else {}
            )
        elif verb == "restore":
            pst["restoreStatus"] = {"restoreSuccessful": ok, "snapshotID": result.get("snapshotID", "")}
        elif verb:
            pst[f"{verb}Status"] = {"successful": ok}
        out: Obj = {"complete": True, "podActionStatus": pst, "succeeded": ok}
        if message:
            out["message"] = message
        return out
