"""Things several measurements of one campaign share -- labs and traffic generators -- brought up
once per campaign run and torn down when the campaign ends (also after errors): the runner
closes ``ctx.state["exit"]``, an :class:`contextlib.ExitStack`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from centaurus import plugins
from centaurus.perf.core import Context

ROOT = Path(__file__).resolve().parents[2]


def exit_stack(ctx: Context) -> contextlib.ExitStack:
    st = ctx.state.get("exit")
    if st is None:
        st = ctx.state["exit"] = contextlib.ExitStack()
    assert isinstance(st, contextlib.ExitStack)
    return st


def lab(
    ctx: Context, spec: str, dataplane: str, options: dict[str, str] | None = None, backend: str = "netns"
) -> Any:
    """A lab realising ``spec`` (path relative to the repo or absolute) with ``dataplane``,
    cached per (spec, dataplane, options); ``lab.down()`` at the end of the campaign."""
    from centaurus.labs.spec import load_spec

    opts = {"dataplane": dataplane, **(options or {})}
    key = ("lab", backend, spec, tuple(sorted(opts.items())))
    labs = ctx.state.setdefault("labs", {})
    if key not in labs:
        path = Path(spec) if Path(spec).is_absolute() else ROOT / spec
        state_dir = ctx.work_dir / f"lab-{len(labs)}"
        state_dir.mkdir(parents=True, exist_ok=True)
        handle = plugins.load("lab", backend)(state_dir=state_dir, options=opts)
        exit_stack(ctx).callback(handle.down)
        handle.up(load_spec(path))
        labs[key] = handle
        dps = ctx.environment.setdefault("dataplanes", [])
        if dataplane not in dps:
            dps.append(dataplane)
        ctx.environment.setdefault("labs", []).append(
            {
                "spec": str(spec),
                "backend": backend,
                "dataplane": dataplane,
                "id": handle.id,
                **{k: v for k, v in opts.items() if k != "dataplane"},
            }
        )
    return labs[key]


def generator(ctx: Context, name: str, options: dict[str, Any] | None = None) -> Any:
    """The traffic generator ``name`` (``centaurus.trafficgens``), checked, closed at the end."""
    gens = ctx.state.setdefault("generators", {})
    if name not in gens:
        gen = plugins.load("trafficgen", name)(options=dict(options or {}))
        gen.check()
        close = getattr(gen, "close", None)
        if close is not None:
            exit_stack(ctx).callback(close)
        gens[name] = gen
        ctx.environment.setdefault("trafficgens", []).append(name)
    return gens[name]


def target(
    ctx: Context, spec: str = "builtin", options: dict[str, str] | None = None, lab: Any = None
) -> Any:
    """The control plane under test (``centaurus.targets``: ``builtin`` or ``kubeconfig=PATH``),
    up once per campaign (with ``lab``: its node components on the lab's droplets), ``down()`` at
    its end; its components' pids are watched for CPU/memory."""
    from centaurus.harness.selection import parse_choice
    from centaurus.targets.base import TargetContext

    key = ("target", spec, tuple(sorted((options or {}).items())), id(lab))
    targets = ctx.state.setdefault("targets", {})
    if key not in targets:
        choice = parse_choice(spec, "target")
        opts = {**choice.options, **(options or {})}
        cls = plugins.load("target", choice.name)
        handle = cls(choice.arg, opts)
        state_dir = ctx.work_dir / f"target-{len(targets)}"
        state_dir.mkdir(parents=True, exist_ok=True)
        exit_stack(ctx).callback(handle.down)
        handle.up(
            TargetContext(
                state_dir=state_dir, lab=lab, profile="short" if ctx.short else "full", options=opts
            )
        )
        targets[key] = handle
        info: dict[str, Any] = {"name": choice.name}
        try:
            desc = handle.describe()
            info.update({k: v for k, v in desc.items() if k in ("store", "partitions", "version")})
        except Exception:
            pass
        ctx.environment.setdefault("targets", []).append(info)
        comps = getattr(handle, "components", None)
        if comps is not None:
            try:
                for c in comps():
                    if c.get("pid"):
                        ctx.state.setdefault("watch", {})[str(c["name"])] = int(c["pid"])
            except Exception:
                pass
    return targets[key]
