"""Target: any running Kubernetes- or Arktos-compatible cluster reached through a kubeconfig.

Nothing is started or stopped. Capabilities are discovered from the API server itself, so a
plain Kubernetes cluster reports the Arktos-only requirements as ``not-applicable``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from centaurus.client.kubeconfig import KubeconfigError, load
from centaurus.client.rest import ApiClient, ApiError
from centaurus.targets.base import TargetContext, TargetError


class KubeconfigTarget:
    name = "kubeconfig"

    def __init__(self, arg: str | None = None, options: Mapping[str, str] | None = None) -> None:
        if not arg:
            raise TargetError("--target kubeconfig=PATH needs the path of a kubeconfig file")
        self.path = Path(arg).expanduser().resolve()
        self.options = dict(options or {})
        self._caps: frozenset[str] | None = None
        self._client: ApiClient | None = None

    def up(self, ctx: TargetContext) -> None:
        try:
            creds = load(self.path, self.options.get("context"))
        except KubeconfigError as exc:
            raise TargetError(str(exc)) from None
        self._client = ApiClient(creds)
        try:
            self._client.get_json("/version")
        except (ApiError, OSError, Exception) as exc:  # httpx errors are not OSError
            raise TargetError(f"cannot reach {creds.server}: {exc}") from None

    def down(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _discover(self) -> frozenset[str]:
        assert self._client is not None, "target is not up"
        caps = {"api"}
        core = self._client.get_json("/api/v1")
        names = {r["name"] for r in core.get("resources", [])}
        if "tenants" in names:
            caps |= {"tenants", "tenant-paths"}
        if "nodes" in names:
            with contextlib.suppress(ApiError):
                if self._client.list("nodes", limit=1).get("items"):
                    caps.add("nodes")
        groups = {g["name"] for g in self._client.get_json("/apis").get("groups", [])}
        if "rbac.authorization.k8s.io" in groups:
            caps.add("rbac")
        if "arktos.futurewei.com" in groups:
            caps.add("networks")
        if "mizar.com" in groups or "mizar.centaurus.io" in groups:
            caps.add("mizar")
        # Fornax serves Mission and EdgeCluster as edgeclusters.kubeedge.io/v1 (cloud/pkg/apis/edgeclusters).
        fornax = {"edgeclusters.kubeedge.io", "edge.fornax-serverless.centaurusinfra.io",
                  "fornax.centaurus.io"}
        if groups & fornax:
            caps.add("edge")
        return frozenset(caps)

    def capabilities(self) -> frozenset[str]:
        if self._caps is None:
            self._caps = self._discover()
        return self._caps

    def kubeconfig(self, tenant: str = "system", user: str = "admin") -> Path:
        if tenant != "system" or user != "admin":
            raise TargetError("a kubeconfig target offers only the credentials of its kubeconfig")
        return self.path

    def client(self, tenant: str = "system", user: str = "admin") -> ApiClient:
        return ApiClient(load(self.kubeconfig(tenant, user), self.options.get("context")))

    def ensure_tenant(self, name: str) -> None:
        raise TargetError("a kubeconfig target cannot mint tenant credentials")

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"name": self.name, "kubeconfig": str(self.path)}
        if self._client is not None:
            info["server"] = self._client.creds.server
            with contextlib.suppress(Exception):
                info["version"] = self._client.get_json("/version").get("gitVersion")
            with contextlib.suppress(Exception):
                info["capabilities"] = sorted(self.capabilities())
        return info
