"""The hollow runtime answers like a real one, without any workload."""

from __future__ import annotations

from pathlib import Path

import pytest

from centaurus import plugins
from centaurus.runtimes.base import ContainerSpec, RuntimeError_, SandboxSpec
from tests.runtimes.conftest import collect

pytestmark = pytest.mark.anyio


async def test_hollow_lifecycle(tmp_path: Path) -> None:
    rt = plugins.load("runtime", "hollow")(tmp_path, None)
    await rt.prepare()
    seen: list[tuple[str, str]] = []
    rt.add_listener(lambda uid, name: seen.append((uid, name)))
    spec = SandboxSpec(
        uid="u1",
        tenant="t",
        namespace="default",
        name="p",
        netns_path=None,
        log_dir=tmp_path,
        containers=[ContainerSpec(name="a", image="anything"), ContainerSpec(name="b", image="x")],
    )
    sb = await rt.start(spec)
    st = await rt.status(sb)
    assert [(s.name, s.state, s.ready) for s in st] == [("a", "running", True), ("b", "running", True)]
    assert seen == [("u1", "a"), ("u1", "b")]
    ex = await rt.exec(sb, "a", ["true"])
    assert await ex.wait() == 0 and await collect(rt.logs(sb, "a")) == b""
    await rt.stop(sb)
    assert {s.state for s in await rt.status(sb)} == {"terminated"}
    await rt.restart_container(sb, "a")
    st = {s.name: s for s in await rt.status(sb)}
    assert st["a"].state == "running" and st["a"].restart_count == 1
    assert [s.uid for s in await rt.sandboxes()] == ["u1"]
    with pytest.raises(RuntimeError_):
        await rt.port_forward(sb, 80)
    await rt.remove(sb)
    await rt.remove(sb)
    assert await rt.sandboxes() == []
    with pytest.raises(RuntimeError_):
        await rt.status(sb)
