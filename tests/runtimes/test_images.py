"""Image names resolve like Docker normalises them; unknown names fail with a clear reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from centaurus.images import ImageError, ImageStore, parse_reference
from centaurus.images.build import _cpio_newc, extract_vmlinux


@pytest.mark.parametrize(
    ("name", "repo", "tag"),
    [
        ("busybox", "docker.io/library/busybox", "latest"),
        ("busybox:1.35", "docker.io/library/busybox", "1.35"),
        ("docker.io/library/busybox:latest", "docker.io/library/busybox", "latest"),
        ("index.docker.io/busybox", "docker.io/library/busybox", "latest"),
        ("nginx:1.25", "docker.io/library/nginx", "1.25"),
        ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause", "3.9"),
        ("localhost:5000/x/y:z", "localhost:5000/x/y", "z"),
        (
            "download.cirros-cloud.net/0.3.5/cirros-0.3.5-x86_64-disk.img",
            "download.cirros-cloud.net/0.3.5/cirros-0.3.5-x86_64-disk.img",
            "latest",
        ),
    ],
)
def test_reference_normalisation(name: str, repo: str, tag: str) -> None:
    ref = parse_reference(name)
    assert (ref.repository, ref.tag) == (repo, tag)


@pytest.mark.parametrize("bad", ["", "BusyBox", "busybox:", "a//b", "busybox@sha256:xyz", "bus box"])
def test_malformed_references_are_invalid_image_name(bad: str, tmp_path: Path) -> None:
    with pytest.raises(ImageError) as ei:
        ImageStore(tmp_path).resolve(bad)
    assert ei.value.reason == "InvalidImageName"


def _fake_store(root: Path) -> ImageStore:
    for name, kind, repos in [
        ("busybox", "container", ["docker.io/library/busybox"]),
        ("nginx", "container", ["docker.io/library/nginx"]),
        ("guest", "vm", ["docker.io/centaurus/guest", "*cirros*"]),
    ]:
        (root / name).mkdir(parents=True)
        (root / name / "image.json").write_text(
            json.dumps(
                {
                    "name": name,
                    "kind": kind,
                    "repositories": repos,
                    "digest": f"sha256:{'ab' * 32}",
                    "config": {"Cmd": ["sh"]},
                }
            )
        )
    (root / "half").mkdir()
    (root / "half" / "image.json").write_text("{not json")  # interrupted build: ignored
    return ImageStore(root)


def test_resolution_and_clear_failure(tmp_path: Path) -> None:
    store = _fake_store(tmp_path)
    for n in ("busybox", "busybox:1.36", "docker.io/library/busybox:latest", f"busybox@sha256:{'ab' * 32}"):
        assert store.resolve(n).name == "busybox"
    assert store.resolve("nginx:1.25").reference == "docker.io/library/nginx:1.25"
    assert store.resolve("download.cirros-cloud.net/0.4.0/cirros-0.4.0-x86_64-disk.img", "vm").name == "guest"
    with pytest.raises(ImageError) as ei:
        store.resolve("redis:7")
    assert ei.value.reason == "ErrImagePull"
    assert "redis:7" in ei.value.message and "busybox" in ei.value.message and "nginx" in ei.value.message
    with pytest.raises(ImageError) as ei:
        store.resolve(f"busybox@sha256:{'cd' * 32}")
    assert ei.value.reason == "ErrImagePull" and "digest" in ei.value.message
    with pytest.raises(ImageError):
        store.resolve("busybox", "vm")  # a container image is not a VM image
    with pytest.raises(ImageError) as ei:
        ImageStore(tmp_path / "empty").resolve("busybox")
    assert "ci/bootstrap" in ei.value.message


def test_built_store_has_the_images() -> None:
    """What bootstrap built: three container images and the VM guest, with real contents."""
    store = ImageStore()
    names = {i.name: i for i in store.list()}
    assert {"busybox", "nginx", "pause", "guest"} <= set(names), f"run ci/bootstrap ({store.root})"
    assert (names["busybox"].rootfs / "bin" / "sh").is_symlink()
    assert "Welcome to nginx" in (names["nginx"].rootfs / "usr/share/nginx/html/index.html").read_text()
    assert names["nginx"].config["Cmd"][0] == "httpd"
    assert names["guest"].kernel.read_bytes()[:4] == b"\x7fELF"
    assert names["guest"].initrd.read_bytes()[:6] == b"070701"


def test_cpio_newc_layout() -> None:
    data = _cpio_newc([("init", 0o100755, b"#!/bin/sh\n", 0), ("dev/console", 0o20600, b"", 0x501)])
    assert data.startswith(b"070701") and data.endswith(b"\0" * (len(data) % 4 or 4))
    assert b"TRAILER!!!" in data and len(data) % 4 == 0


def test_extract_vmlinux_rejects_non_kernels(tmp_path: Path) -> None:
    p = tmp_path / "vmlinuz"
    p.write_bytes(b"\0" * 4096)
    with pytest.raises(RuntimeError):
        extract_vmlinux(p)
