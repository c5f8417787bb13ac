"""Who is asking, which tenant the request is in, and whether RBAC lets it through.

Order matters and is the tenancy guarantee: authenticate -> tenant scope -> RBAC. A non-system
tenant can only ever address its own tenant: an explicit other tenant in the path is 403 before
anything is looked up, and the short path always means the credential's tenant, so another
tenant's objects are simply not there (404, absent from lists and watches).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from centaurus.auth import rbac
from centaurus.auth.pki import identity_from_peercert
from centaurus.auth.tokens import Identity, TokenFile
from centaurus.objects.kinds import Kind
from centaurus.objects.status import ApiStatusError, forbidden

if TYPE_CHECKING:
    from centaurus.api.storage import Storage

SYSTEM = "system"
_READ = {"get", "list", "watch"}


class Authenticator:
    def __init__(self, tokens: TokenFile | None) -> None:
        self.tokens = tokens

    def authenticate(self, request: web.Request) -> Identity:
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
            ident = self.tokens.lookup(token) if self.tokens else None
            if ident is None:
                raise ApiStatusError(401, "Unauthorized", "Unauthorized")
            return ident
        transport = request.transport
        ssl_obj = transport.get_extra_info("ssl_object") if transport else None
        peer = ssl_obj.getpeercert() if ssl_obj is not None else None
        found = identity_from_peercert(peer)
        if found is None:
            raise ApiStatusError(401, "Unauthorized", "Unauthorized")
        user, tenant, groups = found
        return Identity(user, tenant, tuple(groups))


def request_tenant(ident: Identity, path_tenant: str | None, storage: Storage) -> str:
    """The tenant a request acts in, or 403 when the credential may not address it."""
    if not ident.is_system:
        t = storage.tenant_object(ident.tenant)
        if t is None:
            raise ApiStatusError(403, f'tenant "{ident.tenant}" does not exist', "Forbidden")
        if path_tenant is not None and path_tenant != ident.tenant:
            raise ApiStatusError(
                403,
                f'user "{ident.user}" of tenant "{ident.tenant}" cannot access tenant "{path_tenant}"',
                "Forbidden",
            )
        return ident.tenant
    return path_tenant or SYSTEM


def check_cluster_scope(ident: Identity, kind: Kind, verb: str, name: str | None) -> None:
    """Truly global kinds (Tenant, Node) belong to the system tenant; others may only read
    nodes and their own Tenant object."""
    if ident.is_system or kind.scope != "Cluster":
        return
    if kind.kind == "Tenant" and verb == "get" and name == ident.tenant:
        return
    if kind.kind == "Node" and verb in _READ:
        return
    raise forbidden(
        ident.user, verb, kind.plural, kind.group, None, f"{kind.plural} are managed by the system tenant"
    )


def authorize(
    ident: Identity,
    storage: Storage,
    tenant: str,
    kind: Kind,
    verb: str,
    subresource: str,
    namespace: str | None,
    name: str | None,
) -> None:
    from centaurus.objects import kinds as K

    if rbac.MASTERS in ident.groups:
        return
    req = rbac.Request(verb, kind.group, kind.plural, subresource, namespace, name)
    kr = K.builtin("rbac.authorization.k8s.io", "v1", "roles")
    kb = K.builtin("rbac.authorization.k8s.io", "v1", "rolebindings")
    kcr = K.builtin("rbac.authorization.k8s.io", "v1", "clusterroles")
    kcb = K.builtin("rbac.authorization.k8s.io", "v1", "clusterrolebindings")
    assert kr and kb and kcr and kcb
    ok = rbac.allowed(
        ident,
        req,
        roles=[e.obj for e in storage.cached(kr, tenant, namespace)] if namespace else [],
        bindings=[e.obj for e in storage.cached(kb, tenant, namespace)] if namespace else [],
        cluster_roles=[e.obj for e in storage.cached(kcr, tenant, None)],
        cluster_bindings=[e.obj for e in storage.cached(kcb, tenant, None)],
    )
    if not ok:
        raise forbidden(ident.user, verb, kind.plural, kind.group, namespace)
