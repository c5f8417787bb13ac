"""The KVM probe's verdict cache: a nested host's broken KVM is probed once, not per agent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from centaurus.runtimes.vm import accel


def test_verdict_survives_the_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = tmp_path / "vmlinux"
    kernel.write_bytes(b"not a kernel")
    monkeypatch.setattr(accel, "VERDICT_DIR", tmp_path / "verdicts")
    monkeypatch.setattr(accel, "_verdicts", {})
    vfile = accel._verdict_file(kernel)
    assert vfile is not None and accel._read_verdict(vfile) is None
    accel._write_verdict(vfile, False)
    assert accel._read_verdict(vfile) is False

    async def no_probe() -> bool:
        raise AssertionError("probed although a verdict was stored")

    monkeypatch.setattr(accel, "_qemu_starts", no_probe)
    assert asyncio.run(accel.kvm_usable(kernel)) is False


def test_changed_kernel_is_probed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = tmp_path / "vmlinux"
    kernel.write_bytes(b"one")
    monkeypatch.setattr(accel, "VERDICT_DIR", tmp_path / "verdicts")
    before = accel._verdict_file(kernel)
    kernel.write_bytes(b"another kernel")
    assert accel._verdict_file(kernel) != before


def test_kernel_that_prints_nothing_is_not_kvm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 'kernel' qemu cannot boot never prints a banner: the probe must say no, in bounded time."""
    kernel = tmp_path / "vmlinux"
    kernel.write_bytes(b"\0" * 4096)
    monkeypatch.setattr(accel, "PROBE_TIMEOUT_S", 1.0)
    assert asyncio.run(accel._guest_runs(kernel)) is False
