"""The API latency figures from locust samples: the Kubernetes SLI (p99 per (resource, verb) over
windows), warm-up excluded, errors counted, the raw store beside each pair."""

from __future__ import annotations

from centaurus.perf.measurements.api_latency import ApiLatency, slo_p99, windows


def test_windows_split_samples_by_time() -> None:
    pts = [(100.0 + i, float(i)) for i in range(10)]
    assert [len(w) for w in windows(pts, 100.0, 3.0)] == [3, 3, 3, 1]


def test_slo_p99_is_the_worst_windows_p99() -> None:
    calm = [(100.0 + i * 0.01, 5.0) for i in range(100)]
    storm = [(110.0 + i * 0.01, 5.0) for i in range(98)] + [(110.5, 900.0), (110.6, 950.0)]
    assert slo_p99(calm + storm, 100.0, 10.0) == 900.0  # nearest rank in the stormy window
    assert slo_p99(calm, 100.0, 10.0) == 5.0
    # windows with too few calls do not decide on their own: the whole run does
    assert slo_p99([(100.0, 1.0), (200.0, 2.0)], 100.0, 10.0) == 2.0


def test_figures_per_pair_worst_groups_errors_and_store_reference() -> None:
    t0 = 1000.0
    rows = [("create pods", 10.0, True, t0 - 5)]  # warm-up: not counted
    rows += [("create pods", 20.0 + i % 3, True, t0 + i * 0.1) for i in range(50)]
    rows += [("patch configmaps", 40.0, True, t0 + i * 0.1) for i in range(50)]
    rows += [("get pods", 3.0, True, t0 + i * 0.1) for i in range(50)] + [("get pods", 0.0, False, t0 + 1)]
    rows += [("list pods", 300.0, True, t0 + i * 0.1) for i in range(50)]
    rows += [("watch pods", 15.0, True, t0 + i * 0.1) for i in range(50)]
    ref = [
        {
            "data": {"Perc50": 0.1, "Perc90": 0.2, "Perc99": 0.5},
            "unit": "ms",
            "labels": {"Metric": "store_latency", "Verb": v},
        }
        for v in ("create", "get", "update", "list")
    ]
    res = ApiLatency()._figures(rows, ref, t0, 60.0, 5.0, 100.0, "sqlite", 3, 10)
    figs = {(f.name, f.labels.get("resource", ""), f.labels.get("verb", "")): f for f in res.figures}
    assert figs["api_p99_ms", "pods", "create"].value == 22.0
    assert figs["api_p99_ms", "pods", "create"].reference == {
        "name": "raw sqlite store create",
        "p99_ms": 0.5,
    }
    assert figs["api_p99_ms", "configmaps", "patch"].reference["name"] == "raw sqlite store update"
    assert figs["api_mutating_p99_worst", "configmaps", "patch"].value == 40.0
    assert figs["api_get_p99_worst", "pods", "get"].value == 3.0
    assert figs["api_list_p99_worst", "pods", "list"].value == 300.0
    assert figs["api_p99_ms", "pods", "watch"].labels["scope"] == "watch"
    err = figs["api_error_ratio", "", ""]
    assert err.value == round(1 / 251, 5) and "get pods: 1" in err.note
    assert res.details["api_latency"]["warmup_samples"] == 1
    assert {i["labels"]["Metric"] for i in res.perfdata} == {"api_latency", "store_latency"}
    assert any("SLO windows are 60 s" in n for n in res.notes)
