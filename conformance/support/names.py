"""Unique object names: parallel runs against one target never collide, and leftovers are findable
(every name starts with ``cl-``, the project prefix)."""

from __future__ import annotations

import secrets


def unique(role: str) -> str:
    """``cl-<role>-<6 hex>``: a valid DNS-1123 label (namespaces, tenants, pods, ...)."""
    role = "".join(c if c.isalnum() else "-" for c in role.lower()).strip("-")[:40] or "x"
    return f"cl-{role}-{secrets.token_hex(3)}"
