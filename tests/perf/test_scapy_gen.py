"""The scapy generator through a real lab (perf-p2p, XDP overlay): a low-rate trial arrives whole,
counted at the receiving endpoint; a malformed frame sent the same way is dropped by the agent."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from centaurus.trafficgen.base import Trial
from centaurus.trafficgen.scapy_gen import ScapyGenerator

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_scapy_trial_and_malformed_frames_in_a_lab() -> None:
    from centaurus.labs.netns import NetnsLab
    from centaurus.labs.spec import load_spec

    with tempfile.TemporaryDirectory(prefix="cl-scapy-") as d:
        lab = NetnsLab(Path(d), {"dataplane": "mizar-xdp"})
        gen = ScapyGenerator({"max_pps": 2000})
        try:
            lab.up(load_spec(ROOT / "labs" / "perf-p2p.yaml"))
            gen.check()
            path = {"kind": "endpoint", "lab": lab, "src": "s1", "dst": "r1"}
            r = gen.run_trial(path, Trial(128, 1000.0, 0.3, 4))
            assert r.tx_packets == 300 and r.rx_packets == r.tx_packets, r
            ep = gen._ep(path)
            good = ep.frame(64, 40000)
            bad = good[:14] + bytes([0x65]) + good[15:]  # IP version 6 in an IPv4 EtherType frame
            before = lab.stats("d1").get("drop_bad_ip", 0)
            assert gen.send(path, [bad] * 5) == 0
            assert lab.stats("d1").get("drop_bad_ip", 0) - before == 5
            assert gen.send(path, [good] * 5) == 5
        finally:
            gen.close()
            lab.down()
