"""Credentials for a (tenant, user): a token row in the token file or a client certificate
signed by the project CA, written into a kubeconfig.

Who is an admin: user ``admin`` of any tenant is given group ``system:masters``, which RBAC
treats as that tenant's super-user (tenant scope still applies: a tenant admin is an admin of
its own tenant only). Other users get no groups and need RoleBindings.
"""

from __future__ import annotations

from pathlib import Path

from centaurus.api.main import ensure_pki
from centaurus.auth.pki import CA
from centaurus.auth.tokens import TokenFile
from centaurus.client.kubeconfig import dump


def default_groups(user: str) -> list[str]:
    return ["system:masters"] if user == "admin" else []


def mint_kubeconfig(
    state_dir: Path,
    server: str,
    tenant: str,
    user: str,
    out: Path,
    method: str = "both",
    groups: list[str] | None = None,
) -> Path:
    """``method``: ``token``, ``cert`` or ``both`` (a token and a client certificate in one
    kubeconfig: either authenticates alone; clients send the token)."""
    paths = ensure_pki(state_dir)
    ca = CA(paths["dir"])
    grp = default_groups(user) if groups is None else groups
    token = TokenFile(paths["tokens"]).mint(user, tenant, grp) if method in ("token", "both") else None
    pair = ca.client_cert(user, tenant, grp) if method in ("cert", "both") else None
    return dump(
        out,
        server=server,
        ca_pem=ca.cert_pem,
        user=user,
        token=token,
        cert_pem=pair.cert_pem if pair else None,
        key_pem=pair.key_pem if pair else None,
        tenant=tenant,
    )
