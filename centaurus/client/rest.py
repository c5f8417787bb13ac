"""Synchronous Kubernetes/Arktos REST client used by tests, the CLI and the harness.

Deliberately thin: paths, authentication, Status errors and watch streams. It must never hide
what the server did, because conformance tests assert on exactly that.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from centaurus.client.kubeconfig import Credentials
from centaurus.client.kubeconfig import load as load_kubeconfig

#: group/version of every built-in kind the suite uses; CRDs are addressed explicitly.
GROUP_VERSIONS: dict[str, str] = {
    "namespaces": "v1", "pods": "v1", "nodes": "v1", "events": "v1", "configmaps": "v1",
    "secrets": "v1", "serviceaccounts": "v1", "services": "v1", "resourcequotas": "v1",
    "tenants": "v1", "endpoints": "v1",
    "deployments": "apps/v1", "replicasets": "apps/v1",
    "leases": "coordination.k8s.io/v1",
    "roles": "rbac.authorization.k8s.io/v1", "rolebindings": "rbac.authorization.k8s.io/v1",
    "clusterroles": "rbac.authorization.k8s.io/v1",
    "clusterrolebindings": "rbac.authorization.k8s.io/v1",
    "customresourcedefinitions": "apiextensions.k8s.io/v1",
    "networks": "arktos.futurewei.com/v1",
}
CLUSTER_SCOPED = {"namespaces", "nodes", "tenants", "clusterroles", "clusterrolebindings",
                  "customresourcedefinitions", "storageclusters", "controllerinstances"}


class ApiError(Exception):
    """A non-2xx answer; ``status`` is the decoded Kubernetes Status (or a synthesized one)."""

    def __init__(self, code: int, status: dict[str, Any]) -> None:
        self.code = code
        self.status = status
        self.reason = status.get("reason", "")
        super().__init__(f"{code} {self.reason}: {status.get('message', '')}")


def resource_path(
    resource: str,
    *,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
    tenant: str | None = None,
    group_version: str | None = None,
) -> str:
    """Build a request path. ``tenant`` selects the Arktos tenant-scoped form."""
    gv = group_version or GROUP_VERSIONS.get(resource, "v1")
    base = "/api/v1" if gv == "v1" else f"/apis/{gv}"
    parts = [base]
    if tenant and resource != "tenants":
        parts.append(f"tenants/{tenant}")
    if namespace is not None and resource not in CLUSTER_SCOPED:
        parts.append(f"namespaces/{namespace}")
    parts.append(resource)
    if name is not None:
        parts.append(name)
    if subresource:
        parts.append(subresource)
    return "/".join(parts)


@dataclass
class ApiClient:
    creds: Credentials
    timeout: float = 30.0

    def __post_init__(self) -> None:
        # one SSLContext carrying CA and client certificate: httpx >= 0.28 ignores ``cert=`` when
        # ``verify`` is a path (the client certificate was never sent)
        verify: Any = False
        if not self.creds.insecure:
            verify = ssl.create_default_context(cafile=self.creds.ca_file) if self.creds.ca_file \
                else ssl.create_default_context()
            if self.creds.cert_file and self.creds.key_file:
                verify.load_cert_chain(self.creds.cert_file, self.creds.key_file)
        headers = {"Accept": "application/json", "User-Agent": "centaurus-lab/0.1"}
        if self.creds.token:
            headers["Authorization"] = f"Bearer {self.creds.token}"
        self._http = httpx.Client(
            base_url=self.creds.server, verify=verify, headers=headers, timeout=self.timeout
        )

    @classmethod
    def from_kubeconfig(cls, path: str, context: str | None = None) -> ApiClient:
        return cls(load_kubeconfig(path, context))

    @property
    def tenant(self) -> str | None:
        return self.creds.tenant

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- raw requests -------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        content_type: str | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> httpx.Response:
        hdrs = dict(headers or {})
        data = content
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", content_type or "application/json")
        elif content_type:
            hdrs["Content-Type"] = content_type
        resp = self._http.request(method, path, content=data, params=params, headers=hdrs)
        if check and resp.status_code >= 400:
            raise ApiError(resp.status_code, _status_of(resp))
        return resp

    def get_json(self, path: str, **params: Any) -> dict[str, Any]:
        return self.request("GET", path, params=params or None).json()  # type: ignore[no-any-return]

    # ---- object verbs ----------------------------------------------------------------------
    def create(self, resource: str, obj: dict[str, Any], *, namespace: str | None = None,
               tenant: str | None = None, group_version: str | None = None) -> dict[str, Any]:
        ns = namespace if namespace is not None else obj.get("metadata", {}).get("namespace")
        path = resource_path(resource, namespace=ns, tenant=tenant, group_version=group_version)
        return self.request("POST", path, body=obj).json()  # type: ignore[no-any-return]

    def get(self, resource: str, name: str, *, namespace: str | None = None,
            tenant: str | None = None, group_version: str | None = None) -> dict[str, Any]:
        path = resource_path(resource, namespace=namespace, name=name, tenant=tenant,
                             group_version=group_version)
        return self.get_json(path)

    def list(self, resource: str, *, namespace: str | None = None, tenant: str | None = None,
             group_version: str | None = None, **params: Any) -> dict[str, Any]:
        path = resource_path(resource, namespace=namespace, tenant=tenant, group_version=group_version)
        return self.get_json(path, **params)

    def replace(self, resource: str, obj: dict[str, Any], *, tenant: str | None = None,
                group_version: str | None = None, subresource: str | None = None) -> dict[str, Any]:
        md = obj["metadata"]
        path = resource_path(resource, namespace=md.get("namespace"), name=md["name"],
                             subresource=subresource, tenant=tenant, group_version=group_version)
        return self.request("PUT", path, body=obj).json()  # type: ignore[no-any-return]

    def patch(self, resource: str, name: str, patch: Any, *, namespace: str | None = None,
              kind: str = "merge", tenant: str | None = None, group_version: str | None = None,
              subresource: str | None = None) -> dict[str, Any]:
        ctype = {
            "merge": "application/merge-patch+json",
            "json": "application/json-patch+json",
            "strategic": "application/strategic-merge-patch+json",
        }[kind]
        path = resource_path(resource, namespace=namespace, name=name, subresource=subresource,
                             tenant=tenant, group_version=group_version)
        return self.request("PATCH", path, body=patch, content_type=ctype).json()  # type: ignore[no-any-return]

    def delete(self, resource: str, name: str, *, namespace: str | None = None,
               tenant: str | None = None, group_version: str | None = None,
               propagation: str | None = None, check: bool = True) -> httpx.Response:
        path = resource_path(resource, namespace=namespace, name=name, tenant=tenant,
                             group_version=group_version)
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation} \
            if propagation else None
        return self.request("DELETE", path, body=body, check=check)

    def watch(self, resource: str, *, namespace: str | None = None, tenant: str | None = None,
              group_version: str | None = None, resource_version: str | None = None,
              timeout_seconds: int = 30, **params: Any) -> Iterator[dict[str, Any]]:
        """Yield watch events ``{"type", "object"}`` until the server ends the stream."""
        path = resource_path(resource, namespace=namespace, tenant=tenant, group_version=group_version)
        q: dict[str, Any] = {"watch": "true", "timeoutSeconds": timeout_seconds, **params}
        if resource_version is not None:
            q["resourceVersion"] = resource_version
        with self._http.stream("GET", path, params=q, timeout=timeout_seconds + 10) as resp:
            if resp.status_code >= 400:
                resp.read()
                raise ApiError(resp.status_code, _status_of(resp))
            for line in resp.iter_lines():
                if line.strip():
                    yield json.loads(line)


def _status_of(resp: httpx.Response) -> dict[str, Any]:
    try:
        doc = resp.json()
        if isinstance(doc, dict) and doc.get("kind") == "Status":
            return doc
    except ValueError:
        pass
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": resp.status_code,
            "reason": "Unknown", "message": resp.text[:500]}
