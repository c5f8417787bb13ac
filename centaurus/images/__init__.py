"""Local image store: container root filesystems and the VM guest, built by bootstrap from
busybox-static and Debian's cloud kernel, resolved from the names users write."""

from centaurus.images.reference import ImageReference, ReferenceError_, parse_reference
from centaurus.images.store import Image, ImageError, ImageStore, default_image_dir

__all__ = [
    "Image",
    "ImageError",
    "ImageReference",
    "ImageStore",
    "ReferenceError_",
    "default_image_dir",
    "parse_reference",
]
