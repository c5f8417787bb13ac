"""Bearer tokens from a static token file.

Format: the Kubernetes static token CSV with the Arktos tenant column appended:
``token,user,uid,"group1,group2",tenant``. A row without the fifth column belongs to the system
tenant, so a plain Kubernetes token file still works. Lines starting with ``#`` are comments.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Identity:
    user: str
    tenant: str
    groups: tuple[str, ...] = field(default=())
    uid: str = ""

    @property
    def is_system(self) -> bool:
        return self.tenant == "system"


def parse_token_file(text: str) -> dict[str, Identity]:
    out: dict[str, Identity] = {}
    for row in csv.reader(io.StringIO(text)):
        if not row or row[0].startswith("#") or len(row) < 2:
            continue
        token, user = row[0].strip(), row[1].strip()
        uid = row[2].strip() if len(row) > 2 else ""
        groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) > 3 else ()
        tenant = row[4].strip() if len(row) > 4 and row[4].strip() else "system"
        if token and user:
            out[token] = Identity(user, tenant, groups, uid)
    return out


class TokenFile:
    """The token file, re-read when its mtime changes (``centaurus kubeconfig`` appends rows
    while the server runs)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime = -1.0
        self._tokens: dict[str, Identity] = {}
        self._checked = 0.0

    def lookup(self, token: str) -> Identity | None:
        now = time.monotonic()
        ident = self._tokens.get(token)
        if ident is not None and now - self._checked < 1.0:
            return ident  # known token, file checked within the last second
        self._checked = now
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._tokens = {}
            return None
        if mtime != self._mtime:
            self._tokens = parse_token_file(self.path.read_text())
            self._mtime = mtime
        return self._tokens.get(token)

    def mint(self, user: str, tenant: str, groups: list[str] | None = None) -> str:
        """Return the token of (user, tenant), appending a new row when there is none."""
        existing = parse_token_file(self.path.read_text()) if self.path.exists() else {}
        for tok, ident in existing.items():
            if ident.user == user and ident.tenant == tenant:
                return tok
        token = secrets.token_hex(24)
        buf = io.StringIO()
        csv.writer(buf).writerow([token, user, f"{tenant}:{user}", ",".join(groups or []), tenant])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as fh:
            fh.write(buf.getvalue())
        return token
