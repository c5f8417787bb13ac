"""Parse the user's choice of target and lab (``--target kubeconfig=PATH``) into plug-ins."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from centaurus.plugins import PluginError, available, load


@dataclass
class Choice:
    name: str
    arg: str | None = None
    options: dict[str, str] = field(default_factory=dict)


def parse_choice(text: str, axis: str) -> Choice:
    """``name``, ``name=arg`` or ``name=arg,key=value,...`` / ``name,key=value``."""
    if not text or not text.strip():
        raise PluginError(f"empty --{axis}")
    head, *rest = text.split(",")
    name, _, arg = head.partition("=")
    opts: dict[str, str] = {}
    for item in rest:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise PluginError(f"--{axis} {text!r}: option {item!r} is not key=value")
        opts[k.strip()] = v.strip()
    if name not in available(axis):
        known = ", ".join(sorted(available(axis))) or "none registered"
        raise PluginError(f"unknown {axis} {name!r} (available: {known})")
    return Choice(name.strip(), arg.strip() or None, opts)


def make_target(choice: Choice) -> Any:
    cls = load("target", choice.name)
    return cls(arg=choice.arg, options=choice.options)


def make_lab(choice: Choice, state_dir: Path) -> Any:
    cls = load("lab", choice.name)
    return cls(state_dir=state_dir, options=choice.options)
