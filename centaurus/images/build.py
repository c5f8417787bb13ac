"""Build the local images from what the machine has: busybox-static and Debian's cloud kernel.

Called by ``ci/bootstrap.d/20-images.sh`` (``python -m centaurus.images build``). Idempotent: each
image records a build stamp (recipe version + inputs' hashes) and is skipped when it matches, so a
ready machine pays a few stat calls. Each image is built in a temporary directory and renamed into
place, so an interrupted build never leaves a half image that resolves.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from centaurus.images.guest import INITTAB, agent_script, init_script, sysinit_script
from centaurus.images.guest_ident import IDENT_C
from centaurus.images.guest_kernel import CONFIG as GUEST_KERNEL_CONFIG
from centaurus.images.guest_kernel import KernelBuildError, build_kernel, source_package
from centaurus.images.store import MANIFEST, default_image_dir

RECIPE_VERSION = "4"
BUSYBOX = Path("/bin/busybox")
KERNEL_META_PACKAGE = "linux-image-cloud-amd64"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

NGINX_INDEX = """<!DOCTYPE html>
<html>
<head><title>Welcome to nginx!</title></head>
<body>
<h1>Welcome to nginx!</h1>
<p>centaurus-nginx test image: busybox httpd serving this page on port 80.</p>
</body>
</html>
"""
PAUSE_SCRIPT = """#!/bin/sh
# pause: sleep forever, exit 0 on TERM/INT (busybox as PID 1 would otherwise ignore TERM)
trap 'exit 0' TERM INT
while :; do sleep 3600 & wait $!; done
"""


class BuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class ContainerRecipe:
    name: str
    repositories: tuple[str, ...]
    config: dict[str, Any]
    extra_files: tuple[tuple[str, str, int], ...] = ()  # (path, content, mode)


CONTAINER_IMAGES = (
    ContainerRecipe(
        name="busybox",
        repositories=(
            "docker.io/library/busybox",
            "registry.k8s.io/busybox",
            "k8s.gcr.io/busybox",
            "gcr.io/google-containers/busybox",
            "gcr.io/google_containers/busybox",
            "registry.k8s.io/e2e-test-images/busybox",
            "quay.io/quay/busybox",
        ),
        config={"Cmd": ["sh"], "Env": [PATH_ENV], "WorkingDir": "/"},
    ),
    ContainerRecipe(
        name="nginx",
        repositories=(
            "docker.io/library/nginx",
            "registry.k8s.io/e2e-test-images/nginx",
            "docker.io/nginxinc/nginx-unprivileged",
        ),
        config={
            "Cmd": ["httpd", "-f", "-v", "-p", "80", "-h", "/usr/share/nginx/html"],
            "Env": [PATH_ENV],
            "WorkingDir": "/",
            "ExposedPorts": {"80/tcp": {}},
        },
        extra_files=(("usr/share/nginx/html/index.html", NGINX_INDEX, 0o644),),
    ),
    ContainerRecipe(
        name="pause",
        repositories=(
            "registry.k8s.io/pause",
            "k8s.gcr.io/pause",
            "gcr.io/google_containers/pause*",
            "docker.io/library/pause",
        ),
        config={"Cmd": ["/pause"], "Env": [PATH_ENV], "WorkingDir": "/"},
        extra_files=(("pause", PAUSE_SCRIPT, 0o755),),
    ),
)
GUEST_REPOSITORIES = ("docker.io/centaurus/guest", "*cirros*", "docker.io/library/busybox-vm")

BASE_FILES = (
    ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n", 0o644),
    ("etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644),
    ("etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n", 0o644),
    ("etc/resolv.conf", "", 0o644),
    ("etc/hostname", "localhost\n", 0o644),
)
BASE_DIRS = (
    "bin",
    "sbin",
    "usr/bin",
    "usr/sbin",
    "etc",
    "proc",
    "sys",
    "dev",
    "tmp",
    "root",
    "run",
    "var/log",
    "var/tmp",
    "home",
)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _applets() -> list[str]:
    """Full applet paths (``bin/sh``, ``usr/bin/env``) this busybox provides."""
    out = subprocess.run([str(BUSYBOX), "--list-full"], check=True, capture_output=True, text=True).stdout
    return [a.strip().lstrip("/") for a in out.splitlines() if a.strip()]


def _stamp(*parts: str) -> str:
    return hashlib.sha256("\0".join((RECIPE_VERSION, *parts)).encode()).hexdigest()[:16]


def _current_stamp(d: Path) -> str | None:
    try:
        return str(json.loads((d / MANIFEST).read_text()).get("build"))
    except (OSError, ValueError):
        return None


def _install(root: Path, name: str, fill: Callable[[Path], dict[str, Any]]) -> None:
    """Build into a temp dir beside the final one, then swap it in."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".build-{name}-", dir=root))
    os.chmod(tmp, 0o755)
    try:
        manifest = fill(tmp)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        final = root / name
        if final.exists():
            old = root / f".old-{name}-{os.getpid()}"
            final.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _populate_rootfs(rootfs: Path, applets: Iterable[str], extra: Iterable[tuple[str, str, int]]) -> None:
    for d in BASE_DIRS:
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    os.chmod(rootfs / "tmp", 0o1777)
    os.chmod(rootfs / "var/tmp", 0o1777)
    shutil.copy2(BUSYBOX, rootfs / "bin/busybox")
    for applet in applets:
        dest = rootfs / applet
        if applet == "bin/busybox" or dest.exists():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.symlink("/bin/busybox", dest)
    for rel, content, mode in (*BASE_FILES, *extra):
        p = rootfs / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
        os.chmod(p, mode)


def build_container_image(root: Path, recipe: ContainerRecipe, *, force: bool = False) -> bool:
    """Returns True when it (re)built the image."""
    bb_hash = _sha256_file(BUSYBOX)
    stamp = _stamp(
        "container",
        recipe.name,
        bb_hash,
        json.dumps(recipe.config, sort_keys=True),
        json.dumps(recipe.extra_files),
        json.dumps(recipe.repositories),
    )
    if not force and _current_stamp(root / recipe.name) == stamp:
        return False
    applets = _applets()

    def fill(tmp: Path) -> dict[str, Any]:
        _populate_rootfs(tmp / "rootfs", applets, recipe.extra_files)
        return {
            "name": recipe.name,
            "kind": "container",
            "build": stamp,
            "digest": f"sha256:{hashlib.sha256((stamp + bb_hash).encode()).hexdigest()}",
            "repositories": list(recipe.repositories),
            "config": recipe.config,
            "source": f"busybox-static {BUSYBOX} sha256:{bb_hash[:16]}",
        }

    _install(root, recipe.name, fill)
    return True


# ---- VM guest ---------------------------------------------------------------------------------


def _apt_download(package: str, dest: Path) -> Path:
    """``apt-get download`` into ``dest`` (cached); retries once after ``apt-get update``."""
    existing = sorted(dest.glob(f"{package}_*.deb"))
    if existing:
        return existing[-1]
    dest.mkdir(parents=True, exist_ok=True)
    for attempt in (0, 1):
        p = subprocess.run(["apt-get", "download", "-qq", package], cwd=dest, capture_output=True, text=True)
        if p.returncode == 0:
            break
        if attempt == 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
    else:
        raise BuildError(f"apt-get download {package} failed: {p.stderr.strip()[-400:]}")
    found = sorted(dest.glob(f"{package}_*.deb"))
    if not found:
        raise BuildError(f"apt-get download {package} produced no .deb in {dest}")
    return found[-1]


def _kernel_package_name(cache: Path) -> str:
    """The versioned kernel package the cloud meta package depends on (it names the version whose
    source the guest kernel is built from)."""
    meta = _apt_download(KERNEL_META_PACKAGE, cache)
    deps = subprocess.run(
        ["dpkg-deb", "-f", str(meta), "Depends"], check=True, capture_output=True, text=True
    ).stdout
    names = [d.strip().split(" ")[0] for d in deps.split(",") if d.strip().startswith("linux-image-")]
    if not names:
        raise BuildError(f"{meta.name}: no linux-image-* dependency in {deps!r}")
    return names[0]


_COMPRESSORS = (
    (b"\x02\x21\x4c\x18", ["lz4", "-dc"]),
    (b"\x28\xb5\x2f\xfd", ["zstd", "-dcq"]),
    (b"\xfd7zXZ\x00", ["xz", "-dcq"]),
    (b"\x1f\x8b\x08", ["gzip", "-dcq"]),
)


def extract_vmlinux(bzimage: Path) -> bytes:
    """The ELF kernel inside a bzImage (what ``scripts/extract-vmlinux`` does): qemu boots an ELF
    ``vmlinux`` directly through its PVH note, skipping decompression under emulation (seconds)."""
    data = bzimage.read_bytes()
    for magic, argv in _COMPRESSORS:
        start = 0
        while (i := data.find(magic, start)) >= 0:
            start = i + 1
            if shutil.which(argv[0]) is None:
                break
            # Trailing bytes after the stream make the tools exit non-zero; judge by the output.
            p = subprocess.run(argv, input=data[i:], capture_output=True)
            if p.stdout[:4] == b"\x7fELF":
                return p.stdout
    raise BuildError(f"no ELF kernel found inside {bzimage} (tried lz4, zstd, xz, gzip)")


def _cpio_newc(entries: list[tuple[str, int, bytes, int]]) -> bytes:
    """A ``newc`` cpio archive: (name, mode, data, rdev). Writing it ourselves lets the archive hold
    device nodes (``/dev/console``) without mknod privileges and keeps it deterministic."""
    out = io.BytesIO()

    def pad(n: int) -> None:
        out.write(b"\0" * ((4 - n % 4) % 4))

    for ino, (name, mode, data, rdev) in enumerate([*entries, ("TRAILER!!!", 0, b"", 0)], start=1):
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join(
            f"{v:08x}"
            for v in (
                ino if name != "TRAILER!!!" else 0,
                mode,
                0,
                0,
                1,
                0,
                len(data),
                0,
                0,
                os.major(rdev),
                os.minor(rdev),
                len(nb),
                0,
            )
        )
        out.write(hdr.encode() + nb)
        pad(110 + len(nb))
        out.write(data)
        pad(len(data))
    return out.getvalue()


def build_ident() -> bytes:
    """Compile the guest's ``cl-ident`` helper (freestanding: no libc needed in the guest)."""
    clang = shutil.which("clang") or shutil.which("cc")
    if clang is None:
        raise BuildError("clang not found (apt-get install clang): needed for the guest's cl-ident")
    with tempfile.TemporaryDirectory() as d:
        src, out = Path(d) / "ident.c", Path(d) / "cl-ident"
        src.write_text(IDENT_C)
        p = subprocess.run(
            [clang, "-O2", "-static", "-nostdlib", "-ffreestanding", "-fno-stack-protector", "-fno-pie",
             "-no-pie", "-o", str(out), str(src)], capture_output=True, text=True)
        if p.returncode != 0:
            raise BuildError(f"compiling cl-ident failed: {p.stderr.strip()[-600:]}")
        return out.read_bytes()


def build_initramfs() -> bytes:
    import stat

    entries: list[tuple[str, int, bytes, int]] = []
    dirs = {
        "bin",
        "sbin",
        "usr",
        "usr/bin",
        "usr/sbin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "run",
        "root",
        "var",
        "lib",
    }
    for d in sorted(dirs):
        entries.append((d, stat.S_IFDIR | 0o755, b"", 0))
    entries.append(("dev/console", stat.S_IFCHR | 0o600, b"", os.makedev(5, 1)))
    entries.append(("bin/busybox", stat.S_IFREG | 0o755, BUSYBOX.read_bytes(), 0))
    for applet in _applets():
        if applet == "bin/busybox":
            continue
        parent = applet.rsplit("/", 1)[0]
        if parent not in dirs:
            dirs.add(parent)
            entries.append((parent, stat.S_IFDIR | 0o755, b"", 0))
        entries.append((applet, stat.S_IFLNK | 0o777, b"/bin/busybox", 0))
    entries.append(("init", stat.S_IFLNK | 0o777, b"/bin/busybox", 0))
    entries.append(("etc/inittab", stat.S_IFREG | 0o644, INITTAB.encode(), 0))
    entries.append(("etc/cl-sysinit", stat.S_IFREG | 0o755, sysinit_script().encode(), 0))
    entries.append(("bin/cl-agent", stat.S_IFREG | 0o755, agent_script().encode(), 0))
    entries.append(("bin/cl-ident", stat.S_IFREG | 0o755, build_ident(), 0))
    entries.append(("etc/passwd", stat.S_IFREG | 0o644, BASE_FILES[0][1].encode(), 0))
    entries.append(("etc/group", stat.S_IFREG | 0o644, BASE_FILES[1][1].encode(), 0))
    return _cpio_newc(entries)


def build_guest_image(root: Path, *, force: bool = False) -> bool:
    cache = root / ".cache"
    src_deb = _apt_download(source_package(_kernel_package_name(cache)), cache)
    bb_hash = _sha256_file(BUSYBOX)
    stamp = _stamp("vm", src_deb.name, GUEST_KERNEL_CONFIG, bb_hash, init_script(), IDENT_C)
    if not force and _current_stamp(root / "guest") == stamp:
        return False
    try:
        vmlinux = build_kernel(src_deb, cache)
    except KernelBuildError as exc:
        raise BuildError(str(exc)) from None

    def fill(tmp: Path) -> dict[str, Any]:
        shutil.copyfile(vmlinux, tmp / "vmlinux")
        (tmp / "initrd.cpio").write_bytes(build_initramfs())
        digest = hashlib.sha256((_sha256_file(tmp / "vmlinux") + _sha256_file(tmp / "initrd.cpio")).encode())
        return {
            "name": "guest",
            "kind": "vm",
            "build": stamp,
            "digest": f"sha256:{digest.hexdigest()}",
            "repositories": list(GUEST_REPOSITORIES),
            "config": {
                "kernelSource": src_deb.name,
                "kernelConfig": hashlib.sha256(GUEST_KERNEL_CONFIG.encode()).hexdigest()[:16],
            },
        }

    _install(root, "guest", fill)
    return True


def build_all(
    root: Path | None = None, *, force: bool = False, vm: bool = True, log: Callable[[str], None] = print
) -> list[str]:
    root = Path(root) if root else default_image_dir()
    if not BUSYBOX.exists():
        raise BuildError(f"{BUSYBOX} missing: install busybox-static")
    built: list[str] = []
    for recipe in CONTAINER_IMAGES:
        if build_container_image(root, recipe, force=force):
            built.append(recipe.name)
            log(f"built image {recipe.name} in {root / recipe.name}")
    if vm and build_guest_image(root, force=force):
        built.append("guest")
        log(f"built vm image guest in {root / 'guest'}")
    return built
