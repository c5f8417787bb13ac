"""The provisioning measurement (PERF-NET-3/4) in small: 2 real droplets (netns lab, transitd)
and 200 hollow ones against the package's control plane. Judged here: the bound (each endpoint
held by at most its host and its network's bouncers, no other droplet touched), clean deletion,
working endpoints; the latency figures are printed (timing belongs to the perf campaign)."""

from __future__ import annotations

from pathlib import Path

import pytest

from centaurus.perf.measurements.provisioning import ProvisioningBench, results

from .conftest import Plane

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_fanout_is_bounded_on_real_and_hollow_droplets(plane: Plane, tmp_path: Path) -> None:
    bench = ProvisioningBench(tmp_path, kubeconfig=plane.kubeconfig)
    real = bench.real_case(2, 12, rate=20.0, bouncers=1)
    hollow = bench.hollow_case(200, 40, rate=40.0, bouncers=2)
    for c in (real, hollow):
        s = c.summary()
        print(
            f"provisioning {c.kind} x{c.droplets}: hosts/endpoint max {s['hosts_max']} mean "
            f"{s['hosts_mean']:.2f}, p50 {s['p50_ms']:.1f} ms p99 {s['p99_ms']:.1f} ms, touched "
            f"{c.touched_droplets} (outside hosts+bouncers {c.unexpected_droplets})"
        )
        assert not c.failed, c.failed
        assert len(c.latency_ms) == c.endpoints and len(c.hosts_per_endpoint) == c.endpoints
        assert 1 <= s["hosts_max"] <= 1 + c.bouncers, f"{c.kind}: an endpoint on {s['hosts_max']} hosts"
        assert c.unexpected_droplets == 0, f"{c.kind}: droplets outside the bound were programmed"
        assert c.clean_after_delete, f"{c.kind}: an endpoint survived its deletion on some droplet"
    assert real.ping_ok, "pods on the two droplets cannot reach each other"
    assert hollow.touched_droplets < hollow.droplets, "the burst touched every droplet"
    figures = results([real, hollow], 100.0).figures
    assert {f.name for f in figures} >= {"hosts_per_endpoint_max", "provisioning_p99"}
