"""Read and write kubeconfig files (only the fields Centaurus and kubectl need)."""

from __future__ import annotations

import base64
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class KubeconfigError(ValueError):
    """The kubeconfig is missing, unreadable, or lacks what a connection needs."""


@dataclass
class Credentials:
    """Everything needed to open a connection as one user."""

    server: str
    ca_file: str | None = None
    insecure: bool = False
    token: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    tenant: str | None = None
    user: str | None = None


def _materialise(data_b64: str, suffix: str, cache_dir: Path) -> str:
    """kubeconfigs may embed PEM data; ssl needs files. Write them once, named by content."""
    raw = base64.b64decode(data_b64)
    import hashlib

    path = cache_dir / f"{hashlib.sha256(raw).hexdigest()[:16]}{suffix}"
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    return str(path)


def load(path: str | os.PathLike[str], context: str | None = None) -> Credentials:
    p = Path(path)
    try:
        doc: dict[str, Any] = yaml.safe_load(p.read_text()) or {}
    except OSError as exc:
        raise KubeconfigError(f"cannot read kubeconfig {p}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"kubeconfig {p} is not valid YAML: {exc}") from None
    ctx_name = str(context or doc.get("current-context") or "")
    ctxs = {c["name"]: c.get("context", {}) for c in doc.get("contexts") or []}
    if ctx_name not in ctxs:
        raise KubeconfigError(f"kubeconfig {p}: context {ctx_name!r} not found")
    ctx = ctxs[ctx_name]
    clusters = {c["name"]: c.get("cluster", {}) for c in doc.get("clusters") or []}
    users = {u["name"]: u.get("user", {}) for u in doc.get("users") or []}
    cluster = clusters.get(ctx.get("cluster"))
    if not cluster or "server" not in cluster:
        raise KubeconfigError(f"kubeconfig {p}: cluster of context {ctx_name!r} has no server")
    user = users.get(ctx.get("user"), {})
    cache = p.parent / ".kubeconfig-data"

    def pick(file_key: str, data_key: str, suffix: str, src: dict[str, Any]) -> str | None:
        if src.get(file_key):
            f = Path(src[file_key])
            return str(f if f.is_absolute() else p.parent / f)
        if src.get(data_key):
            return _materialise(src[data_key], suffix, cache)
        return None

    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(user["tokenFile"]).read_text().strip()
    return Credentials(
        server=cluster["server"].rstrip("/"),
        ca_file=pick("certificate-authority", "certificate-authority-data", ".crt", cluster),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        token=token,
        cert_file=pick("client-certificate", "client-certificate-data", ".crt", user),
        key_file=pick("client-key", "client-key-data", ".key", user),
        # kubectl rejects nothing in a context but keeps no tenant field either: the tenant rides
        # in the context name, "<user>@<tenant>", which is what ``dump`` writes.
        tenant=ctx_name.split("@", 1)[1] if "@" in ctx_name else None,
        user=ctx.get("user"),
    )


def dump(
    path: str | os.PathLike[str],
    *,
    server: str,
    ca_pem: bytes | None,
    user: str,
    token: str | None = None,
    cert_pem: bytes | None = None,
    key_pem: bytes | None = None,
    tenant: str | None = None,
    cluster_name: str = "centaurus",
) -> Path:
    """Write a self-contained kubeconfig (embedded PEM data) atomically, mode 0600."""
    cluster: dict[str, Any] = {"server": server}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    u: dict[str, Any] = {}
    if token:
        u["token"] = token
    if cert_pem and key_pem:
        u["client-certificate-data"] = base64.b64encode(cert_pem).decode()
        u["client-key-data"] = base64.b64encode(key_pem).decode()
    ctx_name = f"{user}@{tenant or 'system'}"
    ctx: dict[str, Any] = {"cluster": cluster_name, "user": ctx_name}
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": cluster}],
        "users": [{"name": ctx_name, "user": u}],
        "contexts": [{"name": ctx_name, "context": ctx}],
        "current-context": ctx_name,
    }
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(doc, fh, sort_keys=False)
    os.chmod(tmp, 0o600)
    os.replace(tmp, out)
    return out
