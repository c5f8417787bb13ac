"""The xdp-live generator with the real kernel: frames of every size reach the receiver over plain
chains and the overlay, the multi-flow program really varies the source port, a paced trial
holds its rate, counts come from the sink, and nothing is left behind."""

from __future__ import annotations

import subprocess

import pytest

from centaurus.trafficgen.base import Trial
from centaurus.trafficgen.frames import udp_frame
from centaurus.trafficgen.xdp_live import XdpLiveGenerator

pytestmark = pytest.mark.integration


def _our_netns(tags: list[str]) -> list[str]:
    out = subprocess.run(["ip", "netns"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if any(t in line for t in tags)]


def test_chains_and_overlay_deliver_every_frame_size_counted_at_the_receiver() -> None:
    g = XdpLiveGenerator({"warmup": 20_000})
    g.check()
    tags: list[str] = []
    try:
        for path in (
            {"kind": "chain", "hops": 1},
            {"kind": "chain", "hops": 3},
            {"kind": "chain", "mode": "overlay", "via": "direct"},
        ):
            for size in (64, 1518):
                r = g.run_trial(path, Trial(size, 0.0, 0.05, 8))
                assert r.rx_packets > 0 and r.loss_ratio < 0.001, (path, size, r)
                assert r.extra["rx_bytes"] == r.rx_packets * (size - 4)
                assert r.extra["cpu_s"] > 0 and r.extra["pps_per_core"] >= r.rx_pps * 0.5
        tags = [cs.chain.tag for cs in g._chains.values()]
        counters = g.route({"kind": "chain", "mode": "overlay", "via": "direct"}).counters()
        assert counters["d1"].get("direct", 0) > 0 and counters["d2"].get("rx_decap", 0) > 0
        paced = g.run_trial({"kind": "chain", "hops": 3}, Trial(64, 20_000, 0.5))
        assert paced.tx_packets == paced.rx_packets == 10_000
        assert 10_000 <= paced.rx_pps <= 21_000
    finally:
        g.close()
    assert not _our_netns(tags)


def test_multi_flow_generator_cycles_the_udp_source_port() -> None:
    """tg_gen_mf run without live frames returns the rewritten frame: ports base..base+n-1."""
    from centaurus.bpf.testrun import prog_test_run
    from centaurus.trafficgen.xdp_live import Sender

    s = Sender(None, "lo")
    try:
        s.set_flows(3, sport_base=5000)
        frame = udp_frame(64, "02:00:00:00:00:01", "02:00:00:00:00:02", "10.0.0.1", "10.0.0.2", sport=1)
        ports = []
        for _ in range(6):
            out = prog_test_run(s.fd, frame).data_out
            ports.append(int.from_bytes(out[34:36], "big"))
        assert sorted(set(ports)) == [5000, 5001, 5002] and ports[:3] != ports[1:4]
        s.set_flows(1)
        assert int.from_bytes(prog_test_run(s.fd, frame).data_out[34:36], "big") == 1
    finally:
        s.close()


def test_unknown_paths_are_refused_clearly() -> None:
    g = XdpLiveGenerator({})
    with pytest.raises(ValueError, match="unknown path kind"):
        g.run_trial({"kind": "wormhole"}, Trial())
    with pytest.raises(ValueError, match="via must be"):
        g.route({"kind": "chain", "mode": "overlay", "via": "sideways"})
    with pytest.raises(ValueError, match="hops must be"):
        g.route({"kind": "chain", "hops": 0})
    g.close()
