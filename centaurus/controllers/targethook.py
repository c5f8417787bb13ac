"""Builtin-target hook (entry-point group ``centaurus.node_hooks``): declares ``active-active``
when the control plane really runs two or more controller instances (the supervisor's
``controllers-<i>`` components), which is what the capability promises."""

from __future__ import annotations

from typing import Any


def node_hook(target: Any, ctx: Any) -> None:
    comps = [c for c in target.components() if c.get("kind") == "controller"]
    if len(comps) >= 2:
        target.add_capability("active-active")
