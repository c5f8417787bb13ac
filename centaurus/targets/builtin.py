"""Target: this project's own control plane, started by the harness (``centaurus up``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from centaurus.client.rest import ApiClient
from centaurus.targets.base import TargetContext, TargetError

NOT_BUILT = "the builtin control plane is not built yet (issue: Control plane)"


class BuiltinTarget:
    name = "builtin"

    def __init__(self, arg: str | None = None, options: Mapping[str, str] | None = None) -> None:
        self.arg = arg
        self.options = dict(options or {})

    def up(self, ctx: TargetContext) -> None:
        raise TargetError(NOT_BUILT)

    def down(self) -> None:
        return None

    def capabilities(self) -> frozenset[str]:
        return frozenset()

    def kubeconfig(self, tenant: str = "system", user: str = "admin") -> Path:
        raise TargetError(NOT_BUILT)

    def client(self, tenant: str = "system", user: str = "admin") -> ApiClient:
        raise TargetError(NOT_BUILT)

    def ensure_tenant(self, name: str) -> None:
        raise TargetError(NOT_BUILT)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "state": "not built"}
