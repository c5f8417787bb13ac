"""The local image store: names users write resolve to directories bootstrap built.

Layout (one directory per image under :func:`default_image_dir`)::

    <root>/<name>/image.json     manifest (kind, repositories it answers to, OCI config, digest)
    <root>/<name>/rootfs/        container images: the root filesystem (read-only lower layer)
    <root>/<name>/vmlinux        vm images: ELF kernel booted directly (PVH)
    <root>/<name>/initrd.cpio    vm images: uncompressed initramfs (no decompression under TCG)

Nothing is ever downloaded at pod start: an unknown repository is an ``ErrImagePull`` naming the
image and the repositories that do exist, which is what a user with a typo needs to see.
Tags are not versions here: every tag of a known repository resolves to the one local build
(``nginx:1.25`` and ``nginx:1.27`` are both the nginx-like test image); a pinned digest must match.
"""

from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from centaurus.images.reference import ImageReference, ReferenceError_, parse_reference

MANIFEST = "image.json"
ENV_DIR = "CENTAURUS_IMAGE_DIR"


class ImageError(LookupError):
    """An image name cannot be resolved. ``reason`` is the Kubernetes waiting reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason, self.message = reason, message


def default_image_dir() -> Path:
    """``$CENTAURUS_IMAGE_DIR``, else ``<checkout>/images`` (git-ignored) when running from a source
    checkout (the normal case: ``pip install -e``), else ``/var/lib/centaurus/images``.

    Per-checkout images keep parallel checkouts of different versions from fighting over one
    directory, and a clean clone gets them from ``ci/bootstrap``."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "ci" / "bootstrap").exists():
        return checkout / "images"
    return Path("/var/lib/centaurus/images")


@dataclass(frozen=True)
class Image:
    """A resolved local image. ``config`` follows the OCI image config (``Entrypoint``, ``Cmd``,
    ``Env``, ``WorkingDir``, ``ExposedPorts``, ``User``)."""

    name: str
    kind: Literal["container", "vm"]
    path: Path
    digest: str
    repositories: tuple[str, ...]
    config: dict[str, Any] = field(default_factory=dict)
    reference: str = ""  # what the user wrote, normalised

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs"

    @property
    def kernel(self) -> Path:
        return self.path / "vmlinux"

    @property
    def initrd(self) -> Path:
        return self.path / "initrd.cpio"

    @property
    def image_id(self) -> str:
        """What ``containerStatus.imageID`` shows."""
        return f"{self.repositories[0]}@{self.digest}" if self.repositories else self.digest


class ImageStore:
    """Reads manifests once (they change only when bootstrap rebuilds) and resolves names."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root else default_image_dir()
        self._images: dict[str, Image] | None = None

    def reload(self) -> None:
        self._images = None

    def _load(self) -> dict[str, Image]:
        if self._images is None:
            images: dict[str, Image] = {}
            if self.root.is_dir():
                for d in sorted(self.root.iterdir()):
                    m = d / MANIFEST
                    if not m.is_file():
                        continue
                    try:
                        doc = json.loads(m.read_text())
                    except (OSError, ValueError):
                        continue  # half-written by an interrupted build: invisible, rebuilt next time
                    images[doc["name"]] = Image(
                        name=doc["name"],
                        kind=doc.get("kind", "container"),
                        path=d,
                        digest=doc.get("digest", ""),
                        repositories=tuple(doc.get("repositories", [])),
                        config=doc.get("config", {}),
                    )
            self._images = images
        return self._images

    def list(self) -> list[Image]:
        return list(self._load().values())

    def get(self, name: str) -> Image:
        """The image called ``name`` in the store (no reference parsing)."""
        try:
            return self._load()[name]
        except KeyError:
            raise ImageError("ErrImageNeverPull", f"image {name!r} is not built; run ci/bootstrap") from None

    def resolve(self, name: str, kind: Literal["container", "vm"] = "container") -> Image:
        """Map a user-written image name to a local image of ``kind``.

        Raises :class:`ImageError` with ``InvalidImageName`` for malformed names and
        ``ErrImagePull`` for names no local image answers to."""
        try:
            ref = parse_reference(name)
        except ReferenceError_ as exc:
            raise ImageError("InvalidImageName", str(exc)) from None
        images = [i for i in self._load().values() if i.kind == kind]
        for img in images:
            if _matches(img, ref):
                if ref.digest and ref.digest != img.digest:
                    raise ImageError(
                        "ErrImagePull",
                        f"image {name!r}: pinned digest {ref.digest} does not match the local build "
                        f"{img.digest} of {img.name}",
                    )
                return Image(
                    name=img.name,
                    kind=img.kind,
                    path=img.path,
                    digest=img.digest,
                    repositories=img.repositories,
                    config=img.config,
                    reference=str(ref),
                )
        if not images:
            raise ImageError(
                "ErrImagePull",
                f"image {name!r}: the local {kind} image store at {self.root} is empty; run ci/bootstrap",
            )
        known = ", ".join(sorted(_short(i.repositories[0]) if i.repositories else i.name for i in images))
        raise ImageError(
            "ErrImagePull",
            f"image {name!r} ({ref.repository}) not found in the local {kind} image store "
            f"(images are built locally, never pulled); known: {known}",
        )


def _matches(img: Image, ref: ImageReference) -> bool:
    return any(fnmatch.fnmatchcase(ref.repository, pattern) for pattern in img.repositories)


def _short(repo: str) -> str:
    return repo.removeprefix("docker.io/library/").removeprefix("docker.io/")
