"""Centaurus Lab: conformance harness and compact implementation of the Centaurus cloud."""

__version__ = "0.1.0"

#: Prefix for every kernel object this project creates (netns, links, pinned maps, cgroups).
#: Teardown finds what a crashed run left behind by this prefix plus its state file.
PREFIX = "cl-"
#: Directory under bpffs that holds every pinned map and program of the project.
BPFFS_ROOT = "/sys/fs/bpf/centaurus"
