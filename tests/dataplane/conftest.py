"""One lab per test module and dataplane (module-scoped): bring-up is ~0.1 s (bridge-vxlan) or
~1.5 s (mizar-xdp), so every module gets a fresh topology and tests inside a module share it.
The finalizer checks that ``down`` left nothing behind (namespaces, pins, daemons)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from centaurus import BPFFS_ROOT, PREFIX
from centaurus.labs import nsutil
from centaurus.labs.netns import NetnsLab
from centaurus.labs.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPEC = ROOT / "labs" / "default.yaml"
DATAPLANES = ["mizar-xdp", "bridge-vxlan"]


def assert_clean(lab_id: str, pids: list[tuple[int, int | None]]) -> None:
    left = nsutil.list_netns(f"{PREFIX}{lab_id}-")
    assert not left, f"namespaces left behind: {left}"
    assert not Path(f"{BPFFS_ROOT}/{lab_id}").exists(), "pinned maps left behind"
    alive = [p for p, s in pids if nsutil.alive(p, s)]
    assert not alive, f"daemons left running: {alive}"


def make_lab(tmp: Path, dataplane: str, spec: Path = DEFAULT_SPEC) -> Iterator[NetnsLab]:
    lab = NetnsLab(tmp, {"dataplane": dataplane})
    lab.up(load_spec(spec))
    st = lab.status()
    pids = [(p["pid"], None) for p in st["processes"]]
    try:
        yield lab
    finally:
        lab_id = lab.id
        lab.down()
        assert_clean(lab_id, pids)


@pytest.fixture(scope="module", params=DATAPLANES)
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsLab]:
    yield from make_lab(tmp_path_factory.mktemp("lab"), request.param)


@pytest.fixture(scope="module")
def xdp_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsLab]:
    yield from make_lab(tmp_path_factory.mktemp("xlab"), "mizar-xdp")
