"""Failure injection through the target, for availability and fault-domain requirements.

A platform team proves "survives the loss of an AZ" by taking the AZ away. The builtin target
offers that as an optional hook (capability ``fault-injection``, see CONTRACTS.md "Conformance
hooks"):

* ``target.components() -> list[dict]``: every process of the deployment with at least
  ``name``, ``kind`` (``store``, ``apiserver``, ``controller``, ``scheduler``, ``agent``,
  ``network-operator``, ``transitd``, ``gateway``, ``edge-link``, ...), ``zone``, ``partition``
  and, for edge clusters, ``cluster`` (each None when it does not apply);
* ``target.stop_component(name)`` (hard stop, like a machine or AZ going away) and
  ``target.start_component(name)``.

``target.deploy_control_plane(zones={"az1": 2, "az2": 1}, store="etcd")`` (capability ``ha``)
brings up a separate control plane with that many store members per zone and returns a handle
with ``client()``, ``components()``, ``stop_component``, ``start_component`` and ``down()``, so
HA tests never disturb the target the other tests use.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def components(owner: Any, **match: Any) -> list[dict[str, Any]]:
    """Components of ``owner`` (a target or a deployed control plane) whose fields equal ``match``."""
    found: list[dict[str, Any]] = list(owner.components())
    return [c for c in found if all(c.get(k) == v for k, v in match.items())]


def zones(owner: Any, kind: str | None = None) -> list[str]:
    return sorted({str(c["zone"]) for c in owner.components()
                   if c.get("zone") and (kind is None or c.get("kind") == kind)})


@contextlib.contextmanager
def stopped(owner: Any, names: list[str]) -> Iterator[list[str]]:
    """Stop the named components for the duration of the block; always start them again."""
    assert names, "nothing to stop"
    done: list[str] = []
    try:
        for n in names:
            owner.stop_component(n)
            done.append(n)
        yield names
    finally:
        for n in reversed(done):
            with contextlib.suppress(Exception):
                owner.start_component(n)


def zone_members(owner: Any, zone: str) -> list[str]:
    return [c["name"] for c in owner.components() if c.get("zone") == zone]
