#!/usr/bin/env bash
# Local images for the runtimes (centaurus.images): busybox / nginx / pause root filesystems built
# from busybox-static, and the VM guest: its own small kernel built from Debian's kernel source
# (`linux-source-<version of the cloud kernel>` via `apt-get download`; the build tools below) +
# a busybox initramfs whose /init is the guest agent. Output: <repo>/images/ (git-ignored;
# override with CENTAURUS_IMAGE_DIR). Idempotent: every image carries a build stamp; a ready
# machine spends well under a second here, the first guest kernel build a few minutes (the
# vmlinux is cached in images/.cache per source package and configuration). The VM template
# snapshot is not built here: it lives on /dev/shm (gone after a reboot) and the vm runtime
# builds it on first use (prepare()).
set -euo pipefail
need=()
for tool in flex:flex bison:bison bc:bc gcc:gcc make:make perl:perl; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "images: installing guest kernel build tools: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
fi
"$VENV/bin/python" -m centaurus.images build --quiet
