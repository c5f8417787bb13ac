"""Parse the user's choice of target and lab (``--target kubeconfig=PATH``) into plug-ins.

Two kinds of "cannot load" are told apart on purpose:

* a name nobody ever planned (a typo: ``--lab netsn``) is a usage error, reported in one line
  before anything runs;
* a name the design names (``docs/ARCHITECTURE.md``: ``netns``, ``vagrant``, ``ssh``, ...) whose
  implementation is not registered yet is accepted here; bringing it up fails with "not built
  yet", so every test that needs it errors and the report lists its requirements ``not-met``.
  A run never dies before writing its report just because a part is still missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from centaurus.plugins import AXES, PluginError, available, load

#: Implementations the design plans per axis (DESIGN.md "Pluggable axes"). A planned name that is
#: not registered yet is "not built", not "unknown".
PLANNED: dict[str, frozenset[str]] = {
    "target": frozenset({"builtin", "kubeconfig"}),
    "store": frozenset({"sqlite", "etcd"}),
    "dataplane": frozenset({"mizar-xdp", "bridge-vxlan"}),
    "runtime": frozenset({"process", "vm", "hollow"}),
    "lab": frozenset({"netns", "vagrant", "ssh"}),
    "trafficgen": frozenset({"xdp-live", "trex", "scapy"}),
}
assert PLANNED.keys() == AXES.keys()


class NotBuilt(PluginError):
    """A planned implementation has no registered entry point yet."""


@dataclass
class Choice:
    name: str
    arg: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    axis: str = ""


def _registered(axis: str) -> set[str]:
    return set(available(axis))


def known(axis: str) -> list[str]:
    """Every name a user may give on ``axis``: registered ones plus planned ones."""
    return sorted(_registered(axis) | PLANNED.get(axis, frozenset()))


def parse_choice(text: str, axis: str) -> Choice:
    """``name``, ``name=arg`` or ``name=arg,key=value,...`` / ``name,key=value``.

    Raises :class:`PluginError` (one line) for an empty text, a malformed option or a name that is
    neither registered nor planned.
    """
    if not text or not text.strip():
        raise PluginError(f"empty --{axis}")
    head, *rest = text.split(",")
    name, _, arg = head.partition("=")
    name = name.strip()
    opts: dict[str, str] = {}
    for item in rest:
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            raise PluginError(f"--{axis} {text!r}: option {item!r} is not key=value")
        opts[k.strip()] = v.strip()
    if name not in _registered(axis) and name not in PLANNED.get(axis, frozenset()):
        raise PluginError(f"unknown {axis} {name!r} (available: {', '.join(known(axis))})")
    return Choice(name, arg.strip() or None, opts, axis)


def _load(axis: str, name: str) -> Any:
    if name not in _registered(axis) and name in PLANNED.get(axis, frozenset()):
        raise NotBuilt(f"{axis} {name!r} is not built yet (no implementation registered under "
                       f"{AXES[axis]!r})")
    return load(axis, name)


def make_target(choice: Choice) -> Any:
    cls = _load("target", choice.name)
    return cls(arg=choice.arg, options=choice.options)


def make_lab(choice: Choice, state_dir: Path) -> Any:
    cls = _load("lab", choice.name)
    return cls(state_dir=state_dir, options=choice.options)
