"""The scheduler's lean binding path against a real API server: one request per connection and
HTTP/1.1-pipelined batches bind every pod exactly once, a second bind is the server's 409, and a
missing pod its 404 -- both as :class:`ApiError` with the server's Status."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from centaurus.client.aio import AsyncClient
from centaurus.client.rest import ApiClient, ApiError
from centaurus.scheduler.binder import Binder
from tests.scheduler.conftest import node_obj, pod_obj


@pytest.mark.parametrize("depth", [1, 4])
def test_binds_plain_and_pipelined(cluster: ApiClient, tmp_path: Path, depth: int) -> None:
    cluster.create("nodes", node_obj("bind-n1", cpu="64", mem="64Gi"))
    names = [f"bp-{depth}-{i}" for i in range(40)]
    for n in names:  # a scheduler nobody runs: the pods stay ours to bind
        cluster.create("pods", pod_obj(n, schedulerName="nobody"), namespace="default")

    async def run() -> list[BaseException | None]:
        api = AsyncClient.from_kubeconfig(str(tmp_path / "cp" / "kubeconfig"))
        b = Binder(api, connections=3, depth=depth)
        try:
            res = await asyncio.gather(
                *(b.bind(None, "default", n, "bind-n1") for n in names), return_exceptions=True
            )
            again = await asyncio.gather(
                b.bind(None, "default", names[0], "bind-n1"),
                b.bind(None, "default", "no-such-pod", "bind-n1"),
                return_exceptions=True,
            )
            return [*res, *again]
        finally:
            await b.close()
            await api.close()

    out = asyncio.run(run())
    assert out[: len(names)] == [None] * len(names), out[:5]
    conflict, missing = out[len(names) :]
    assert isinstance(conflict, ApiError) and conflict.code == 409, conflict
    assert isinstance(missing, ApiError) and missing.code == 404, missing
    for n in names:
        pod = cluster.get("pods", n, namespace="default")
        assert pod["spec"]["nodeName"] == "bind-n1"
        conds = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert conds["PodScheduled"] == "True"
