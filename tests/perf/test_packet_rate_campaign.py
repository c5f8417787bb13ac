"""A small packet-rate campaign end to end on the real kernel (chains only, to stay fast; the lab
paths run in `make perf`): figures per path and size, paired ratios, the worst-of figure judged
against the catalog's PERF-NET-1 bound, NDR/PDR seeded by the interleaved trials."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from centaurus.perf import campaign as cmod
from centaurus.perf import runner

pytestmark = pytest.mark.integration


def test_packet_rate_campaign_on_chains(tmp_path: Path) -> None:
    doc = {
        "name": "pps-mini",
        "steps": [
            {
                "name": "pps",
                "measurements": [
                    {
                        "identifier": "pps",
                        "method": "packet-rate",
                        "params": {
                            "sizes": [64, 1518],
                            "rounds": 2,
                            "trial_s": 0.05,
                            "flows": 4,
                            "generator_options": {"warmup": 20_000},
                            "paths": [
                                {"name": "raw_1hop", "kind": "chain", "hops": 1},
                                {"name": "plain_3hop", "kind": "chain", "hops": 3},
                                {
                                    "name": "overlay_direct_3hop",
                                    "kind": "chain",
                                    "mode": "overlay",
                                    "via": "direct",
                                },
                            ],
                            "ndr": {"trial_s": 0.05, "max_iterations": 2},
                        },
                    }
                ],
            }
        ],
        "thresholds": [{"figure": "overlay_vs_plain_chain_worst", "requirement": "PERF-NET-1"}],
    }
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(doc))
    out = runner.run(cmod.load(p), short=True, report_dir=tmp_path / "out")
    assert out["errors"] == []
    figs = out["figures"]
    rates = {
        (f["labels"]["path"], f["labels"]["frame_size"]): f["value"]
        for f in figs
        if f["name"] == "packet_rate_mpps"
    }
    assert set(rates) == {
        (p, s) for p in ("raw_1hop", "plain_3hop", "overlay_direct_3hop") for s in ("64", "1518")
    }
    assert all(v > 0 for v in rates.values())
    assert rates["raw_1hop", "64"] > rates["plain_3hop", "64"]  # more hops, fewer packets per core
    worst = next(f for f in figs if f["name"] == "overlay_vs_plain_chain_worst")
    assert worst["status"] in ("met", "not-met") and worst["thresholds"][0]["value"] == 0.8
    assert 0.2 < worst["value"] < 1.5 and worst["reference"]["name"] == "plain_3hop"
    ndr = [f for f in figs if f["name"] == "ndr_mpps"]
    assert len(ndr) == 6 and all(f["value"] > 0 for f in ndr)
    pd = [i for i in out["dataItems"] if i["labels"]["Metric"] == "packet_rate"]
    assert {i["labels"]["FrameSize"] for i in pd} == {"64", "1518"} and all("Gbps" in i["data"] for i in pd)
