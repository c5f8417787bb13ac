"""An object's pipeline recorded on the object itself (kopf's "progress in status").

A step runs while the object is in its phase and answers one of:

* :func:`advance` -- done: move to the next phase, merging status (and, where a step decides
  something users see, spec/metadata) in ONE write. Side effects of the next step only happen
  after that write succeeded, so a crash between the two re-runs an idempotent step, never
  skips one;
* :func:`wait` -- not possible yet (a dependency is not provisioned, a daemon does not answer):
  the reason is recorded (once) and the step runs again after ``delay`` or when a related
  object changes;
* :func:`fail` -- impossible as specified: phase ``Failed`` with the reason; the pipeline runs
  again from ``Init`` when the spec changes.

Every write also bumps ``status.seq``; an operator that reads its own older write back from a
lagging cache sees a smaller seq and skips it (the watch event of the newer write follows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Obj = dict[str, Any]


@dataclass
class Outcome:
    kind: Literal["advance", "wait", "fail"]
    phase: str = ""
    status: Obj = field(default_factory=dict)
    spec: Obj = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    delay: float = 1.0


def advance(
    phase: str, status: Obj | None = None, *, spec: Obj | None = None, labels: dict[str, str] | None = None
) -> Outcome:
    return Outcome(
        "advance", phase=phase, status=dict(status or {}), spec=dict(spec or {}), labels=dict(labels or {})
    )


def wait(reason: str, delay: float = 1.0) -> Outcome:
    return Outcome("wait", reason=reason, delay=delay)


def fail(reason: str) -> Outcome:
    return Outcome("fail", reason=reason)
