"""Fixtures of the XDP program tests (Cilium bpf/tests style: the real bytecode under
BPF_PROG_RUN, packets from scapy, verdict and bytes asserted). Needs root and bpffs."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from xdputil import Droplet, Netns, new_droplet

from centaurus.bpf.overlay import pin_dir_for, remove_pins


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for it in items:
        if "tests/xdp/" in str(it.fspath):
            it.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def netns() -> Iterator[Netns]:
    if os.geteuid() != 0:
        pytest.fail("tests/xdp need root (bpf, netns)")
    ns = Netns()
    try:
        yield ns
    finally:
        ns.delete()
        remove_pins(pin_dir_for(ns.name))


@pytest.fixture
def d1(netns: Netns) -> Iterator[Droplet]:
    """A freshly loaded droplet (empty counters, default world) for each test."""
    d = new_droplet(netns)
    try:
        yield d
    finally:
        d.ov.destroy()
