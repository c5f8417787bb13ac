#!/usr/bin/env bash
# Local images for the runtimes (centaurus.images): busybox / nginx / pause root filesystems built
# from busybox-static, and the VM guest (Debian cloud kernel via `apt-get download` + a busybox
# initramfs whose /init is the guest agent). Output: <repo>/images/ (git-ignored; override with
# CENTAURUS_IMAGE_DIR). Idempotent: every image carries a build stamp; a ready machine spends
# well under a second here. The VM template snapshot is not built here: it lives on /dev/shm
# (gone after a reboot) and the vm runtime builds it on first use (prepare()).
set -euo pipefail
"$VENV/bin/python" -m centaurus.images build --quiet
