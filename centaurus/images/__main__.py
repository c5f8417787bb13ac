"""``python -m centaurus.images build|list|resolve NAME`` (bootstrap calls ``build``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from centaurus.images.build import BuildError, build_all
from centaurus.images.store import ImageError, ImageStore, default_image_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m centaurus.images")
    ap.add_argument("--dir", type=Path, default=None, help=f"image directory (default {default_image_dir()})")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build missing or outdated images (idempotent)")
    b.add_argument("--force", action="store_true")
    b.add_argument("--no-vm", action="store_true", help="skip the VM guest (kernel download)")
    b.add_argument("--quiet", action="store_true")
    sub.add_parser("list")
    r = sub.add_parser("resolve")
    r.add_argument("name")
    r.add_argument("--kind", choices=["container", "vm"], default="container")
    a = ap.parse_args(argv)
    if a.cmd == "build":
        try:
            build_all(a.dir, force=a.force, vm=not a.no_vm, log=(lambda s: None) if a.quiet else print)
        except BuildError as exc:
            print(f"image build failed: {exc}", file=sys.stderr)
            return 1
        return 0
    store = ImageStore(a.dir)
    if a.cmd == "list":
        for img in store.list():
            print(f"{img.name:10} {img.kind:9} {img.digest[:19]}  {', '.join(img.repositories)}")
        return 0
    try:
        img = store.resolve(a.name, a.kind)
    except ImageError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{a.name} -> {img.name} ({img.reference}) {img.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
