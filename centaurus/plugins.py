"""Entry-point registry for the plug-in axes.

The core never imports an implementation directly: it asks for ``(group, name)`` and the
installed distribution's entry points answer, the way pytest finds its plugins. A name that is
not registered, or whose module is not built yet, is a clear :class:`PluginError`, never a
traceback.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

AXES: dict[str, str] = {
    "target": "centaurus.targets",
    "store": "centaurus.stores",
    "dataplane": "centaurus.dataplanes",
    "runtime": "centaurus.runtimes",
    "lab": "centaurus.labs",
    "trafficgen": "centaurus.trafficgens",
}


class PluginError(LookupError):
    """A requested implementation is unknown or cannot be loaded."""


def _group(axis: str) -> str:
    try:
        return AXES[axis]
    except KeyError:
        raise PluginError(f"unknown plug-in axis {axis!r}; axes: {', '.join(sorted(AXES))}") from None


def available(axis: str) -> dict[str, EntryPoint]:
    """Registered implementations of one axis, by name."""
    return {ep.name: ep for ep in entry_points(group=_group(axis))}


def load(axis: str, name: str) -> Any:
    """Return the class (or factory) registered as ``name`` on ``axis``."""
    eps = available(axis)
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none registered"
        raise PluginError(f"unknown {axis} {name!r} (available: {known})")
    try:
        return eps[name].load()
    except ImportError as exc:
        raise PluginError(f"{axis} {name!r} is registered but cannot be loaded: {exc}") from exc
