"""The per-pod state files the flat and mizar network hooks share (centaurus/netplug/podfiles.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from centaurus.netplug import podfiles
from centaurus.netplug.base import PodNetResult

pytestmark = pytest.mark.anyio


async def test_state_files_round_trip_and_unplumb_removes_them(tmp_path: Path) -> None:
    res = PodNetResult(netns_path=None, ip="10.0.0.5", prefix_len=24, extra={"hostIf": "", "netns": ""})
    (tmp_path / "pods").mkdir()  # the hook makes it at start
    podfiles.save_state(tmp_path, "u1", res)
    (tmp_path / "pods" / "bad.json").write_text("{not json")
    assert podfiles.load_states(tmp_path) == {"u1": res}  # the unreadable one is skipped
    path = podfiles.state_path(tmp_path, "u1")
    assert await podfiles.read_state(path) == res
    await podfiles.unplumb(None, None, res, path)  # nothing plumbed: only the file goes
    assert not path.exists() and await podfiles.read_state(path) is None
    await podfiles.unplumb(None, None, res, path)  # idempotent
    assert podfiles.pod_netns_name("u1") == "cl-pod-u1"
