"""The lab-level packet-rate function runs end to end and measures what it claims: frames of
every path are counted at the receiver and took the intended way (counters), same run. No
thresholds here -- timing belongs to benchmarks/conformance (PERF-NET-*), which call the same
function with longer runs."""

from __future__ import annotations

import pytest

from centaurus import PREFIX
from centaurus.labs import nsutil
from centaurus.labs.pps import measure_lab_pps

pytestmark = pytest.mark.integration


def test_measure_lab_pps_short_run() -> None:
    before = set(nsutil.list_netns(PREFIX))
    r = measure_lab_pps(seconds=0.2, trials=1, fixed_pps=20_000, fixed_seconds=0.5)
    paths = r["paths"]
    assert set(paths) == {"plain_3hop", "geneve_floor_3hop", "overlay_direct_3hop_chain", "plain_4hop",
                          "overlay_bouncer_4hop", "overlay_direct_3hop", "bridge_vxlan_3hop",
                          "bridge_vxlan_3hop_nf0"}
    for name, p in paths.items():
        assert p["received"] > 0 and p["pps"] > 0 and p["pps_per_core"] > 0, (name, p)
    lab = paths["overlay_direct_3hop"]["counters"]
    assert lab["d1"]["direct"] >= paths["overlay_direct_3hop"]["received"]  # agent encap, straight to d2
    assert lab["d2"]["rx_decap"] >= paths["overlay_direct_3hop"]["received"]
    assert not any(k.startswith("drop_") and k != "drop_unsupported" for c in lab.values() for k in c), lab
    bouncer = paths["overlay_bouncer_4hop"]["counters"]
    assert bouncer["bouncer1"]["bounced"] > 0, bouncer
    kernel = paths["bridge_vxlan_3hop"]
    assert kernel["counters"]["d1"]["tx_encap"] >= kernel["received"]
    assert kernel["bridge_nf_call_iptables"] == 1
    assert paths["bridge_vxlan_3hop_nf0"]["bridge_nf_call_iptables"] == 0
    for name in ("overlay_direct_3hop", "bridge_vxlan_3hop", "bridge_vxlan_3hop_nf0"):
        fr = paths[name]["fixed_rate"]
        assert fr["received"] > 0 and fr["cpu_ns_per_packet"] >= 0, (name, fr)
    for key in ("direct_vs_plain_3hop", "bouncer_vs_plain_4hop", "direct_vs_bridge_vxlan",
                "cpu_per_packet_vs_bridge_vxlan"):
        assert key in r["ratios"]
    assert len(r["labs"]) == 3
    left = [n for n in set(nsutil.list_netns(PREFIX)) - before
            if n in r["chain_netns"] or any(n.startswith(f"{PREFIX}{i}-") for i in r["labs"])]
    assert not left, f"namespaces left behind: {left}"
