"""The scale projection's arithmetic (pure): least-squares per-object costs, capacity per
partition, partitions per SCALE target."""

from __future__ import annotations

import math

import pytest

from centaurus.perf import scale_model


def point(nodes: int, pods: int, api_rss: float, sched_rss: float, cpu: float, store: float) -> dict:
    return {
        "nodes": nodes,
        "pods": pods,
        "store_bytes": store,
        "components": {
            "apiserver": {"cpu_cores": cpu, "rss_bytes": api_rss, "pss_bytes": api_rss},
            "scheduler": {"cpu_cores": 0.0, "rss_bytes": sched_rss, "pss_bytes": sched_rss},
        },
    }


def test_fit_recovers_a_line() -> None:
    slope, icpt, r2 = scale_model.fit([0, 10, 20, 30], [5, 25, 45, 65])
    assert (slope, icpt, r2) == pytest.approx((2.0, 5.0, 1.0))
    assert scale_model.fit([1, 1], [3, 4])[0] == 0.0  # no spread in x: no slope


def test_per_object_and_projection() -> None:
    hosts = [
        point(n, 0, 1e8 + n * 50e3, 2e7 + n * 10e3, 0.01 + n * 1e-5, 1e6 + n * 6e3)
        for n in (0, 100, 200, 300)
    ]
    pods = [point(300, m, 1.15e8 + m * 20e3, 2.3e7 + m * 4e3, 0.2, 2.8e6 + m * 5e3) for m in (0, 1000, 2000)]
    ph = scale_model.per_object(hosts, "nodes")
    pp = scale_model.per_object(pods, "pods")
    assert ph["components"]["apiserver"]["pss_bytes"]["per_object"] == pytest.approx(50e3)
    assert ph["components"]["apiserver"]["pss_bytes"]["r2"] == pytest.approx(1.0)
    assert ph["store_bytes"]["per_object"] == pytest.approx(6e3)
    assert pp["total"]["pss_bytes"] == pytest.approx(24e3)
    budget = {"cpu_cores": 1.4, "memory_bytes": 24e9, "store_bytes": 8 * 1024**3}
    proj = scale_model.extrapolate(ph, pp, measured={"hosts": 300, "pods": 2000}, budget=budget)
    # hosts: memory 60 kB, cpu 1e-5 cores, store 6 kB per host -> cpu-bound at 140k per partition
    assert proj["hosts_per_partition"] == pytest.approx(140_000)
    assert proj["projections"]["SCALE-2"]["bound"] == "cpu_cores"
    assert proj["projections"]["SCALE-2"]["partitions_needed"] == 1
    assert proj["projections"]["SCALE-1"]["partitions_needed"] == 3  # 300k hosts
    # pods: no CPU per stored pod; 24 kB memory vs 5 kB store -> memory-bound at 1M per partition
    assert proj["pods_per_partition"] == pytest.approx(1_000_000)
    assert proj["projections"]["SCALE-4"]["partitions_needed"] == 10
    assert proj["scheduler_ceiling"]["pods"] == pytest.approx(24e9 / 4e3)
    assert "least squares" in proj["method"]
    assert not math.isinf(proj["hosts_per_partition"])
