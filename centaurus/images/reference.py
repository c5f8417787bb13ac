"""Parse the image names users write (``busybox``, ``nginx:1.25``, ``docker.io/library/busybox:latest``).

The grammar is Docker's reference grammar, reduced to what name resolution needs: an optional
registry domain (first component containing ``.`` or ``:``, or ``localhost``), a repository path,
an optional tag and an optional digest. Names without a domain belong to ``docker.io`` and
single-component Docker Hub names live under ``library/`` -- exactly how ``docker pull busybox``
normalises, so ``busybox`` and ``docker.io/library/busybox:latest`` are the same repository.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_DOMAIN = "docker.io"
#: Registries that are Docker Hub under another name.
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")


class ReferenceError_(ValueError):
    """The string is not a valid image reference."""


@dataclass(frozen=True)
class ImageReference:
    domain: str
    path: str  # e.g. "library/busybox"
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        """Fully qualified repository without tag/digest: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        s = self.repository
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


def parse_reference(name: str) -> ImageReference:
    """Normalise ``name``; raises :class:`ReferenceError_` on malformed input."""
    raw = name.strip()
    if not raw:
        raise ReferenceError_("image name is empty")
    digest: str | None = None
    if "@" in raw:
        raw, digest = raw.split("@", 1)
        if not _DIGEST.match(digest):
            raise ReferenceError_(f"invalid digest {digest!r} in image name {name!r}")
    tag: str | None = None
    last_slash = raw.rfind("/")
    colon = raw.rfind(":")
    if colon > last_slash:
        raw, tag = raw[:colon], raw[colon + 1 :]
        if not _TAG.match(tag):
            raise ReferenceError_(f"invalid tag {tag!r} in image name {name!r}")
    parts = raw.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        domain, parts = parts[0].lower(), parts[1:]
    else:
        domain = DEFAULT_DOMAIN
    if domain in _HUB_ALIASES:
        domain = DEFAULT_DOMAIN
        if len(parts) == 1:
            parts = ["library", *parts]
    for p in parts:
        if not _COMPONENT.match(p):
            raise ReferenceError_(f"invalid repository component {p!r} in image name {name!r}")
    if tag is None and digest is None:
        tag = "latest"
    return ImageReference(domain=domain, path="/".join(parts), tag=tag, digest=digest)
