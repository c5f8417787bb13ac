"""The density campaign end to end at a tiny size: a fresh control plane, the scheduler burst,
hollow nodes and pods in 3 steps, startup transitions, API probe, usage, the projection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from centaurus.perf.density import run_density

pytestmark = pytest.mark.integration


def test_density_smoke(tmp_path: Path) -> None:
    res = run_density(
        profile="smoke",
        nodes=6,
        pods=60,
        rate=30.0,
        burst_nodes=20,
        burst_pods=200,
        window=1.0,
        report_dir=tmp_path,
    )
    figures = {f.name: f for f in res.figures}
    for name in (
        "pod_startup_p99_ms",
        "api_mutating_p99_ms",
        "scheduler_throughput",
        "store_bytes_per_pod",
        "memory_bytes_per_pod",
        "memory_bytes_per_host",
        "cpu_seconds_per_pod_created",
    ):
        assert name in figures, sorted(figures)
    assert figures["scheduler_throughput"].value > 0
    assert figures["store_bytes_per_pod"].value > 500  # a pod is at least its JSON in the store
    startup = {
        i["labels"]["Transition"]: i for i in res.perfdata if i["labels"].get("Metric") == "pod_startup"
    }
    assert {"create_to_schedule", "create_to_watch"} <= set(startup)
    assert len(startup["create_to_watch"]["samples"]) == 60  # every pod measured
    assert {i["labels"]["Verb"] for i in res.perfdata if i["labels"].get("Metric") == "api_latency"} >= {
        "create",
        "patch",
        "delete",
    }
    scale = {f.labels["requirement"]: f for f in res.figures if f.name == "scale_per_partition"}
    assert set(scale) == {"SCALE-1", "SCALE-2", "SCALE-3", "SCALE-4"}
    assert all(f.value > 0 and int(f.labels["partitions_needed"]) >= 1 for f in scale.values())
    d = res.details["density"]
    assert [p["nodes"] for p in d["growth"]["hosts"]] == [0, 2, 4, 6]
    assert [p["pods"] for p in d["growth"]["pods"]] == [0, 20, 40, 60]
    assert "apiserver" in d["per_pod"]["components"]
    assert "least squares" in d["extrapolation"]["method"]
    doc = json.loads((tmp_path / "density.json").read_text())
    assert doc["dataItems"] and doc["figures"]
