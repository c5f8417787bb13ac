"""Builtin-target hook (entry-point group ``centaurus.node_hooks``): declares ``active-active``
when the control plane really runs two or more controller instances (the supervisor's
``controllers-<i>`` components), which is what the capability promises -- after waiting until
they have registered and unlocked their ranges, so "up" means the controllers are working."""

from __future__ import annotations

import contextlib
import time
from typing import Any

READY_TIMEOUT = 30.0


def registered(target: Any, n: int) -> bool:
    with contextlib.suppress(Exception):
        items = target.client().get_json("/api/v1/controllerinstances")["items"]
        ready = [c for c in items if c.get("controllerType") == "deployment" and not c.get("isLocked")]
        return len(ready) >= n
    return False


def node_hook(target: Any, ctx: Any) -> None:
    comps = [c for c in target.components() if c.get("kind") == "controller"]
    if len(comps) < 2:
        return
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if registered(target, len(comps)):
            target.add_capability("active-active")
            return
        time.sleep(0.1)
    raise RuntimeError(f"{len(comps)} controller instances did not register within {READY_TIMEOUT:g} s")
